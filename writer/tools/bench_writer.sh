#!/usr/bin/env bash
# writer/tools/bench_writer.sh - the writer alone: sb-writer-batch plays the ingress,
# pushes EVENTS accepted instant SMS straight into a running sb-writer and waits for
# every ack; then the writer's own /metrics say how big its batches were and how long
# each took. Each writer binary given gets its own fresh database in one throwaway
# PostgreSQL (1,000 customers, a third of the SMS from them), in turns, ROUNDS times.
#
#   writer/tools/bench_writer.sh [--events N] [--rounds R] [--port P] WRITER [WRITER ...]
#   e.g. writer/tools/bench_writer.sh /tmp/old/sb-writer build/writer/sb-writer
#
# Loopback only; ports P..P+3 (default 42950). Needs the PostgreSQL server binaries.
set -euo pipefail

events=20000
rounds=2
port=42950
while [ $# -gt 0 ]; do
    case $1 in
    --events) events=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--events N] [--rounds R] [--port P] WRITER..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
tool=${SB_WRITER_BATCH:-$here/../../build/writer/sb-writer-batch}
[ -x "$tool" ] || { echo "no $tool (build it, or set SB_WRITER_BATCH)" >&2; exit 2; }
pgbins=(/usr/lib/postgresql/*/bin) # the newest last, as long as versions have two digits
pgbin=${pgbins[-1]}

tmp=$(mktemp -d /var/tmp/sb-bench-writer.XXXXXX)
chmod 755 "$tmp"
writer_pid=
cleanup() {
    [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null && wait "$writer_pid" 2>/dev/null
    as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$tmp"
as_pg "$pgbin/initdb" -D "$tmp/pg" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg.log" -w \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1" start >/dev/null
psql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

# metric NAME: its value from the writer's /metrics
metric() { curl -s "http://127.0.0.1:$((port + 3))/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
n=0
for ((r = 1; r <= rounds; r++)); do
    for w in "$@"; do
        n=$((n + 1))
        psql -c "CREATE DATABASE bench$n" postgres
        DATABASE_URL=postgresql://postgres@127.0.0.1:$port/bench$n \
            WRITER_PULL_ENDPOINT=@tcp://127.0.0.1:$((port + 1)) \
            ACK_ENDPOINT=">tcp://127.0.0.1:$((port + 2))" \
            METRICS_LISTEN=127.0.0.1:$((port + 3)) LOG_LEVEL=warn "$w" 2>>"$tmp/writer.log" &
        writer_pid=$!
        for _ in $(seq 100); do
            psql -c "SELECT 1 FROM customers LIMIT 1" "bench$n" >/dev/null 2>&1 && break
            kill -0 "$writer_pid" 2>/dev/null || { tail -n 5 "$tmp/writer.log" >&2; exit 1; }
            sleep 0.1
        done
        psql -c "INSERT INTO customers (name, phone) SELECT 'bench ' || g,
                 '(415) 555-' || lpad(g::text, 4, '0') FROM generate_series(1, 1000) g" "bench$n"
        out=$("$tool" push ">tcp://127.0.0.1:$((port + 1))" "@tcp://127.0.0.1:$((port + 2))" "$events")
        batches=$(metric sb_batch_rows_count)
        secs=$(metric sb_commit_seconds_sum)
        printf '%s | %s | %s batches, %.0f events each on average, %.1f ms per batch\n' \
            "$w" "$out" "$batches" "$(awk -v e="$events" -v b="$batches" 'BEGIN { print e / b }')" \
            "$(awk -v s="$secs" -v b="$batches" 'BEGIN { print 1000 * s / b }')"
        kill "$writer_pid"
        wait "$writer_pid" 2>/dev/null || true
        writer_pid=
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
