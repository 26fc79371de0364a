#!/usr/bin/env bash
# bench/ingress_ack.sh - how fast sb-ingress acknowledges RingCentral SMS webhooks with
# its durable spool, beside nginx answering a constant 200 (the HTTP ceiling of the box).
#
# sb-ingress runs alone: no verifier, enricher or writer is connected, so it answers 200
# as soon as the request is durable in its spool (fdatasync, group commit, as in
# production) and keeps the events there. Each run starts it on a fresh spool directory on
# the normal disk (under a temp dir in /var/tmp) and measures one `wrk -t2 -c32 -d10s
# --latency -s sms.lua`, the ingress's CPU time (utime+stime of /proc/<pid>/stat, every
# thread) and context switches over that run, and its group commits from its /metrics.
# The targets take turns, N runs each; medians and the ratio are printed. Loopback only;
# everything started here is stopped on exit, Ctrl-C included.
set -euo pipefail
SB_PROG=ingress_ack
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    cat <<EOF
usage: bench/ingress_ack.sh [options]

  --duration S      seconds per wrk run (default 10)
  --threads T       wrk threads (default 2)
  --connections C   wrk connections (default 32)
  --targets LIST    comma list of ingress,nginx (default both)
  --nginx-port P    nginx's port (default 8012, as in nginx-ceiling.conf)
  --port-offset N   added to the ingress's ports (default 100: HTTP 127.0.0.1:18101)
  --perf FILE       also \`perf record -g\` the ingress during its last run into FILE and
                    print where its CPU time went (kernel or user, by shared object)
$BENCH_USAGE_COMMON
EOF
}

duration=10
threads=2
connections=32
targets=ingress,nginx
nginx_port=8012
port_offset=100
perf_file=
BENCH_OPT+=([--duration]=duration [--threads]=threads [--connections]=connections
    [--targets]=targets [--nginx-port]=nginx_port [--port-offset]=port_offset [--perf]=perf_file)
bench_options usage "$@"
bench_positive --runs --duration --threads --connections --nginx-port --port-offset
want() { [[ ,$targets, == *,$1,* ]]; }
[ -z "$perf_file" ] || command -v perf >/dev/null || sb_die "--perf: perf is not installed (apt-get install linux-perf)"
peers=$shared/peers

bench_init
bench_sms_lua "$peers"
bench_wire "$port_offset"
# Nothing downstream will ever ack: no redelivery during the runs (it would only re-queue
# events that cannot leave), and no need for a database.
export REDELIVER_AFTER_MS=3600000
if want ingress; then
    bench_build "$build_dir"
    bench_free "$BENCH_SB_HTTP"
fi
if want nginx; then
    bench_start_nginx "$peers" "$nginx_port" || targets=${targets//nginx/}
fi

declare -A url=(
    [ingress]=http://$BENCH_SB_HTTP/api/webhooks/ringcentral/sms
    [nginx]=http://127.0.0.1:$nginx_port/api/webhooks/ringcentral/sms
)
declare -A rate_l=() p50_l=() p99_l=() # space-separated per-run values
cpu_l='' csw_l='' commits_l='' commit_ms_l='' per_commit_l='' slow_l=''
tck=$(getconf CLK_TCK)

# s_cpu_ticks PID: utime + stime of the whole process (fields 14 and 15 of its stat, after
# the command name in parentheses).
s_cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# s_ctx_switches PID: voluntary and involuntary context switches of all its threads.
s_ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}

run_ingress() {
    local i=$1 pid c0 c1 s0 s1 m perf_pid='' n_commits commit_ms per_commit slow cpu_us csw
    export SPOOL_DIR=$BENCH_TMP/spool-$i # fresh, empty
    mkdir -p "$SPOOL_DIR"
    bench_start_stages "$build_dir" ingress
    # Health says "degraded" without the other stages: wait for /metrics instead.
    bench_wait_up "http://$BENCH_SB_HTTP/metrics" sb-ingress ingress
    pid=${BENCH_PID[ingress]}
    if [ -n "$perf_file" ] && [ "$i" = "$runs" ]; then
        perf record -q -g -o "$perf_file" -p "$pid" -- sleep "$duration" 2>>"$BENCH_TMP/perf.log" &
        perf_pid=$!
    fi
    c0=$(s_cpu_ticks "$pid")
    s0=$(s_ctx_switches "$pid")
    bench_wrk "$threads" "$connections" "$duration" "${url[ingress]}"
    c1=$(s_cpu_ticks "$pid")
    s1=$(s_ctx_switches "$pid")
    [ -n "$perf_pid" ] && { wait "$perf_pid" || sb_say "perf record failed: $(tail -n 3 "$BENCH_TMP/perf.log")"; }
    # Group commits: count, mean, requests each, and how many took over 10 ms (the tail).
    m=$(curl -s -m 5 "http://$BENCH_SB_HTTP/metrics" | awk '
        $1 == "sb_spool_sync_seconds_sum" { s = $2 } $1 == "sb_spool_sync_seconds_count" { n = $2 }
        $1 == "sb_spool_sync_records_sum" { r = $2 }
        $1 == "sb_spool_sync_seconds_bucket{le=\"0.01\"}" { fast = $2 }
        END { printf "%d %.3f %.1f %d", n, n ? 1000 * s / n : 0, n ? r / n : 0, n - fast }')
    bench_stop ingress
    rm -rf "$SPOOL_DIR"
    read -r n_commits commit_ms per_commit slow <<<"$m"
    cpu_us=$(awk -v t=$((c1 - c0)) -v k="$tck" -v n="$WRK_OK" 'BEGIN { printf "%.1f", n ? t * 1e6 / k / n : 0 }')
    csw=$(awk -v s=$((s1 - s0)) -v n="$WRK_OK" 'BEGIN { printf "%.2f", n ? s / n : 0 }')
    cpu_l+="$cpu_us " csw_l+="$csw " commits_l+="$n_commits " commit_ms_l+="$commit_ms "
    per_commit_l+="$per_commit " slow_l+="$slow "
    sb_say "ingress run $i: $WRK_OK acked ($WRK_NON2XX non-2xx) in ${WRK_SECS}s = $WRK_RATE/s," \
        "p50 $WRK_P50 ms, p99 $WRK_P99 ms; $cpu_us CPU us/request, $csw context switches/request;" \
        "$n_commits group commits, $commit_ms ms each, $per_commit requests per commit, $slow over 10 ms"
    [ "$WRK_NON2XX" = 0 ] || sb_say "warning: $WRK_NON2XX answers were not 200 (spool full or failed?)"
}

run_nginx() {
    bench_wrk "$threads" "$connections" "$duration" "${url[nginx]}"
    sb_say "nginx run $1: $WRK_OK ok in ${WRK_SECS}s = $WRK_RATE/s, p50 $WRK_P50 ms, p99 $WRK_P99 ms"
}

order=()
for t in nginx ingress; do want "$t" && order+=("$t"); done
[ ${#order[@]} -gt 0 ] || sb_die "--targets: nothing to measure"
load_start=$(bench_loadavg)
# Targets take turns so that a slow drift of the machine hits both alike.
for ((i = 1; i <= runs; i++)); do
    for t in "${order[@]}"; do
        "run_$t" "$i"
        rate_l[$t]+="$WRK_RATE " p50_l[$t]+="$WRK_P50 " p99_l[$t]+="$WRK_P99 "
    done
done

# ---- report -----------------------------------------------------------------------------
bench_header "$runs runs of: wrk -t$threads -c$connections -d${duration}s --latency -s sms.lua URL" \
    "$load_start" "$build_dir"
printf 'sb-ingress alone, no downstream stage connected: a 200 means the request is durable in\n'
printf 'its spool (fdatasync, group commit) on %s; nginx answers a constant 200.\n\n' \
    "$(df -T /var/tmp | awk 'NR == 2 { print $2 " (" $1 ")" }')"
printf '| target | req/s (median) | p50 ms | p99 ms |\n|---|---:|---:|---:|\n'
declare -A med=()
for t in "${order[@]}"; do
    med[$t]=$(bench_median %.0f "${rate_l[$t]}")
    printf '| %s | %s | %s | %s |\n' "$t" "${med[$t]}" "$(bench_median %.3f "${p50_l[$t]}")" \
        "$(bench_median %.3f "${p99_l[$t]}")"
done
if want ingress; then
    printf '\ningress, medians per run: %s CPU us per request, %s context switches per request;\n' \
        "$(bench_median %.1f "$cpu_l")" "$(bench_median %.2f "$csw_l")"
    printf '%s group commits per run, %s ms each, %s requests per commit, %s of them over 10 ms\n' \
        "$(bench_median %.0f "$commits_l")" "$(bench_median %.3f "$commit_ms_l")" \
        "$(bench_median %.1f "$per_commit_l")" "$(bench_median %.0f "$slow_l")"
fi
if want ingress && want nginx; then
    p99=$(bench_median %.3f "${p99_l[ingress]}")
    ratio=$(bench_ratio "${med[ingress]}" "${med[nginx]}" %.3f)
    printf '\ningress req/s / nginx req/s: %s (goal >= 0.5: %s); ingress p99 %s ms (goal < 2: %s)\n' \
        "$ratio" "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5 ? "met" : "not met") }')" \
        "$p99" "$(awk -v p="$p99" 'BEGIN { print (p < 2 ? "met" : "not met") }')"
fi
if [ -n "$perf_file" ] && [ -s "$perf_file" ]; then
    printf '\nwhere the ingress spent its CPU in its last run (perf, by shared object):\n'
    perf report -i "$perf_file" --stdio --no-children --sort dso 2>/dev/null |
        awk '/^ +[0-9.]+%/ { print "  " $0 }' | head -n 12
fi
