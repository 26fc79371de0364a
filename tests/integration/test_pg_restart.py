"""PostgreSQL goes away (immediate shutdown, as in a crash) under a stream of SMS and comes
back. SPEC: every acknowledged request ends as exactly one webhook_events row "whatever
happens to any process in between (crash, kill -9, restart of PostgreSQL)"; health says
degraded while the database is unreachable."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

N = 200
RESTART_AT = 60
DOWN_SECONDS = 4.0


def setup(ctx):
    ctx.state["p"] = ctx.pipeline(REDELIVER_AFTER_MS="1500", REDELIVER_MAX_MS="3000")


def test_stream_across_pg_restart(ctx):
    p = ctx.state["p"]
    tag = "%06d" % random.randint(0, 999999)
    ids = ["5%s%04d" % (tag, i) for i in range(N)]
    ctx.state["ids"] = ids
    statuses = {}
    seen = {"db_down_health": None}
    restart_now = threading.Event()
    restarted = threading.Event()

    def chaos():
        restart_now.wait(60)
        p.pg.stop("immediate")
        # While it is down: does health notice?
        got = {}

        def degraded():
            got["h"] = p.health()
            doc = got["h"][1] or {}
            return got["h"][0] == 503 and doc.get("database", {}).get("reachable") is False

        harness.wait_until(degraded, DOWN_SECONDS, interval=0.2)
        seen["db_down_health"] = got.get("h")
        p.pg.start()
        restarted.set()

    ct = threading.Thread(target=chaos, daemon=True)
    ct.start()
    for i, mid in enumerate(ids):
        if i == RESTART_AT:
            restart_now.set()
        try:
            statuses[mid] = p.post_sms(harness.sms_body(mid, text="pg restart %d" % i)).status
        except OSError as e:
            statuses[mid] = repr(e)
        time.sleep(0.02)  # a steady stream of ~4 s, across the outage
    restarted.wait(30)
    ct.join(30)
    ctx.state["statuses"] = statuses
    ctx.state["down_health"] = seen["db_down_health"]
    bad = {m: s for m, s in statuses.items() if s != 200}
    check(restarted.is_set(), "PostgreSQL was not restarted")
    check(not bad, "%d posts not answered 200 during the outage, e.g. %r", len(bad),
          list(bad.items())[:5])


def test_health_saw_database_down(ctx):
    h = ctx.state.get("down_health")
    check(h is not None, "no health answer while PostgreSQL was down")
    status, doc = h
    check_eq(status, 503, "health status while PostgreSQL was down (doc %r)" % (doc,))
    check_eq((doc or {}).get("database", {}).get("reachable"), False, "database.reachable")
    reasons = " ".join(str(r) for r in (doc or {}).get("reasons", []))
    check("database" in reasons.lower() or "db" in reasons.lower(),
          "reasons %r should mention the database", reasons)


def test_everything_stored_exactly_once(ctx):
    p = ctx.state["p"]
    check(p.stages["writer"].alive(), "sb-writer exited when PostgreSQL went away (rc %s)",
          p.stages["writer"].proc.returncode)
    acked = [m for m, s in ctx.state["statuses"].items() if s == 200]
    t0 = time.monotonic()
    n = p.wait_count("webhook_events", len(acked), timeout=45)
    print("  %d/%d webhook_events rows, %.1fs after the last post" % (
        n or 0, len(acked), time.monotonic() - t0))
    time.sleep(3.5)
    rows = p.query("SELECT convert_from(body, 'UTF8')::json->'body'->>'id', count(*) "
                   "FROM webhook_events GROUP BY 1")
    events = dict((r[0], r[1]) for r in rows)
    lost = [m for m in acked if m not in events]
    twice = [m for m, c in events.items() if c > 1]
    print("  acked=%d stored=%d lost=%d duplicated=%d" % (
        len(acked), len(events), len(lost), len(twice)))
    check(not lost, "%d acked events lost, e.g. %r", len(lost), lost[:5])
    check(not twice, "%d events with several rows, e.g. %r", len(twice), twice[:5])
    comms = p.query("SELECT external_id, count(*) FROM communications GROUP BY 1")
    check_eq(len(comms), len(acked), "communications")
    check(all(r[1] == 1 for r in comms), "a communication stored twice")


def test_health_ok_again(ctx):
    p = ctx.state["p"]
    ok = harness.wait_until(lambda: p.health()[0] == 200, 20, interval=0.25)
    check(ok, "health not ok after PostgreSQL came back: %r", p.health())


if __name__ == "__main__":
    harness.run([
        test_stream_across_pg_restart,
        test_health_saw_database_down,
        test_everything_stored_exactly_once,
        test_health_ok_again,
    ], setup=setup)
