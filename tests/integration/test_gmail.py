"""The Gmail path end to end: a Pub/Sub push with a Google OIDC JWT -> ingress -> verifier
(RS256 against the fixture JWKS) -> enricher (OAuth token, history.list, messages.get from
tests/fakes/fake_google.py) -> writer (one row per e-mail, matched, checkpoint advanced) ->
PostgreSQL + NOTIFY.

The tests run in order against one pipeline and one fake Google and build on each other:
the fixture mailbox support@example.com starts at checkpoint 1843500 (the fixtures' watch
response), so the first push brings the four fixture e-mails; later tests deliver new
synthetic mail to the fake and break it in various ways."""

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402

AUDIENCE = "https://hooks.example.com/api/webhooks/gmail/push"
SERVICE_ACCOUNT = "gmail-push@example-project.iam.gserviceaccount.com"
MINT = harness.fixture_path("google", "mint-jwt.sh")
MAILBOX = "support@example.com"
REFRESH_TOKEN = "1//rt-support-itest-Zq8Lm3Xv"
REVOKED_MAILBOX = "Revoked.Box@Example.com"
REVOKED_TOKEN = "1//rt-revoked-itest-Pw4Nc7Hd"
PUSH = harness.fixture_bytes("gmail", "pubsub-push.json")
PUSH_NUMERIC = harness.fixture_bytes("gmail", "pubsub-push-numeric-historyid.json")

# The fixture e-mails in history order, and who each one matches.
FIXTURE_IDS = ["19a6f3c2b1d04e01", "19a6f4aa01b2c3d4", "19a6f4d8e2a17c3b", "19a6f5b0c9e3d214"]


def mint(*args):
    """A fresh JWT (the pre-minted fixture tokens are for a fixed 'now' in 2026)."""
    out = subprocess.run(["bash", MINT, "--now", str(int(time.time()))] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip()


def push_body(address, history_id, url_safe=False, numeric=False):
    data = json.dumps({"emailAddress": address,
                       "historyId": history_id if numeric else str(history_id)}).encode()
    enc = base64.urlsafe_b64encode(data) if url_safe else base64.b64encode(data)
    if url_safe:
        enc = enc.rstrip(b"=")
    return json.dumps({"message": {"data": enc.decode(), "messageId": str(time.time_ns()),
                                   "publishTime": "2026-11-24T15:21:07.846Z"},
                       "subscription": "projects/example-project/subscriptions/x"}).encode()


def setup(ctx):
    fake = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id="itest-client",
                                  client_secret="itest-client-secret").start()
    ctx.state["fake"] = fake
    p = ctx.pipeline(seed_customers=False,
                     GMAIL_PUSH_AUDIENCE=AUDIENCE,
                     GMAIL_PUSH_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
                     GOOGLE_JWKS_FILE=harness.fixture_path("google", "test-jwks.json"),
                     GOOGLE_TOKEN_URL=fake.url + "/token",
                     GMAIL_API_BASE_URL=fake.url,
                     GOOGLE_CLIENT_ID="itest-client",
                     GOOGLE_CLIENT_SECRET="itest-client-secret",
                     ENRICHER_HTTP_BACKOFF_MS="50",
                     ENRICHER_HTTP_ATTEMPTS="3")
    ctx.state["p"] = p
    # Customers the way a CRM writes them: display names, any case.
    ids = {}
    ids["maria"] = p.add_customer("Maria Lopez", "(415) 555-0134",
                                  "Maria Lopez <Maria.Lopez@Example.com>")
    ids["dana"] = p.add_customer("Dana Whitfield", None, "Dana Whitfield <DANA.WHITFIELD@example.com>")
    ids["sam"] = p.add_customer("Sam O'Neil", None, "\"O'Neil, Sam\" <Billing@Example.NET>")
    ids["maria_later"] = p.add_customer("Maria again", None, "maria.lopez@example.com")
    ctx.state["cust"] = ids
    p.query("INSERT INTO mailboxes (email, refresh_token, history_id) VALUES (%s, %s, %s), "
            "(%s, %s, %s)", (MAILBOX, REFRESH_TOKEN, 1843500,
                             REVOKED_MAILBOX, REVOKED_TOKEN, 500))
    fake.control({"revoke": REVOKED_TOKEN})
    ctx.state["jwt"] = mint()
    ctx.state["listener"] = harness.Listener(ctx.pg)


