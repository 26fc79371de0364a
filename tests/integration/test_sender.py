"""Staff replies (issue 10, docs/SENDER.md): the application inserts into outbox, sb-sender
sends through the fake RingCentral (SMS) and the fake Gmail API (e-mail) and records the
sent message in communications.

  - an SMS reply is sent once, woken by NOTIFY (the poll is a minute here), and stored
    outbound, matched, with the provider's id; the message-store webhook of that same
    SMS arriving afterwards is a 'duplicate', not a second row
  - an e-mail reply to Maria's e-mail carries In-Reply-To/References with her Message-ID
    and her Gmail threadId, a UTF-8 subject as encoded words (parsed from what the fake
    received); the SENT history event of it is a 'duplicate'
  - sender killed with the provider's answer in flight (SMS and e-mail): after a restart
    the message is found at the provider, recorded, never sent twice
  - a reply left 'sending' that never reached the provider: an SMS becomes 'failed'
    (not resent blindly) and goes out once when the application requeues it; an e-mail
    is looked up by its Message-ID and then sent once
  - 503 (outcome unknown) and 429: retried, sent once; 400: 'failed' with RingCentral's
    message; no recipient: 'failed' at once
  - two senders share a burst of replies: each sent exactly once
  - SIGTERM: exit 0"""

import email
import email.header
import email.policy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sender_harness as sh  # noqa: E402  (puts tests/fakes on the path too)
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_ringcentral  # noqa: E402

MARIA_EMAIL_ID = "19a6f3c2b1d04e01"  # shared/fixtures/gmail/message-full-plain.json
MARIA_MESSAGE_ID = "<20261124150105.4F2A1C0B7E@mail.example.com>"


def setup(ctx):
    rc, google = sh.fakes()
    ctx.state.update(rc=rc, google=google)
    p = sh.pipeline(ctx, rc, google)
    ctx.state["p"] = p
    ctx.state["sender"] = sh.start_sender(p, rc, google)


