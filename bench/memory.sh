#!/usr/bin/env bash
# bench/memory.sh - resident memory of every Switchboard process, idle and under load,
# beside the FastAPI peer of ../shared/peers (uvicorn, 2 workers: all its processes).
#
# Each run starts the targets afresh: Switchboard's event stages (sb-writer, sb-enricher,
# sb-verifier, sb-ingress) and, beside the event path, sb-renewer, sb-sender and
# sb-streamer when they start without provider credentials; then the peer. Once up and
# idle for a few seconds, VmRSS of each process is read from /proc/<pid>/status; then
# `wrk -t2 -c32 -d10s -s sms.lua` posts SMS while VmRSS is sampled every 0.5 s (for
# Switchboard until the writer has stored what was acked), and VmHWM is read at the end.
# One throwaway PostgreSQL (databases "switchboard" and "peer", over TCP). The targets
# take turns, N runs each; medians are printed. Loopback only; everything started here is
# stopped on exit, Ctrl-C included.
set -euo pipefail
SB_PROG=memory
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    cat <<EOF
usage: bench/memory.sh [options]

  --duration S      seconds of wrk load per run (default 10)
  --idle S          seconds to wait after start before the idle reading (default 3)
  --drain-max S     longest wait for Switchboard to store what it acked (default 30)
  --targets LIST    comma list of switchboard,peer (default both)
  --pg-port PORT    port of the throwaway PostgreSQL (default 55443)
  --port-offset N   added to Switchboard's ports (default 200: HTTP 127.0.0.1:18201);
                    the peer listens on 8011 + N
$BENCH_USAGE_COMMON
EOF
}

duration=10
idle=3
drain_max=30
targets=switchboard,peer
pg_port=55443
port_offset=200
BENCH_OPT+=([--duration]=duration [--idle]=idle [--drain-max]=drain_max
    [--targets]=targets [--pg-port]=pg_port [--port-offset]=port_offset)
bench_options usage "$@"
bench_positive --runs --duration --idle --drain-max --pg-port --port-offset
want() { [[ ,$targets, == *,$1,* ]]; }
peers=$shared/peers
peer_port=$((8011 + port_offset))

# Beside the event path: the daemons scripts/run also starts (the streamer only with a
# token, which we give it) that this tree builds.
extras=()
for s in renewer sender streamer; do
    grep -q "^add_subdirectory($s)" "$SB_ROOT/CMakeLists.txt" && extras+=("$s")
done

bench_init
bench_sms_lua "$peers"
bench_wire "$port_offset"
want switchboard && bench_build "$build_dir" "${extras[@]/#/sb-}"
bench_pg "$pg_port"
sb_pg_createdb switchboard
sb_pg_createdb peer
export DATABASE_URL=$BENCH_PG_TCP/switchboard STREAM_TOKEN=bench-stream-token-$$

# ---- reading memory ---------------------------------------------------------------------
# s_procs SPEC...: "name pid" of each process. A SPEC is name=PID, or name=sid:SID for
# every process of a session (the peer's uvicorn and its workers).
s_procs() {
    local a
    for a in "$@"; do
        case $a in
        *=sid:*) ps -o pid= --sid "${a#*=sid:}" | awk -v n="${a%%=*}" '{ print n, $1 }' ;;
        *) echo "${a%%=*} ${a#*=}" ;;
        esac
    done
}

# s_mem FIELD SPEC...: "name kB" per name: FIELD of its processes, added up. VmRSS and
# VmHWM come from /proc/<pid>/status; Pss (its share of each page: the shared libraries
# that RSS counts in full in every process count once over all) from smaps_rollup.
s_mem() {
    local field=$1 file=status n p
    shift
    [ "$field" = Pss ] && file=smaps_rollup
    s_procs "$@" | while read -r n p; do
        awk -v n="$n" -v f="$field:" '$1 == f { print n, $2 }' "/proc/$p/$file" 2>/dev/null || true
    done | awk '{ kb[$1] += $2 } END { for (n in kb) print n, kb[n] }'
}

