"""sb-renewer against a real PostgreSQL and the fake providers (issue 6).

Gmail watches (tests/fakes/fake_google.py users.watch): a mailbox whose watch expires in
2 h is renewed and its expiry moves ~7 days ahead; one expiring in 5 days is not touched;
a mailbox without a watch gets one and its empty history checkpoint is set from the
watch (an existing one never moves); invalid_grant marks the mailbox 'reauth_required'
and no further token request is made for it; a failing watch backs off and then works.
RingCentral (tests/fakes/fake_ringcentral.py): an expiring subscription is renewed; one
answered 404 is re-created with the same filters, address and verification token and the
old row retired; a Blacklisted one (seen on renewal, or by the periodic status check) is
re-created and the old one deleted. Two renewers running together renew each item
exactly once (the fakes count the calls). Health is 503 with reasons while anything needs
attention and 200 when not; metrics carry each expiry; SIGTERM exits 0 at once."""

import base64
import hashlib
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402
import fake_ringcentral  # noqa: E402

RENEWER = os.path.join(harness.BUILD_DIR, "renewer", "sb-renewer")
TOPIC = "projects/example-project/topics/gmail-push"
CLIENT_ID = "itest-client"
CLIENT_SECRET = "itest-client-secret"
SECRET_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
VERIFICATION_TOKEN = "vt-renewerItestToken0123456789abc"
HOOK = "https://hooks.example.com/api/webhooks/ringcentral/sms"
SMS_FILTERS = [
    "/restapi/v1.0/account/~/extension/~/message-store/instant?type=SMS",
    "/restapi/v1.0/account/~/extension/~/message-store?type=SMS&direction=Outbound",
    "/restapi/v1.0/subscription/~?threshold=86400&interval=21600",
]
DAY = 86400.0


