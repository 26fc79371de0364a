# shellcheck shell=bash
# scripts/lib.sh - what scripts/run, scripts/test and bench/*.sh share: the package list,
# the build, and a private PostgreSQL. Sourced, never run; callers use `set -euo pipefail`.
# Every message goes to stderr, prefixed with the caller's name ($SB_PROG).

SB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SB_PROG=${SB_PROG:-$(basename "$0")}

# Debian packages needed to build Switchboard and run its tests. .ci/run installs the same
# list (plus clang and clang-format); keep the two in step.
SB_DEPS=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libjansson-dev libpq-dev
         libssl-dev libcurl4-openssl-dev libmicrohttpd-dev check libsubunit-dev
         postgresql postgresql-contrib python3 python3-psycopg2 curl ca-certificates)

sb_say() { printf '%s: %s\n' "$SB_PROG" "$*" >&2; }
sb_die() {
    sb_say "$*"
    exit 1
}

sb_now() { date +%s.%N; }
# Seconds since $1 (from sb_now), one decimal.
sb_since() { awk -v a="$1" -v b="$(sb_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Install the missing packages of SB_DEPS when root, otherwise print the command and fail.
sb_ensure_deps() {
    local missing=() p
    for p in "${SB_DEPS[@]}"; do
        # dpkg -s succeeds for removed packages whose config files remain: check the status.
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        sb_say "missing Debian packages: ${missing[*]}"
        sb_say "install them with:  sudo apt-get update && sudo $cmd"
        exit 1
    fi
    sb_say "installing missing Debian packages: ${missing[*]}"
    apt-get update >&2 || sb_say "apt-get update failed; trying with the package lists we have"
    DEBIAN_FRONTEND=noninteractive $cmd >&2
}

# The daemons in start order, each built as <build>/<stage>/sb-<stage>, of those that the
# top-level CMakeLists.txt builds. SB_STAGES carry webhook events (receivers first;
# benchmarks start these); SB_DAEMONS adds those beside the event path (renewer, sender),
# for scripts/run.
SB_STAGES=()
SB_DAEMONS=()
for s_stage in writer enricher verifier ingress renewer sender; do
    grep -q "^add_subdirectory($s_stage)" "$SB_ROOT/CMakeLists.txt" 2>/dev/null || continue
    case $s_stage in renewer | sender) ;; *) SB_STAGES+=("$s_stage") ;; esac
    SB_DAEMONS+=("$s_stage")
done
unset s_stage
# shellcheck disable=SC2034 # used by the scripts that source this file
SB_STAGE_TARGETS=("${SB_STAGES[@]/#/sb-}")   # what the benchmarks build
# shellcheck disable=SC2034
SB_DAEMON_TARGETS=("${SB_DAEMONS[@]/#/sb-}") # what scripts/run builds (not the tests)

# sb_build DIR BUILD_TYPE [cmake args...]: configure DIR (when new, or built with another
# type), then build it (incremental): every target, or those in SB_BUILD_TARGETS if set.
sb_build() {
    local dir=$1 type=$2
    shift 2
    if ! grep -qx "CMAKE_BUILD_TYPE:STRING=$type" "$dir/CMakeCache.txt" 2>/dev/null; then
        sb_say "configuring $dir ($type $*)"
        # Explicit returns: callers may run this under `||`, where set -e does not apply.
        cmake -S "$SB_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >&2 || return 1
    elif ! cmake "$dir" >"$dir/sb-reconfigure.log" 2>&1; then
        # Configure again, quietly: make knows no target (sb-sender, say) that was added
        # to the tree after the last configure, and would stop before regenerating.
        cat "$dir/sb-reconfigure.log" >&2
        return 1
    fi
    sb_say "building $dir"
    local build_args=()
    [ -n "${SB_BUILD_TARGETS+x}" ] && build_args=(--target "${SB_BUILD_TARGETS[@]}")
    cmake --build "$dir" -j2 "${build_args[@]}" >&2 || return 1
}