# s_sampler OUT SPEC...: every 0.5 s, s_mem VmRSS into OUT and Pss into OUT.pss, the
# readings separated by "--".
s_sampler() {
    local out=$1
    shift
    : >"$out.pss"
    while :; do
        s_mem VmRSS "$@"
        echo --
        { s_mem Pss "$@"; echo --; } >>"$out.pss"
        sleep 0.5
    done >"$out"
}

# s_peaks FILE: "name kB" of the largest reading of each name, and "total kB" of the
# largest sum of one reading.
s_peaks() {
    awk '$1 == "--" { if (t > top) top = t; t = 0; next }
         { t += $2; if ($2 > kb[$1]) kb[$1] = $2 }
         END { if (t > top) top = t; for (n in kb) print n, kb[n]; print "total", top }' "$1"
}

# name -> space-separated MiB per run: VmRSS idle, its peak under load, VmHWM, Pss idle and
# its peak under load; ack rate under load.
declare -A idle_l=() peak_l=() hwm_l=() pss_idle_l=() pss_peak_l=() rate_l=()
not_started=

# s_record ARRAY LINES: add each "name kB" line to ARRAY[name], in MiB.
s_record() {
    local -n into=$1
    local n kb
    while read -r n kb; do
        into[$n]+="$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }') "
    done <<<"$2"
}

# s_total LINES: the "name kB" lines and their sum as "total kB".
s_total() { awk '{ print; t += $2 } END { print "total", t }' <<<"$1"; }

rows() { sb_pg_psql switchboard "SELECT count(*) FROM communications"; }

run_switchboard() {
    local i=$1 s specs=() t_end
    export SPOOL_DIR=$BENCH_TMP/spool-$i
    mkdir -p "$SPOOL_DIR"
    bench_start_switchboard "$build_dir"
    bench_start_stages "$build_dir" "${extras[@]}"
    sleep "$idle"
    for s in "${SB_STAGES[@]}" "${extras[@]}"; do
        if kill -0 "${BENCH_PID[$s]}" 2>/dev/null; then
            specs+=("$s=${BENCH_PID[$s]}")
        else # counted as not started; its reason is in the log
            wait "${BENCH_PID[$s]}" 2>/dev/null || true
            unset "BENCH_PID[$s]"
            [[ " $not_started " == *" $s "* ]] || not_started+="$s "
            sb_say "sb-$s exited at start: $(grep "\"stage\":\"$s\"" "$BENCH_LOG" | tail -n 1)"
        fi
    done
    s_record idle_l "$(s_total "$(s_mem VmRSS "${specs[@]}")")"
    s_record pss_idle_l "$(s_total "$(s_mem Pss "${specs[@]}")")"
    s_sampler "$BENCH_TMP/samples" "${specs[@]}" &
    BENCH_PID[sampler]=$!
    bench_wrk 2 32 "$duration" "http://$BENCH_SB_HTTP/api/webhooks/ringcentral/sms"
    t_end=$(sb_now)
    bench_drain rows "$t_end" "$drain_max"
    bench_stop sampler
    s_record peak_l "$(s_peaks "$BENCH_TMP/samples")"
    s_record pss_peak_l "$(s_peaks "$BENCH_TMP/samples.pss")"
    s_record hwm_l "$(s_total "$(s_mem VmHWM "${specs[@]}")")"
    rate_l[switchboard]+="$WRK_RATE "
    sb_say "switchboard run $i: $WRK_OK acked at $WRK_RATE/s, drained ${DRAIN}s after wrk;" \
        "VmRSS peaks (kB): $(s_peaks "$BENCH_TMP/samples" | sort | paste -sd' ')"
    bench_stop "${SB_STAGES[@]}" "${extras[@]}"
    rm -rf "$SPOOL_DIR"
}

