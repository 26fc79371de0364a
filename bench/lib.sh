# shellcheck shell=bash
# bench/lib.sh - what the bench/*.sh scripts share on top of scripts/lib.sh: option
# parsing, a temp dir and the processes started for a benchmark (all stopped on exit,
# Ctrl-C included), the Switchboard stages, the FastAPI peer and nginx on loopback ports,
# wrk with a per-thread copy of sms.lua, medians and the report header.
# Sourced, never run; callers set SB_PROG and use `set -euo pipefail`.
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# The RingCentral Verification-Token every target is given and every request carries.
BENCH_TOKEN=bench-verification-token-$$

# ---- options ----------------------------------------------------------------------------
# BENCH_OPT maps each option ("--runs") to the variable it sets; every option takes a value.
# Every benchmark has --runs, --build-dir and --shared (and --help): a script adds its own
# options with BENCH_OPT+=(...) and puts $BENCH_USAGE_COMMON at the end of its usage text.
# shellcheck disable=SC2034 # runs, build_dir, shared: for the scripts that source this file
runs=3
# shellcheck disable=SC2034
build_dir=$SB_ROOT/build
# shellcheck disable=SC2034
shared=$(cd "$SB_ROOT/.." && pwd)/shared
declare -A BENCH_OPT=([--runs]=runs [--build-dir]=build_dir [--shared]=shared)
# shellcheck disable=SC2034
BENCH_USAGE_COMMON='  --runs N          runs per target (default 3); the median is reported
  --build-dir DIR   Switchboard build (default ./build, built RelWithDebInfo if needed)
  --shared DIR      the shared/ directory with peers/ (default ../shared)
  --help            this text'

# bench_options USAGE_FN "$@": set the variables named in BENCH_OPT; --help prints
# USAGE_FN's text and exits 0, an unknown option or a missing value exits 1.
bench_options() {
    local usage=$1
    shift
    while [ $# -gt 0 ]; do
        case $1 in --help | -h) "$usage"; exit 0 ;; esac
        [ -n "${BENCH_OPT[$1]:-}" ] || { "$usage" >&2; sb_die "unknown option: $1"; }
        [ $# -ge 2 ] || { "$usage" >&2; sb_die "$1 needs a value"; }
        printf -v "${BENCH_OPT[$1]}" '%s' "$2"
        shift 2
    done
}

# bench_positive OPTION...: the variables of those options must hold positive whole numbers.
bench_positive() {
    local o v
    for o in "$@"; do
        v=${BENCH_OPT[$o]}
        [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]] || sb_die "$o needs a positive whole number, not \"${!v}\""
    done
}

# ---- what we started --------------------------------------------------------------------
BENCH_TMP=
declare -A BENCH_PID=()   # name -> pid of each process started here
declare -A BENCH_GROUP=() # names started with setsid: their whole group is stopped (workers)

# bench_init: the Debian packages, the temp dir (on the normal disk, readable by the
# postgres user) and the traps that stop everything on exit.
bench_init() {
    # The baselines and the load: installed like the build's packages (as root), or the
    # exact apt-get line is printed.
    SB_DEPS+=(wrk nginx-light python3-fastapi python3-uvicorn python3-asyncpg)
    sb_ensure_deps
    trap s_bench_cleanup EXIT
    trap 'exit 130' INT TERM
    BENCH_TMP=$(mktemp -d /var/tmp/sb-bench.XXXXXX)
    chmod 755 "$BENCH_TMP" # the postgres user must reach $BENCH_TMP/pg
}

