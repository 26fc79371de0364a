"""sbctl, every command, against a real PostgreSQL, the whole pipeline and the fake
providers (issue 6).

mailbox add/list/remove (the refresh token sealed at rest and opened by the enricher: a
Gmail push for the added mailbox stores the fixture e-mails; users.stop on remove);
subscription create/list/renew/delete (event filters of the fixtures, a generated
verification token printed once and stored sealed; renew of a Blacklisted one re-creates
it); events with --outcome/--since/--json; replay of a 'failed' event (made to fail by a
temporary CHECK constraint) that then becomes 'stored' once, and 'duplicate' when replayed
again, with a progress line for long replays; status with every stage up and with one
down; --help for every command and the exit codes 0/1/2."""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402
import fake_ringcentral  # noqa: E402

SBCTL = os.path.join(harness.BUILD_DIR, "sbctl", "sbctl")
RENEWER = os.path.join(harness.BUILD_DIR, "renewer", "sb-renewer")
CLIENT_ID = "itest-client"
CLIENT_SECRET = "itest-client-secret"
SECRET_KEY = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"
MAILBOX = "support@example.com"
REFRESH_TOKEN = "1//rt-sbctl-itest-Kq3Zm8Wd"
TOPIC = "projects/example-project/topics/gmail-push"
SMS_URL = "https://hooks.example.com/api/webhooks/ringcentral/sms"
CALL_URL = "https://hooks.example.com/api/webhooks/ringcentral/call"


def fixture_filters(name):
    return json.loads(harness.fixture_bytes("ringcentral", name))["eventFilters"]