def test_sms_reply_is_sent_once_and_stored(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    text = "Hi Maria, yes: order #48213 is ready. We are open until 6 pm today."
    oid = sh.queue(p, "sms", text, customer_id=p.maria_id)
    row = sh.wait_status(p, oid, timeout=10)  # SENDER_POLL_MS is 60 s: NOTIFY woke it
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(row["attempts"], 1, "attempts")
    sent = [s for s in sh.sms_sent(rc) if s["text"] == text]
    check_eq(len(sent), 1, "SMS requests the provider received")
    check_eq(sent[0]["to"], [{"phoneNumber": sh.MARIA_E164}], "to")
    check_eq(sent[0]["from"], {"phoneNumber": sh.OUR_NUMBER}, "from")
    comm = p.dict_rows("SELECT * FROM communications WHERE id = %s", (row["communication_id"],))
    check_eq(len(comm), 1, "communications row of the reply")
    c = comm[0]
    check_eq((c["channel"], c["direction"], c["provider"], c["customer_id"]),
             ("sms", "outbound", "ringcentral", p.maria_id), "the stored reply")
    check_eq(c["external_id"], row["external_id"], "external_id = the provider's message id")
    check_eq((c["from_address"], c["to_address"], c["body"], c["status"]),
             (sh.OUR_NUMBER, sh.MARIA_E164, text, "Queued"), "addresses, text and status")
    check(c["thread_id"] == "7876416245344257449", "conversation id kept exactly: %r",
          c["thread_id"])
    ctx.state["sms"] = row


def test_own_outbound_sms_webhook_is_a_duplicate(ctx):
    p = ctx.state["p"]
    row = ctx.state["sms"]
    ev = sh.post_sms_event(p, fake_ringcentral.message_store_notification([row["external_id"]]))
    check_eq(ev["outcome"], "duplicate", "outcome of the webhook of our own SMS")
    check_eq(ev["communication_id"], row["communication_id"], "it points at the stored reply")
    check_eq(p.count("communications", "external_id = %s", (row["external_id"],)), 1,
             "rows for that message id")


def test_email_reply_threads_with_the_customers_email(ctx):
    p, google = ctx.state["p"], ctx.state["google"]
    ev = sh.gmail_push(p)  # the fixture e-mails, Maria's among them
    check_eq(ev["outcome"], "stored", "first push")
    parent = p.dict_rows("SELECT * FROM communications WHERE provider = 'gmail' AND "
                         "external_id = %s", (MARIA_EMAIL_ID,))[0]
    check_eq(parent["message_id"], MARIA_MESSAGE_ID, "Message-ID kept by the enricher")
    subject = "Re: Grüße – order #48213 is on its way 🚚"
    body = "Hi Maria,\n\nyour order shipped this morning — tracking follows.\n\nExample Support"
    before = len(google.sent)
    oid = sh.queue(p, "email", body, in_reply_to=parent["id"], subject=subject)
    row = sh.wait_status(p, oid, timeout=10)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(len(google.sent), before + 1, "messages.send calls")
    got = google.sent[-1]
    check_eq(got["mailbox"], sh.MAILBOX, "sent as the mailbox that received the e-mail")
    check_eq(got["threadId"], parent["thread_id"], "threadId of Maria's e-mail")
    raw = got["raw"]
    check(b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), "CRLF line ends only")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check_eq(msg["In-Reply-To"], MARIA_MESSAGE_ID, "In-Reply-To")
    check_eq(msg["References"].split(), [MARIA_MESSAGE_ID], "References")
    check_eq(str(msg["Subject"]), subject, "Subject decoded")
    head = raw.partition(b"\r\n\r\n")[0].decode("ascii")  # 7-bit headers only
    check("=?UTF-8?B?" in head, "the UTF-8 subject travels as encoded words")
    check_eq(msg["To"], "maria.lopez@example.com", "To")
    check_eq(msg["From"], sh.MAILBOX, "From")
    check_eq(msg["X-Switchboard-Outbox-Id"], str(oid), "our marker header")
    check_eq(msg["Message-ID"], row["message_id"], "Message-ID recorded before the send")
    check_eq(msg.get_content().replace("\r\n", "\n").rstrip("\n"), body, "body decoded")
    c = p.dict_rows("SELECT * FROM communications WHERE id = %s", (row["communication_id"],))[0]
    check_eq((c["channel"], c["direction"], c["provider"], c["customer_id"]),
             ("email", "outbound", "gmail", p.maria_id), "the stored reply")
    check_eq((c["external_id"], c["thread_id"], c["message_id"]),
             (got["id"], parent["thread_id"], row["message_id"]), "ids of the stored reply")
    check_eq(c["email_references"], MARIA_MESSAGE_ID, "References kept for the next reply")
    # The SENT message shows up in the mailbox history: a duplicate, not a second row.
    ev = sh.gmail_push(p)
    check_eq(ev["outcome"], "duplicate", "push that brings our own reply")
    check_eq(ev["communication_id"], c["id"], "it points at the stored reply")
    check_eq(p.count("communications", "external_id = %s", (got["id"],)), 1, "rows")