run_peer() {
    local i=$1 spec
    bench_start_peer "$peers" "$BENCH_PG_TCP/peer" "$peer_port"
    spec=peer=sid:${BENCH_PID[peer]}
    sleep "$idle"
    s_record idle_l "$(s_mem VmRSS "$spec")"
    s_record pss_idle_l "$(s_mem Pss "$spec")"
    s_sampler "$BENCH_TMP/samples" "$spec" &
    BENCH_PID[sampler]=$!
    bench_wrk 2 32 "$duration" "http://127.0.0.1:$peer_port/api/webhooks/ringcentral/sms"
    bench_stop sampler
    s_record peak_l "$(s_peaks "$BENCH_TMP/samples" | grep -v '^total ')"
    s_record pss_peak_l "$(s_peaks "$BENCH_TMP/samples.pss" | grep -v '^total ')"
    s_record hwm_l "$(s_mem VmHWM "$spec")"
    rate_l[peer]+="$WRK_RATE "
    sb_say "peer run $i: $WRK_OK acked at $WRK_RATE/s; $(s_procs "$spec" | wc -l) processes;" \
        "VmRSS peak $(s_peaks "$BENCH_TMP/samples" | awk '$1 == "peer" { print $2 }') kB"
    bench_stop peer
}

order=()
for t in switchboard peer; do want "$t" && order+=("$t"); done
[ ${#order[@]} -gt 0 ] || sb_die "--targets: nothing to measure"
load_start=$(bench_loadavg)
for ((i = 1; i <= runs; i++)); do
    for t in "${order[@]}"; do "run_$t" "$i"; done
done

# ---- report -----------------------------------------------------------------------------
bench_header "$runs runs per target; load: wrk -t2 -c32 -d${duration}s -s sms.lua URL" \
    "$load_start" "$build_dir"
printf 'MiB (1024 kB) from /proc/<pid>/status and smaps_rollup; idle = %s s after start, loaded =\n' "$idle"
printf 'the largest reading, every 0.5 s, under load; VmHWM = the peak the kernel recorded (kept\n'
printf 'lazily: it can be a little below a sampled VmRSS). PSS shares each page among the processes\n'
printf 'that map it (shared libraries count once over all). Medians of %s runs.\n' "$runs"
printf 'Goal per Switchboard process: VmRSS idle < 16 MiB, loaded < 64 MiB.\n\n'
printf '| process | VmRSS idle | VmRSS loaded (peak) | VmHWM | PSS idle | PSS loaded (peak) | goal |\n'
printf '|---|---:|---:|---:|---:|---:|---|\n'
med() { bench_median %.1f "${1:-}"; }
s_row() { # NAME KEY GOAL
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(med "${idle_l[$2]:-}")" \
        "$(med "${peak_l[$2]:-}")" "$(med "${hwm_l[$2]:-}")" "$(med "${pss_idle_l[$2]:-}")" \
        "$(med "${pss_peak_l[$2]:-}")" "$3"
}
for s in "${SB_STAGES[@]}" "${extras[@]}"; do
    want switchboard && [ -n "${idle_l[$s]:-}" ] || continue
    goal=$(awk -v i="$(med "${idle_l[$s]}")" -v l="$(med "${peak_l[$s]}")" -v h="$(med "${hwm_l[$s]}")" \
        'BEGIN { print (i < 16 && l < 64 && h < 64 ? "met" : "not met") }')
    s_row "sb-$s" "$s" "$goal"
done
want switchboard && s_row "Switchboard, all processes (sum; VmHWM: sum of peaks)" total ""
want peer && s_row "FastAPI peer, all processes (sum; VmHWM: sum of peaks)" peer ""
[ -n "$not_started" ] && printf '\nnot measured (exited at start, see above): %s\n' "$not_started"
for t in "${order[@]}"; do
    printf '\n%s acked %s SMS/s under load (median)' "$t" "$(bench_median %.0f "${rate_l[$t]}")"
done
printf '\n'
if want switchboard && want peer; then
    printf '\npeer / Switchboard, all processes: VmRSS idle %s, loaded %s; PSS idle %s, loaded %s\n' \
        "$(bench_ratio "$(med "${idle_l[peer]}")" "$(med "${idle_l[total]}")")" \
        "$(bench_ratio "$(med "${peak_l[peer]}")" "$(med "${peak_l[total]}")")" \
        "$(bench_ratio "$(med "${pss_idle_l[peer]}")" "$(med "${pss_idle_l[total]}")")" \
        "$(bench_ratio "$(med "${pss_peak_l[peer]}")" "$(med "${pss_peak_l[total]}")")"
fi
