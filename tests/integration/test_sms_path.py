"""The SMS path end to end: HTTP -> ingress -> verifier -> writer -> PostgreSQL + NOTIFY.

The tests run in order against one pipeline (RINGCENTRAL_VERIFICATION_TOKEN and
RINGCENTRAL_WEBHOOK_SECRET both configured) and build on each other: the fixture SMS is
stored first, later posts of the same bytes are duplicates."""

import datetime
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

FIXTURE = harness.fixture_bytes("ringcentral", "sms-inbound.json")
FIXTURE_DOC = json.loads(FIXTURE)
HMAC_INFO = harness.fixture_kv("ringcentral", "hmac-signature.txt")
MESSAGE_STORE = harness.fixture_bytes("ringcentral", "sms-outbound-message-store.json")
WRONG_TOKEN = "vt-WRONG-itest-7hG3kP0qZ"
SECRETS = [harness.VERIFICATION_TOKEN, harness.WEBHOOK_SECRET, harness.GMAIL_PUSH_TOKEN,
           WRONG_TOKEN, HMAC_INFO["hex"], HMAC_INFO["base64"]]


def setup(ctx):
    check(harness.VERIFICATION_TOKEN and harness.WEBHOOK_SECRET, "fixture secrets missing")
    # The fixture's HMAC must be over the exact fixture bytes, or the HMAC tests mean nothing.
    mac = hmac.new(harness.WEBHOOK_SECRET.encode(), FIXTURE, hashlib.sha256).hexdigest()
    check_eq(mac, HMAC_INFO["hex"], "fixture HMAC")
    ctx.state["p"] = ctx.pipeline(RINGCENTRAL_WEBHOOK_SECRET=harness.WEBHOOK_SECRET)
    check(ctx.state["p"].maria_id is not None, "Maria not inserted")
    # Listen before anything is posted so the NOTIFY cannot be missed.
    ctx.state["listener"] = harness.Listener(ctx.pg)


def post_and_wait(p, body, headers, n=1, timeout=10):
    """POST to the SMS path, expect 200, return the new webhook_events rows."""
    before = p.max_event_id()
    h = {"Content-Type": "application/json; charset=UTF-8"}
    h.update(headers)
    r = p.post(harness.SMS_PATH, body, h)
    check_eq(r.status, 200, "HTTP status")
    rows = p.wait_new_events(before, n, timeout)
    check(len(rows) >= n, "expected %d new webhook_events row(s), got %d", n, len(rows))
    return rows


def comm_count(p):
    return p.count("communications")


def test_fixture_sms_stored(ctx):
    p = ctx.state["p"]
    t0 = time.monotonic()
    r = p.post(harness.SMS_PATH, FIXTURE, harness.sms_notification_headers())
    check_eq(r.status, 200, "HTTP status")
    n = p.wait_count("communications", 1, timeout=10)
    elapsed = time.monotonic() - t0
    check_eq(n, 1, "communications rows")
    rows = p.dict_rows("SELECT * FROM communications")
    c = rows[0]
    ctx.state["comm_id"] = c["id"]
    check_eq(c["channel"], "sms", "channel")
    check_eq(c["direction"], "inbound", "direction")
    check_eq(c["provider"], "ringcentral", "provider")
    check_eq(str(c["external_id"]), "3062991514017", "external_id")
    check_eq(str(c["thread_id"]), "7876416245344257449", "thread_id (int64 > 2^53, exact)")
    check_eq(c["from_address"], "+14155550134", "from_address")
    check_eq(c["to_address"], "+16505550100", "to_address")
    check_eq(c["body"], FIXTURE_DOC["body"]["subject"], "body")
    want_ts = datetime.datetime(2026, 11, 24, 15, 0, 12, 418000, tzinfo=datetime.timezone.utc)
    check_eq(c["occurred_at"], want_ts, "occurred_at")
    check_eq(c["customer_id"], p.maria_id, "customer_id (Maria, stored as '(415) 555-0134')")
    check(elapsed <= 2.0, "stored after %.2fs, want within 2 s", elapsed)


def test_fixture_webhook_event(ctx):
    p = ctx.state["p"]
    rows = p.dict_rows("SELECT *, headers::text AS headers_text FROM webhook_events")
    check_eq(len(rows), 1, "webhook_events rows")
    e = rows[0]
    ctx.state["first_event_id"] = e["id"]
    check_eq(e["outcome"], "stored", "outcome")
    check_eq(e["source"], "ringcentral_sms", "source")
    check_eq(e["communication_id"], ctx.state["comm_id"], "communication_id")
    check(e["event_id"], "event_id empty")
    check(e["received_at"] is not None, "received_at NULL")
    check_eq(bytes(e["body"]), FIXTURE, "stored body (byte-exact)")
    htext = e["headers_text"]
    check(harness.VERIFICATION_TOKEN not in htext,
          "Verification-Token value stored in headers: %s", htext)
    check("user-agent" in htext.lower() or "content-type" in htext.lower(),
          "selected headers missing: %s", htext)
    check(harness.VERIFICATION_TOKEN.encode() not in bytes(e["body"]), "token in body")


