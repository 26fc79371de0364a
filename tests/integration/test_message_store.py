"""Message-store SMS notifications end to end: HTTP -> ingress -> verifier -> enricher
(fetches each new message from the fake RingCentral, tests/fakes/fake_ringcentral.py) ->
writer (one row per SMS, exactly like an instant SMS) -> PostgreSQL.

The tests run in order against one pipeline and one fake and build on each other: the
fixture notification is fetched and stored first, later tests add messages to the fake
and break it in various ways (429 with Retry-After, a revoked token, 404, a 503 that
outlasts the retries so that the ingress must deliver the event again)."""

import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_ringcentral  # noqa: E402

UTC = datetime.timezone.utc
FIXTURE = harness.fixture_bytes("ringcentral", "sms-outbound-message-store.json")
FIXTURE_RECORD = json.loads(harness.fixture_bytes("ringcentral", "sms-send-response.json"))
HEADERS = {"Content-Type": "application/json; charset=UTF-8"}
MESSAGE_PATH = "/restapi/v1.0/account/401234567008/extension/401234569008/message-store/%s"


def setup(ctx):
    fake = fake_ringcentral.FakeRingCentral()
    ctx.state["fake"] = fake
    ctx.state["p"] = ctx.pipeline(
        RINGCENTRAL_SERVER_URL=fake.url,
        RINGCENTRAL_CLIENT_ID=fake_ringcentral.CLIENT_ID,
        RINGCENTRAL_CLIENT_SECRET=fake_ringcentral.CLIENT_SECRET,
        RINGCENTRAL_JWT=fake_ringcentral.JWT,
        ENRICHER_HTTP_BACKOFF_MS="100",
        ENRICHER_HTTP_ATTEMPTS="3",
        REDELIVER_AFTER_MS="1500", REDELIVER_MAX_MS="3000")
    ctx.state["next_id"] = 3062991519000


def post_sms(p, body):
    h = dict(HEADERS)
    h["Verification-Token"] = harness.VERIFICATION_TOKEN
    r = p.post(harness.SMS_PATH, body, h)
    check_eq(r.status, 200, "HTTP status")


def post_and_wait(p, body, timeout=15):
    before = p.max_event_id()
    post_sms(p, body)
    rows = p.wait_new_events(before, 1, timeout)
    check_eq(len(rows), 1, "webhook_events rows for one notification")
    return rows[0]


def new_message(ctx, **kw):
    """A new inbound SMS from Maria in the fake; returns its id (text)."""
    ctx.state["next_id"] += 1
    msg_id = str(ctx.state["next_id"])
    ctx.state["fake"].add_message(fake_ringcentral.sms_record(msg_id, **kw))
    return msg_id


def comm(p, msg_id):
    rows = p.dict_rows("SELECT * FROM communications WHERE provider = 'ringcentral'"
                       " AND channel = 'sms' AND external_id = %s", (msg_id,))
    check(len(rows) <= 1, "two rows for message %s", msg_id)
    return rows[0] if rows else None


def statuses(fake, path):
    return [s for (_m, pth, s) in fake.stats()["requests"] if pth == path]


