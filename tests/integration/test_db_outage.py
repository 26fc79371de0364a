"""The database goes away for a while under load; the spool fills up (issue 7 part 2).

SPEC: a POST is answered 200 once it is durable in the ingress spool, whatever the
database does (RingCentral blacklists an endpoint that fails for ~10 minutes, so an
outage must not show to the provider); health is 503 "degraded" with the reason while
the database is unreachable; every acknowledged request ends as exactly one
webhook_events row. "Spool full or unwritable: 503 with Retry-After; nothing is lost that
was already acknowledged."

1. PostgreSQL stopped for OUTAGE_S seconds (CI 25 s; SB_OUTAGE_SECONDS overrides, the long
   form in bench/chaos_long.sh runs minutes) under RATE events/s: every request answered
   200; health degraded with "database unreachable"; the writer's reconnect attempts are
   counted by a listener that takes PostgreSQL's port while it is down (they must back
   off, not spin); when PostgreSQL returns the backlog drains (rate measured and
   printed); then exactly once.
2. SPOOL_MAX_BYTES=2 MiB with the verifier stopped: the ingress answers 503 with
   Retry-After once full, the spool stays within its bound; the verifier comes back, the
   backlog drains, the client's retries get 200, and every acked request is stored once.
"""

import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import chaos  # noqa: E402

RATE = float(os.environ.get("SB_OUTAGE_RATE", "1000"))
OUTAGE_S = float(os.environ.get("SB_OUTAGE_SECONDS", "25"))
BEFORE_S = 5.0  # load before the outage
AFTER_S = 5.0   # load after PostgreSQL is back
SPOOL_MAX = 2 * 1024 * 1024


