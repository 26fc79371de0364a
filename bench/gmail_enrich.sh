#!/usr/bin/env bash
# bench/gmail_enrich.sh - Gmail pushes end to end through the enricher: how many e-mails
# per second are fetched, parsed, matched and stored when every Google call takes
# --latency-ms (100 ms by default, about what the real API answers in).
#
# tests/fakes/fake_google.py serves --mailboxes mailboxes of --messages new messages each
# (5,000 in all by default) with that latency on every call (token, history.list,
# messages.get). The pipeline from ./build (RelWithDebInfo) runs on its own ports with a
# throwaway PostgreSQL. Each run resets the checkpoints, posts the pushes (signed with one
# freshly minted Google OIDC JWT, verified as in production) and times from the first
# post until the last e-mail is in `communications`. Two push patterns:
#   mailbox  one push per mailbox (all its mail is new at once: a burst after downtime)
#   message  one push per new message, as Gmail sends them (the enricher coalesces the
#            pushes of a mailbox that arrive while its job runs)
# Results go to stdout and, with --record, are appended to bench/RESULTS.md.
set -euo pipefail
SB_PROG=bench
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"

usage() {
    cat <<EOF
usage: bench/gmail_enrich.sh [options]

  --mailboxes N     mailboxes (default 50)
  --messages N      new messages per mailbox (default 100)
  --latency-ms MS   latency of every fake Google call (default 100)
  --inflight N      ENRICHER_MAX_INFLIGHT (default: the enricher's own default)
  --patterns LIST   comma list of mailbox,message (default both)
  --runs N          runs per pattern (default 1); the median is reported
  --timeout S       give up a run after S seconds (default 120)
  --build-dir DIR   Switchboard build (default ./build, built RelWithDebInfo if needed)
  --pg-port PORT    port of the throwaway PostgreSQL (default 55443)
  --record          append the results to bench/RESULTS.md
  --help            this text
EOF
}

mailboxes=50
messages=100
latency=100
inflight=
patterns=mailbox,message
runs=1
timeout_s=120
build_dir=$SB_ROOT/build
pg_port=55443
record=0
while [ $# -gt 0 ]; do
    case $1 in
    --help | -h) usage; exit 0 ;;
    --record) record=1; shift; continue ;;
    esac
    [ $# -ge 2 ] || { usage >&2; sb_die "$1 needs a value (or is unknown)"; }
    case $1 in
    --mailboxes) mailboxes=$2 ;;
    --messages) messages=$2 ;;
    --latency-ms) latency=$2 ;;
    --inflight) inflight=$2 ;;
    --patterns) patterns=$2 ;;
    --runs) runs=$2 ;;
    --timeout) timeout_s=$2 ;;
    --build-dir) build_dir=$2 ;;
    --pg-port) pg_port=$2 ;;
    *) usage >&2; sb_die "unknown option: $1" ;;
    esac
    shift 2
done
for n in "$mailboxes" "$messages" "$runs" "$timeout_s" "$pg_port" ${inflight:+"$inflight"}; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || sb_die "not a positive integer: $n"
done
[[ $latency =~ ^[0-9]+$ ]] || sb_die "not a number: $latency"
[[ " ${SB_STAGES[*]} " == *" enricher "* ]] || sb_die "this build has no enricher"
fixtures=$(cd "$SB_ROOT/.." && pwd)/shared/fixtures
[ -f "$fixtures/google/mint-jwt.sh" ] || sb_die "no $fixtures/google/mint-jwt.sh"

# Fixed ports, away from scripts/run's and bench/sms_e2e.sh's.
SB_HTTP=127.0.0.1:18101
FAKE_PORT=18555