def test_fixture_notification_is_fetched_and_stored(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    e = post_and_wait(p, FIXTURE)
    check_eq((e["outcome"], e["reason"]), ("stored", None), "outcome")
    check_eq(bytes(e["body"]), FIXTURE, "the raw notification is what webhook_events keeps")
    c = comm(p, "3062991514023")
    check(c is not None, "no communications row for the announced message")
    check_eq(e["communication_id"], c["id"], "communication_id")
    check_eq(c["direction"], "outbound", "direction")
    check_eq(c["body"], FIXTURE_RECORD["subject"], "body: the fetched text")
    check_eq(c["subject"], None, "subject")
    check_eq(c["thread_id"], "7876416245344257449", "thread_id (int64 > 2^53, exact)")
    check_eq(c["from_address"], "+16505550100", "from_address")
    check_eq(c["to_address"], "+14155550134", "to_address")
    check_eq(c["status"], "Queued", "status")
    check_eq(c["occurred_at"], datetime.datetime(2026, 11, 24, 15, 4, 51, tzinfo=UTC),
             "occurred_at = creationTime")
    check_eq(c["customer_id"], p.maria_id, "customer: outbound matches the recipient")
    st = fake.stats()
    check_eq((st["token"], st["message_store"]), (1, 1), "token and message-store requests")
    check_eq(statuses(fake, MESSAGE_PATH % "3062991514023"), [200],
             "fetched by the account and extension of the notification")


def test_same_notification_again_is_a_duplicate(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    e = post_and_wait(p, FIXTURE)
    check_eq(e["outcome"], "duplicate", "outcome of a provider retry")
    check_eq(p.count("communications", "external_id = '3062991514023'"), 1, "rows")
    check_eq(fake.stats()["token"], 1, "token requests: the token is cached")


def test_instant_sms_needs_no_fetch(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    before = fake.stats()
    body = harness.fixture_bytes("ringcentral", "sms-inbound.json")
    e = post_and_wait(p, body)
    check_eq(e["outcome"], "stored", "instant SMS outcome")
    c = comm(p, "3062991514017")
    check(c is not None and c["body"], "instant SMS not stored with its text")
    after = fake.stats()
    check_eq(len(after["requests"]), len(before["requests"]), "requests to RingCentral")


def test_several_ids_in_one_notification(ctx):
    p = ctx.state["p"]
    a = new_message(ctx, text="first of two")
    b = new_message(ctx, text="second of two", from_phone="312-555-0142")
    body = fake_ringcentral.message_store_notification([a, b, a])
    e = post_and_wait(p, body)
    check_eq(e["outcome"], "stored", "outcome")
    ca, cb = comm(p, a), comm(p, b)
    check(ca is not None and cb is not None, "both messages stored")
    check_eq((ca["body"], cb["body"]), ("first of two", "second of two"), "texts")
    check_eq(cb["from_address"], "+13125550142", "from_address in E.164")
    check_eq(e["communication_id"], ca["id"], "communication_id: the first row")
    check_eq(ca["customer_id"], p.maria_id, "inbound matches the sender")


def test_429_with_retry_after_then_200_is_stored(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    msg_id = new_message(ctx, text="after a 429")
    path = MESSAGE_PATH % msg_id
    fake.fail(path + "$", 429, times=1, retry_after="1")
    t = time.monotonic()
    e = post_and_wait(p, fake_ringcentral.message_store_notification([msg_id]))
    elapsed = time.monotonic() - t
    check_eq(e["outcome"], "stored", "outcome")
    check_eq(comm(p, msg_id)["body"], "after a 429", "text")
    check_eq(statuses(fake, path), [429, 200], "answers for the message")
    check(elapsed >= 0.9, "stored after %.2fs: Retry-After 1 s was not honoured", elapsed)


def test_401_refreshes_the_token_once(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    msg_id = new_message(ctx, text="after a revoked token")
    path = MESSAGE_PATH % msg_id
    before = fake.stats()["tokens_issued"]
    fake.revoke_tokens()
    e = post_and_wait(p, fake_ringcentral.message_store_notification([msg_id]))
    check_eq(e["outcome"], "stored", "outcome")
    check_eq(comm(p, msg_id)["body"], "after a revoked token", "text")
    check_eq(statuses(fake, path), [401, 200], "answers for the message")
    check_eq(fake.stats()["tokens_issued"] - before, 1, "new tokens")


def test_missing_message_is_ignored(ctx):
    p = ctx.state["p"]
    e = post_and_wait(p, fake_ringcentral.message_store_notification(["3062991599999"]))
    check_eq((e["outcome"], e["reason"]), ("ignored", "message_not_found"), "outcome")
    check_eq(e["communication_id"], None, "communication_id")
    check(comm(p, "3062991599999") is None, "a row for a message that does not exist")


def test_no_sms_in_the_changes_is_ignored(ctx):
    p = ctx.state["p"]
    doc = json.loads(fake_ringcentral.message_store_notification(["1"]))
    doc["body"]["changes"] = [{"type": "Fax", "newCount": 1, "newMessageIds": [5]},
                              {"type": "SMS", "newCount": 0, "updatedCount": 1}]
    e = post_and_wait(p, json.dumps(doc).encode())
    check_eq((e["outcome"], e["reason"]), ("ignored", "no_new_messages"), "outcome")


def test_persistent_failure_is_delivered_again(ctx):
    """A 503 that outlasts the enricher's tries drops the event; the ingress sends it
    again and the message is then stored, once."""
    p, fake = ctx.state["p"], ctx.state["fake"]
    msg_id = new_message(ctx, text="after an outage")
    path = MESSAGE_PATH % msg_id
    fake.fail(path + "$", 503, times=3)  # ENRICHER_HTTP_ATTEMPTS
    before = p.max_event_id()
    post_sms(p, fake_ringcentral.message_store_notification([msg_id]))
    rows = p.wait_new_events(before, 1, timeout=20)
    check_eq(len(rows), 1, "webhook_events rows")
    check_eq(rows[0]["outcome"], "stored", "outcome after redelivery")
    check_eq(comm(p, msg_id)["body"], "after an outage", "text")
    check_eq(statuses(fake, path), [503, 503, 503, 200], "answers for the message")
    time.sleep(0.5)
    check_eq(p.count("webhook_events", "id > %s", (before,)), 1, "rows after redelivery")


def test_latency_is_tolerated(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    msg_id = new_message(ctx, text="slow provider")
    fake.set_latency(400)
    try:
        e = post_and_wait(p, fake_ringcentral.message_store_notification([msg_id]))
    finally:
        fake.set_latency(0)
    check_eq(e["outcome"], "stored", "outcome")
    check_eq(comm(p, msg_id)["body"], "slow provider", "text")


def test_without_credentials_the_event_is_failed(ctx):
    """A second pipeline with no RingCentral credentials: the notification cannot be
    fetched and is stored as 'failed', its raw body kept."""
    q = ctx.pipeline(seed_customers=False, RINGCENTRAL_CLIENT_ID=None,
                     RINGCENTRAL_CLIENT_SECRET=None, RINGCENTRAL_JWT=None)
    body = fake_ringcentral.message_store_notification(["3062991588888"], uuid="no-creds")
    e = post_and_wait(q, body)
    check_eq((e["outcome"], e["reason"]), ("failed", "ringcentral_api_not_configured"),
             "outcome")
    check_eq(bytes(e["body"]), body, "raw body kept")
    q.stop()


def test_no_secret_in_logs_or_rows(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    secrets = [fake_ringcentral.CLIENT_SECRET, fake_ringcentral.JWT, "fake-at-"]
    for path in p.log_paths():
        with open(path, "rb") as f:
            data = f.read()
        for s in secrets:
            check(s.encode() not in data, "%r in %s", s, path)
    dump = p.pg.pg_dump()
    for s in secrets:
        check(s.encode() not in dump, "%r in the database", s)


if __name__ == "__main__":
    harness.run([test_fixture_notification_is_fetched_and_stored,
                 test_same_notification_again_is_a_duplicate,
                 test_instant_sms_needs_no_fetch,
                 test_several_ids_in_one_notification,
                 test_429_with_retry_after_then_200_is_stored,
                 test_401_refreshes_the_token_once,
                 test_missing_message_is_ignored,
                 test_no_sms_in_the_changes_is_ignored,
                 test_persistent_failure_is_delivered_again,
                 test_latency_is_tolerated,
                 test_without_credentials_the_event_is_failed,
                 test_no_secret_in_logs_or_rows],
                setup=setup)