s_bench_cleanup() {
    local status=$?
    trap '' INT TERM
    [ ${#BENCH_PID[@]} -gt 0 ] && bench_stop "${!BENCH_PID[@]}"
    sb_pg_stop
    [ -n "$BENCH_TMP" ] && rm -rf "$BENCH_TMP"
    exit "$status"
}

# bench_stop NAME...: SIGTERM those processes (and the groups of BENCH_GROUP ones), SIGKILL
# what still runs after 10 s, and forget them.
bench_stop() {
    local n pids=()
    for n in "$@"; do
        [ -n "${BENCH_PID[$n]:-}" ] || continue
        pids+=("${BENCH_PID[$n]}")
        [ -n "${BENCH_GROUP[$n]:-}" ] && { kill -TERM -- "-${BENCH_PID[$n]}" 2>/dev/null || true; }
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    sb_stop_pids 10 "${pids[@]}" || sb_say "had to SIGKILL pid(s) ${SB_KILLED[*]} of: $*"
    for n in "$@"; do
        [ -n "${BENCH_GROUP[$n]:-}" ] && { kill -KILL -- "-${BENCH_PID[$n]}" 2>/dev/null || true; }
        unset "BENCH_PID[$n]" "BENCH_GROUP[$n]"
    done
    wait "${pids[@]}" 2>/dev/null || true
}

# bench_wait_up URL WHAT NAME...: wait up to 30 s for URL to answer 200 while the named
# processes run; otherwise print the end of LOG (if given as BENCH_LOG) and exit.
bench_wait_up() {
    local url=$1 what=$2 n pids=()
    shift 2
    for n in "$@"; do pids+=("${BENCH_PID[$n]}"); done
    if ! sb_wait_http "$url" 30 "${pids[@]}"; then
        [ -n "${BENCH_LOG:-}" ] && tail -n 20 "$BENCH_LOG" >&2
        sb_die "$what did not start (last answer: $SB_HTTP_STATUS $SB_HTTP_BODY)"
    fi
}

# bench_free HOST:PORT: exit if something already answers there.
bench_free() {
    curl -s -o /dev/null -m 1 "http://$1/" && sb_die "something already listens on $1"
    return 0
}

# ---- PostgreSQL and the targets -----------------------------------------------------------
# bench_pg PORT: the throwaway PostgreSQL in $BENCH_TMP/pg on 127.0.0.1:PORT; BENCH_PG_TCP
# is its URL over TCP, without a database.
bench_pg() {
    sb_pg_start "$BENCH_TMP/pg" "$1"
    BENCH_PG_TCP=postgresql://postgres@127.0.0.1:$1
}

# bench_targets TARGETS BUILD_DIR PEERS_DIR PEER_PORT: start those of "switchboard" (the
# event stages, database "switchboard", spool $BENCH_TMP/spool) and "peer" (database
# "peer") that the comma list TARGETS names, and leave them running.
bench_targets() {
    if [[ ,$1, == *,switchboard,* ]]; then
        sb_pg_createdb switchboard
        mkdir -p "$BENCH_TMP/spool"
        export DATABASE_URL=$BENCH_PG_TCP/switchboard SPOOL_DIR=$BENCH_TMP/spool
        bench_start_switchboard "$2"
    fi
    if [[ ,$1, == *,peer,* ]]; then
        sb_pg_createdb peer
        bench_start_peer "$3" "$BENCH_PG_TCP/peer" "$4"
    fi
}

# ---- Switchboard ------------------------------------------------------------------------
# bench_build DIR: build the stages in DIR (RelWithDebInfo; incremental) and warn when DIR
# is not a build fit for measuring.
bench_build() {
    local dir=$1
    SB_BUILD_TARGETS=("${SB_STAGE_TARGETS[@]}" "${@:2}")
    sb_build "$dir" RelWithDebInfo
    grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$dir/CMakeCache.txt" ||
        sb_say "warning: $dir is not a RelWithDebInfo build"
    grep -q '^SB_SANITIZE:STRING=$' "$dir/CMakeCache.txt" ||
        sb_say "warning: $dir is built with sanitizers"
}

declare -A BENCH_METRICS_PORT=() # stage -> its METRICS_LISTEN port (none for the ingress)

# bench_wire OFFSET: export what wires the stages together over loopback, every port
# offset by OFFSET so that two benchmarks can run side by side: ingress HTTP 18001,
# verifier PULL 15557, enricher 15560, writer 15558, acks 15559; metrics 19102 (verifier)
# to 19107 (streamer). Sets BENCH_SB_HTTP (host:port of the ingress).
bench_wire() {
    local o=$1 p
    BENCH_SB_HTTP=127.0.0.1:$((18001 + o))
    p=tcp://127.0.0.1
    export INGRESS_LISTEN=$BENCH_SB_HTTP RINGCENTRAL_VERIFICATION_TOKEN=$BENCH_TOKEN
    export INGRESS_PUSH_ENDPOINT=">$p:$((15557 + o))" VERIFIER_PULL_ENDPOINT="@$p:$((15557 + o))"
    export VERIFIER_PUSH_ENDPOINT=">$p:$((15558 + o))" WRITER_PULL_ENDPOINT="@$p:$((15558 + o))"
    export INGRESS_ACK_ENDPOINT="@$p:$((15559 + o))" ACK_ENDPOINT=">$p:$((15559 + o))"
    if [[ " ${SB_STAGES[*]} " == *" enricher "* ]]; then # SMS pass through it unchanged
        export VERIFIER_PUSH_ENDPOINT=">$p:$((15560 + o))" ENRICHER_PULL_ENDPOINT="@$p:$((15560 + o))"
        export ENRICHER_PUSH_ENDPOINT=">$p:$((15558 + o))"
    fi
    export STREAM_LISTEN=127.0.0.1:$((18002 + o))
    BENCH_METRICS_PORT=([verifier]=$((19102 + o)) [enricher]=$((19103 + o)) [writer]=$((19104 + o))
        [renewer]=$((19105 + o)) [sender]=$((19106 + o)) [streamer]=$((19107 + o)))
}

# bench_start_stages BUILD_DIR STAGE...: start sb-STAGE for each (as wired by bench_wire;
# DATABASE_URL and SPOOL_DIR from the environment), stderr to $BENCH_TMP/switchboard.log.
bench_start_stages() {
    local build=$1 s metrics
    shift
    BENCH_LOG=$BENCH_TMP/switchboard.log
    for s in "$@"; do
        metrics=
        [ -n "${BENCH_METRICS_PORT[$s]:-}" ] && metrics=127.0.0.1:${BENCH_METRICS_PORT[$s]}
        METRICS_LISTEN=$metrics "$build/$s/sb-$s" 2>>"$BENCH_LOG" &
        BENCH_PID[$s]=$!
    done
}

# bench_start_switchboard BUILD_DIR: every event stage (SB_STAGES), up once health is ok.
bench_start_switchboard() {
    bench_free "$BENCH_SB_HTTP"
    bench_start_stages "$1" "${SB_STAGES[@]}"
    bench_wait_up "http://$BENCH_SB_HTTP/api/webhooks/health" Switchboard "${SB_STAGES[@]}"
    sb_say "Switchboard healthy on $BENCH_SB_HTTP"
}

# ---- baselines --------------------------------------------------------------------------
# bench_start_peer PEERS_DIR DSN PORT: the FastAPI peer (uvicorn, 2 workers, no access
# log: its best case, as fastapi_receiver.py's header says) on 127.0.0.1:PORT, in its own
# session so that its workers stop with it. Applies its schema to DSN first.
bench_start_peer() {
    local peers=$1 dsn=$2 port=$3
    /usr/bin/python3 -c 'import asyncpg, fastapi, uvicorn' 2>/dev/null ||
        sb_die "the FastAPI peer needs python3-fastapi python3-uvicorn python3-asyncpg (apt-get install)"
    bench_free "127.0.0.1:$port"
    # Its two workers would both run CREATE TABLE IF NOT EXISTS at start, which can race in
    # PostgreSQL; apply the peer's own SCHEMA once first.
    PEER_DSN=unused /usr/bin/python3 -B -c "import sys; sys.path.insert(0, '$peers'); import fastapi_receiver as f; print(f.SCHEMA)" |
        PGOPTIONS='-c client_min_messages=warning' "$SB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$dsn" >/dev/null
    BENCH_LOG=$BENCH_TMP/peer.log
    PEER_DSN=$dsn PEER_VERIFICATION_TOKEN=$BENCH_TOKEN PYTHONDONTWRITEBYTECODE=1 \
        setsid /usr/bin/python3 -m uvicorn fastapi_receiver:app --app-dir "$peers" \
        --host 127.0.0.1 --port "$port" --workers 2 --log-level warning 2>>"$BENCH_LOG" >&2 &
    BENCH_PID[peer]=$!
    BENCH_GROUP[peer]=1
    bench_wait_up "http://127.0.0.1:$port/api/webhooks/health" "the FastAPI peer" peer
    sb_say "FastAPI peer up on 127.0.0.1:$port"
}

# bench_start_nginx PEERS_DIR PORT: nginx with nginx-ceiling.conf on 127.0.0.1:PORT.
# It runs a copy of that file in which only the port (8012 there) and the paths of its
# pid file and error log (in /tmp there) are changed, so that it cannot clash with an
# nginx someone else started with the original. Returns 1 when nginx is not installed.
bench_start_nginx() {
    local peers=$1 port=$2 conf=$BENCH_TMP/nginx/nginx.conf
    command -v nginx >/dev/null || {
        sb_say "nginx is not installed: no ceiling measurement (apt-get install nginx-light)"
        return 1
    }
    bench_free "127.0.0.1:$port"
    mkdir -p "$BENCH_TMP/nginx/logs"
    sed -e "s|^pid .*;|pid $BENCH_TMP/nginx/nginx.pid;|" \
        -e "s|^error_log [^ ;]*|error_log $BENCH_TMP/nginx/error.log|" \
        -e "s|listen 127.0.0.1:8012;|listen 127.0.0.1:$port;|" "$peers/nginx-ceiling.conf" >"$conf"
    [ "$(grep -c -e "$BENCH_TMP" -e "listen 127.0.0.1:$port;" "$conf")" = 3 ] ||
        sb_die "$peers/nginx-ceiling.conf has changed: cannot set its port and paths"
    BENCH_LOG=$BENCH_TMP/nginx.log
    setsid nginx -p "$BENCH_TMP/nginx/" -e "$BENCH_TMP/nginx/error.log" -c "$conf" \
        -g 'daemon off;' 2>>"$BENCH_LOG" &
    BENCH_PID[nginx]=$!
    BENCH_GROUP[nginx]=1
    bench_wait_up "http://127.0.0.1:$port/" nginx nginx
    sb_say "nginx ceiling (nginx-ceiling.conf) up on 127.0.0.1:$port"
}

# ---- load -------------------------------------------------------------------------------
# bench_sms_lua PEERS_DIR: $BENCH_TMP/sms.lua, the peers' sms.lua with a distinct id
# prefix per wrk thread and per run. sms.lua seeds its prefix with math.random, and
# LuaJIT's generator starts from the same seed in every wrk thread and every run: with
# -t2 half the requests would repeat the other thread's ids, and run 2 would repeat run 1.
# The base of the prefix (9 digits, so that prefix..counter stays unique) is passed by
# bench_wrk as a script argument.
bench_sms_lua() {
    [ -f "$1/sms.lua" ] || sb_die "no $1/sms.lua (use --shared DIR)"
    command -v wrk >/dev/null || sb_die "wrk is not installed (apt-get install wrk)"
    BENCH_LUA=$BENCH_TMP/sms.lua
    cp "$1/sms.lua" "$BENCH_LUA"
    cat >>"$BENCH_LUA" <<'EOF'

-- added by bench/lib.sh: a distinct id prefix per thread and per run
local sb_threads = 0
function setup(thread)
  sb_threads = sb_threads + 1
  thread:set("sb_thread", sb_threads)
end
function init(args)
  tid = tonumber(args[1]) + sb_thread
end
EOF
}

# bench_wrk THREADS CONNECTIONS SECONDS URL: one wrk run of $BENCH_LUA. Sets WRK_OUT (its
# output), WRK_OK (2xx answers), WRK_NON2XX, WRK_SECS, WRK_RATE (2xx per second) and
# WRK_P50, WRK_P99 (milliseconds).
bench_wrk() {
    local base reqs
    base=$((100000000 + ($(date +%s) % 8000000) * 100))
    WRK_OUT=$(VT=$BENCH_TOKEN wrk -t"$1" -c"$2" -d"$3s" --latency -s "$BENCH_LUA" "$4" -- "$base")
    reqs=$(awk '/ requests in / { print $1 }' <<<"$WRK_OUT")
    WRK_SECS=$(awk '/ requests in / { sub(/s,$/, "", $4); print $4 }' <<<"$WRK_OUT")
    if [ -z "$reqs" ] || [ -z "$WRK_SECS" ]; then
        echo "$WRK_OUT" >&2
        sb_die "could not parse wrk's output"
    fi
    WRK_NON2XX=$(awk '/Non-2xx or 3xx responses/ { print $NF }' <<<"$WRK_OUT")
    WRK_NON2XX=${WRK_NON2XX:-0}
    WRK_OK=$((reqs - WRK_NON2XX))
    # shellcheck disable=SC2034 # WRK_*: for the scripts that source this file
    WRK_RATE=$(awk -v n="$WRK_OK" -v s="$WRK_SECS" 'BEGIN { printf "%.0f", n / s }')
    # shellcheck disable=SC2034
    WRK_P50=$(s_to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$WRK_OUT")")
    # shellcheck disable=SC2034
    WRK_P99=$(s_to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$WRK_OUT")")
}

# s_to_ms VALUE: wrk's "1.50ms" / "812.00us" / "1.02s" / "1.10m" in milliseconds.
s_to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0;
        else if (v ~ /m$/) printf "%.3f", v * 60000; else printf "%.3f", v * 1000 }'
}