def seal(plaintext, context):
    """sb_secretbox_seal in Python ("v1:" base64(nonce | ciphertext | tag), context as AAD)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    box = AESGCM(bytes.fromhex(SECRET_KEY)).encrypt(nonce, plaintext.encode(), context.encode())
    return "v1:" + base64.b64encode(nonce + box).decode()


def renewer_env(ctx, name, **extra):
    p, g, rc = ctx.state["p"], ctx.state["google"], ctx.state["rc"]
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ", "ASAN_OPTIONS",
                                      "UBSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ}
    env.update({
        "DATABASE_URL": p.pg.url, "LOG_LEVEL": "debug", "INSTANCE_ID": name,
        "METRICS_LISTEN": "127.0.0.1:%d" % harness.free_port(),
        "ACK_ENDPOINT": ">tcp://127.0.0.1:%d" % p.ports["ack"],
        "RENEW_INTERVAL": "1s", "RENEW_BACKOFF_MIN": "1s", "RENEW_BACKOFF_MAX": "2s",
        "SWITCHBOARD_SECRET_KEY": SECRET_KEY,
        "GMAIL_TOPIC": TOPIC, "GOOGLE_TOKEN_URL": g.url + "/token", "GMAIL_API_BASE_URL": g.url,
        "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "RINGCENTRAL_SERVER_URL": rc.url, "RINGCENTRAL_CLIENT_ID": fake_ringcentral.CLIENT_ID,
        "RINGCENTRAL_CLIENT_SECRET": fake_ringcentral.CLIENT_SECRET,
        "RINGCENTRAL_JWT": fake_ringcentral.JWT,
        "RINGCENTRAL_VERIFICATION_TOKEN": VERIFICATION_TOKEN,
    })
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def start_renewer(ctx, name, **extra):
    """A renewer registered with the pipeline (its log is searched for sanitizer reports)."""
    p = ctx.state["p"]
    env = renewer_env(ctx, name, **extra)
    st = harness.StageProcess(name, RENEWER, env, os.path.join(p.tmp, name + ".log"))
    st.metrics_port = int(env["METRICS_LISTEN"].rsplit(":", 1)[1])
    st.start()
    p.stages[name] = st
    ok = harness.wait_until(lambda: health(st)[0] in (200, 503), 15)
    check(ok, "%s never answered /health:\n%s", name, harness.tail(st.logpath))
    return st


def stop_renewer(ctx, st):
    rc = st.stop(timeout=10)
    check_eq(rc, 0, "%s exit status after SIGTERM" % st.name)


def health(st):
    try:
        r = harness.http_request(st.metrics_port, "GET", "/health", timeout=3)
        return r.status, r.json()
    except (OSError, ValueError):
        return 0, None


def metrics(st):
    return harness.http_request(st.metrics_port, "GET", "/metrics", timeout=3).body.decode()


def metric_value(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + ("{" + labels + "}" if labels else "")) or \
                (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def add_mailbox(ctx, email, token, expires_in_s=None, history_id=None, sealed=True):
    """A mailbox row (and the mailbox in the fake) whose watch expires in expires_in_s."""
    ctx.state["google"].generate_mailbox(email.lower(), 0)
    stored = seal(token, "mailboxes.refresh_token:" + email) if sealed else token
    ctx.state["p"].query(
        "INSERT INTO mailboxes (email, refresh_token, history_id, watch_expires_at) VALUES"
        " (%s, %s, %s, CASE WHEN %s::float8 IS NULL THEN NULL"
        "              ELSE now() + %s::float8 * interval '1 second' END)",
        (email, stored, history_id, expires_in_s, expires_in_s))


def mailbox(ctx, email):
    rows = ctx.state["p"].dict_rows(
        "SELECT *, extract(epoch FROM watch_expires_at - now()) AS left_s FROM mailboxes"
        " WHERE email = %s", (email,))
    return rows[0] if rows else None


def add_subscription(ctx, sub_id, expires_in_s, status="Active", in_fake=True,
                     fake_status=None, sealed_token=None, filters=None):
    """A subscription row; in_fake: RingCentral knows it too (with resolved filters, as it
    answers them)."""
    filters = filters or SMS_FILTERS
    if in_fake:
        resolved = [f.replace("/subscription/~", "/subscription/" + sub_id) for f in filters]
        ctx.state["rc"].add_subscription(sub_id, resolved, HOOK, fake_status or status,
                                         time.time() + expires_in_s, VERIFICATION_TOKEN)
    stored = seal(sealed_token, "ringcentral_subscriptions.verification_token:" + sub_id) \
        if sealed_token else None
    ctx.state["p"].query(
        "INSERT INTO ringcentral_subscriptions (id, event_filters, address, expires_at, status,"
        " verification_token, verification_token_sha256)"
        " VALUES (%s, %s::jsonb, %s, now() + %s::float8 * interval '1 second', %s, %s, %s)",
        (sub_id, json.dumps(filters), HOOK, expires_in_s, status, stored,
         hashlib.sha256((sealed_token or VERIFICATION_TOKEN).encode()).hexdigest()))


def subscription(ctx, sub_id):
    rows = ctx.state["p"].dict_rows(
        "SELECT *, extract(epoch FROM expires_at - now()) AS left_s"
        " FROM ringcentral_subscriptions WHERE id = %s", (sub_id,))
    return rows[0] if rows else None


def rc_calls(ctx, method, path_re):
    return [r for r in ctx.state["rc"].stats()["requests"]
            if r[0] == method and re.search(path_re, r[1])]


def watch_count(ctx, email):
    return ctx.state["google"].count("watch:" + email.lower())


def setup(ctx):
    google = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id=CLIENT_ID,
                                    client_secret=CLIENT_SECRET).start()
    ctx.state["google"] = google
    ctx.state["rc"] = fake_ringcentral.FakeRingCentral()
    ctx.state["p"] = ctx.pipeline(seed_customers=False)


# --- Gmail -------------------------------------------------------------------------------


def test_mailbox_expiring_in_2h_is_renewed_5_days_is_not(ctx):
    add_mailbox(ctx, "soon@example.com", "1//rt-soon", 2 * 3600, history_id=1000)
    add_mailbox(ctx, "later@example.com", "1//rt-later", 5 * DAY, history_id=1000)
    add_mailbox(ctx, "New.Box@Example.com", "1//rt-new")  # no watch, no checkpoint yet
    before = mailbox(ctx, "later@example.com")["watch_expires_at"]
    ctx.state["r1"] = r1 = start_renewer(ctx, "renewer1")
    ok = harness.wait_until(lambda: mailbox(ctx, "soon@example.com")["left_s"] > 6 * DAY, 15)
    check(ok, "the watch expiring in 2 h was not renewed: %r\n%s",
          mailbox(ctx, "soon@example.com"), harness.tail(r1.logpath))
    soon = mailbox(ctx, "soon@example.com")
    check(soon["left_s"] < 7 * DAY + 60, "expiry beyond 7 days: %r", soon["left_s"])
    check_eq(int(soon["history_id"]), 1000, "an existing checkpoint never moves")
    check_eq(soon["renew_failures"], 0, "failures after a renewal")
    check(soon["watch_renewed_at"] is not None, "watch_renewed_at not set")
    watch = ctx.state["google"].mailboxes["soon@example.com"].watch
    check_eq(watch["topicName"], TOPIC, "users.watch topicName")
    check_eq(watch["labelIds"], ["INBOX"], "users.watch labelIds")
    new = harness.wait_until(lambda: mailbox(ctx, "New.Box@Example.com")["history_id"], 10)
    check(new, "the new mailbox got no checkpoint from its watch")
    check_eq(int(new), ctx.state["google"].mailboxes["new.box@example.com"].history_id,
             "checkpoint of a mailbox that had none = the watch's historyId")
    time.sleep(2.5)  # a few more rounds
    check_eq(watch_count(ctx, "later@example.com"), 0, "users.watch calls for the 5-day watch")
    check_eq(mailbox(ctx, "later@example.com")["watch_expires_at"], before,
             "expiry of the 5-day watch")
    check_eq(watch_count(ctx, "soon@example.com"), 1, "users.watch calls for the renewed one")
    check_eq(watch_count(ctx, "new.box@example.com"), 1, "users.watch calls for the new one")


def test_metrics_carry_each_expiry(ctx):
    text = metrics(ctx.state["r1"])
    v = metric_value(text, "sb_renewer_expiry_timestamp_seconds",
                     'kind="gmail_watch",id="soon@example.com"')
    check(v is not None and abs(v - (time.time() + 7 * DAY)) < 120,
          "expiry gauge of soon@example.com: %r", v)
    check(metric_value(text, "sb_renewer_renewals_total", 'kind="gmail_watch"') >= 2,
          "renewals counter:\n%s", text)
    left = metric_value(text, "sb_renewer_next_expiry_seconds", 'kind="gmail_watch"')
    check(left is not None and 4 * DAY < left < 5 * DAY, "next gmail expiry in s: %r", left)


def test_heartbeat_socket_reports_its_ingress(ctx):
    # sb_zmonitor: the renewer's heartbeat PUB is connected to the pipeline's ingress (its
    # heartbeat thread drains the monitor once a second).
    got = {}

    def up():
        got["text"] = metrics(ctx.state["r1"])
        return (metric_value(got["text"], "sb_zmq_peers", 'socket="heartbeat"') or 0) >= 1

    check(harness.wait_until(up, 5), "renewer sb_zmq_peers{socket=\"heartbeat\"} not >= 1:\n%s",
          "\n".join(l for l in got.get("text", "").splitlines() if "sb_zmq" in l))
    connected = metric_value(got["text"], "sb_zmq_events_total",
                             'socket="heartbeat",event="connected"')
    check(connected is not None and connected >= 1, "heartbeat connected events: %r", connected)


def test_invalid_grant_marks_mailbox_and_stops_retrying(ctx):
    g = ctx.state["google"]
    g.control({"revoke": "1//rt-revoked"})
    tokens_before = g.count("token")
    add_mailbox(ctx, "revoked@example.com", "1//rt-revoked", 3600)
    ok = harness.wait_until(
        lambda: mailbox(ctx, "revoked@example.com")["status"] == "reauth_required", 10)
    check(ok, "mailbox not marked: %r", mailbox(ctx, "revoked@example.com"))
    check("invalid_grant" in mailbox(ctx, "revoked@example.com")["last_error"],
          "last_error: %r", mailbox(ctx, "revoked@example.com")["last_error"])
    tokens = g.count("token")
    check_eq(tokens - tokens_before, 1, "token requests for the revoked mailbox")
    time.sleep(3.5)  # three more rounds: no hot loop
    check_eq(g.count("token"), tokens, "token requests after the mailbox was marked")
    check_eq(watch_count(ctx, "revoked@example.com"), 0, "users.watch calls")
    st, doc = health(ctx.state["r1"])
    check_eq(st, 503, "health with a mailbox needing consent")
    check(any("revoked@example.com" in r for r in doc["reasons"]), "reasons: %r", doc)
    text = metrics(ctx.state["r1"])
    check_eq(metric_value(text, "sb_renewer_reauth_required"), 1.0, "reauth gauge")
    # A new consent (a new refresh token, status active again) brings it back.
    ctx.state["p"].query("UPDATE mailboxes SET status = 'active', refresh_token = %s,"
                         " renew_failures = 0 WHERE email = 'revoked@example.com'",
                         (seal("1//rt-revoked-2", "mailboxes.refresh_token:revoked@example.com"),))
    ok = harness.wait_until(
        lambda: (mailbox(ctx, "revoked@example.com")["left_s"] or 0) > 6 * DAY, 10)
    check(ok, "not renewed after a new consent: %r", mailbox(ctx, "revoked@example.com"))


def test_failing_watch_backs_off_then_renews(ctx):
    g = ctx.state["google"]
    add_mailbox(ctx, "flaky@example.com", "1//rt-flaky", 1800, sealed=False)
    g.control({"fail": [{"kind": "watch", "status": 500, "times": 2,
                         "mailbox": "flaky@example.com"}]})
    ok = harness.wait_until(lambda: (mailbox(ctx, "flaky@example.com")["left_s"] or 0) > 6 * DAY,
                            20)
    check(ok, "not renewed after two failures: %r", mailbox(ctx, "flaky@example.com"))
    check_eq(watch_count(ctx, "flaky@example.com"), 3, "users.watch calls (2 failed + 1)")
    row = mailbox(ctx, "flaky@example.com")
    check_eq(row["renew_failures"], 0, "failures reset")
    check(row["refresh_token"].startswith("v1:"), "a token stored in clear is sealed once the "
          "renewer has a key: %r", row["refresh_token"][:8])
    text = metrics(ctx.state["r1"])
    check(metric_value(text, "sb_renewer_renewal_failures_total", 'kind="gmail_watch"') >= 3,
          "failure counter (1 invalid_grant + 2 errors)")


# --- RingCentral -------------------------------------------------------------------------


def test_expiring_subscription_is_renewed(ctx):
    add_subscription(ctx, "sub-active", 3600)
    ok = harness.wait_until(lambda: subscription(ctx, "sub-active")["left_s"] > 6 * DAY, 10)
    check(ok, "subscription not renewed: %r", subscription(ctx, "sub-active"))
    check_eq(len(rc_calls(ctx, "POST", r"/subscription/sub-active/renew$")), 1, "renew calls")
    check_eq(subscription(ctx, "sub-active")["status"], "Active", "status")


def test_subscription_404_is_recreated_with_same_filters(ctx):
    add_subscription(ctx, "sub-gone", 3600, in_fake=False)
    ok = harness.wait_until(lambda: subscription(ctx, "sub-gone")["status"] == "Retired", 10)
    old = subscription(ctx, "sub-gone")
    check(ok, "404 subscription not retired: %r", old)
    new = subscription(ctx, old["replaced_by"])
    check(new is not None, "no row for the new subscription %r", old["replaced_by"])
    check_eq(new["event_filters"], SMS_FILTERS, "filters of the new row")
    check_eq(new["address"], HOOK, "address of the new row")
    check(new["left_s"] > 6 * DAY, "new expiry: %r", new["left_s"])
    remote = ctx.state["rc"].subscriptions()[new["id"]]
    check_eq(remote["eventFilters"], SMS_FILTERS, "filters sent to RingCentral")
    check_eq(remote["deliveryMode"]["address"], HOOK, "address sent to RingCentral")
    check_eq(remote["verificationToken"], VERIFICATION_TOKEN, "verification token")
    # Sealed with the renewer's key, never in clear, and its fingerprint kept.
    check(new["verification_token"].startswith("v1:"), "token stored sealed")
    check(VERIFICATION_TOKEN not in json.dumps(new, default=str), "token in clear in the row")
    check_eq(new["verification_token_sha256"],
             hashlib.sha256(VERIFICATION_TOKEN.encode()).hexdigest(), "token fingerprint")
    check_eq(len(rc_calls(ctx, "POST", r"/subscription$")), 1, "create calls")


def test_blacklisted_subscription_is_recreated(ctx):
    token = "vt-sealedOnlyToken-7Hq2Lx9Pz4Kd"  # differs from the configured one: the sealed
    add_subscription(ctx, "sub-black", 3600, fake_status="Blacklisted",  # copy wins
                     sealed_token=token)
    ok = harness.wait_until(lambda: subscription(ctx, "sub-black")["status"] == "Retired", 10)
    old = subscription(ctx, "sub-black")
    check(ok, "Blacklisted subscription not retired: %r", old)
    remote = ctx.state["rc"].subscriptions()
    check("sub-black" not in remote, "the Blacklisted subscription was not deleted")
    new = remote[old["replaced_by"]]
    check_eq(new["eventFilters"], SMS_FILTERS, "filters of the re-created subscription "
             "(the reminder filter names ~, not the old id)")
    check_eq(new["verificationToken"], token, "the very same (sealed) verification token")
    check_eq(new["status"], "Active", "status of the new one")


def test_blacklisted_found_by_status_check(ctx):
    # Not expiring for days, but Blacklisted now: the periodic check finds it.
    r1 = ctx.state["r1"]
    stop_renewer(ctx, r1)
    add_subscription(ctx, "sub-checked", 5 * DAY, fake_status="Suspended")
    ctx.state["r1"] = r1 = start_renewer(ctx, "renewer1b", RENEW_CHECK_INTERVAL="2s")
    ok = harness.wait_until(lambda: subscription(ctx, "sub-checked")["status"] == "Retired", 10)
    check(ok, "Suspended subscription not re-created: %r\n%s", subscription(ctx, "sub-checked"),
          harness.tail(r1.logpath))
    check_eq(len(rc_calls(ctx, "POST", r"/subscription/sub-checked/renew$")), 0,
             "renew calls for a subscription that was only checked")
    check(len(rc_calls(ctx, "GET", r"/subscription/sub-checked$")) >= 1, "status check calls")


def test_health_ok_when_nothing_needs_attention(ctx):
    r1 = ctx.state["r1"]
    ok = harness.wait_until(lambda: health(r1)[0] == 200, 10)
    check(ok, "health never ok: %r", health(r1))
    # A watch within 12 h of expiry that cannot be renewed turns it degraded.
    g = ctx.state["google"]
    g.control({"fail": [{"kind": "watch", "status": 403, "times": 1000,
                         "mailbox": "stuck@example.com"}]})
    add_mailbox(ctx, "stuck@example.com", "1//rt-stuck", 3 * 3600)
    ok = harness.wait_until(lambda: health(r1)[0] == 503, 10)
    status, doc = health(r1)
    check(ok and any("stuck@example.com expires in" in r for r in doc["reasons"]),
          "health with a watch expiring in 3 h: %r %r", status, doc)
    g.control({"clear_failures": True})
    ctx.state["p"].query("DELETE FROM mailboxes WHERE email = 'stuck@example.com'")
    ok = harness.wait_until(lambda: health(r1)[0] == 200, 10)
    check(ok, "health after the item went away: %r", health(r1))
    text = metrics(r1)
    check(re.search(r'sb_renewer_expiry_timestamp_seconds\{kind="gmail_watch",'
                    r'id="stuck@example.com"\} NaN', text), "removed item's gauge is not NaN")


def test_two_renewers_renew_each_item_exactly_once(ctx):
    r1 = ctx.state["r1"]
    r2 = ctx.state["r2"] = start_renewer(ctx, "renewer2")
    g, rc = ctx.state["google"], ctx.state["rc"]
    g.control({"latency_ms": 40})  # so that both are busy at the same time
    rc.set_latency(40)
    emails = ["race-%02d@example.com" % i for i in range(12)]
    subs = ["sub-race-%02d" % i for i in range(6)]
    for e in emails:
        add_mailbox(ctx, e, "1//rt-" + e, 1800)
    for s in subs:
        add_subscription(ctx, s, 1800)
    done = lambda: all((mailbox(ctx, e)["left_s"] or 0) > 6 * DAY for e in emails) and \
        all(subscription(ctx, s)["left_s"] > 6 * DAY for s in subs)  # noqa: E731
    ok = harness.wait_until(done, 30)
    check(ok, "not everything renewed:\n%s\n%s", harness.tail(r1.logpath),
          harness.tail(r2.logpath))
    time.sleep(3)  # more rounds of both
    for e in emails:
        check_eq(watch_count(ctx, e), 1, "users.watch calls for %s" % e)
    for s in subs:
        check_eq(len(rc_calls(ctx, "POST", r"/subscription/%s/renew$" % s)), 1,
                 "renew calls for %s" % s)
    shares = []
    for st in (r1, r2):
        with open(st.logpath, "rb") as f:
            shares.append(len(re.findall(rb"race-\d\d@example.com renewed", f.read())))
    print("   renewals by replica: %s" % shares)
    check_eq(sum(shares), len(emails), "renewal log lines over both replicas")
    g.control({"latency_ms": 0})
    rc.set_latency(0)


def test_sigterm_exits_cleanly(ctx):
    for name in ("r1", "r2"):
        st = ctx.state[name]
        t = time.monotonic()
        stop_renewer(ctx, st)
        check(time.monotonic() - t < 5, "%s took %.1f s to stop" % (name, time.monotonic() - t))
        with open(st.logpath, "rb") as f:
            log = f.read()
        check(b'"msg":"stopped"' in log, "%s did not log its stop" % name)
        for secret in (CLIENT_SECRET, VERIFICATION_TOKEN, fake_ringcentral.JWT, SECRET_KEY,
                       "1//rt-soon"):
            check(secret.encode() not in log, "a secret in the %s log" % name)


def test_idles_without_credentials(ctx):
    st = start_renewer(ctx, "renewer-idle", GMAIL_TOPIC=None, RINGCENTRAL_CLIENT_ID=None,
                       RINGCENTRAL_CLIENT_SECRET=None, RINGCENTRAL_JWT=None)
    time.sleep(1.5)
    check(st.alive(), "the renewer without credentials exited")
    with open(st.logpath, "rb") as f:
        log = f.read()
    check(b"the renewer idles" in log, "no word about idling:\n%s" % log[-2000:])
    stop_renewer(ctx, st)


def test_bad_configuration_stops_with_status_2(ctx):
    env = renewer_env(ctx, "renewer-bad", RENEW_BEFORE="one day")
    import subprocess
    p = subprocess.run([RENEWER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    check_eq(p.returncode, 2, "exit status")
    check(b"RENEW_BEFORE" in p.stderr, "message: %r" % p.stderr)


if __name__ == "__main__":
    harness.run([
        test_mailbox_expiring_in_2h_is_renewed_5_days_is_not,
        test_metrics_carry_each_expiry,
        test_heartbeat_socket_reports_its_ingress,
        test_invalid_grant_marks_mailbox_and_stops_retrying,
        test_failing_watch_backs_off_then_renews,
        test_expiring_subscription_is_renewed,
        test_subscription_404_is_recreated_with_same_filters,
        test_blacklisted_subscription_is_recreated,
        test_blacklisted_found_by_status_check,
        test_health_ok_when_nothing_needs_attention,
        test_two_renewers_renew_each_item_exactly_once,
        test_sigterm_exits_cleanly,
        test_idles_without_credentials,
        test_bad_configuration_stops_with_status_2,
    ], setup=setup)
