#!/usr/bin/env bash
# bench/latency.sh - latency at a fixed rate: unique RingCentral SMS posted at exactly
# 1,000/s for 20 s (open loop, a few keep-alive connections: bench/fixed_rate.py) to the
# full Switchboard pipeline and to the FastAPI peer of ../shared/peers.
#
# Per request: request -> ack (the 200), and ack -> row: from the 200 to the commit of
# the transaction that stored its communications row. PostgreSQL runs with
# track_commit_timestamp = on, so every row's commit time is pg_xact_commit_timestamp of
# its xmin; same clock as the client's. For Switchboard also ack -> NOTIFY: when the
# writer's NOTIFY for the row reached a client LISTENing on "communications" (what an
# application watching for new SMS sees). The peer commits before it answers, so its
# ack -> row is negative and its row latency is request -> commit. The generator ACKs at
# once (TCP_QUICKACK, --quickack 0 to turn it off): uvicorn as Debian ships it writes
# headers and body separately with Nagle on, and would otherwise wait for our delayed ACK,
# 40 ms per request on a kept-alive connection.
#
# One throwaway PostgreSQL (databases "switchboard" and "peer", over TCP). The targets take
# turns, N runs each; medians of the per-run percentiles are printed. Loopback only;
# everything started here is stopped on exit, Ctrl-C included.
set -euo pipefail
SB_PROG=latency
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    cat <<EOF
usage: bench/latency.sh [options]

  --rate R          requests per second (default 1000)
  --duration S      seconds per run (default 20)
  --connections C   keep-alive connections of the load generator (default 8)
  --drain-max S     longest wait for the rows after a run (default 30)
  --quickack 1|0    1 (default): the load generator ACKs at once (TCP_QUICKACK); 0: the
                    kernel's delayed ACKs, which cost the peer 40 ms per kept-alive request
  --targets LIST    comma list of switchboard,peer (default both)
  --pg-port PORT    port of the throwaway PostgreSQL (default 55444)
  --port-offset N   added to Switchboard's ports (default 300: HTTP 127.0.0.1:18301);
                    the peer listens on 8011 + N
$BENCH_USAGE_COMMON
EOF
}

rate=1000
duration=20
connections=8
drain_max=30
quickack=1
targets=switchboard,peer
pg_port=55444
port_offset=300
BENCH_OPT+=([--rate]=rate [--duration]=duration [--connections]=connections
    [--drain-max]=drain_max [--quickack]=quickack [--targets]=targets [--pg-port]=pg_port
    [--port-offset]=port_offset)
bench_options usage "$@"
bench_positive --runs --rate --duration --connections --drain-max --pg-port --port-offset
[[ $quickack =~ ^[01]$ ]] || sb_die "--quickack is 1 or 0, not \"$quickack\""
want() { [[ ,$targets, == *,$1,* ]]; }
peers=$shared/peers
peer_port=$((8011 + port_offset))
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || sb_die "needs python3-psycopg2 (apt-get install)"

bench_init
bench_wire "$port_offset"
want switchboard && bench_build "$build_dir"
bench_pg "$pg_port"
# Commit timestamps need a restart to take effect.
sb_pg_psql postgres "ALTER SYSTEM SET track_commit_timestamp = on" >/dev/null
sb_pg_stop
bench_pg "$pg_port"
[ "$(sb_pg_psql postgres "SHOW track_commit_timestamp")" = on ] || sb_die "track_commit_timestamp is not on"
bench_targets "$targets" "$build_dir" "$peers" "$peer_port"

