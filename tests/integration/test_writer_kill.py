"""kill -9 of the writer under load (SPEC "What is stored": every acknowledged request ends
as exactly one webhook_events row, whatever happens to any process in between).

1,000 unique SMS from 4 client threads; after about 300 answers the writer gets SIGKILL and
is restarted a second later. Every request answered 200 must end as exactly one
webhook_events row and one communication; nothing lost, nothing twice."""

import http.client
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

TOTAL = 1000
THREADS = 4
KILL_AFTER = 300
PHONE_FORMATS = ["+1 (415) 555-%04d", "(415) 555-%04d", "415.555.%04d", "1415555%04d",
                 "+1415555%04d"]


def setup(ctx):
    ctx.state["p"] = ctx.pipeline(REDELIVER_AFTER_MS="1500", REDELIVER_MAX_MS="3000")


def make_bodies():
    run_tag = "%06d" % random.randint(0, 999999)
    bodies = []
    for i in range(TOTAL):
        mid = "7%s%06d" % (run_tag, i)  # unique per request, like peers/sms.lua
        phone = PHONE_FORMATS[i % len(PHONE_FORMATS)] % (i % 10000)
        bodies.append((mid, harness.sms_body(mid, from_phone=phone,
                                             text="load message %d" % i,
                                             conversation_id="77%d" % (i % 50))))
    return bodies


def test_post_1000_killing_the_writer(ctx):
    p = ctx.state["p"]
    bodies = make_bodies()
    ctx.state["bodies"] = bodies
    results = {}  # mid -> status (0 = no answer)
    lock = threading.Lock()
    acked = [0]
    kill_now = threading.Event()
    done = threading.Event()
    chaos = {}

    def client(k):
        conn = None
        for idx in range(k, TOTAL, THREADS):
            mid, body = bodies[idx]
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", p.http_port, timeout=15)
                conn.request("POST", harness.SMS_PATH, body=body, headers={
                    "Content-Type": "application/json",
                    "Verification-Token": harness.VERIFICATION_TOKEN})
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                status = 0
                with lock:
                    chaos.setdefault("client_errors", []).append("%s: %r" % (mid, e))
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                results[mid] = status
                if status == 200:
                    acked[0] += 1
                    if acked[0] == KILL_AFTER:
                        kill_now.set()
        if conn is not None:
            conn.close()

    def killer():
        if not kill_now.wait(120) or chaos.get("abort"):
            return
        p.kill("writer", signal.SIGKILL)
        with lock:
            chaos["acked_at_kill"] = acked[0]
        chaos["events_at_kill"] = p.count("webhook_events")
        chaos["writer_rc"] = p.stages["writer"].proc.returncode
        time.sleep(1.0)
        with lock:
            chaos["acked_at_restart"] = acked[0]
        p.restart("writer", wait=True)
        chaos["restarted"] = True
        done.set()

    t0 = time.monotonic()
    kt = threading.Thread(target=killer, daemon=True)
    kt.start()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    post_secs = time.monotonic() - t0
    if not kill_now.is_set():  # fewer than KILL_AFTER answers: the killer gives up
        chaos["abort"] = True
        kill_now.set()
    kt.join(60)
    ctx.state["results"] = results
    ctx.state["chaos"] = chaos
    n_ok = sum(1 for s in results.values() if s == 200)
    print("  posted %d in %.2fs: %d answered 200; writer killed at %s acks (%s events in db, "
          "rc %s), restarted at %s acks" % (
              len(results), post_secs, n_ok, chaos.get("acked_at_kill"),
              chaos.get("events_at_kill"), chaos.get("writer_rc"),
              chaos.get("acked_at_restart")))
    check(chaos.get("restarted"), "the writer was not killed and restarted: %r", chaos)
    check_eq(chaos.get("writer_rc"), -signal.SIGKILL, "writer exit status (killed by -9)")
    others = sorted(set(s for s in results.values() if s != 200))
    check_eq(n_ok, TOTAL, "requests answered 200 (others: %r, errors: %r)" % (
        others, chaos.get("client_errors", [])[:5]))