class ConnectCounter:
    """Listens on PostgreSQL's port while it is down and counts connection attempts
    (accepted and closed at once: the writer sees a dead server)."""

    def __init__(self, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind(("127.0.0.1", port))
        self.s.listen(64)
        self.s.settimeout(0.2)
        self.times = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def _main(self):
        while not self._stop.is_set():
            try:
                c, _ = self.s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            c.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.s.close()


def setup(ctx):
    # The production redelivery defaults (10 s doubling to 5 min): what an operator gets.
    ctx.state["p"] = ctx.pipeline(REDELIVER_AFTER_MS="10000", REDELIVER_MAX_MS="300000",
                                  HEALTH_MAX_LAG_SECONDS="600", LOG_LEVEL="warn")


def test_outage_under_load(ctx):
    p = ctx.state["p"]
    total_s = BEFORE_S + OUTAGE_S + AFTER_S
    w = chaos.Workload(int(RATE * total_s), call_share=0.25)
    ctx.state["w"] = w
    gen = chaos.LoadGen(p.http_port, w, RATE, connections=16,
                        finish_by=time.monotonic() + total_s + 60)
    ctx.state["gen"] = gen
    sampler = chaos.Sampler(p, interval=0.5).start()
    ctx.state["sampler"] = sampler
    gen.start()
    time.sleep(BEFORE_S)
    t_down = time.monotonic()
    p.pg.stop("fast")
    counter = ConnectCounter(p.pg.port)
    degraded = harness.wait_until(
        lambda: "database unreachable" in (p.health()[1] or {}).get("reasons", []), 10,
        interval=0.2)
    t_degraded = time.monotonic() - t_down
    down_health = p.health()
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
    counter.close()
    p.pg.start()
    t_up, wall_up = time.monotonic(), time.time()
    depth_at_up = (p.health()[1] or {}).get("spool", {}).get("depth")
    reachable = harness.wait_until(
        lambda: (p.health()[1] or {}).get("database", {}).get("reachable") is True, 20,
        interval=0.1)
    t_reconnect = time.monotonic() - t_up
    gen.join(total_s + 90)
    drain_max = 120 + OUTAGE_S  # the backlog is OUTAGE_S seconds of load
    ok, drain_s, doc = chaos.wait_drained(p, drain_max)
    t_drained = time.monotonic()
    sampler.stop()
    ctx.state.update(t_down=t_down, t_up=t_up, t_drained=t_drained, down_health=down_health,
                     attempts=counter.times, depth_at_up=depth_at_up)
    gaps = [b - a for a, b in zip(counter.times, counter.times[1:])]
    print("  %d requests in %.1fs: %r; p99 answer %.1f ms" % (
        len(w.items), gen.t_end - gen.t_start, gen.statuses, gen.latency_ms(0.99) or 0))
    print("  degraded %.1fs after the stop; writer connect attempts while down: %d, gaps "
          "%s s; reachable again %.1fs after the start" % (
              t_degraded, len(counter.times), ",".join("%.1f" % g for g in gaps), t_reconnect))
    # Drain: from PostgreSQL's return until the spool depth is back under one second of
    # load (the backlog is gone); the commit rate meanwhile from webhook_events.stored_at
    # (the transaction time of each batch), counting unique events only.
    after = sampler.between(t_up, t_drained + 1)
    depth = [(s, (s["health"][1] or {}).get("spool", {}).get("depth")) for s in after
             if s["health"] and s["health"][1]]
    caught = next((s for s, d in depth if d is not None and d < RATE), None)
    if os.environ.get("SB_OUTAGE_VERBOSE"):
        for s, d in depth:
            print("    +%5.1fs depth %s %r" % (s["t"] - t_up, d, s["m"]))
    rate = peak = None
    if caught is not None:
        rows = p.query("SELECT date_trunc('second', stored_at), count(*) FROM webhook_events "
                       "WHERE stored_at >= to_timestamp(%s) AND stored_at <= to_timestamp(%s) "
                       "GROUP BY 1 ORDER BY 1", (wall_up, caught["wall"]))
        if rows:
            n = sum(r[1] for r in rows)
            span = (rows[-1][0] - rows[0][0]).total_seconds() + 1.0
            rate, peak = n / span, max(r[1] for r in rows)
    ctx.state["drain"] = (depth_at_up, caught and caught["t"] - t_up, rate, peak)
    print("  backlog %s events when PostgreSQL returned; caught up after %s s; unique "
          "events committed meanwhile %s/s on average, %s/s in the best second" % (
              depth_at_up, "%.1f" % (caught["t"] - t_up) if caught else "?",
              "%.0f" % rate if rate else "?", peak))
    print("  stage VmRSS max (KiB): %r" % (sampler.max_rss(),))
    # The writer counts the copies that reached it for events already stored.
    print("  ingress: redelivered %s, window full %s times, push blocked %s; writer: "
          "already-stored copies %s" % (
              chaos.metric(p.http_port, "sb_events_redelivered_total"),
              chaos.metric(p.http_port, "sb_push_deferred_total"),
              chaos.metric(p.http_port, "sb_push_blocked_total"),
              chaos.metric(p.ports["writer_metrics"], "sb_events_redelivered_total")))
    # The writer said the database was down, so the ingress held redelivery: what it had
    # pushed sat queued, and copies of it would only be verified and written twice. A
    # few may slip through in the second before the writer's heartbeat says so.
    copies = chaos.metric(p.ports["writer_metrics"], "sb_events_redelivered_total") or 0
    check(copies <= RATE, "the writer got %s copies of stored events: the ingress "
          "redelivered while the database was down (sb_redelivery_held)", copies)
    check(gen.exc is None, "load generator failed: %r", gen.exc)
    check_eq(gen.statuses, {200: len(w.items)},
             "answers during the outage (every request must get 200 at once)")
    check(degraded, "health never said 'database unreachable': %r", down_health)
    check(reachable, "the writer did not reconnect within 20 s of PostgreSQL's return")
    # Backoff, not a busy loop: from 100 ms doubling to 5 s (writer.h), OUTAGE_S seconds
    # allow about 6 + (OUTAGE_S - 6) / 5 attempts; a spinning writer would make hundreds.
    bound = int(8 + OUTAGE_S / 3.75)
    check(2 <= len(counter.times) <= bound, "writer connect attempts while PostgreSQL was "
          "down: %d (want 2..%d)", len(counter.times), bound)
    check(ok, "the spool did not drain within %.0f s: %r", drain_max, doc)


def test_health_while_down(ctx):
    status, doc = ctx.state["down_health"]
    check_eq(status, 503, "health status while PostgreSQL was down (%r)" % (doc,))
    check_eq(doc.get("status"), "degraded", "health status field")
    check("database unreachable" in doc.get("reasons", []), "reasons %r", doc.get("reasons"))
    check_eq(doc.get("database", {}).get("reachable"), False, "database.reachable")
    # The spool grew while the database was away: the ingress kept taking events.
    check((doc.get("spool", {}).get("depth") or 0) > 0, "spool depth while down: %r",
          doc.get("spool"))


def test_outage_exactly_once(ctx):
    p, w, gen = ctx.state["p"], ctx.state["w"], ctx.state["gen"]
    time.sleep(1.0)
    t = chaos.tally(p, w, gen)
    print("  " + chaos.summary(t))
    probs = chaos.problems(t)
    check(not probs, "exactly once broken:\n    %s", "\n    ".join(probs))
    check_eq(t["acked"], len(w.items), "acked requests")


def test_health_ok_after_outage(ctx):
    p = ctx.state["p"]
    ok = harness.wait_until(lambda: p.health()[0] == 200, 20, interval=0.25)
    check(ok, "health not ok after the outage: %r", p.health())


def test_spool_full_503(ctx):
    q = ctx.pipeline(SPOOL_MAX_BYTES=str(SPOOL_MAX), REDELIVER_AFTER_MS="1500",
                     REDELIVER_MAX_MS="6000", LOG_LEVEL="warn")
    ctx.state["q"] = q
    rc = q.stop_stage("verifier")
    check_eq(rc, 0, "verifier exit status after SIGTERM")
    # ~1.1 KB per spooled SMS: 5000 requests are more than twice the bound.
    w = chaos.Workload(5000, call_share=0.25)
    gen = chaos.LoadGen(q.http_port, w, 1000, connections=8, retry_after_cap=1.0,
                        finish_by=time.monotonic() + 120)
    gen.start()
    full = harness.wait_until(lambda: gen.statuses.get(503, 0) >= 200, 30, interval=0.1)
    check(full, "no 503 while the spool filled up: %r (health %r)", gen.statuses, q.health())
    status, doc = q.health()
    spool = (doc or {}).get("spool", {})
    acked_full = gen.n_acked
    print("  spool full after %d acked requests: %r; answers so far %r" % (
        acked_full, spool, gen.statuses))
    check(spool.get("bytes", 0) <= SPOOL_MAX, "spool bytes %r over SPOOL_MAX_BYTES %d",
          spool.get("bytes"), SPOOL_MAX)
    check(all(v is not None and int(v) > 0 for v in gen.retry_after_seen),
          "503 answers without a positive Retry-After: %r", gen.retry_after_seen[:5])
    time.sleep(2.0)  # still full: only 503s now
    t_back = time.monotonic()
    check_eq(gen.answers_between(t_back - 1.5, t_back).get(200, 0), 0,
             "200 answers while the spool was full")
    q.stages["verifier"].start()
    check(q.wait_stage_up("verifier"), "verifier did not come back")
    gen.join(120)
    check(gen.exc is None, "load generator failed: %r", gen.exc)
    after = gen.answers_between(t_back, time.monotonic())
    print("  after the verifier returned: %r; all answers %r" % (after, gen.statuses))
    check(after.get(200, 0) > 0, "no 200 after the verifier came back: %r", after)
    check_eq(gen.n_acked, len(w.items), "requests acked in the end (retries included)")
    ok, drain_s, doc = chaos.wait_drained(q, 60)
    check(ok, "the spool did not drain: %r", doc)
    time.sleep(1.0)
    t = chaos.tally(q, w, gen)
    print("  " + chaos.summary(t))
    probs = chaos.problems(t)
    check(not probs, "exactly once broken:\n    %s", "\n    ".join(probs))


if __name__ == "__main__":
    harness.run([test_outage_under_load, test_health_while_down, test_outage_exactly_once,
                 test_health_ok_after_outage, test_spool_full_503], setup=setup)
