"""kill -9 of the ingress with unacknowledged events in its spool.

The verifier is stopped, so nothing posted can be acknowledged by a writer; 50 SMS are
answered 200 (durable in the spool only); the ingress is killed with SIGKILL (its in-memory
ZeroMQ queue is lost) and restarted together with the verifier. The spool alone must bring
all 50 to PostgreSQL, each exactly once, and drain to depth 0."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

N = 50


def setup(ctx):
    ctx.state["p"] = ctx.pipeline(REDELIVER_AFTER_MS="1500", REDELIVER_MAX_MS="3000")


def spool_depth(p):
    status, doc = p.health()
    return (doc or {}).get("spool", {}).get("depth")


def test_post_50_without_verifier(ctx):
    p = ctx.state["p"]
    rc = p.stop_stage("verifier")
    check_eq(rc, 0, "sb-verifier exit code after SIGTERM")
    tag = "%06d" % random.randint(0, 999999)
    ids = ["6%s%04d" % (tag, i) for i in range(N)]
    ctx.state["ids"] = ids
    statuses = []
    for i, mid in enumerate(ids):
        r = p.post_sms(harness.sms_body(mid, from_phone="+1 312 555 %04d" % i,
                                        text="spooled %d" % i))
        statuses.append(r.status)
    check_eq(statuses.count(200), N, "answers 200 (all: %r)" % sorted(set(statuses)))
    time.sleep(1.0)
    check_eq(p.count("webhook_events"), 0, "webhook_events rows while the verifier is down")
    depth = harness.wait_until(lambda: (spool_depth(p) or 0) >= N and spool_depth(p), 5)
    check_eq(depth, N, "health spool depth with %d unacknowledged events" % N)


def test_kill_ingress_and_restart(ctx):
    p = ctx.state["p"]
    p.kill("ingress", signal.SIGKILL)
    check_eq(p.stages["ingress"].proc.returncode, -signal.SIGKILL, "ingress exit status")
    p.restart("ingress", wait=True)
    p.restart("verifier", wait=True)
    ids = ctx.state["ids"]
    t0 = time.monotonic()
    n = p.wait_count("webhook_events", N, timeout=30)
    print("  %d/%d webhook_events rows %.1fs after the restart" % (n, N,
                                                                   time.monotonic() - t0))
    check(n >= N, "only %d of %d spooled events reached the database", n, N)
    time.sleep(3.5)  # longer than two redelivery periods: spurious resends would show
    rows = p.query("SELECT convert_from(body, 'UTF8')::json->'body'->>'id', count(*), "
                   "array_agg(outcome) FROM webhook_events GROUP BY 1")
    events = {r[0]: (r[1], r[2]) for r in rows}
    lost = [m for m in ids if m not in events]
    twice = [m for m, (c, _o) in events.items() if c > 1]
    not_stored = [m for m, (_c, o) in events.items() if o != ["stored"]]
    check(not lost, "%d events lost, e.g. %r", len(lost), lost[:5])
    check(not twice, "%d events stored twice, e.g. %r", len(twice), twice[:5])
    check(not not_stored, "events not 'stored': %r",
          [(m, events[m][1]) for m in not_stored[:5]])
    check_eq(sum(c for c, _o in events.values()), N, "webhook_events rows")
    comms = p.query("SELECT external_id, count(*) FROM communications GROUP BY 1")
    check_eq(sorted(str(r[0]) for r in comms), sorted(ids), "communications' external ids")
    check(all(r[1] == 1 for r in comms), "a communication stored twice: %r",
          [r for r in comms if r[1] != 1])


def test_spool_drains_to_zero(ctx):
    p = ctx.state["p"]
    got = {}

    def drained():
        got["h"] = p.health()
        return (got["h"][1] or {}).get("spool", {}).get("depth") == 0

    ok = harness.wait_until(drained, 20, interval=0.25)
    check(ok, "spool depth did not return to 0: %r", got.get("h"))
    ok = harness.wait_until(lambda: p.health()[0] == 200, 15, interval=0.25)
    check(ok, "health not ok after the restart: %r", p.health())


def test_new_event_after_restart_is_stored(ctx):
    # The restarted ingress must not hand out an id that the old one used (DESIGN "two
    # traps"): a new event would then be dropped as a duplicate of an old one.
    p = ctx.state["p"]
    before = p.max_event_id()
    mid = "6999" + ctx.state["ids"][0][1:7]
    r = p.post_sms(harness.sms_body(mid, text="after restart"))
    check_eq(r.status, 200, "status")
    rows = p.wait_new_events(before, 1, timeout=10)
    check(rows, "no webhook_events row for the post after the restart")
    check_eq(rows[0]["outcome"], "stored", "outcome")
    check_eq(p.count("communications", "external_id = %s", (mid,)), 1, "communication")
    ev = p.query("SELECT event_id FROM webhook_events")
    check_eq(len(set(r[0] for r in ev)), N + 1, "distinct event ids")


if __name__ == "__main__":
    harness.run([
        test_post_50_without_verifier,
        test_kill_ingress_and_restart,
        test_spool_drains_to_zero,
        test_new_event_after_restart_is_stored,
    ], setup=setup)