def _tally(ctx, timeout=60):
    """Wait until every acked message has a webhook_events row (or timeout), then a little
    longer so that late redeliveries that wrongly add rows are seen too."""
    p = ctx.state["p"]
    acked_ids = set(m for m, s in ctx.state["results"].items() if s == 200)
    t0 = time.monotonic()
    n = p.wait_count("webhook_events", len(acked_ids), timeout=timeout)
    wait_secs = time.monotonic() - t0
    time.sleep(2 * 1.5 + 0.5)  # two redelivery periods: spurious resends would show now
    ev = p.query("SELECT convert_from(body, 'UTF8')::json->'body'->>'id' AS mid, count(*), "
                 "array_agg(outcome ORDER BY id) FROM webhook_events GROUP BY 1")
    cm = p.query("SELECT external_id, count(*) FROM communications WHERE provider = "
                 "'ringcentral' AND channel = 'sms' GROUP BY 1")
    events = {r[0]: (r[1], r[2]) for r in ev}
    comms = {str(r[0]): r[1] for r in cm}
    lost = sorted(m for m in acked_ids if m not in events)
    dup_events = sorted(m for m, (c, _o) in events.items() if c > 1)
    not_stored = sorted(m for m, (c, o) in events.items() if m in acked_ids and "stored" not in o)
    no_comm = sorted(m for m in acked_ids if comms.get(m, 0) == 0)
    dup_comms = sorted(m for m, c in comms.items() if c > 1)
    t = {"acked": len(acked_ids), "events": sum(c for c, _o in events.values()),
         "stored": sum(1 for m in acked_ids if m in comms), "lost": lost,
         "dup_events": dup_events, "not_stored": not_stored, "no_comm": no_comm,
         "dup_comms": dup_comms, "wait_secs": wait_secs, "count_after_wait": n,
         "communications": sum(comms.values()), "distinct_external_ids": len(comms)}
    print("  acked=%d stored=%d lost=%d duplicated=%d (webhook_events rows=%d, duplicate "
          "communications=%d, caught up in %.1fs)" % (
              t["acked"], t["stored"], len(lost), len(dup_events), t["events"],
              len(dup_comms), wait_secs))
    ctx.state["tally"] = t
    return t


def test_every_ack_has_exactly_one_event(ctx):
    t = ctx.state.get("tally") or _tally(ctx)
    check(not t["lost"], "%d acked requests have no webhook_events row, e.g. %r",
          len(t["lost"]), t["lost"][:5])
    check(not t["dup_events"], "%d messages have several webhook_events rows, e.g. %r",
          len(t["dup_events"]), t["dup_events"][:5])
    check_eq(t["events"], t["acked"], "webhook_events rows vs acked requests")


def test_every_ack_stored_once(ctx):
    t = ctx.state.get("tally") or _tally(ctx)
    check(not t["not_stored"], "%d messages never got outcome 'stored', e.g. %r",
          len(t["not_stored"]), t["not_stored"][:5])
    check(not t["no_comm"], "%d acked messages have no communication, e.g. %r",
          len(t["no_comm"]), t["no_comm"][:5])
    check(not t["dup_comms"], "%d external ids stored twice, e.g. %r", len(t["dup_comms"]),
          t["dup_comms"][:5])
    check_eq(t["communications"], t["acked"], "communications vs acked")
    check_eq(t["distinct_external_ids"], t["acked"], "distinct external ids vs acked")


def test_matching_survived(ctx):
    # Message 134 came from Maria's number in some human format.
    p = ctx.state["p"]
    mid = ctx.state["bodies"][134][0]
    got = p.scalar("SELECT customer_id FROM communications WHERE external_id = %s", (mid,))
    check_eq(got, p.maria_id, "customer_id of the message from 555-0134")
    other = p.scalar("SELECT count(*) FROM communications WHERE customer_id IS NOT NULL "
                     "AND external_id LIKE %s", (mid[:7] + "%",))
    check_eq(other, 1, "load messages matched to a customer")


def test_spool_drained(ctx):
    p = ctx.state["p"]
    got = {}

    def drained():
        got["h"] = p.health()
        doc = got["h"][1] or {}
        return doc.get("spool", {}).get("depth") == 0

    ok = harness.wait_until(drained, 20, interval=0.25)
    check(ok, "spool depth did not return to 0: %r", got.get("h"))


def test_monitors_saw_the_writer_go_and_come_back(ctx):
    # sb_zmonitor: the writer's kill -9 is a disconnect for the sockets that talk to it
    # (the enricher's push, the ingress's acks), and its restart a new connection; the
    # peer gauges are back where they were (monitors drain at least once a second).
    p = ctx.state["p"]
    em, hp = p.ports["enricher_metrics"], p.http_port
    want = [(em, 'socket="push",event="disconnected"', 1),
            (em, 'socket="push",event="connected"', 2),
            (hp, 'socket="acks",event="disconnected"', 1),
            (hp, 'socket="acks",event="accepted"', 4)]
    got = {}

    def seen():
        for port, labels, _n in want:
            got[labels + str(port)] = harness.metric_sample(port, "sb_zmq_events_total", labels)
        got["enricher push peers"] = harness.metric_sample(em, "sb_zmq_peers", 'socket="push"')
        got["ingress acks peers"] = harness.metric_sample(hp, "sb_zmq_peers", 'socket="acks"')
        return all((got[l + str(port)] or 0) >= n for port, l, n in want) and \
            got["enricher push peers"] == 1 and got["ingress acks peers"] == 3

    check(harness.wait_until(seen, 5), "monitor metrics after the writer's restart: %r", got)
    with open(p.stages["enricher"].logpath, encoding="utf-8", errors="replace") as f:
        log = f.read()
    line = "zmq push: peer disconnected from tcp://127.0.0.1:%d" % p.ports["writer_pull"]
    check(line in log, "no %r in the enricher's log", line)


if __name__ == "__main__":
    harness.run([
        test_post_1000_killing_the_writer,
        test_every_ack_has_exactly_one_event,
        test_every_ack_stored_once,
        test_matching_survived,
        test_spool_drained,
        test_monitors_saw_the_writer_go_and_come_back,
    ], setup=setup)
