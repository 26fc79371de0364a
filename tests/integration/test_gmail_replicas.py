"""Two enricher replicas (what `compose up --scale enricher=2` runs): the verifier spreads
the pushes of one mailbox over both, round robin. Each e-mail must still be stored exactly
once and every push must get exactly one webhook_events row, whichever replica (holding
the mailbox's PostgreSQL advisory lock) handles it, and every checkpoint must end at the
mailbox's last history id. A replica killed with SIGKILL mid-stream loses nothing: the
ingress sends its pushes again."""

import base64
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402

MAILBOXES = ["team-%d@example.com" % i for i in range(4)]


def push_body(address, history_id):
    data = base64.b64encode(json.dumps({"emailAddress": address,
                                        "historyId": str(history_id)}).encode())
    return json.dumps({"message": {"data": data.decode(), "messageId": str(time.time_ns())},
                       "subscription": "projects/p/subscriptions/s"}).encode()


def setup(ctx):
    fake = fake_google.FakeGoogle(harness.FIXTURES_DIR, latency_ms=20).start()
    ctx.state["fake"] = fake
    a, b, m2 = harness.free_ports(3)
    p = ctx.pipeline(GOOGLE_TOKEN_URL=fake.url + "/token", GMAIL_API_BASE_URL=fake.url,
                     ENRICHER_HTTP_BACKOFF_MS="50",
                     ENRICHER_PULL_ENDPOINT="@tcp://127.0.0.1:%d" % a,
                     VERIFIER_PUSH_ENDPOINT=">tcp://127.0.0.1:%d,tcp://127.0.0.1:%d" % (a, b))
    ctx.state["p"] = p
    env = dict(p.env["enricher"])
    env["ENRICHER_PULL_ENDPOINT"] = "@tcp://127.0.0.1:%d" % b
    env["METRICS_LISTEN"] = "127.0.0.1:%d" % m2
    second = harness.StageProcess("enricher2", harness.BINARIES["enricher"], env,
                                  os.path.join(p.tmp, "enricher2.log"))
    second.start()
    p.stages["enricher2"] = second  # stopped, and its log searched, with the others
    ctx.state["second"] = second
    check(harness.wait_until(lambda: harness.http_request(m2, "GET", "/metrics", timeout=2)
                             .status == 200, 10), "second enricher did not start")
    for m in MAILBOXES:
        fake.generate_mailbox(m, 0)
    p.query("INSERT INTO mailboxes (email, refresh_token, history_id) SELECT m, 'rt-' || m, "
            "1000 FROM unnest(%s::text[]) m", (MAILBOXES,))


def burst(ctx, n_rounds, kill_second_at=None):
    """n_rounds of: one new message per mailbox, then one push per mailbox (as Gmail
    sends them), from 4 threads. Returns (ids delivered, pushes posted, first event id)."""
    p, fake = ctx.state["p"], ctx.state["fake"]
    before = p.max_event_id()
    delivered, errors = [], []
    lock = threading.Lock()

    def worker(mailbox):
        for r in range(n_rounds):
            ids = fake.deliver(mailbox, 1)
            with lock:
                delivered.extend(ids)
            try:
                resp = p.post(harness.GMAIL_PATH + "?token=" + harness.GMAIL_PUSH_TOKEN,
                              push_body(mailbox, 2000 + r))
                if resp.status != 200:
                    errors.append(resp.status)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            if kill_second_at is not None and r == kill_second_at and mailbox == MAILBOXES[0]:
                ctx.state["second"].kill(signal.SIGKILL)
            time.sleep(0.005)

    threads = [threading.Thread(target=worker, args=(m,)) for m in MAILBOXES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "posts failed: %r", errors[:5])
    return delivered, n_rounds * len(MAILBOXES), before


def check_stored(ctx, delivered, pushes, before, timeout=40):
    p = ctx.state["p"]
    rows = p.wait_new_events(before, pushes, timeout=timeout)
    check_eq(len(rows), pushes, "one webhook_events row per push")
    outcomes = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    check(set(outcomes) <= {"stored", "ignored", "duplicate"}, "outcomes %r", outcomes)
    got = harness.wait_until(lambda: p.count("communications", "external_id = ANY(%s)",
                                             (delivered,)) == len(delivered), 10)
    check(got, "stored %d of %d e-mails", p.count("communications", "external_id = ANY(%s)",
                                                  (delivered,)), len(delivered))
    dup = p.scalar("SELECT count(*) FROM (SELECT 1 FROM communications GROUP BY provider, "
                   "channel, external_id HAVING count(*) > 1) d")
    check_eq(dup, 0, "e-mails stored twice")
    return outcomes


def test_two_replicas_store_each_mail_once(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    delivered, pushes, before = burst(ctx, 15)
    outcomes = check_stored(ctx, delivered, pushes, before)
    # Both replicas worked (round robin), and neither logged a failure.
    logs = {}
    for name in ("enricher", "enricher2"):
        with open(p.stages[name].logpath, "rb") as f:
            logs[name] = f.read()
        check(b"e-mails, checkpoint" in logs[name], "%s did no Gmail job", name)
    for m in MAILBOXES:
        check_eq(p.scalar("SELECT history_id FROM mailboxes WHERE email = %s", (m,)),
                 fake.mailboxes[m].history_id, "checkpoint of %s" % m)
    print("  outcomes: %r" % outcomes)


def test_replica_killed_mid_stream_loses_nothing(ctx):
    delivered, pushes, before = burst(ctx, 10, kill_second_at=3)
    check_stored(ctx, delivered, pushes, before, timeout=60)
    # A restarted replica stops cleanly on SIGTERM.
    second = ctx.state["second"]
    second.start()
    time.sleep(0.5)
    check_eq(second.stop(), 0, "exit status of the second enricher after SIGTERM")


if __name__ == "__main__":
    harness.run([
        test_two_replicas_store_each_mail_once,
        test_replica_killed_mid_stream_loses_nothing,
    ], setup=setup)
