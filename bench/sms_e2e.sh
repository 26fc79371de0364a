#!/usr/bin/env bash
# bench/sms_e2e.sh - RingCentral SMS webhooks, end to end, Switchboard beside the FastAPI
# peer of ../shared/peers (and nginx's constant 200 as the HTTP ceiling, if installed).
#
# Everything is loopback and throwaway: one PostgreSQL in a temp dir (databases
# "switchboard" and "peer", both reached over TCP), the pipeline from ./build on its own
# ports, the peer on 8011. Each run is one `wrk -t2 -c32 -d10s` plus the time Switchboard
# needs to drain what it acknowledged; the targets take turns, N runs each, and the
# medians are printed. Everything started here is stopped on exit, Ctrl-C included.
set -euo pipefail
SB_PROG=bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    cat <<EOF
usage: bench/sms_e2e.sh [options]

  --duration S      seconds per wrk run (default 10)
  --threads T       wrk threads (default 2)
  --connections C   wrk connections (default 32)
  --drain-max S     longest wait for Switchboard to store what it acked (default 20)
  --targets LIST    comma list of switchboard,peer,nginx (default all three)
  --pg-port PORT    port of the throwaway PostgreSQL (default 55442)
$BENCH_USAGE_COMMON
EOF
}

duration=10
threads=2
connections=32
drain_max=20
targets=switchboard,peer,nginx
pg_port=55442
BENCH_OPT+=([--duration]=duration [--threads]=threads [--connections]=connections
    [--drain-max]=drain_max [--targets]=targets [--pg-port]=pg_port)
bench_options usage "$@"
bench_positive --runs --duration --threads --connections --drain-max --pg-port
want() { [[ ,$targets, == *,$1,* ]]; }
peers=$shared/peers

# Fixed ports, away from scripts/run's defaults so both can run on one machine.
bench_wire 0 # Switchboard's HTTP on 127.0.0.1:18001
PEER_PORT=8011
NGINX_PORT=8012 # as in nginx-ceiling.conf

# ---- setup ------------------------------------------------------------------------------
bench_init
bench_sms_lua "$peers"
want switchboard && bench_build "$build_dir"
bench_pg "$pg_port"

# ---- targets ----------------------------------------------------------------------------
bench_targets "$targets" "$build_dir" "$peers" "$PEER_PORT"
want nginx && { bench_start_nginx "$peers" "$NGINX_PORT" || targets=${targets//nginx/}; }

# ---- measuring --------------------------------------------------------------------------
# rows TARGET: rows stored so far by that target.
rows() {
    case $1 in
    switchboard) sb_pg_psql switchboard "SELECT count(*) FROM communications" ;;
    peer) sb_pg_psql peer "SELECT count(*) FROM peer_communications" ;;
    *) echo 0 ;;
    esac
}
rows_now() { rows "$current"; } # for bench_drain: the target being measured

declare -A url=(
    [switchboard]=http://$BENCH_SB_HTTP/api/webhooks/ringcentral/sms
    [peer]=http://127.0.0.1:$PEER_PORT/api/webhooks/ringcentral/sms
    [nginx]=http://127.0.0.1:$NGINX_PORT/api/webhooks/ringcentral/sms
)
declare -A ack_l=() p99_l=() stored_l=() ratio_l=() # space-separated per-run values

one_run() {
    local target=$1 i=$2 before t_end acked stored_rate
    before=$(rows "$target")
    bench_wrk "$threads" "$connections" "$duration" "${url[$target]}"
    t_end=$(sb_now)
    acked=$WRK_OK
    ack_l[$target]+="$WRK_RATE "
    p99_l[$target]+="$WRK_P99 "
    if [ "$target" = nginx ]; then
        sb_say "$target run $i: $acked ok in ${WRK_SECS}s, p99 ${WRK_P99} ms"
        return
    fi
    current=$target # for rows_now
    bench_drain rows_now "$t_end" "$drain_max"
    stored=$((ROWS_NOW - before))
    stored_rate=$(awk -v n="$stored" -v s="$WRK_SECS" -v d="$DRAIN" 'BEGIN { printf "%.0f", n / (s + d) }')
    stored_l[$target]+="$stored_rate "
    ratio_l[$target]+="$(awk -v a="$acked" -v s="$stored" 'BEGIN { printf "%.4f", a ? s / a : 0 }') "
    sb_say "$target run $i: $acked acked ($WRK_NON2XX non-2xx) in ${WRK_SECS}s, p99 ${WRK_P99} ms;" \
        "$stored rows, drain ${DRAIN}s -> $stored_rate stored/s"
    # Up to one request per connection is still in flight when wrk stops: stored, not counted.
    if [ "$stored" -lt "$acked" ] || [ "$stored" -gt $((acked + connections)) ]; then
        sb_say "warning: $target stored $stored rows for $acked acked requests"
    fi
}

order=()
for t in nginx switchboard peer; do want "$t" && order+=("$t"); done
load_start=$(bench_loadavg)
# Targets take turns so that a slow drift of the machine hits all of them alike.
for ((i = 1; i <= runs; i++)); do
    for t in "${order[@]}"; do one_run "$t" "$i"; done
done

# ---- report -----------------------------------------------------------------------------
bench_header "$runs runs of: wrk -t$threads -c$connections -d${duration}s --latency -s sms.lua URL" \
    "$load_start" "$build_dir"
printf '| target | ack req/s (median) | p99 ms (median) | stored/s end to end (median) | stored/acked |\n'
printf '|---|---:|---:|---:|---:|\n'
declare -A med_ack=() med_stored=()
for t in "${order[@]}"; do
    med_ack[$t]=$(bench_median %.0f "${ack_l[$t]}")
    med_stored[$t]=$(bench_median %.0f "${stored_l[$t]:-}")
    printf '| %s | %s | %s | %s | %s |\n' "$t" "${med_ack[$t]}" "$(bench_median %.2f "${p99_l[$t]}")" \
        "${med_stored[$t]}" "$(bench_median %.3f "${ratio_l[$t]:-}")"
done
if want switchboard; then
    # Where the ingress's time goes: its group commits over all the runs.
    curl -s -m 5 "http://$BENCH_SB_HTTP/metrics" | awk '
        $1 == "sb_spool_sync_seconds_sum" { s = $2 } $1 == "sb_spool_sync_seconds_count" { n = $2 }
        $1 == "sb_spool_sync_records_sum" { r = $2 }
        END { if (n > 0) printf "\nswitchboard ingress: %d group commits, %.2f ms each on average, %.1f requests per commit\n", n, 1000 * s / n, r / n }'
fi
if want switchboard && want peer; then
    printf '\nswitchboard ack/s / peer ack/s:       %s\n' "$(bench_ratio "${med_ack[switchboard]}" "${med_ack[peer]}")"
    printf 'switchboard stored/s / peer stored/s: %s\n' "$(bench_ratio "${med_stored[switchboard]}" "${med_stored[peer]}")"
fi