def sbctl_env(ctx, **extra):
    p, g, rc = ctx.state["p"], ctx.state["google"], ctx.state["rc"]
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ", "ASAN_OPTIONS",
                                      "UBSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ}
    env.update({
        "DATABASE_URL": p.pg.url, "SWITCHBOARD_SECRET_KEY": SECRET_KEY,
        "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_TOKEN_URL": g.url + "/token", "GMAIL_API_BASE_URL": g.url,
        "GMAIL_PUSH_TOKEN": harness.GMAIL_PUSH_TOKEN,
        "RINGCENTRAL_SERVER_URL": rc.url, "RINGCENTRAL_CLIENT_ID": fake_ringcentral.CLIENT_ID,
        "RINGCENTRAL_CLIENT_SECRET": fake_ringcentral.CLIENT_SECRET,
        "RINGCENTRAL_JWT": fake_ringcentral.JWT,
        "RINGCENTRAL_VERIFICATION_TOKEN": harness.VERIFICATION_TOKEN,
        "INGRESS_URL": "http://127.0.0.1:%d" % p.http_port,
        "SBCTL_METRICS_URLS": ",".join("%s=http://127.0.0.1:%d/metrics" % (s, p.ports[s + "_metrics"])
                                       for s in ("verifier", "enricher", "writer")),
    })
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def sbctl(ctx, *args, env=None, stdin=None, want=None):
    """Run sbctl; returns (status, stdout, stderr). want: the exit status expected."""
    p = subprocess.run([SBCTL] + list(args), env=env or sbctl_env(ctx), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out, err = p.stdout.decode(), p.stderr.decode()
    ctx.state.setdefault("outputs", []).append(out + err)
    if want is not None and p.returncode != want:
        raise harness.TestFailure("sbctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(args), p.returncode, want, out, err))
    return p.returncode, out, err


def token_file(ctx, text):
    fd, path = tempfile.mkstemp(prefix="sbctl-itest-", dir=ctx.state["p"].tmp)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def setup(ctx):
    ctx.state["google"] = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id=CLIENT_ID,
                                                 client_secret=CLIENT_SECRET).start()
    ctx.state["rc"] = rc = fake_ringcentral.FakeRingCentral()
    ctx.state["p"] = ctx.pipeline(
        SWITCHBOARD_SECRET_KEY=SECRET_KEY,
        GOOGLE_TOKEN_URL=ctx.state["google"].url + "/token",
        GMAIL_API_BASE_URL=ctx.state["google"].url, GOOGLE_CLIENT_ID=CLIENT_ID,
        GOOGLE_CLIENT_SECRET=CLIENT_SECRET, RINGCENTRAL_SERVER_URL=rc.url,
        RINGCENTRAL_CLIENT_ID=fake_ringcentral.CLIENT_ID,
        RINGCENTRAL_CLIENT_SECRET=fake_ringcentral.CLIENT_SECRET,
        RINGCENTRAL_JWT=fake_ringcentral.JWT)


def test_help_and_exit_codes(ctx):
    _, out, _ = sbctl(ctx, "--help", want=0)
    check("DATABASE_URL" in out and "replay" in out, "sbctl --help:\n%s" % out)
    _, out, _ = sbctl(ctx, "--version", want=0)
    check(out.startswith("sbctl "), "version: %r" % out)
    for cmd in ("mailbox", "subscription", "status", "events", "replay"):
        _, out, _ = sbctl(ctx, cmd, "--help", want=0)
        check(out.startswith("usage: sbctl " + cmd), "%s --help:\n%s" % (cmd, out))
    sbctl(ctx, want=2)
    sbctl(ctx, "frobnicate", want=2)
    sbctl(ctx, "mailbox", "add", MAILBOX, want=2)  # no --refresh-token-file
    sbctl(ctx, "mailbox", "add", "not-an-address", "--refresh-token-file", "/dev/null", want=2)
    sbctl(ctx, "mailbox", "list", "--bogus", want=2)
    sbctl(ctx, "events", "--outcome", "lost", want=2)
    sbctl(ctx, "events", "--since", "yesterday-ish", want=2)
    sbctl(ctx, "replay", want=2)
    sbctl(ctx, "replay", "x", "--outcome", "failed", want=2)
    sbctl(ctx, "subscription", "create", want=2)
    sbctl(ctx, "subscription", "create", "--sms-url", SMS_URL,
          env=sbctl_env(ctx, RINGCENTRAL_JWT=None), want=2)
    sbctl(ctx, "mailbox", "list", env=sbctl_env(ctx, DATABASE_URL=None), want=2)
    sbctl(ctx, "events", env=sbctl_env(ctx, SWITCHBOARD_SECRET_KEY="short"), want=0)
    sbctl(ctx, "mailbox", "add", "a@example.com", "--refresh-token-file", "/dev/null",
          env=sbctl_env(ctx, SWITCHBOARD_SECRET_KEY="short"), want=2)


def test_mailbox_add_seals_and_enricher_reads_it(ctx):
    p = ctx.state["p"]
    f = token_file(ctx, REFRESH_TOKEN)
    _, out, _ = sbctl(ctx, "mailbox", "add", MAILBOX, "--refresh-token-file", f,
                      "--history-id", "1843500", want=0)
    check("added" in out and "sealed" in out, "mailbox add said:\n%s" % out)
    row = p.dict_rows("SELECT * FROM mailboxes WHERE email = %s", (MAILBOX,))[0]
    check(row["refresh_token"].startswith("v1:"), "refresh token not sealed: %r" %
          row["refresh_token"][:6])
    check(REFRESH_TOKEN not in row["refresh_token"], "token in clear")
    check_eq(int(row["history_id"]), 1843500, "checkpoint from --history-id")
    _, out, _ = sbctl(ctx, "mailbox", "list", want=0)
    line = [ln for ln in out.splitlines() if ln.startswith(MAILBOX)]
    check(line and "active" in line[0] and "sealed" in line[0] and "1843500" in line[0],
          "mailbox list:\n%s" % out)
    # The enricher opens the sealed token: a push brings the four fixture e-mails.
    before = p.max_event_id()
    r = p.post(harness.GMAIL_PATH + "?token=" + harness.GMAIL_PUSH_TOKEN,
               harness.fixture_bytes("gmail", "pubsub-push.json"))
    check_eq(r.status, 200, "push answer")
    rows = p.wait_new_events(before, 1, timeout=20)
    check(rows and rows[0]["outcome"] == "stored", "push event: %r" % rows)
    check_eq(p.count("communications", "channel = 'email'"), 4, "e-mails stored")
    # Connecting again (another spelling, a new token) updates the row and reactivates it.
    p.query("UPDATE mailboxes SET status = 'reauth_required' WHERE email = %s", (MAILBOX,))
    f2 = token_file(ctx, REFRESH_TOKEN + "-new")
    _, out, _ = sbctl(ctx, "mailbox", "add", "Support@Example.com", "--refresh-token-file", f2,
                      want=0)
    check("updated" in out, "second add said:\n%s" % out)
    rows = p.dict_rows("SELECT * FROM mailboxes WHERE lower(email) = %s", (MAILBOX,))
    check_eq(len(rows), 1, "rows for the mailbox")
    check_eq(rows[0]["status"], "active", "status after a new consent")
    check_eq(int(rows[0]["history_id"]), 1843562, "checkpoint kept (advanced by the e-mails)")
    # From stdin too.
    sbctl(ctx, "mailbox", "add", "stdin@example.com", "--refresh-token-file", "-",
          stdin=b"1//rt-from-stdin\n", want=0)
    check_eq(p.count("mailboxes", "email = 'stdin@example.com'"), 1, "mailbox from stdin")


def test_mailbox_remove_stops_the_watch(ctx):
    g, p = ctx.state["google"], ctx.state["p"]
    g.generate_mailbox("gone@example.com", 0)
    sbctl(ctx, "mailbox", "add", "gone@example.com", "--refresh-token-file",
          token_file(ctx, "1//rt-gone"), want=0)
    _, out, _ = sbctl(ctx, "mailbox", "remove", "gone@example.com", want=0)
    check("stopped" in out and "removed" in out, "remove said:\n%s" % out)
    check_eq(g.count("stop:gone@example.com"), 1, "users.stop calls")
    check_eq(p.count("mailboxes", "email = 'gone@example.com'"), 0, "row left")
    sbctl(ctx, "mailbox", "remove", "gone@example.com", want=1)
    sbctl(ctx, "mailbox", "remove", "stdin@example.com", "--keep-watch", want=0)
    check_eq(g.count("stop:stdin@example.com"), 0, "users.stop with --keep-watch")


def test_subscription_create_list_renew_delete(ctx):
    p, rc = ctx.state["p"], ctx.state["rc"]
    # No token configured: one is generated and printed once.
    _, out, _ = sbctl(ctx, "subscription", "create", "--sms-url", SMS_URL,
                      env=sbctl_env(ctx, RINGCENTRAL_VERIFICATION_TOKEN=None), want=0)
    m = re.search(r"subscription (\S+) created", out)
    t = re.search(r"verification token \(shown only now\): (vt-[A-Za-z0-9]{32})\n", out)
    check(m and t, "create said:\n%s" % out)
    sms_id, token = m.group(1), t.group(1)
    remote = rc.subscriptions()[sms_id]
    check_eq(remote["eventFilters"], fixture_filters("subscription-create-request.json"),
             "SMS event filters")
    check_eq(remote["deliveryMode"]["address"], SMS_URL, "address")
    check_eq(remote["verificationToken"], token, "token given to RingCentral")
    row = p.dict_rows("SELECT * FROM ringcentral_subscriptions WHERE id = %s", (sms_id,))[0]
    check(row["verification_token"].startswith("v1:"), "token stored sealed")
    check(token not in json.dumps(row, default=str), "token in clear in the row")
    check_eq(row["verification_token_sha256"], hashlib.sha256(token.encode()).hexdigest(),
             "fingerprint")
    check_eq(row["status"], "Active", "status")
    # The configured token is used (and not printed).
    _, out, _ = sbctl(ctx, "subscription", "create", "--call-url", CALL_URL, want=0)
    call_id = re.search(r"subscription (\S+) created", out).group(1)
    check(harness.VERIFICATION_TOKEN not in out, "configured token printed")
    remote = rc.subscriptions()[call_id]
    check_eq(remote["eventFilters"], fixture_filters("subscription-create-request-calls.json"),
             "call event filters")
    check_eq(remote["verificationToken"], harness.VERIFICATION_TOKEN, "configured token used")
    _, out, _ = sbctl(ctx, "subscription", "list", want=0)
    check(re.search(r"%s\s+sms\s+Active" % re.escape(sms_id), out) and
          re.search(r"%s\s+call\s+Active" % re.escape(call_id), out), "list:\n%s" % out)
    # renew ID, whatever the expiry.
    _, out, _ = sbctl(ctx, "subscription", "renew", call_id, want=0)
    check("renewed" in out, "renew said:\n%s" % out)
    check_eq(len([r for r in rc.stats()["requests"]
                  if r[:2] == ["POST", "/restapi/v1.0/subscription/%s/renew" % call_id]]), 1,
             "renew calls")
    # A Blacklisted one is re-created with the same filters and the sealed token.
    rc.set_subscription_status(sms_id, "Blacklisted")
    _, out, _ = sbctl(ctx, "subscription", "renew", sms_id, want=0)
    m = re.search(r"re-created as (\S+) ", out)
    check(m, "renew of a Blacklisted one said:\n%s" % out)
    new_id = m.group(1)
    remote = rc.subscriptions()
    check(sms_id not in remote, "the Blacklisted subscription still exists at RingCentral")
    check_eq(remote[new_id]["eventFilters"], fixture_filters("subscription-create-request.json"),
             "filters of the re-created one")
    check_eq(remote[new_id]["verificationToken"], token, "token of the re-created one")
    _, out, _ = sbctl(ctx, "subscription", "list", want=0)
    check(sms_id not in out and new_id in out, "list after re-creation:\n%s" % out)
    _, out, _ = sbctl(ctx, "subscription", "list", "--all", want=0)
    check(re.search(r"%s\s+sms\s+Retired" % re.escape(sms_id), out), "list --all:\n%s" % out)
    sbctl(ctx, "subscription", "renew", sms_id, want=1)  # retired
    sbctl(ctx, "subscription", "renew", "no-such-subscription", want=1)
    # delete ID
    _, out, _ = sbctl(ctx, "subscription", "delete", call_id, want=0)
    check("deleted" in out, "delete said:\n%s" % out)
    check(call_id not in rc.subscriptions(), "still at RingCentral after delete")
    check_eq(p.count("ringcentral_subscriptions", "id = %s", (call_id,)), 0, "row after delete")
    sbctl(ctx, "subscription", "delete", call_id, want=1)
    ctx.state["sms_sub"] = new_id


def test_events_lists_and_filters(ctx):
    p = ctx.state["p"]
    r = p.post_sms(harness.sms_body("9000000000000000001", text="hello events"))
    check_eq(r.status, 200, "sms answer")
    harness.wait_until(lambda: p.count("webhook_events", "outcome = 'stored' AND source ="
                                       " 'ringcentral_sms'") >= 1, 10)
    _, out, _ = sbctl(ctx, "events", want=0)
    check(re.search(r"ringcentral_sms\s+\S+\s+stored", out), "events:\n%s" % out)
    check(re.search(r"gmail_push\s+\S+\s+stored", out), "events:\n%s" % out)
    _, out, _ = sbctl(ctx, "events", "--source", "gmail_push", "--json", want=0)
    docs = [json.loads(ln) for ln in out.splitlines()]
    check(docs and all(d["source"] == "gmail_push" for d in docs), "--json:\n%s" % out)
    _, out, _ = sbctl(ctx, "events", "--since", "1h", "--outcome", "stored", want=0)
    check("2 events" in out, "--since 1h --outcome stored:\n%s" % out)
    _, out, _ = sbctl(ctx, "events", "--since", "2999-01-01", want=0)
    check("0 events" in out, "--since in the future:\n%s" % out)
    _, out, _ = sbctl(ctx, "events", "--since", "2000-01-01 00:00+00", "--limit", "1", want=0)
    check("1 event\n" in out, "--limit 1:\n%s" % out)


def test_replay_failed_event_becomes_stored_once(ctx):
    p = ctx.state["p"]
    msg_id = "9000000000000000777"
    # A communication the database refuses for now: the writer stores the event 'failed'.
    p.query("ALTER TABLE communications ADD CONSTRAINT sbctl_itest_poison"
            " CHECK (body IS DISTINCT FROM 'poison pill')")
    try:
        before = p.max_event_id()
        check_eq(p.post_sms(harness.sms_body(msg_id, text="poison pill")).status, 200, "answer")
        rows = p.wait_new_events(before, 1, timeout=15)
        check(rows and rows[0]["outcome"] == "failed", "event not failed: %r" % rows)
        failed = rows[0]
    finally:
        p.query("ALTER TABLE communications DROP CONSTRAINT IF EXISTS sbctl_itest_poison")
    _, out, _ = sbctl(ctx, "events", "--outcome", "failed", want=0)
    check(failed["event_id"] in out, "events --outcome failed:\n%s" % out)
    _, out, _ = sbctl(ctx, "replay", "--outcome", "failed", "--since", "1h", "--dry-run", want=0)
    check("would post %s" % failed["event_id"] in out, "dry run:\n%s" % out)
    time.sleep(0.5)
    check_eq(p.max_event_id(), failed["id"], "a dry run posted something")
    before = p.max_event_id()
    _, out, _ = sbctl(ctx, "replay", "--outcome", "failed", "--since", "1h", want=0)
    check("replayed 1 event: 1 accepted" in out, "replay said:\n%s" % out)
    rows = p.wait_new_events(before, 1, timeout=15)
    check(rows and rows[0]["outcome"] == "stored", "replayed event: %r" % rows)
    check_eq(rows[0]["headers"].get("x-request-id"), "sbctl-replay:" + failed["event_id"],
             "replay marker")
    check_eq(rows[0]["headers"].get("verification-token"), "[redacted]", "token redacted again")
    check_eq(bytes(rows[0]["body"]), bytes(failed["body"]), "body replayed byte for byte")
    check_eq(p.count("communications", "external_id = %s", (msg_id,)), 1, "communications")
    comm = p.dict_rows("SELECT * FROM communications WHERE external_id = %s", (msg_id,))[0]
    check_eq(comm["body"], "poison pill", "the replayed SMS")
    check_eq(comm["customer_id"], p.maria_id, "matched")
    check_eq(p.scalar("SELECT outcome FROM webhook_events WHERE id = %s", (failed["id"],)),
             "failed", "the original row stays as it was")
    # Replaying again (by id) is harmless: 'duplicate', still one communication.
    before = p.max_event_id()
    sbctl(ctx, "replay", failed["event_id"], want=0)
    rows = p.wait_new_events(before, 1, timeout=15)
    check(rows and rows[0]["outcome"] == "duplicate", "second replay: %r" % rows)
    check_eq(p.count("communications", "external_id = %s", (msg_id,)), 1,
             "communications after two replays")
    sbctl(ctx, "replay", "no-such-event", want=1)


def test_replay_rejected_needs_include_rejected(ctx):
    p = ctx.state["p"]
    before = p.max_event_id()
    p.post_sms(harness.sms_body("9000000000000000888", text="forged?"), token="wrong-token")
    rows = p.wait_new_events(before, 1, timeout=10)
    check(rows and rows[0]["outcome"] == "rejected", "not rejected: %r" % rows)
    _, out, _ = sbctl(ctx, "replay", str(rows[0]["id"]), want=0)
    check("1 rejected left out" in out, "replay of a rejected event:\n%s" % out)
    check_eq(p.max_event_id(), rows[0]["id"], "a rejected event was replayed without asking")
    before = p.max_event_id()
    sbctl(ctx, "replay", str(rows[0]["id"]), "--include-rejected", want=0)
    new = p.wait_new_events(before, 1, timeout=10)
    check(new and new[0]["outcome"] == "stored", "with --include-rejected: %r" % new)


def test_long_replay_shows_progress(ctx):
    p = ctx.state["p"]
    start = p.max_event_id()
    for i in range(30):
        check_eq(p.post_sms(harness.sms_body("91000000000000%05d" % i)).status, 200, "answer")
    p.wait_count("webhook_events", 30, "id > %s", (start,), timeout=20)
    since = p.scalar("SELECT to_char(min(received_at) AT TIME ZONE 'UTC',"
                     " 'YYYY-MM-DD HH24:MI:SS.US+00') FROM webhook_events WHERE id > %s",
                     (start,))
    before = p.max_event_id()
    _, out, err = sbctl(ctx, "replay", "--source", "ringcentral_sms", "--since", since,
                        "--outcome", "stored", want=0)
    check("replayed 30 events: 30 accepted" in out, "replay said:\n%s" % out)
    check(re.search(r"replay: 30/30 sent, 30 accepted", err), "no progress line:\n%s" % err)
    rows = p.wait_new_events(before, 30, timeout=20)
    check_eq(sorted(set(r["outcome"] for r in rows)), ["duplicate"], "outcomes of the replays")


def test_status(ctx):
    p, g = ctx.state["p"], ctx.state["google"]
    port = harness.free_port()
    env = sbctl_env(ctx)
    env.update({"METRICS_LISTEN": "127.0.0.1:%d" % port, "GMAIL_TOPIC": TOPIC,
                "ACK_ENDPOINT": ">tcp://127.0.0.1:%d" % p.ports["ack"], "RENEW_INTERVAL": "1s",
                "LOG_LEVEL": "debug"})
    st = harness.StageProcess("renewer", RENEWER, env, os.path.join(p.tmp, "renewer.log"))
    st.start()
    p.stages["renewer"] = st
    # Every mailbox gets its watch: nothing is then within 12 h of expiry.
    ok = harness.wait_until(lambda: p.count("mailboxes", "watch_expires_at > now() + "
                                            "interval '6 days'") == p.count("mailboxes"), 20)
    check(ok, "the renewer did not watch every mailbox:\n%s" % harness.tail(st.logpath))
    metrics = env["SBCTL_METRICS_URLS"] + ",renewer=http://127.0.0.1:%d/metrics" % port
    rc, out, err = sbctl(ctx, "status", "--metrics", metrics)
    check_eq(rc, 0, "status exit with everything up:\n%s\n%s" % (out, err))
    check(out.startswith("pipeline   ok"), "status:\n%s" % out)
    check(re.search(r"spool\s+depth \d+, oldest unacked", out), "spool line:\n%s" % out)
    for stage in ("ingress", "verifier", "enricher", "writer", "renewer"):
        check(re.search(r"^%s\s+up" % stage, out, re.M), "%s not up:\n%s" % (stage, out))
    check(re.search(r"^verifier\s+up\s+in \d+\.\d/s", out, re.M), "no rate:\n%s" % out)
    check(re.search(r"in 6d 2\dh\s+gmail watch  support@example.com", out) or
          re.search(r"in 6d 2\dh\s+gmail watch  Support@Example.com", out) or
          "gmail watch  support@example.com" in out, "expiries:\n%s" % out)
    check("subscription " + ctx.state["sms_sub"] in out, "subscription expiry:\n%s" % out)
    # A stage that is down makes it say so, and exit 1.
    st.stop()
    rc, out, _ = sbctl(ctx, "status", "--metrics", metrics, "--interval", "0")
    check_eq(rc, 1, "status exit with the renewer down")
    check(re.search(r"^renewer\s+down", out, re.M), "renewer not down:\n%s" % out)


def test_no_secret_printed(ctx):
    text = "\n".join(ctx.state.get("outputs", []))
    for secret in (REFRESH_TOKEN, CLIENT_SECRET, SECRET_KEY, fake_ringcentral.JWT,
                   fake_ringcentral.CLIENT_SECRET, harness.VERIFICATION_TOKEN,
                   harness.GMAIL_PUSH_TOKEN):
        check(secret not in text, "a secret in sbctl's output")
    for marker in harness.Pipeline.SANITIZER_MARKERS:
        check(marker.decode() not in text, "a sanitizer report from sbctl:\n%s" % text[-3000:])


if __name__ == "__main__":
    harness.run([
        test_help_and_exit_codes,
        test_mailbox_add_seals_and_enricher_reads_it,
        test_mailbox_remove_stops_the_watch,
        test_subscription_create_list_renew_delete,
        test_events_lists_and_filters,
        test_replay_failed_event_becomes_stored_once,
        test_replay_rejected_needs_include_rejected,
        test_long_replay_shows_progress,
        test_status,
        test_no_secret_printed,
    ], setup=setup)
