"""Chaos, short form (issue 7 part 1; the long form is bench/chaos_long.sh).

SPEC "What is stored": every acknowledged request ends as exactly one webhook_events row,
whatever happens to any process in between (crash, kill -9, restart of PostgreSQL), and
every communication is stored once. 20,000+ unique SMS and call events at a fixed rate
while a driver kill -9s a random stage (the ingress too) every couple of seconds and
restarts it, and PostgreSQL crashes (immediate stop) and comes back once. Requests that
get no 200 (the ingress is down) are retried like a provider would, as new attempts. After
the drain: acked / stored / lost / duplicated, failing on any loss or duplicate.
tests/chaos/chaos.py does the work. SB_CHAOS_EVENTS / SB_CHAOS_RATE override the size."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import harness  # noqa: E402
from harness import check  # noqa: E402
import chaos  # noqa: E402

EVENTS = int(os.environ.get("SB_CHAOS_EVENTS", "20000"))
RATE = float(os.environ.get("SB_CHAOS_RATE", "1000"))
MIN_KILLS = 10


def setup(ctx):
    # Redelivery after 1 s (doubling to 4 s): what a kill strands is resent quickly, so
    # the drain at the end stays short.
    ctx.state["p"] = ctx.pipeline(REDELIVER_AFTER_MS="1000", REDELIVER_MAX_MS="4000",
                                  LOG_LEVEL="warn")


def test_chaos_exactly_once(ctx):
    p = ctx.state["p"]
    res = chaos.run_chaos(p, EVENTS, RATE, min_kills=MIN_KILLS, pg_restarts=1,
                          drain_timeout=90)
    ctx.state["res"] = res
    t = res["tally"]
    print("  load %.1fs, drain %.1fs, answer p50 %.1f ms p99 %.1f ms, kills %r, "
          "PostgreSQL restarts %d, redelivered (since the last ingress start) %s" % (
              res["load_seconds"], res["drain_seconds"], res["p50_ms"] or 0,
              res["p99_ms"] or 0, res["kills"], res["pg_restarts"],
              res["redelivered_since_last_ingress_start"]))
    print("  acked=%d stored=%d lost=%d duplicated=%d" % (
        t["acked"], t["stored"], len(t["lost"]), len(t["duplicated"])))
    check(not res["problems"], "exactly once broken:\n    %s", "\n    ".join(res["problems"]))
    check(t["acked"] >= EVENTS, "only %d acked attempts (want >= %d)", t["acked"], EVENTS)


def test_enough_chaos(ctx):
    res = ctx.state.get("res")
    check(res is not None, "the chaos run did not happen")
    check(res["n_kills"] >= MIN_KILLS, "only %d kills (want >= %d): %r", res["n_kills"],
          MIN_KILLS, res["kills"])
    check("ingress" in res["kills"], "the ingress was never killed: %r", res["kills"])
    check(res["pg_restarts"] >= 1, "PostgreSQL was not restarted")
    # While the ingress was down, clients saw connection errors and retried: the test
    # must have exercised that path, or it proves less than it says.
    check(res["statuses"].get(-1, 0) > 0, "no request ever failed: %r", res["statuses"])


def test_health_ok_after(ctx):
    p = ctx.state["p"]
    ok = harness.wait_until(lambda: p.health()[0] == 200, 20, interval=0.25)
    check(ok, "health not ok after the chaos: %r", p.health())


if __name__ == "__main__":
    harness.run([test_chaos_exactly_once, test_enough_chaos, test_health_ok_after],
                setup=setup)