# ---- measuring --------------------------------------------------------------------------
declare -A port=([switchboard]=${BENCH_SB_HTTP##*:} [peer]=$peer_port)
declare -A dsn=([switchboard]=$BENCH_PG_TCP/switchboard [peer]=$BENCH_PG_TCP/peer)
declare -A table=([switchboard]=communications [peer]=peer_communications)
declare -A m=() # "target metric" -> space-separated per-run values
metrics=(rate req_ack.p50 req_ack.p99 req_ack.max due_ack.p50 due_ack.p99 due_ack.max
    ack_commit.p50 ack_commit.p99 ack_commit.max req_commit.p50 req_commit.p99
    req_commit.max due_commit.p50 due_commit.p99 due_commit.max ack_notify.p50 ack_notify.p99 ack_notify.max send_late.p99)

one_run() {
    local t=$1 i=$2 out args=() x
    [ "$t" = switchboard ] && args+=(--listen) # the writer NOTIFYs; the peer does not
    [ "$quickack" = 0 ] && args+=(--no-quickack)
    out=$(/usr/bin/python3 -B "$SB_ROOT/bench/fixed_rate.py" --port "${port[$t]}" \
        --token "$BENCH_TOKEN" --rate "$rate" --duration "$duration" \
        --connections "$connections" --dsn "${dsn[$t]}" --table "${table[$t]}" \
        --drain-max "$drain_max" "${args[@]}")
    for x in "${metrics[@]}"; do
        m["$t $x"]+="$(awk -v n="${x%.*}" -v f="${x#*.}" '$1 == n {
            print (f == "p50" ? $2 : f == "p99" ? $3 : f == "max" ? $4 : $2) }' <<<"$out") "
    done
    s_get() { awk -v n="$1" '$1 == n { print $2 }' <<<"$out"; }
    sb_say "$t run $i: $(s_get ok)/$(s_get requests) answered 200 at $(s_get rate)/s," \
        "$(s_get rows) rows, $(s_get notified) notifications;" \
        "$(awk '{ printf "%s%s", sep, $0; sep = "; " }' <<<"$(grep -E '^(req_ack|due_ack|ack_commit|req_commit|due_commit|ack_notify) ' <<<"$out")")"
    [ "$(s_get ok)" = "$(s_get requests)" ] || sb_say "warning: $t answered $(s_get ok) of $(s_get requests) with 200"
    [ "$(s_get rows)" -ge "$(s_get ok)" ] || sb_say "warning: $t stored $(s_get rows) rows for $(s_get ok) acks"
}

order=()
for t in switchboard peer; do want "$t" && order+=("$t"); done
[ ${#order[@]} -gt 0 ] || sb_die "--targets: nothing to measure"
load_start=$(bench_loadavg)
for ((i = 1; i <= runs; i++)); do
    for t in "${order[@]}"; do one_run "$t" "$i"; done
done

# ---- report -----------------------------------------------------------------------------
bench_header "$runs runs per target of bench/fixed_rate.py --rate $rate --duration $duration --connections $connections$([ "$quickack" = 1 ] || echo " --no-quickack")" \
    "$load_start" "$build_dir"
med() { bench_median %.2f "${m["$1 $2"]:-}"; }
s_trio() { printf '%s / %s / %s' "$(med "$1" "$2.p50")" "$(med "$1" "$2.p99")" "$(med "$1" "$2.max")"; }
printf 'milliseconds, p50 / p99 / max (medians over the runs); "row" = the commit of the\n'
printf 'transaction that stored it (pg_xact_commit_timestamp); due = when the open-loop schedule\n'
printf 'wanted the request sent (a target that falls behind the rate shows it there).\n\n'
printf '| target | achieved req/s | request -> ack | due -> ack | ack -> row | request -> row | due -> row | ack -> NOTIFY received |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for t in "${order[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(bench_median %.0f "${m["$t rate"]}")" \
        "$(s_trio "$t" req_ack)" "$(s_trio "$t" due_ack)" "$(s_trio "$t" ack_commit)" \
        "$(s_trio "$t" req_commit)" "$(s_trio "$t" due_commit)" "$(s_trio "$t" ack_notify)"
done
printf '\nthe load generator sent late (sent - due, p99, ms):%s\n' \
    "$(for t in "${order[@]}"; do printf ' %s %s' "$t" "$(med "$t" send_late.p99)"; done)"
if want switchboard; then
    p99=$(med switchboard ack_commit.p99)
    printf 'Switchboard ack -> row p99 %s ms (goal < 50: %s)\n' "$p99" \
        "$(awk -v p="$p99" 'BEGIN { print (p != "-" && p < 50 ? "met" : "not met") }')"
fi
if want switchboard && want peer; then
    printf 'p99 peer / Switchboard: request -> row %s, due -> row %s\n' \
        "$(bench_ratio "$(med peer req_commit.p99)" "$(med switchboard req_commit.p99)" %.2f)" \
        "$(bench_ratio "$(med peer due_commit.p99)" "$(med switchboard due_commit.p99)" %.2f)"
fi
