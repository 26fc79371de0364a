"""SIGTERM: every stage drains and exits 0 (DESIGN "Operations"); events that were
acknowledged but not yet stored stay in the spool and are stored after the next start
(SPEC "Running": in-flight events are finished or stay in the spool)."""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402


def setup(ctx):
    ctx.state["p"] = ctx.pipeline()
    ctx.state["tag"] = "%06d" % random.randint(0, 999999)


def test_sigterm_exits_zero(ctx):
    p = ctx.state["p"]
    ids = ["4%s%03d" % (ctx.state["tag"], i) for i in range(20)]
    for mid in ids:
        check_eq(p.post_sms(harness.sms_body(mid)).status, 200, "status")
    check_eq(p.wait_count("webhook_events", 20, timeout=10), 20, "webhook_events rows")
    t0 = time.monotonic()
    rcs = p.stop()
    secs = time.monotonic() - t0
    check_eq(rcs, {"ingress": 0, "verifier": 0, "enricher": 0, "writer": 0},
             "exit codes after SIGTERM")
    check(secs < 10, "stopping took %.1fs", secs)


def test_spooled_events_survive_a_clean_stop(ctx):
    p = ctx.state["p"]
    p.restart("writer")
    p.restart("enricher")
    p.restart("ingress")  # the verifier stays down: nothing can be acknowledged
    ids = ["4%s%03d" % (ctx.state["tag"], i) for i in range(100, 110)]
    for mid in ids:
        check_eq(p.post_sms(harness.sms_body(mid)).status, 200, "status")
    check_eq(p.stop_stage("ingress"), 0, "ingress exit code after SIGTERM")
    p.restart("ingress")
    p.restart("verifier")
    n = p.wait_count("communications", 30, timeout=20)
    check_eq(n, 30, "communications (20 before, 10 spooled across the stop)")
    got = p.query("SELECT external_id FROM communications WHERE external_id = ANY(%s)",
                  (ids,))
    check_eq(sorted(r[0] for r in got), sorted(ids), "spooled ids stored")
    time.sleep(3.5)
    check_eq(p.count("webhook_events"), 30, "webhook_events rows (no redelivered extras)")


if __name__ == "__main__":
    harness.run([
        test_sigterm_exits_zero,
        test_spooled_events_survive_a_clean_stop,
    ], setup=setup)