def post_push(ctx, body, jwt=None, query=""):
    p = ctx.state["p"]
    before = p.max_event_id()
    r = p.post(harness.GMAIL_PATH + query, body,
               {"Authorization": "Bearer " + (jwt or ctx.state["jwt"])})
    check_eq(r.status, 200, "HTTP status of the push")
    rows = p.wait_new_events(before, 1, timeout=20)
    check(len(rows) == 1, "expected one new webhook_events row, got %d", len(rows))
    return rows[0]


def checkpoint(p, address=MAILBOX):
    return p.scalar("SELECT history_id FROM mailboxes WHERE lower(email) = lower(%s)", (address,))


def test_push_stores_fixture_emails(ctx):
    p, fake, cust = ctx.state["p"], ctx.state["fake"], ctx.state["cust"]
    t0 = time.monotonic()
    ev = post_push(ctx, PUSH)
    elapsed = time.monotonic() - t0
    check_eq(ev["outcome"], "stored", "outcome")
    check_eq(ev["source"], "gmail_push", "source")
    check(ev["reason"] is None, "reason %r", ev["reason"])
    rows = {r["external_id"]: r for r in p.dict_rows(
        "SELECT * FROM communications WHERE provider = 'gmail' ORDER BY id")}
    check_eq(sorted(rows), sorted(FIXTURE_IDS), "stored Gmail message ids")
    first = rows[FIXTURE_IDS[0]]
    check_eq(ev["communication_id"], first["id"], "communication_id = the first e-mail's")
    check_eq(first["channel"], "email", "channel")
    check_eq(first["direction"], "inbound", "direction of Maria's mail")
    check_eq(first["subject"], "Where is order #48213?", "subject")
    check_eq(first["from_address"], "maria.lopez@example.com", "from_address")
    check_eq(first["to_address"], "support@example.com", "to_address")
    check_eq(first["thread_id"], "19a6f3c2b1d04e01", "thread_id")
    check("order #48213" in first["body"], "body: %r", first["body"][:200])
    check_eq(first["occurred_at"],
             datetime.datetime.fromtimestamp(1795532467, datetime.timezone.utc), "occurred_at")
    # Lowest id wins: Maria (stored as "Maria Lopez <Maria.Lopez@Example.com>").
    check_eq(first["customer_id"], cust["maria"], "customer of Maria's mail")
    sent = rows["19a6f4aa01b2c3d4"]
    check_eq(sent["direction"], "outbound", "direction of the SENT reply")
    check_eq(sent["from_address"], "support@example.com", "from of the reply")
    check_eq(sent["to_address"], "maria.lopez@example.com", "to of the reply")
    check_eq(sent["customer_id"], cust["maria"], "outbound matches the recipient")
    dana = rows["19a6f4d8e2a17c3b"]
    check_eq(dana["customer_id"], cust["dana"], "Dana matched")
    check_eq(dana["thread_id"], "19a6f1e7c0b9a852", "Dana's thread")
    check("é" in dana["body"] or "—" in dana["body"], "UTF-8 body: %r", dana["body"][:200])
    inv = rows["19a6f5b0c9e3d214"]
    check_eq(inv["customer_id"], cust["sam"], "billing@example.net matched")
    check_eq(checkpoint(p), 1843562, "checkpoint advanced to the last page's historyId")
    stats = fake.snapshot()["counts"]
    check_eq(stats.get("history"), 2, "history.list pages read")
    check_eq(stats.get("message"), 4, "messages.get calls")
    check_eq(stats.get("token"), 1, "token requests")
    check(elapsed < 5, "stored after %.2fs", elapsed)
    lst = ctx.state["listener"]
    for ext in FIXTURE_IDS:
        cid = rows[ext]["id"]
        got = lst.wait_for(lambda x, cid=cid: isinstance(x, dict) and x.get("id") == cid, 5)
        check(got is not None, "no NOTIFY for %s; got %r", ext, lst.received)
        check_eq(got.get("channel"), "email", "NOTIFY channel")
        check_eq(got.get("customer_id"), rows[ext]["customer_id"], "NOTIFY customer_id")