def test_notify_received(ctx):
    p = ctx.state["p"]
    cid = ctx.state["comm_id"]
    lst = ctx.state["listener"]
    got = lst.wait_for(lambda x: isinstance(x, dict) and str(x.get("id")) == str(cid), 5)
    check(got is not None, "no NOTIFY communications for id %s; received: %r", cid,
          lst.received)
    check_eq(got.get("channel"), "sms", "notify channel")
    check_eq(got.get("direction"), "inbound", "notify direction")
    check_eq(got.get("customer_id"), p.maria_id, "notify customer_id")
    lst.received.clear()


def test_same_payload_is_duplicate(ctx):
    p = ctx.state["p"]
    rows = post_and_wait(p, FIXTURE, {"Verification-Token": harness.VERIFICATION_TOKEN})
    check_eq(len(rows), 1, "new webhook_events rows")
    check_eq(rows[0]["outcome"], "duplicate", "outcome of the replay")
    check_eq(bytes(rows[0]["body"]), FIXTURE, "stored body")
    time.sleep(0.3)  # a wrongly inserted second communication would be there by now
    check_eq(comm_count(p), 1, "communications after a replay")
    check_eq(p.count("webhook_events"), 2, "webhook_events rows in total")


def test_wrong_token_rejected(ctx):
    p = ctx.state["p"]
    before = comm_count(p)
    body = harness.sms_body("880000000001", text="wrong token")
    rows = post_and_wait(p, body, {"Verification-Token": WRONG_TOKEN})
    e = rows[0]
    check_eq(e["outcome"], "rejected", "outcome")
    check(e["reason"] and "token" in e["reason"], "reason %r should name the token", e["reason"])
    check(e["communication_id"] is None, "rejected event has a communication_id")
    check(WRONG_TOKEN not in json.dumps(e["headers"]), "wrong token stored: %r", e["headers"])
    time.sleep(0.3)
    check_eq(comm_count(p), before, "communications after a rejected event")
    check_eq(p.count("communications", "external_id = %s", ("880000000001",)), 0,
             "communication of the rejected message")


def test_missing_token_rejected(ctx):
    p = ctx.state["p"]
    before = comm_count(p)
    body = harness.sms_body("880000000002", text="no token at all")
    rows = post_and_wait(p, body, {})
    check_eq(rows[0]["outcome"], "rejected", "outcome")
    check(rows[0]["reason"], "rejected without a reason")
    time.sleep(0.3)
    check_eq(comm_count(p), before, "communications after a rejected event")


def test_hmac_signature_forms_accepted(ctx):
    p = ctx.state["p"]
    forms = [HMAC_INFO["hex"], HMAC_INFO["base64"], "sha256=" + HMAC_INFO["hex"]]
    outcomes = []
    for sig in forms:
        # Signature only: no Verification-Token, so the HMAC scheme alone must pass.
        rows = post_and_wait(p, FIXTURE, {"X-RingCentral-Signature": sig})
        outcomes.append((sig[:12], rows[0]["outcome"], rows[0]["reason"]))
        check(sig not in json.dumps(rows[0]["headers"]), "signature stored: %r",
              rows[0]["headers"])
    for sig, outcome, reason in outcomes:
        # The fixture was stored by the first test, so accepted means 'duplicate' here.
        check(outcome in ("stored", "duplicate"),
              "signature form %s...: outcome %s (%s); all: %r", sig, outcome, reason, outcomes)
    check_eq(comm_count(p), 1, "communications after signed replays")


def test_hmac_wrong_signature_rejected(ctx):
    p = ctx.state["p"]
    before = comm_count(p)
    good = HMAC_INFO["hex"]
    bad = ("0" if good[0] != "0" else "1") + good[1:]
    body = harness.sms_body("880000000003", text="bad signature")
    rows = post_and_wait(p, body, {"X-RingCentral-Signature": bad})
    check_eq(rows[0]["outcome"], "rejected", "outcome with a wrong signature")
    # The right signature of different bytes is wrong too.
    rows = post_and_wait(p, body, {"X-RingCentral-Signature": "sha256=" + good})
    check_eq(rows[0]["outcome"], "rejected", "outcome with another body's signature")
    time.sleep(0.3)
    check_eq(comm_count(p), before, "communications after rejected events")


def test_malformed_json_rejected(ctx):
    p = ctx.state["p"]
    before = comm_count(p)
    body = b'{"uuid": "1", "body": {"id": "880000000004", "subject": "cut off'
    rows = post_and_wait(p, body, {"Verification-Token": harness.VERIFICATION_TOKEN})
    check_eq(rows[0]["outcome"], "rejected", "outcome")
    check_eq(rows[0]["reason"], "malformed_json", "reason")
    check_eq(bytes(rows[0]["body"]), body, "stored body")
    time.sleep(0.3)
    check_eq(comm_count(p), before, "communications after malformed JSON")