# bench_drain ROWS_FN T_END MAX_S [TICK_FN]: after a load that ended at T_END (sb_now),
# poll ROWS_FN (prints a row count) every 0.25 s until it has not moved for 1 s, or MAX_S
# passed; TICK_FN, if given, runs at every poll. Sets DRAIN (seconds from T_END to the
# last growth) and ROWS_NOW.
bench_drain() {
    local rows_fn=$1 t_end=$2 max=$3 tick=${4:-} last now t_last deadline still=0
    last=$("$rows_fn")
    t_last=$t_end
    deadline=$(($(date +%s) + max))
    while [ $still -lt 4 ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            sb_say "warning: still storing after $max s (--drain-max)"
            break
        fi
        sleep 0.25
        [ -n "$tick" ] && "$tick"
        now=$("$rows_fn")
        if [ "$now" != "$last" ]; then
            last=$now
            t_last=$(sb_now)
            still=0
        else
            still=$((still + 1))
        fi
    done
    # shellcheck disable=SC2034 # for the scripts that source this file
    ROWS_NOW=$last
    # shellcheck disable=SC2034
    DRAIN=$(awk -v a="$t_end" -v b="$t_last" 'BEGIN { d = b - a; printf "%.2f", d < 0 ? 0 : d }')
}

# ---- report -----------------------------------------------------------------------------
# bench_median FORMAT "v1 v2 ...": the median of the numbers printed with FORMAT, or "-"
# when there are none (a "-" among the values is no number).
bench_median() {
    tr ' ' '\n' <<<"$2" | awk '/^-?[0-9.]+(e[-+]?[0-9]+)?$/' | sort -g | awk -v f="$1" '{ v[NR] = $1 }
    END { if (NR == 0) print "-";
          else printf f "\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B [FORMAT]: A / B, or "-" when B is not a positive number.
bench_ratio() {
    awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b + 0 > 0) printf f, a / b; else print "-" }'
}

bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_commit BUILD_DIR: the commit the build was made from (its CMake source dir),
# marked when tracked files there differ from it.
bench_commit() {
    local src
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt" 2>/dev/null)
    git -C "${src:-$SB_ROOT}" rev-parse --short HEAD 2>/dev/null || { echo unknown; return; }
    git -C "${src:-$SB_ROOT}" diff --quiet HEAD 2>/dev/null || echo "(+ uncommitted changes)"
}

# bench_header TITLE LOAD_BEFORE BUILD_DIR: date, commit, what ran, the machine and the
# load average around the runs (others' work on a shared machine lowers every number).
bench_header() {
    printf '\n%s, commit %s: %s\n' "$(date -u +%Y-%m-%d)" "$(bench_commit "$3" | paste -sd' ')" "$1"
    printf 'machine: %s cores, %s, Debian %s\n' "$(nproc)" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(cat /etc/debian_version)"
    printf 'load average before the runs: %s; after: %s\n\n' "$2" "$(bench_loadavg)"
}