def test_same_push_again_adds_nothing(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    before = fake.snapshot()["counts"]
    n = p.count("communications")
    ev = post_push(ctx, PUSH)
    check_eq(ev["outcome"], "ignored", "outcome of the repeated push")
    check_eq(ev["reason"], "no_new_messages", "reason")
    check_eq(p.count("communications"), n, "communications after the repeat")
    after = fake.snapshot()["counts"]
    # Still checks for new history (pushes get lost and reordered), but cheaply.
    check_eq(after.get("history", 0) - before.get("history", 0), 1, "history.list calls")
    check_eq(after.get("message", 0), before.get("message", 0), "messages.get calls")
    check_eq(after.get("token", 0), before.get("token", 0), "token cached")
    check_eq(checkpoint(p), 1843562, "checkpoint unchanged")


def test_numeric_history_id_and_base64url_data(ctx):
    p = ctx.state["p"]
    ev = post_push(ctx, PUSH_NUMERIC)
    check_eq(ev["outcome"], "ignored", "numeric historyId push")
    check_eq(ev["reason"], "no_new_messages", "numeric historyId push reason")
    ev = post_push(ctx, push_body(MAILBOX, 1843562, url_safe=True, numeric=True))
    check_eq(ev["reason"], "no_new_messages", "base64url data push")
    ev = post_push(ctx, push_body("x", 1))
    check_eq((ev["outcome"], ev["reason"]), ("rejected", "malformed_push"), "bad data")
    check_eq(p.count("communications"), 4, "communications")


def test_new_mail_is_stored_once(ctx):
    p, fake, cust = ctx.state["p"], ctx.state["fake"], ctx.state["cust"]
    ids = fake.deliver(MAILBOX, 2, sender="Maria Lopez <MARIA.LOPEZ@example.com>")
    ev = post_push(ctx, push_body(MAILBOX, 1843600))
    check_eq(ev["outcome"], "stored", "outcome")
    rows = p.dict_rows("SELECT external_id, customer_id, direction FROM communications "
                       "WHERE external_id = ANY(%s) ORDER BY id", (ids,))
    check_eq([r["external_id"] for r in rows], ids, "new e-mails")
    check(all(r["customer_id"] == cust["maria"] for r in rows), "matched: %r", rows)
    check_eq(checkpoint(p), fake.mailboxes[MAILBOX].history_id, "checkpoint")


def test_forged_token_rejected(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    before = fake.snapshot()["counts"].get("total", 0)
    n = p.count("communications")
    for args in (["--wrong-key"], ["--aud", "https://evil.example.net/"],
                 ["--exp-offset", "-3600"]):
        ev = post_push(ctx, PUSH, jwt=mint(*args))
        check_eq(ev["outcome"], "rejected", "outcome with %s" % args)
        check(ev["communication_id"] is None, "no communication")
    check_eq(p.count("communications"), n, "communications")
    check_eq(fake.snapshot()["counts"].get("total", 0), before, "no fetch for a rejected push")


def test_unknown_mailbox_ignored(ctx):
    p = ctx.state["p"]
    ev = post_push(ctx, push_body("nobody@example.com", 99))
    check_eq((ev["outcome"], ev["reason"]), ("ignored", "unknown_mailbox"), "unknown mailbox")
    check_eq(p.count("mailboxes", "email = 'nobody@example.com'"), 0, "no mailbox created")


def test_500_then_200_stored_after_retry(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    ids = fake.deliver(MAILBOX, 3)
    before = fake.snapshot()["counts"]
    fake.control({"fail": [{"kind": "history", "status": 500, "times": 1},
                           {"kind": "message", "status": 503, "times": 2},
                           {"kind": "message", "status": 429, "times": 1}]})
    ev = post_push(ctx, push_body(MAILBOX, 1843700))
    check_eq(ev["outcome"], "stored", "outcome after retries")
    check_eq(p.count("communications", "external_id = ANY(%s)", (ids,)), 3, "stored")
    after = fake.snapshot()["counts"]
    check_eq(after.get("message", 0) - before.get("message", 0), 6, "messages.get incl. retries")
    # Three records at two per page: two pages, plus the retry of the first.
    check_eq(after.get("history", 0) - before.get("history", 0), 3, "history.list incl. retry")


def test_persistent_failure_is_redelivered(ctx):
    """More failures than the enricher's attempts: the push is dropped unforwarded, the
    ingress sends it again, and the second delivery stores the mail (one row per push)."""
    p, fake = ctx.state["p"], ctx.state["fake"]
    ids = fake.deliver(MAILBOX, 1)
    fake.control({"fail": [{"kind": "message", "status": 500, "times": 3}]})
    before = p.max_event_id()
    r = p.post(harness.GMAIL_PATH, push_body(MAILBOX, 1843800),
               {"Authorization": "Bearer " + ctx.state["jwt"]})
    check_eq(r.status, 200, "HTTP status")
    rows = p.wait_new_events(before, 1, timeout=30)
    check_eq(len(rows), 1, "webhook_events rows for the push")
    check_eq(rows[0]["outcome"], "stored", "outcome after redelivery")
    check_eq(p.count("communications", "external_id = ANY(%s)", (ids,)), 1, "stored once")
    time.sleep(0.5)
    check_eq(p.count("webhook_events", "id > %s", (before,)), 1, "still one row")


def test_history_404_falls_back_to_full_sync(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    ids = fake.deliver(MAILBOX, 2)
    fake.control({"expire_history": MAILBOX})
    before = fake.snapshot()["counts"]
    ev = post_push(ctx, push_body(MAILBOX, 1843900))
    check_eq(ev["outcome"], "stored", "outcome of the full sync")
    check_eq(ev["reason"], "full_sync", "the fallback is recorded")
    check_eq(p.count("communications", "external_id = ANY(%s)", (ids,)), 2, "new mail stored")
    after = fake.snapshot()["counts"]
    check_eq(after.get("profile", 0) - before.get("profile", 0), 1, "getProfile calls")
    check_eq(after.get("list", 0) - before.get("list", 0), 1, "messages.list calls")
    check_eq(checkpoint(p), fake.mailboxes[MAILBOX].history_id, "checkpoint from the profile")
    # Old mail listed again is a duplicate, not a second row.
    check_eq(p.count("communications", "external_id = %s", (FIXTURE_IDS[0],)), 1, "no copy")
    fake.mailboxes[MAILBOX].min_history = 0


def test_expired_access_token_is_renewed(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    ids = fake.deliver(MAILBOX, 1)
    fake.control({"expire_tokens": True})
    tokens = fake.snapshot()["counts"].get("token", 0)
    ev = post_push(ctx, push_body(MAILBOX, 1844000))
    check_eq(ev["outcome"], "stored", "outcome after a 401")
    check_eq(p.count("communications", "external_id = ANY(%s)", (ids,)), 1, "stored")
    check_eq(fake.snapshot()["counts"].get("token", 0) - tokens, 1, "one new token")
    # A 401 in the middle of the message fetches: a new token, then those messages again.
    ids = fake.deliver(MAILBOX, 3)
    fake.control({"fail": [{"kind": "message", "status": 401, "times": 2}]})
    before = fake.snapshot()["counts"]
    ev = post_push(ctx, push_body(MAILBOX, 1844100))
    check_eq(ev["outcome"], "stored", "outcome after a 401 on messages.get")
    check_eq(p.count("communications", "external_id = ANY(%s)", (ids,)), 3, "stored")
    after = fake.snapshot()["counts"]
    check_eq(after.get("token", 0) - before.get("token", 0), 1, "one new token for the gets")
    check_eq(after.get("message", 0) - before.get("message", 0), 5, "3 gets + 2 again")


def test_revoked_refresh_token(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    tokens = fake.snapshot()["counts"].get("token", 0)
    ev = post_push(ctx, push_body("revoked.box@example.com", 600))
    check_eq((ev["outcome"], ev["reason"]), ("failed", "mailbox_reauth_required"), "outcome")
    check_eq(p.scalar("SELECT status FROM mailboxes WHERE email = %s", (REVOKED_MAILBOX,)),
             "reauth_required", "mailbox marked")
    ev = post_push(ctx, push_body("revoked.box@example.com", 601))
    check_eq(ev["reason"], "mailbox_reauth_required", "second push")
    check_eq(fake.snapshot()["counts"].get("token", 0) - tokens, 1,
             "invalid_grant is not retried hot")


def test_concurrent_pushes_store_each_mail_once(ctx):
    """A burst of pushes for one mailbox while mail arrives: every push gets exactly one
    row, every e-mail exactly one communication, nothing fails."""
    p, fake = ctx.state["p"], ctx.state["fake"]
    fake.control({"latency_ms": 30})
    before = p.max_event_id()
    delivered = []
    errors = []

    def post(i):
        try:
            r = p.post(harness.GMAIL_PATH, push_body(MAILBOX, 1845000 + i),
                       {"Authorization": "Bearer " + ctx.state["jwt"]})
            if r.status != 200:
                errors.append(r.status)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = []
    for i in range(12):
        delivered += fake.deliver(MAILBOX, 1)
        t = threading.Thread(target=post, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.02)
    for t in threads:
        t.join()
    fake.control({"latency_ms": 0})
    check(not errors, "posts failed: %r", errors)
    rows = p.wait_new_events(before, 12, timeout=30)
    check_eq(len(rows), 12, "one webhook_events row per push")
    outcomes = sorted(r["outcome"] for r in rows)
    check("failed" not in outcomes and "rejected" not in outcomes, "outcomes %r", outcomes)
    n = p.count("communications", "external_id = ANY(%s)", (delivered,))
    check_eq(n, len(delivered), "every e-mail once")
    dup = p.scalar("SELECT count(*) FROM (SELECT external_id FROM communications "
                   "GROUP BY provider, channel, external_id HAVING count(*) > 1) d")
    check_eq(dup, 0, "no e-mail twice")


def test_no_tokens_in_logs(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    secrets = [REFRESH_TOKEN, REVOKED_TOKEN, "itest-client-secret"] + list(fake.tokens)
    found = []
    for path in p.log_paths():
        with open(path, "rb") as f:
            data = f.read()
        for s in secrets:
            if s.encode() in data:
                found.append("%s in %s" % (s[:12], os.path.basename(path)))
    check(not found, "secrets in logs: %s", found)
    h = p.scalar("SELECT string_agg(headers::text, ' ') FROM webhook_events "
                 "WHERE source = 'gmail_push'")
    check(ctx.state["jwt"] not in h, "the JWT was stored in headers")


if __name__ == "__main__":
    harness.run([
        test_push_stores_fixture_emails,
        test_same_push_again_adds_nothing,
        test_numeric_history_id_and_base64url_data,
        test_new_mail_is_stored_once,
        test_forged_token_rejected,
        test_unknown_mailbox_ignored,
        test_500_then_200_stored_after_retry,
        test_persistent_failure_is_redelivered,
        test_history_404_falls_back_to_full_sync,
        test_expired_access_token_is_renewed,
        test_revoked_refresh_token,
        test_concurrent_pushes_store_each_mail_once,
        test_no_tokens_in_logs,
    ], setup=setup)
