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
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

usage() {
    cat <<EOF
usage: bench/sms_e2e.sh [options]

  --runs N          runs per target (default 3); the median is reported
  --duration S      seconds per wrk run (default 10)
  --threads T       wrk threads (default 2)
  --connections C   wrk connections (default 32)
  --drain-max S     longest wait for Switchboard to store what it acked (default 20)
  --targets LIST    comma list of switchboard,peer,nginx (default all three)
  --build-dir DIR   Switchboard build (default ./build, built RelWithDebInfo if needed)
  --shared DIR      the shared/ directory with peers/ (default ../shared)
  --pg-port PORT    port of the throwaway PostgreSQL (default 55442)
  --help            this text
EOF
}

runs=3
duration=10
threads=2
connections=32
drain_max=20
targets=switchboard,peer,nginx
build_dir=$SB_ROOT/build
shared=$(cd "$SB_ROOT/.." && pwd)/shared
pg_port=55442
while [ $# -gt 0 ]; do
    [ "$1" = --help ] || [ "$1" = -h ] && { usage; exit 0; }
    [ $# -ge 2 ] || { usage >&2; sb_die "$1 needs a value (or is unknown)"; }
    case $1 in
    --runs) runs=$2 ;;
    --duration) duration=$2 ;;
    --threads) threads=$2 ;;
    --connections) connections=$2 ;;
    --drain-max) drain_max=$2 ;;
    --targets) targets=$2 ;;
    --build-dir) build_dir=$2 ;;
    --shared) shared=$2 ;;
    --pg-port) pg_port=$2 ;;
    *) usage >&2; sb_die "unknown option: $1" ;;
    esac
    shift 2
done
for n in "$runs" "$duration" "$threads" "$connections" "$drain_max" "$pg_port"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || sb_die "not a positive integer: $n"
done
want() { [[ ,$targets, == *,$1,* ]]; }
peers=$shared/peers
[ -f "$peers/sms.lua" ] || sb_die "no $peers/sms.lua (use --shared DIR)"
command -v wrk >/dev/null || sb_die "wrk is not installed (apt-get install wrk)"

# Fixed ports, away from scripts/run's defaults so both can run on one machine.
SB_HTTP=127.0.0.1:18001
PEER_PORT=8011
NGINX_PORT=8012 # fixed by nginx-ceiling.conf
TOKEN=bench-verification-token-$$