# ---- private PostgreSQL -------------------------------------------------------------
# sb_pg_start DIR PORT: initdb DIR (trust auth, superuser "postgres") if it is not a
# cluster yet, start it with its unix socket inside DIR and TCP on 127.0.0.1:PORT, and set
# SB_PG_DIR, SB_PG_PORT, SB_PG_BIN. As root, the server runs as the `postgres` user (initdb
# refuses root); when that user cannot reach DIR, the cluster moves to
# /var/tmp/switchboard-<uid>-<hash of DIR> and SB_PG_DIR says where.
sb_pg_start() {
    local dir=$1 port=$2
    SB_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$SB_PG_BIN" ] || sb_die "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ] && ! s_pg_reachable "$dir"; then
        local moved
        moved=/var/tmp/switchboard-$(id -u)-$(printf '%s' "$dir" | md5sum | cut -c1-12)
        sb_say "the postgres user cannot reach $dir; the private PostgreSQL lives in $moved instead"
        dir=$moved
        mkdir -p "$dir"
    fi
    # A unix socket path is limited to 107 bytes.
    if [ $((${#dir} + 20)) -gt 107 ]; then
        sb_die "the PostgreSQL directory path is too long for a unix socket: $dir"
    fi
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
    SB_PG_DIR=$dir
    SB_PG_PORT=$port
    if [ ! -f "$dir/PG_VERSION" ]; then
        sb_say "creating a private PostgreSQL cluster in $dir"
        s_pg_as_owner "$SB_PG_BIN/initdb" -D "$dir" -A trust -U postgres -E UTF8 >"$dir.initdb.log" 2>&1 ||
            { cat "$dir.initdb.log" >&2; sb_die "initdb failed"; }
        rm -f "$dir.initdb.log"
    fi
    if s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        SB_PG_PORT=$(sed -n 4p "$dir/postmaster.pid")
        sb_say "PostgreSQL in $dir is already running on port $SB_PG_PORT (left over from an earlier run); using it"
    else
        s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
            { tail -n 20 "$dir/server.log" >&2; sb_die "PostgreSQL did not start (port $port in use? set SB_PG_PORT)"; }
    fi
}

# sb_pg_url DB: libpq URL of database DB in the private cluster, over its unix socket.
sb_pg_url() { printf 'postgresql:///%s?host=%s&port=%s&user=postgres' "$1" "$SB_PG_DIR" "$SB_PG_PORT"; }

# sb_pg_psql DB SQL: run SQL, print unaligned tuples only.
sb_pg_psql() {
    "$SB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SB_PG_DIR" -p "$SB_PG_PORT" -U postgres \
        -d "$1" -tAc "$2"
}

# sb_pg_createdb DB: create DB unless it exists.
sb_pg_createdb() {
    if [ -z "$(sb_pg_psql postgres "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
        sb_pg_psql postgres "CREATE DATABASE $1" >/dev/null
    fi
}

# sb_pg_stop: fast shutdown of the cluster started by sb_pg_start (no-op if none).
sb_pg_stop() {
    [ -n "${SB_PG_DIR:-}" ] || return 0
    s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$SB_PG_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        sb_say "could not stop PostgreSQL in $SB_PG_DIR (see $SB_PG_DIR/server.log)"
    SB_PG_DIR=
}

# Run a PostgreSQL server program as the cluster's owner: `postgres` when we are root.
s_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Can the postgres user create files in (or beside) DIR? Every parent must be searchable.
s_pg_reachable() {
    local parent
    parent=$(dirname "$1")
    runuser -u postgres -- test -x "$parent" 2>/dev/null
}

# ---- stage processes ----------------------------------------------------------------
# sb_stop_pids SECONDS PID...: SIGTERM each, wait up to SECONDS for all, then SIGKILL the
# rest, whose pids are left in SB_KILLED; returns 1 if there were any. Call it directly,
# not in $(...): only the parent shell reaps its children.
sb_stop_pids() {
    local grace=$1 pid deadline
    shift
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$(($(date +%s) + grace))
    while :; do
        SB_KILLED=()
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && SB_KILLED+=("$pid"); done
        [ ${#SB_KILLED[@]} -eq 0 ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && break
        sleep 0.1
    done
    for pid in "${SB_KILLED[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    return 1
}

# sb_wait_http URL SECONDS [PID...]: wait until URL answers 200. Fails early when one of
# the PIDs has exited. Leaves the last status in SB_HTTP_STATUS and body in SB_HTTP_BODY.
sb_wait_http() {
    local url=$1 secs=$2 pid deadline
    shift 2
    deadline=$(($(date +%s) + secs))
    SB_HTTP_STATUS=000
    SB_HTTP_BODY=
    while [ "$(date +%s)" -lt "$deadline" ]; do
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null || return 1; done
        SB_HTTP_BODY=$(curl -s -m 2 -w '\n%{http_code}' "$url" 2>/dev/null || true)
        SB_HTTP_STATUS=${SB_HTTP_BODY##*$'\n'}
        SB_HTTP_BODY=${SB_HTTP_BODY%$'\n'*}
        [ "$SB_HTTP_STATUS" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}