def test_sender_killed_with_the_sms_answer_in_flight_sends_once(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    st = ctx.state["sender"]
    rc.state.sms_response_delay_ms = 5000  # stored at once, answered 5 s later
    text = "Kill test: your table for two is confirmed."
    oid = sh.queue(p, "sms", text, customer_id=p.maria_id)
    check(harness.wait_until(lambda: any(s["text"] == text for s in sh.sms_sent(rc)), 10),
          "the SMS never reached the provider")
    check_eq(sh.outbox_row(p, oid)["status"], "sending", "status while the answer is awaited")
    sh.kill9(st)
    rc.state.sms_response_delay_ms = 0
    st.start()
    row = sh.wait_status(p, oid, timeout=20)  # reconciled after SENDER_RECONCILE_AFTER_MS
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(len([s for s in sh.sms_sent(rc) if s["text"] == text]), 1, "SMS sent")
    check_eq(p.count("communications", "external_id = %s", (row["external_id"],)), 1, "rows")
    check(sh.log_has(st, "found in the message store"), "the restart looked before sending")


def test_sender_killed_with_the_email_answer_in_flight_sends_once(ctx):
    p, google = ctx.state["p"], ctx.state["google"]
    st = ctx.state["sender"]
    google.send_response_delay_ms = 5000
    before = len(google.sent)
    oid = sh.queue(p, "email", "Kill test, e-mail.", to_address="Maria.Lopez@Example.com",
                   subject="Your booking")
    check(harness.wait_until(lambda: len(google.sent) > before, 10), "no messages.send")
    sh.kill9(st)
    google.send_response_delay_ms = 0
    st.start()
    row = sh.wait_status(p, oid, timeout=20)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(len(google.sent), before + 1, "messages.send calls")
    check_eq(row["external_id"], google.sent[-1]["id"], "the message found is the one sent")
    check_eq(row["attempts"], 2, "attempts (the send, then the look that found it)")


def _dead_sending_row(p, channel, body, **cols):
    """A row as a sender leaves it when it dies right after committing 'sending' and
    before its request left: resolved, 'sending', owned by a sender that is gone. One
    INSERT, so that no live sender claims it as 'queued' first."""
    cols.update(status="sending", attempts=1, sender_id="gone:1:dead", attempt_id="a1")
    oid = sh.queue(p, channel, body, **cols)
    p.query("UPDATE outbox SET sending_at = now() - interval '1 minute',"
            " first_sending_at = now() - interval '1 minute' WHERE id = %s", (oid,))
    p.query("NOTIFY outbox")  # what any change to the outbox may do to wake the sender
    return oid


def test_unknown_sms_outcome_is_not_resent_blindly(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    text = "Crash test: never reached RingCentral."
    oid = _dead_sending_row(p, "sms", text, to_address=sh.MARIA_E164,
                            from_address=sh.OUR_NUMBER)
    row = sh.wait_status(p, oid, timeout=20)
    check_eq(row["status"], "failed", "status after reconciliation")
    check("not sent again automatically" in row["last_error"], "last_error: %r",
          row["last_error"])
    check_eq(row["verify"], "after_crash", "verify")
    check_eq(len([s for s in sh.sms_sent(rc) if s["text"] == text]), 0, "SMS sent")
    # The application decides to send it: one SMS, after one more look.
    p.query("UPDATE outbox SET status = 'queued' WHERE id = %s", (oid,))
    row = sh.wait_status(p, oid, timeout=15)
    check_eq(row["status"], "sent", "status after the requeue (%r)" % row["last_error"])
    check_eq(len([s for s in sh.sms_sent(rc) if s["text"] == text]), 1, "SMS sent")


def test_unknown_email_outcome_is_looked_up_then_sent_once(ctx):
    p, google = ctx.state["p"], ctx.state["google"]
    before = len(google.sent)
    oid = _dead_sending_row(p, "email", "Crash test, e-mail.",
                            to_address="maria.lopez@example.com", from_address=sh.MAILBOX,
                            subject="Crash test",
                            message_id="<sb.crash.0011@example.com>")
    row = sh.wait_status(p, oid, timeout=20)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(len(google.sent), before + 1, "messages.send calls")
    check(b"Message-ID: <sb.crash.0011@example.com>" in google.sent[-1]["raw"],
          "the Message-ID recorded before the crash is the one sent")
    # Recovered again (a second crash after the send): found, not sent.
    p.query("UPDATE outbox SET status = 'sending', sender_id = 'gone:2:dead', attempt_id = 'a2',"
            " sending_at = now() - interval '1 minute', communication_id = NULL"
            " WHERE id = %s", (oid,))
    p.query("NOTIFY outbox")
    row = sh.wait_status(p, oid, statuses=("sent",), timeout=20)
    check(row["communication_id"] is not None, "recorded again")
    check_eq(len(google.sent), before + 1, "messages.send calls after the second recovery")
    check_eq(p.count("communications", "external_id = %s", (row["external_id"],)), 1, "rows")


def test_transient_errors_are_retried_and_sent_once(ctx):
    p, rc, google = ctx.state["p"], ctx.state["rc"], ctx.state["google"]
    rc.fail(r"/sms$", 503, times=1)  # RingCentral may or may not have sent it
    text = "Retry test: 503 first."
    oid = sh.queue(p, "sms", text, customer_id=p.maria_id)
    row = sh.wait_status(p, oid, timeout=15)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(row["attempts"], 2, "attempts")
    check_eq(len([s for s in sh.sms_sent(rc) if s["text"] == text]), 1, "SMS sent")
    google.control({"fail": [{"kind": "send", "status": 429, "times": 1}]})
    before = len(google.sent)
    oid = sh.queue(p, "email", "Retry test: 429 first.", customer_id=p.maria_id,
                   subject="Rate limited")
    row = sh.wait_status(p, oid, timeout=15)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(row["attempts"], 2, "attempts")
    check_eq(len(google.sent), before + 1, "messages.send calls that stored a message")


def test_permanent_errors_fail_with_the_providers_message(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    rc.fail(r"/sms$", 400, times=1)
    oid = sh.queue(p, "sms", "Permanent test.", customer_id=p.maria_id)
    row = sh.wait_status(p, oid, timeout=10)
    check_eq(row["status"], "failed", "status")
    check("FAKE-400" in row["last_error"] and "injected by the fake" in row["last_error"],
          "last_error: %r", row["last_error"])
    check(row["communication_id"] is None, "nothing stored")
    nobody = p.add_customer("No Phone", None, "nophone@example.org")
    oid = sh.queue(p, "sms", "To nobody.", customer_id=nobody)
    row = sh.wait_status(p, oid, timeout=10)
    check_eq(row["status"], "failed", "status without a recipient")
    check("no recipient" in row["last_error"], "last_error: %r", row["last_error"])
    try:
        sh.queue(p, "sms", "dup", customer_id=p.maria_id, idempotency_key="k-1")
        sh.queue(p, "sms", "dup", customer_id=p.maria_id, idempotency_key="k-1")
        raise harness.TestFailure("a second row with the same idempotency_key was accepted")
    except harness.TestFailure:
        raise
    except Exception as e:
        check("outbox_idempotency_key_key" in str(e), "unexpected error: %r", e)


def test_sealed_refresh_token_is_opened(ctx):
    """A mailbox whose refresh token is sealed at rest (SWITCHBOARD_SECRET_KEY, context
    "mailboxes.refresh_token:<email as stored>", as sbctl and the enricher use it)."""
    p, google = ctx.state["p"], ctx.state["google"]
    address, token = "Sealed.Box@Example.com", "1//rt-sealed-itest-Vb7Nq2"
    sealed = sh.seal(token, "mailboxes.refresh_token:" + address)
    if sealed is None:
        print("   (no cryptography package: sealed tokens not exercised)")
        return
    google.generate_mailbox(address.lower(), 0)
    p.query("INSERT INTO mailboxes (email, refresh_token) VALUES (%s, %s)", (address, sealed))
    before = len(google.sent)
    oid = sh.queue(p, "email", "From the sealed mailbox.", from_address="sealed.box@example.com",
                   to_address="maria.lopez@example.com", subject="Sealed")
    row = sh.wait_status(p, oid, timeout=10)
    check_eq(row["status"], "sent", "status (last_error %r)" % row["last_error"])
    check_eq(google.sent[before]["mailbox"], "sealed.box@example.com", "sending mailbox")
    with google.lock:
        check(token in google.tokens.values(), "the token request carried the opened token")
    # Sealed for another row: refused, never sent.
    p.query("UPDATE mailboxes SET refresh_token = %s WHERE email = %s",
            (sh.seal(token, "mailboxes.refresh_token:other@example.com"), address))
    oid = sh.queue(p, "email", "Must not go.", from_address="sealed.box@example.com",
                   to_address="maria.lopez@example.com", subject="Sealed 2")
    row = sh.wait_status(p, oid, timeout=10)
    check_eq(row["status"], "failed", "status with a token sealed for another mailbox")
    check_eq(len(google.sent), before + 1, "messages.send calls")


def test_two_senders_send_each_reply_once(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    second = sh.start_sender(p, rc, ctx.state["google"], name="sender2")
    ids = [sh.queue(p, "sms", "Burst %02d" % i, customer_id=p.maria_id) for i in range(20)]
    for oid in ids:
        check_eq(sh.wait_status(p, oid, timeout=20)["status"], "sent", "status of %d" % oid)
    texts = [s["text"] for s in sh.sms_sent(rc) if s["text"].startswith("Burst ")]
    check_eq(sorted(texts), ["Burst %02d" % i for i in range(20)], "each burst SMS once")
    senders = p.query("SELECT count(DISTINCT sender_id) FROM outbox WHERE id = ANY(%s)",
                      (ids,))[0][0]
    print("   (20 replies sent by %d sender sessions)" % senders)
    sh.stop_clean(second)


def test_sigterm_stops_the_sender_cleanly(ctx):
    sh.stop_clean(ctx.state["sender"])


if __name__ == "__main__":
    harness.run([test_sms_reply_is_sent_once_and_stored,
                 test_own_outbound_sms_webhook_is_a_duplicate,
                 test_email_reply_threads_with_the_customers_email,
                 test_sender_killed_with_the_sms_answer_in_flight_sends_once,
                 test_sender_killed_with_the_email_answer_in_flight_sends_once,
                 test_unknown_sms_outcome_is_not_resent_blindly,
                 test_unknown_email_outcome_is_looked_up_then_sent_once,
                 test_transient_errors_are_retried_and_sent_once,
                 test_permanent_errors_fail_with_the_providers_message,
                 test_sealed_refresh_token_is_opened,
                 test_two_senders_send_each_reply_once,
                 test_sigterm_stops_the_sender_cleanly], setup=setup)