tmp=
declare -A pid=() # what we started: name -> pid
cleanup() {
    local status=$?
    trap '' INT TERM
    if [ ${#pid[@]} -gt 0 ]; then
        # uvicorn and nginx run in their own session: signal the whole group (their workers).
        for n in peer nginx; do
            [ -n "${pid[$n]:-}" ] && { kill -TERM -- "-${pid[$n]}" 2>/dev/null || true; }
        done
        sb_stop_pids 10 "${pid[@]}" || sb_say "had to SIGKILL pid(s) ${SB_KILLED[*]}"
        for n in peer nginx; do
            [ -n "${pid[$n]:-}" ] && { kill -KILL -- "-${pid[$n]}" 2>/dev/null || true; }
        done
        wait 2>/dev/null || true
    fi
    sb_pg_stop
    [ -n "$tmp" ] && rm -rf "$tmp"
    [ "${nginx_err_ours:-0}" = 1 ] && rm -f /tmp/nginx-ceiling.err # its conf logs there
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ------------------------------------------------------------------------------
tmp=$(mktemp -d /var/tmp/sb-bench.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach $tmp/pg

if want switchboard; then
    SB_BUILD_TARGETS=("${SB_STAGE_TARGETS[@]}")
    sb_build "$build_dir" RelWithDebInfo
    grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$build_dir/CMakeCache.txt" ||
        sb_say "warning: $build_dir is not a RelWithDebInfo build"
    grep -q '^SB_SANITIZE:STRING=$' "$build_dir/CMakeCache.txt" ||
        sb_say "warning: $build_dir is built with sanitizers"
fi

sb_pg_start "$tmp/pg" "$pg_port"
pg_tcp=postgresql://postgres@127.0.0.1:$pg_port

# sms.lua seeds its id prefix with math.random, and LuaJIT's generator starts from the same
# seed in every wrk thread and every run: with -t2 half the requests repeat the other
# thread's ids, and run 2 repeats run 1. Give each thread its own prefix (9 digits, so that
# prefix..counter stays unique) from a per-run base passed as a script argument.
lua=$tmp/sms.lua
cp "$peers/sms.lua" "$lua"
cat >>"$lua" <<'EOF'

-- added by bench/sms_e2e.sh: a distinct id prefix per thread and per run
local sb_threads = 0
function setup(thread)
  sb_threads = sb_threads + 1
  thread:set("sb_thread", sb_threads)
end
function init(args)
  tid = tonumber(args[1]) + sb_thread
end
EOF

# ---- targets ----------------------------------------------------------------------------
if want switchboard; then
    sb_pg_createdb switchboard
    mkdir -p "$tmp/spool"
    export DATABASE_URL=$pg_tcp/switchboard SPOOL_DIR=$tmp/spool
    export RINGCENTRAL_VERIFICATION_TOKEN=$TOKEN INGRESS_LISTEN=$SB_HTTP
    export INGRESS_PUSH_ENDPOINT='>tcp://127.0.0.1:15557' VERIFIER_PULL_ENDPOINT='@tcp://127.0.0.1:15557'
    export VERIFIER_PUSH_ENDPOINT='>tcp://127.0.0.1:15558' WRITER_PULL_ENDPOINT='@tcp://127.0.0.1:15558'
    export INGRESS_ACK_ENDPOINT='@tcp://127.0.0.1:15559' ACK_ENDPOINT='>tcp://127.0.0.1:15559'
    if [[ " ${SB_STAGES[*]} " == *" enricher "* ]]; then # SMS pass through it unchanged
        export VERIFIER_PUSH_ENDPOINT='>tcp://127.0.0.1:15560' ENRICHER_PULL_ENDPOINT='@tcp://127.0.0.1:15560'
        export ENRICHER_PUSH_ENDPOINT='>tcp://127.0.0.1:15558'
    fi
    curl -s -o /dev/null -m 1 "http://$SB_HTTP/" && sb_die "something already listens on $SB_HTTP"
    declare -A metrics_port=([verifier]=19102 [enricher]=19103 [writer]=19104 [ingress]="")
    for s in "${SB_STAGES[@]}"; do
        METRICS_LISTEN=127.0.0.1:${metrics_port[$s]} "$build_dir/$s/sb-$s" 2>>"$tmp/switchboard.log" &
        pid[$s]=$!
    done
    if ! sb_wait_http "http://$SB_HTTP/api/webhooks/health" 30 "${pid[@]}"; then
        tail -n 20 "$tmp/switchboard.log" >&2
        sb_die "Switchboard did not become healthy (last: $SB_HTTP_STATUS $SB_HTTP_BODY)"
    fi
    sb_say "Switchboard healthy on $SB_HTTP"
fi

if want peer; then
    sb_pg_createdb peer
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$PEER_PORT/" && sb_die "something already listens on :$PEER_PORT"
    # Its two workers would both run CREATE TABLE IF NOT EXISTS at start, which can race in
    # PostgreSQL; apply the peer's own SCHEMA once first.
    PEER_DSN=unused /usr/bin/python3 -B -c "import sys; sys.path.insert(0, '$peers'); import fastapi_receiver as f; print(f.SCHEMA)" |
        "$SB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$pg_tcp/peer" >/dev/null
    # --log-level warning as in fastapi_receiver.py's header: no access log, its best case.
    PEER_DSN=$pg_tcp/peer PEER_VERIFICATION_TOKEN=$TOKEN PYTHONDONTWRITEBYTECODE=1 \
        setsid /usr/bin/python3 -m uvicorn fastapi_receiver:app --app-dir "$peers" \
        --port "$PEER_PORT" --workers 2 --log-level warning 2>>"$tmp/peer.log" >&2 &
    pid[peer]=$!
    if ! sb_wait_http "http://127.0.0.1:$PEER_PORT/api/webhooks/health" 30 "${pid[peer]}"; then
        tail -n 20 "$tmp/peer.log" >&2
        sb_die "the FastAPI peer did not start"
    fi
    sb_say "FastAPI peer up on :$PEER_PORT"
fi

if want nginx; then
    if command -v nginx >/dev/null; then
        mkdir -p "$tmp/nginx/logs"
        [ -e /tmp/nginx-ceiling.err ] || nginx_err_ours=1
        setsid nginx -p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$peers/nginx-ceiling.conf" \
            -g 'daemon off;' 2>>"$tmp/nginx.log" &
        pid[nginx]=$!
        sb_wait_http "http://127.0.0.1:$NGINX_PORT/" 10 "${pid[nginx]}" ||
            sb_die "nginx did not start: $(cat "$tmp/nginx.log" "$tmp/nginx/error.log" 2>/dev/null)"
        sb_say "nginx ceiling up on :$NGINX_PORT"
    else
        sb_say "nginx is not installed: no ceiling measurement (apt-get install nginx-light)"
        targets=${targets//nginx/}
    fi
fi

# ---- measuring --------------------------------------------------------------------------
# rows TARGET: rows stored so far by that target.
rows() {
    case $1 in
    switchboard) sb_pg_psql switchboard "SELECT count(*) FROM communications" ;;
    peer) sb_pg_psql peer "SELECT count(*) FROM peer_communications" ;;
    *) echo 0 ;;
    esac
}

# After wrk: poll until the row count has not moved for 1 s (or drain_max passes). Sets
# DRAIN to the seconds from the end of wrk to the last growth, ROWS_NOW to the count.
drain() {
    local target=$1 t_end=$2 last now t_last deadline still=0
    last=$(rows "$target")
    t_last=$t_end
    deadline=$(($(date +%s) + drain_max))
    while [ $still -lt 4 ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            sb_say "warning: $target still storing after $drain_max s (--drain-max)"
            break
        fi
        sleep 0.25
        now=$(rows "$target")
        if [ "$now" != "$last" ]; then
            last=$now
            t_last=$(sb_now)
            still=0
        else
            still=$((still + 1))
        fi
    done
    ROWS_NOW=$last
    DRAIN=$(awk -v a="$t_end" -v b="$t_last" 'BEGIN { d = b - a; printf "%.2f", d < 0 ? 0 : d }')
}

# to_ms VALUE: wrk's "1.50ms" / "812.00us" / "1.02s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0;
        else if (v ~ /m$/) printf "%.3f", v * 60000; else printf "%.3f", v * 1000 }'
}

declare -A url=(
    [switchboard]=http://$SB_HTTP/api/webhooks/ringcentral/sms
    [peer]=http://127.0.0.1:$PEER_PORT/api/webhooks/ringcentral/sms
    [nginx]=http://127.0.0.1:$NGINX_PORT/api/webhooks/ringcentral/sms
)
declare -A ack_l=() p99_l=() stored_l=() ratio_l=() # space-separated per-run values

one_run() {
    local target=$1 i=$2 out before base t_end reqs secs non2xx p99 acked stored_rate
    before=$(rows "$target")
    base=$((100000000 + ($(date +%s) % 8000000) * 100))
    out=$(VT=$TOKEN wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$lua" \
        "${url[$target]}" -- "$base")
    t_end=$(sb_now)
    reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
    secs=$(awk '/ requests in / { sub(/s,$/, "", $4); print $4 }' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx responses/ { print $NF }' <<<"$out")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    [ -n "$reqs" ] && [ -n "$secs" ] || { echo "$out" >&2; sb_die "could not parse wrk's output"; }
    acked=$((reqs - ${non2xx:-0}))
    ack_l[$target]+="$(awk -v n="$acked" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') "
    p99_l[$target]+="$p99 "
    if [ "$target" = nginx ]; then
        sb_say "$target run $i: $acked ok in ${secs}s, p99 ${p99} ms"
        return
    fi
    drain "$target" "$t_end"
    stored=$((ROWS_NOW - before))
    stored_rate=$(awk -v n="$stored" -v s="$secs" -v d="$DRAIN" 'BEGIN { printf "%.0f", n / (s + d) }')
    stored_l[$target]+="$stored_rate "
    ratio_l[$target]+="$(awk -v a="$acked" -v s="$stored" 'BEGIN { printf "%.4f", a ? s / a : 0 }') "
    sb_say "$target run $i: $acked acked (${non2xx:-0} non-2xx) in ${secs}s, p99 ${p99} ms;" \
        "$stored rows, drain ${DRAIN}s -> $stored_rate stored/s"
    # Up to one request per connection is still in flight when wrk stops: stored, not counted.
    if [ "$stored" -lt "$acked" ] || [ "$stored" -gt $((acked + connections)) ]; then
        sb_say "warning: $target stored $stored rows for $acked acked requests"
    fi
}

# median FORMAT "v1 v2 ...": the median printed with FORMAT, or "-" for no values.
median() { tr ' ' '\n' <<<"$2" | awk NF | sort -g | awk -v f="$1" '{ v[NR] = $1 }
    END { if (NR == 0) print "-";
          else printf f "\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

order=()
for t in nginx switchboard peer; do want "$t" && order+=("$t"); done
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# Targets take turns so that a slow drift of the machine hits all of them alike.
for ((i = 1; i <= runs; i++)); do
    for t in "${order[@]}"; do one_run "$t" "$i"; done
done

# ---- report -----------------------------------------------------------------------------
printf '\n%s, %s runs of: wrk -t%s -c%s -d%ss --latency -s sms.lua URL\n' \
    "$(date -u +%Y-%m-%d)" "$runs" "$threads" "$connections" "$duration"
printf 'machine: %s cores, %s, Debian %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(cat /etc/debian_version)"
# Others' work on a shared machine lowers every number: the load average says how much.
printf 'load average before the runs: %s; after: %s\n\n' "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| target | ack req/s (median) | p99 ms (median) | stored/s end to end (median) | stored/acked |\n'
printf '|---|---:|---:|---:|---:|\n'
declare -A med_ack=() med_stored=()
for t in "${order[@]}"; do
    med_ack[$t]=$(median %.0f "${ack_l[$t]}")
    med_stored[$t]=$(median %.0f "${stored_l[$t]:-}")
    printf '| %s | %s | %s | %s | %s |\n' "$t" "${med_ack[$t]}" "$(median %.2f "${p99_l[$t]}")" \
        "${med_stored[$t]}" "$(median %.3f "${ratio_l[$t]:-}")"
done
if want switchboard; then
    # Where the ingress's time goes: its group commits over all the runs.
    curl -s -m 5 "http://$SB_HTTP/metrics" | awk '
        $1 == "sb_spool_sync_seconds_sum" { s = $2 } $1 == "sb_spool_sync_seconds_count" { n = $2 }
        $1 == "sb_spool_sync_records_sum" { r = $2 }
        END { if (n > 0) printf "\nswitchboard ingress: %d group commits, %.2f ms each on average, %.1f requests per commit\n", n, 1000 * s / n, r / n }'
fi
if want switchboard && want peer; then
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }
    printf '\nswitchboard ack/s / peer ack/s:       %s\n' "$(ratio "${med_ack[switchboard]}" "${med_ack[peer]}")"
    printf 'switchboard stored/s / peer stored/s: %s\n' "$(ratio "${med_stored[switchboard]}" "${med_stored[peer]}")"
fi
