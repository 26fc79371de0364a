#!/usr/bin/env bash
# bench/chaos_long.sh - the long forms of the durability proofs (issue 7 parts 1-3;
# docs/DURABILITY.md): a chaos run of 100,000+ SMS and call events with kill -9 of every
# stage and PostgreSQL crashes (tests/chaos/chaos.py), then PostgreSQL stopped for
# minutes under 1,000 events/s (tests/integration/test_db_outage.py), then the
# backpressure test with a longer stall (tests/integration/test_backpressure.py).
#
# Loopback only; every run has its own throwaway PostgreSQL and temp dirs, removed at the
# end (Ctrl-C included). Prints one RESULT line per part and exits non-zero if any part
# lost or duplicated anything (or failed otherwise).
set -euo pipefail
SB_PROG=chaos_long
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

usage() {
    cat <<EOF
usage: bench/chaos_long.sh [options]

  --events N        chaos: requests (default 100000)
  --rate R          chaos: requests per second (default 1500)
  --kills K         chaos: at least this many kill -9 (default 40)
  --pg-restarts P   chaos: PostgreSQL crashes (default 3)
  --outage S        seconds PostgreSQL stays down under 1,000 events/s (default 300)
  --stall S         seconds the writer stays SIGSTOPped at 2,000 events/s (default 40)
  --parts LIST      comma list of chaos,outage,backpressure (default all three)
  --build-dir DIR   the build to test (default ./build, built RelWithDebInfo if needed)
  --no-build        use the binaries in the build dir as they are
  --shared DIR      the shared/ directory with fixtures/ (default ../shared)
  --help            this text
EOF
}

events=100000
rate=1500
kills=40
pg_restarts=3
outage=300
stall=40
parts=chaos,outage,backpressure
build_dir=$SB_ROOT/build
shared=$(cd "$SB_ROOT/.." && pwd)/shared
build=1
while [ $# -gt 0 ]; do
    [ "$1" = --help ] || [ "$1" = -h ] && { usage; exit 0; }
    [ "$1" = --no-build ] && { build=0; shift; continue; }
    [ $# -ge 2 ] || { usage >&2; sb_die "$1 needs a value (or is unknown)"; }
    case $1 in
    --events) events=$2 ;;
    --rate) rate=$2 ;;
    --kills) kills=$2 ;;
    --pg-restarts) pg_restarts=$2 ;;
    --outage) outage=$2 ;;
    --stall) stall=$2 ;;
    --parts) parts=$2 ;;
    --build-dir) build_dir=$2 ;;
    --shared) shared=$2 ;;
    *) usage >&2; sb_die "unknown option: $1" ;;
    esac
    shift 2
done
for n in "$events" "$rate" "$kills" "$outage" "$stall"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || sb_die "not a positive integer: $n"
done
[[ $pg_restarts =~ ^[0-9]+$ ]] || sb_die "not a number: $pg_restarts"
want() { [[ ,$parts, == *,$1,* ]]; }
[ -d "$shared/fixtures/ringcentral" ] || sb_die "no $shared/fixtures/ringcentral (use --shared DIR)"
py=/usr/bin/python3
$py -c 'import psycopg2' 2>/dev/null || sb_die "$py has no psycopg2 (apt-get install python3-psycopg2)"

# The spool of the outage part holds outage x 1,000 events of ~1.2 KB each.
need_kb=$((outage * 1000 * 2))
free_kb=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
[ "$free_kb" -gt "$need_kb" ] || sb_die "need ~$((need_kb / 1024)) MiB free in ${TMPDIR:-/tmp}, have $((free_kb / 1024))"

if [ $build -eq 1 ]; then
    SB_BUILD_TARGETS=("${SB_STAGE_TARGETS[@]}")
    sb_build "$build_dir" RelWithDebInfo
fi
for t in "${SB_STAGES[@]}"; do
    [ -x "$build_dir/$t/sb-$t" ] || sb_die "no $build_dir/$t/sb-$t (build it, or drop --no-build)"
done
grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$build_dir/CMakeCache.txt" 2>/dev/null ||
    sb_say "note: $build_dir is not a RelWithDebInfo build"
grep -q '^SB_SANITIZE:STRING=$' "$build_dir/CMakeCache.txt" 2>/dev/null ||
    sb_say "note: $build_dir is built with sanitizers (slower; numbers are not comparable)"

export SB_BUILD_DIR=$build_dir SB_FIXTURES_DIR=$shared/fixtures SB_SOURCE_DIR=$SB_ROOT
export PYTHONUNBUFFERED=1 # progress lines as they come
results=()
failed=0

# part NAME COMMAND...: run it, keep its output in a log beside the summary.
part() {
    local name=$1 t rc=0 log
    shift
    log=$(mktemp "/tmp/sb-chaos-long-$name.XXXXXX.log")
    t=$(sb_now)
    sb_say "=== $name ($*); log: $log"
    "$@" 2>&1 | tee "$log" | grep -v '^{' || rc=${PIPESTATUS[0]}
    results+=("$(printf '%-13s %7ss  %s' "$name" "$(sb_since "$t")" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)")")
    [ "$rc" -eq 0 ] || failed=1
}

if want chaos; then
    part chaos "$py" "$SB_ROOT/tests/chaos/chaos.py" --events "$events" --rate "$rate" \
        --min-kills "$kills" --pg-restarts "$pg_restarts"
fi
if want outage; then
    part outage env SB_OUTAGE_SECONDS="$outage" "$py" "$SB_ROOT/tests/integration/test_db_outage.py"
fi
if want backpressure; then
    part backpressure env SB_STALL_SECONDS="$stall" "$py" "$SB_ROOT/tests/integration/test_backpressure.py"
fi

sb_say "=== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
for r in "${results[@]}"; do sb_say "$r"; done
exit $failed
