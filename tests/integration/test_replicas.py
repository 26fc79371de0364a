"""Replicas of every stage (issue 8; what `scripts/run --verifiers 2 --enrichers 2
--writers 2` runs): two verifiers, two enrichers and two writers behind one ingress.

5,000 unique SMS are posted over keep-alive connections (tests/chaos/chaos.py's load
generator, 8 connections, 1,000/s). Mid-run one writer replica gets kill -9 and is started
again a moment later, and one enricher replica gets kill -9 and stays down. SPEC "What is
stored" must hold: every acknowledged request ends as exactly one webhook_events row and
one communications row, nothing lost, nothing twice (chaos.tally). And the replicas must
really share the load: every replica of every stage counted events in and out on its
/metrics (sb_events_in_total, and sb_events_out_total or, for writers,
sb_events_written_total) - a killed replica's share is read just before its kill, the
restarted writer's after the run."""

import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import chaos  # noqa: E402

EVENTS = int(os.environ.get("SB_REPLICAS_EVENTS", "5000"))
RATE = 1000.0
REPLICAS = {"verifier": 2, "enricher": 2, "writer": 2}
OUT_METRIC = {"verifier": "sb_events_out_total", "enricher": "sb_events_out_total",
              "writer": "sb_events_written_total"}
WRITER_KILL_AT = 0.25    # share of the events acked when writer2 is killed (then restarted)
ENRICHER_KILL_AT = 0.55  # ... when enricher2 is killed (and left down)


def setup(ctx):
    # Redelivery after 1 s: what a kill strands comes back quickly, so the drain is short.
    p = ctx.pipeline(replicas=REPLICAS, REDELIVER_AFTER_MS="1000", REDELIVER_MAX_MS="3000",
                     LOG_LEVEL="warn")
    ctx.state["p"] = p

    # Every replica heartbeats to the ingress (health counts instances per stage).
    def all_up():
        doc = p.health()[1] or {}
        return all(doc.get("stages", {}).get(s, {}).get("instances") == n
                   for s, n in REPLICAS.items())

    check(harness.wait_until(all_up, 10, interval=0.2),
          "health does not show every replica: %r", p.health())


def metric_sums(port):
    """{metric name: sum over its labels} of one scrape of 127.0.0.1:port/metrics."""
    try:
        text = harness.http_request(port, "GET", "/metrics", timeout=3).body.decode()
    except OSError:
        return {}
    sums = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


def shares(p, name):
    """(events in, events out) on a replica's /metrics (one scrape); None if absent."""
    m = metric_sums(p.metrics_port(name))
    return m.get("sb_events_in_total"), m.get(OUT_METRIC[name.rstrip("0123456789")])


def test_replicas_share_the_load_and_lose_nothing(ctx):
    p = ctx.state["p"]
    w = chaos.Workload(EVENTS, call_share=0.0)
    gen = chaos.LoadGen(p.http_port, w, RATE, connections=8,
                        finish_by=time.monotonic() + 60)
    before_kill = {}  # name -> (in, out) just before its kill -9
    plan = [(WRITER_KILL_AT, "writer2", True), (ENRICHER_KILL_AT, "enricher2", False)]
    t0 = time.monotonic()
    gen.start()
    while gen.running():
        gen.join(0.05)
        if plan and gen.progress()["acked"] >= plan[0][0] * EVENTS:
            _at, name, restart = plan.pop(0)
            before_kill[name] = shares(p, name)
            p.kill(name, signal.SIGKILL)
            check_eq(p.stages[name].proc.returncode, -signal.SIGKILL, "%s after kill -9" % name)
            print("  +%.1fs kill -9 %s (acked %d; it had in/out %r)" % (
                time.monotonic() - t0, name, gen.progress()["acked"], before_kill[name]))
            if restart:
                time.sleep(0.3)
                p.restart(name)  # waits until its /metrics answers
                print("  +%.1fs %s started again" % (time.monotonic() - t0, name))
    load_s = time.monotonic() - t0
    check(gen.exc is None, "load generator failed: %r", gen.exc)
    check(not plan, "the run ended before every kill: %r left", plan)
    ok, drain_s, doc = chaos.wait_drained(p, 60)
    check(ok, "the spool did not drain in 60 s: %r", doc)
    time.sleep(1.0)  # a late redelivery that wrongly added a row would show now
    t = chaos.tally(p, w, gen)
    print("  load %.1fs (%s), drain %.1fs, p50 %.1f ms p99 %.1f ms, redelivered by the "
          "ingress %s" % (load_s, gen.statuses, drain_s, gen.latency_ms(0.5) or 0,
                          gen.latency_ms(0.99) or 0,
                          metric_sums(p.http_port).get("sb_events_redelivered_total")))
    print("  " + chaos.summary(t))
    probs = chaos.problems(t)
    check(not probs, "exactly once broken:\n    %s", "\n    ".join(probs))
    check_eq(gen.n_acked, EVENTS, "requests acknowledged")
    check_eq(t["comm_rows"], EVENTS, "communications rows of this run")

    # Every replica did a share. Killed ones: what they had counted before the kill; the
    # restarted writer must also have worked after its restart (it gets new events and
    # redeliveries once the enrichers reconnect).
    seen = {}
    for stage, n in REPLICAS.items():
        for name in p.replica_names(stage):
            if name in before_kill:
                seen[name + " before kill"] = before_kill[name]
                if p.stages[name].alive():
                    seen[name + " after restart"] = shares(p, name)
            else:
                seen[name] = shares(p, name)
    print("  events in/out per replica: %s" % ", ".join(
        "%s %s/%s" % (k, int(v[0] or 0), int(v[1] or 0)) for k, v in sorted(seen.items())))
    idle = [k for k, (n_in, n_out) in seen.items() if not n_in or not n_out]
    check(not idle, "replicas without a share of the work: %s (all: %r)", idle, seen)
    check("writer2 after restart" in seen, "writer2 is not running after its restart")


def test_health_ok_after(ctx):
    p = ctx.state["p"]
    ok = harness.wait_until(lambda: p.health()[0] == 200, 10, interval=0.25)
    check(ok, "health not ok with one enricher left: %r", p.health())
    doc = p.health()[1]
    check_eq(doc["stages"]["writer"]["instances"], 2, "writers in health after the restart")


if __name__ == "__main__":
    harness.run([test_replicas_share_the_load_and_lose_nothing, test_health_ok_after],
                setup=setup)