def test_message_store_notification_ignored(ctx):
    # This pipeline has no RingCentral API credentials, so the enricher cannot fetch the
    # announced message (tests/integration/test_message_store.py does, from a fake).
    p = ctx.state["p"]
    before = comm_count(p)
    rows = post_and_wait(p, MESSAGE_STORE, {"Verification-Token": harness.VERIFICATION_TOKEN})
    check_eq((rows[0]["outcome"], rows[0]["reason"]), ("failed", "ringcentral_api_not_configured"),
             "outcome of a message-store change notification without API credentials")
    check(rows[0]["communication_id"] is None, "unfetched event has a communication_id")
    time.sleep(0.3)
    check_eq(comm_count(p), before, "communications after a message-store notification")


def test_every_post_has_one_event(ctx):
    # 1 fixture + 1 replay + 2 token rejects + 3 HMAC + 2 bad HMAC + 1 malformed + 1 ignored
    p = ctx.state["p"]
    check_eq(p.count("webhook_events"), 11, "webhook_events rows")
    dup = p.scalar("SELECT count(*) FROM (SELECT event_id FROM webhook_events GROUP BY "
                   "event_id HAVING count(*) > 1) d")
    check_eq(dup, 0, "event_ids stored twice")


def test_zmq_sockets_report_their_peers(ctx):
    # sb_zmonitor: every stage counts its ZeroMQ connections. After the SMS went through,
    # each socket of the path has its peer (the monitors are drained at least once a
    # second, hence the wait). The ingress's acks socket takes the PUBs of the verifier,
    # the enricher and the writer.
    p = ctx.state["p"]
    want = [("ingress", p.http_port, "push", 1), ("ingress", p.http_port, "acks", 3),
            ("verifier", p.ports["verifier_metrics"], "pull", 1),
            ("verifier", p.ports["verifier_metrics"], "push", 1),
            ("verifier", p.ports["verifier_metrics"], "heartbeat", 1),
            ("enricher", p.ports["enricher_metrics"], "pull", 1),
            ("enricher", p.ports["enricher_metrics"], "push", 1),
            ("enricher", p.ports["enricher_metrics"], "heartbeat", 1),
            ("writer", p.ports["writer_metrics"], "pull", 1),
            ("writer", p.ports["writer_metrics"], "acks", 1)]
    got = {}

    def all_up():
        for stage, port, sock, n in want:
            got[(stage, sock)] = harness.metric_sample(port, "sb_zmq_peers", 'socket="%s"' % sock)
        return all((got[(s, k)] or 0) >= n for s, _, k, n in want)

    harness.wait_until(all_up, 5)
    short = ["%s %s: %s, want >= %d" % (s, k, got.get((s, k)), n) for s, _, k, n in want
             if (got.get((s, k)) or 0) < n]
    check(not short, "sb_zmq_peers too low: %s", "; ".join(short))
    connected = harness.metric_sample(p.http_port, "sb_zmq_events_total",
                           'socket="push",event="connected"')
    check(connected is not None and connected >= 1, "ingress push connected: %r", connected)
    failed = harness.metric_sample(p.ports["writer_metrics"], "sb_zmq_events_total",
                        'socket="pull",event="handshake_failed"')
    check_eq(failed, 0.0, "writer pull handshake failures")
    text = harness.http_request(p.ports["verifier_metrics"], "GET", "/metrics").body.decode()
    check_eq(text.count("# TYPE sb_zmq_events_total counter\n"), 1, "TYPE lines of the family")
    check_eq(text.count("# HELP sb_zmq_peers "), 1, "HELP lines of sb_zmq_peers")
    logs = open(p.stages["ingress"].logpath, encoding="utf-8", errors="replace").read()
    check("zmq push: connected to tcp://127.0.0.1:%d" % p.ports["verifier_pull"] in logs,
          "no connect line for the ingress's push socket in its log")


def test_no_secrets_in_logs_or_database(ctx):
    p = ctx.state["p"]
    found = []
    for path in p.log_paths() + [ctx.pg.logfile]:
        with open(path, "rb") as f:
            data = f.read()
        for s in SECRETS:
            if s.encode() in data:
                found.append("%s in %s" % (s, os.path.basename(path)))
    dump = ctx.pg.pg_dump()
    check(b"webhook_events" in dump, "pg_dump looks empty (%d bytes)", len(dump))
    for s in SECRETS:
        if s.encode() in dump or s.encode().hex().encode() in dump:
            found.append("%s in pg_dump" % s)
    check(not found, "secrets leaked: %s", "; ".join(found))


if __name__ == "__main__":
    harness.run([
        test_fixture_sms_stored,
        test_fixture_webhook_event,
        test_notify_received,
        test_same_payload_is_duplicate,
        test_wrong_token_rejected,
        test_missing_token_rejected,
        test_hmac_signature_forms_accepted,
        test_hmac_wrong_signature_rejected,
        test_malformed_json_rejected,
        test_message_store_notification_ignored,
        test_every_post_has_one_event,
        test_zmq_sockets_report_their_peers,
        test_no_secrets_in_logs_or_database,
    ], setup=setup)