tmp=
declare -A pid=() # what we started: name -> pid
cleanup() {
    local status=$?
    trap '' INT TERM
    if [ ${#pid[@]} -gt 0 ]; then
        sb_stop_pids 10 "${pid[@]}" || sb_say "had to SIGKILL pid(s) ${SB_KILLED[*]}"
        wait 2>/dev/null || true
    fi
    sb_pg_stop
    [ -n "$tmp" ] && rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ------------------------------------------------------------------------------
tmp=$(mktemp -d /var/tmp/sb-bench-gmail.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach $tmp/pg
SB_BUILD_TARGETS=("${SB_STAGE_TARGETS[@]}")
sb_build "$build_dir" RelWithDebInfo
grep -q '^SB_SANITIZE:STRING=$' "$build_dir/CMakeCache.txt" ||
    sb_say "warning: $build_dir is built with sanitizers"

sb_pg_start "$tmp/pg" "$pg_port"
sb_pg_createdb switchboard
curl -s -o /dev/null -m 1 "http://$SB_HTTP/" && sb_die "something already listens on $SB_HTTP"
curl -s -o /dev/null -m 1 "http://127.0.0.1:$FAKE_PORT/" && sb_die "something already listens on :$FAKE_PORT"

/usr/bin/python3 -B "$SB_ROOT/tests/fakes/fake_google.py" --port "$FAKE_PORT" \
    --fixtures "$fixtures" --generate "${mailboxes}x${messages}" --latency-ms "$latency" \
    --page-size 500 >"$tmp/fake.log" 2>&1 &
pid[fake]=$!

audience=https://hooks.example.com/api/webhooks/gmail/push
export DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/switchboard SPOOL_DIR=$tmp/spool
export INGRESS_LISTEN=$SB_HTTP LOG_LEVEL=warn RINGCENTRAL_VERIFICATION_TOKEN=unused-$$
export GMAIL_PUSH_AUDIENCE=$audience GOOGLE_JWKS_FILE=$fixtures/google/test-jwks.json
export GMAIL_PUSH_SERVICE_ACCOUNT=gmail-push@example-project.iam.gserviceaccount.com
export GOOGLE_TOKEN_URL=http://127.0.0.1:$FAKE_PORT/token GMAIL_API_BASE_URL=http://127.0.0.1:$FAKE_PORT
export GOOGLE_CLIENT_ID=bench GOOGLE_CLIENT_SECRET=bench-secret
[ -n "$inflight" ] && export ENRICHER_MAX_INFLIGHT=$inflight
export INGRESS_PUSH_ENDPOINT='>tcp://127.0.0.1:15657' VERIFIER_PULL_ENDPOINT='@tcp://127.0.0.1:15657'
export VERIFIER_PUSH_ENDPOINT='>tcp://127.0.0.1:15660' ENRICHER_PULL_ENDPOINT='@tcp://127.0.0.1:15660'
export ENRICHER_PUSH_ENDPOINT='>tcp://127.0.0.1:15658' WRITER_PULL_ENDPOINT='@tcp://127.0.0.1:15658'
export INGRESS_ACK_ENDPOINT='@tcp://127.0.0.1:15659' ACK_ENDPOINT='>tcp://127.0.0.1:15659'
mkdir -p "$SPOOL_DIR"
declare -A metrics_port=([verifier]=19202 [enricher]=19203 [writer]=19204 [ingress]="")
for s in "${SB_STAGES[@]}"; do
    METRICS_LISTEN=127.0.0.1:${metrics_port[$s]} "$build_dir/$s/sb-$s" 2>>"$tmp/switchboard.log" &
    pid[$s]=$!
done
if ! sb_wait_http "http://$SB_HTTP/api/webhooks/health" 30 "${pid[@]}"; then
    tail -n 20 "$tmp/switchboard.log" >&2
    sb_die "Switchboard did not become healthy (last: $SB_HTTP_STATUS $SB_HTTP_BODY)"
fi
sb_wait_http "http://127.0.0.1:$FAKE_PORT/_stats" 15 "${pid[fake]}" ||
    sb_die "fake_google did not start: $(cat "$tmp/fake.log")"
jwt=$(bash "$fixtures/google/mint-jwt.sh" --now "$(date +%s)" --exp-offset 7200)
sb_say "Switchboard healthy on $SB_HTTP; fake Google on :$FAKE_PORT ($mailboxes x $messages" \
    "messages, ${latency} ms per call)"

# ---- runs -------------------------------------------------------------------------------
# The driver: per run, reset the checkpoints, post the pushes from 8 threads, poll the
# row count; prints one line "pattern pushes emails seconds rate google_calls max_inflight".
cat >"$tmp/drive.py" <<'EOF'
import base64, http.client, json, sys, threading, time
import psycopg2
(dsn, http_addr, fake_port, jwt, pattern, n_mailboxes, n_messages, timeout_s) = sys.argv[1:9]
n_mailboxes, n_messages, timeout_s = int(n_mailboxes), int(n_messages), float(timeout_s)
host, port = http_addr.split(":")
db = psycopg2.connect(dsn)
db.autocommit = True
cur = db.cursor()
mailboxes = ["bench-%03d@example.com" % m for m in range(n_mailboxes)]
cur.execute("TRUNCATE communications, webhook_events RESTART IDENTITY")
cur.execute("DELETE FROM mailboxes")
cur.executemany("INSERT INTO mailboxes (email, refresh_token, history_id) VALUES (%s, %s, 1000)",
                [(m, "rt-" + m) for m in mailboxes])
cur.execute("SELECT count(*) FROM customers")
if cur.fetchone()[0] == 0:  # the senders of the generated mail, half of them known
    cur.executemany("INSERT INTO customers (name, email) VALUES (%s, %s)",
                    [("Customer %d" % i, "Customer %d <Customer-%d@Example.org>" % (i, i))
                     for i in range(0, n_messages, 2)])
def stats():
    c = http.client.HTTPConnection("127.0.0.1", int(fake_port), timeout=10)
    c.request("GET", "/_stats")
    return json.loads(c.getresponse().read())
def reset_stats():
    c = http.client.HTTPConnection("127.0.0.1", int(fake_port), timeout=10)
    c.request("POST", "/_control", body=b'{"reset_stats": true}')
    c.getresponse().read()
reset_stats()
pushes = []
if pattern == "mailbox":
    pushes = [(m, 1000 + 7 * n_messages) for m in mailboxes]
else:  # one per message, round robin over the mailboxes as mail would arrive
    pushes = [(m, 1000 + 7 * (i + 1)) for i in range(n_messages) for m in mailboxes]
def body(address, history):
    data = base64.b64encode(json.dumps({"emailAddress": address, "historyId": history}).encode())
    return json.dumps({"message": {"data": data.decode(), "messageId": "1"},
                       "subscription": "projects/bench/subscriptions/gmail"}).encode()
errors = []
def post(chunk):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    for address, history in chunk:
        c.request("POST", "/api/webhooks/gmail/push", body=body(address, history),
                  headers={"Content-Type": "application/json", "Authorization": "Bearer " + jwt})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            errors.append(r.status)
want = n_mailboxes * n_messages
t0 = time.monotonic()
threads = [threading.Thread(target=post, args=(pushes[i::8],)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
t_posted = time.monotonic() - t0
n = 0
while time.monotonic() - t0 < timeout_s:
    cur.execute("SELECT count(*) FROM communications")
    n = cur.fetchone()[0]
    if n >= want:
        break
    time.sleep(0.05)
elapsed = time.monotonic() - t0
# Every push gets its row too (stored, or covered by an earlier push).
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    cur.execute("SELECT count(*) FROM webhook_events")
    if cur.fetchone()[0] >= len(pushes):
        break
    time.sleep(0.1)
cur.execute("SELECT outcome, count(*) FROM webhook_events GROUP BY 1 ORDER BY 1")
outcomes = ",".join("%s=%d" % r for r in cur.fetchall())
cur.execute("SELECT count(*) FROM communications WHERE customer_id IS NOT NULL")
matched = cur.fetchone()[0]
s = stats()
calls = s["counts"].get("total", 0)
print("%s %d %d %.2f %.0f %d %d %.2f %d %s" % (pattern, len(pushes), n, elapsed, n / elapsed, calls,
      s["max_inflight"], t_posted, matched, outcomes))
if errors:
    print("post errors: %r" % errors[:10], file=sys.stderr)
sys.exit(0 if n >= want else 1)
EOF

declare -A rate_l=() line_l=()
IFS=, read -r -a pattern_list <<<"$patterns"
for ((i = 1; i <= runs; i++)); do
    for p in "${pattern_list[@]}"; do
        [[ $p == mailbox || $p == message ]] || sb_die "unknown pattern: $p"
        out=$(/usr/bin/python3 -B "$tmp/drive.py" "$DATABASE_URL" "$SB_HTTP" "$FAKE_PORT" "$jwt" \
            "$p" "$mailboxes" "$messages" "$timeout_s") || {
            echo "$out" >&2
            tail -n 30 "$tmp/switchboard.log" >&2
            sb_die "run $i ($p) did not store every e-mail within $timeout_s s"
        }
        read -r _ pushes stored secs rate calls maxin posted matched outcomes <<<"$out"
        sb_say "$p run $i: $pushes pushes (posted in ${posted}s), $stored e-mails in ${secs}s" \
            "-> $rate e-mails/s; $calls Google calls, at most $maxin at once; $matched matched;" \
            "events: $outcomes"
        rate_l[$p]+="$rate "
        line_l[$p]="$pushes|$calls|$maxin|$outcomes"
        sleep 2.5 # the enricher's catch-up window (SB_GMAIL_CATCHUP_MS) must not span runs
    done
done

# ---- report -----------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | awk NF | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else printf "%.0f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
report=$tmp/report.md
{
    printf '\n## Gmail enrichment (bench/gmail_enrich.sh), %s\n\n' "$(date -u +%Y-%m-%d)"
    printf 'fake Google with %s ms per call, %s mailboxes x %s new messages = %s e-mails;' \
        "$latency" "$mailboxes" "$messages" $((mailboxes * messages))
    printf ' ENRICHER_MAX_INFLIGHT=%s; %s run(s) per pattern, median.\n' "${inflight:-256 (default)}" "$runs"
    printf 'machine: %s cores, %s, Debian %s\n\n' "$(nproc)" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(cat /etc/debian_version)"
    printf '| pushes | pushes posted | e-mails stored/s (first post to last row) | Google calls | most calls at once | webhook_events |\n'
    printf '|---|---:|---:|---:|---:|---|\n'
    for p in "${pattern_list[@]}"; do
        IFS='|' read -r pushes calls maxin outcomes <<<"${line_l[$p]}"
        printf '| one per %s | %s | %s | %s | %s | %s |\n' "$p" "$pushes" "$(median "${rate_l[$p]}")" \
            "$calls" "$maxin" "$outcomes"
    done
    printf '\nGoal (issue 5): >= 500 e-mails/s.\n'
} >"$report"
cat "$report"
if [ $record -eq 1 ]; then
    [ -f "$SB_ROOT/bench/RESULTS.md" ] || printf '# Benchmark results\n' >"$SB_ROOT/bench/RESULTS.md"
    cat "$report" >>"$SB_ROOT/bench/RESULTS.md"
    sb_say "appended to bench/RESULTS.md"
fi
