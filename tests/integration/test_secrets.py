"""Secrets never reach the database or the logs (SPEC "Verification", issue #9).

The pipeline runs with known, distinctive secret values: the RingCentral verification
token and webhook secret, the Gmail push token (with characters that get
percent-encoded), the Google OAuth client secret, a mailbox refresh token, the access
tokens the fake Google hands out, the Pub/Sub JWTs, and a database password (a role with
scram-sha-256 authentication in the test cluster). Traffic sends them the right way and
the wrong way: in their headers, in ?token= queries (plain and percent-encoded), under
other header names and parameters, with wrong values beside them. Afterwards a pg_dump
of the whole database and every log line (each stage's and PostgreSQL's) are searched
for every secret in every encoding the pipeline could have written it in: zero hits.

Refresh tokens at rest (common/sb_secretbox.h): when the enricher reads
SWITCHBOARD_SECRET_KEY, the mailbox row holds the sealed value ("v1:...", context
"mailboxes.refresh_token:<email>") and the plaintext must not be in the dump either;
until then the row holds the token as the application wrote it and only the logs are
checked for it."""

import base64
import hashlib
import hmac
import json
import os
import pwd
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402

AUDIENCE = "https://hooks.example.com/api/webhooks/gmail/push"
SERVICE_ACCOUNT = "gmail-push@example-project.iam.gserviceaccount.com"
MINT = harness.fixture_path("google", "mint-jwt.sh")
MAILBOX = "support@example.com"

VERIFICATION_TOKEN = "vt-SECRETVT-7Hq2Lx9Pz4Kd"
WEBHOOK_SECRET = "whs-SECRETWH-3Jv8Nc1Rt6Yb"
PUSH_TOKEN = "gpt/SECRETPT+5Wm7=Qa2"  # '/', '+' and '=' are percent-encoded in a query
CLIENT_SECRET = "gcs-SECRETCS-8Fz1Tw4Ue9"
REFRESH_TOKEN = "1//rt-SECRETRT-2Gp6Vh3Mk0"
DB_PASSWORD = "pw-SECRETDB-4Xc9Bn7Ls1"
DB_ROLE = "sb_secret_itest"
SECRET_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def mint(*args):
    out = subprocess.run(["bash", MINT, "--now", str(int(time.time()))] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip()


def push_body(message_id):
    data = json.dumps({"emailAddress": MAILBOX, "historyId": "1843562"}).encode()
    return json.dumps({"message": {"data": base64.b64encode(data).decode(),
                                   "messageId": message_id,
                                   "publishTime": "2026-11-24T15:21:07.846Z"},
                       "subscription": "projects/example-project/subscriptions/x"}).encode()


def enricher_seals():
    """Does sb-enricher read SWITCHBOARD_SECRET_KEY (refresh tokens sealed at rest)?"""
    out = subprocess.run([harness.BINARIES["enricher"], "--help"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=10).stdout
    return b"SWITCHBOARD_SECRET_KEY" in out


def seal(plaintext, context):
    """sb_secretbox_seal in Python (the format of docs/SECURITY.md), or None without the
    cryptography package."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return None
    nonce = os.urandom(12)
    box = AESGCM(bytes.fromhex(SECRET_KEY)).encrypt(nonce, plaintext.encode(),
                                                    context.encode())
    return "v1:" + base64.b64encode(nonce + box).decode()


def password_role(pg):
    """A login role with a password that PostgreSQL really checks (scram-sha-256 over TCP
    for this role only; everything else keeps the cluster's trust). Returns its URL."""
    pg.connect().cursor().execute(
        "CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'" % (DB_ROLE, DB_PASSWORD))
    hba = os.path.join(pg.data, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write("host all %s 127.0.0.1/32 scram-sha-256\n" % DB_ROLE + rules)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(hba, pw.pw_uid, pw.pw_gid)
    pg.connect().cursor().execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    url = "postgresql://%s:%s@127.0.0.1:%d/%s" % (DB_ROLE, DB_PASSWORD, pg.port, pg.dbname)
    import psycopg2
    try:
        psycopg2.connect(host="127.0.0.1", port=pg.port, user=DB_ROLE, dbname=pg.dbname,
                         password="not-the-password", connect_timeout=5).close()
        raise harness.TestFailure("a wrong database password was accepted")
    except psycopg2.OperationalError:
        pass  # the password is checked
    psycopg2.connect(url, connect_timeout=5).close()
    return url


def setup(ctx):
    pg = ctx.postgres()
    url = password_role(pg)
    fake = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id="itest-client",
                                  client_secret=CLIENT_SECRET).start()
    ctx.state["fake"] = fake
    sealing = enricher_seals() and seal("probe", "probe") is not None
    ctx.state["sealing"] = sealing
    extra = {"SWITCHBOARD_SECRET_KEY": SECRET_KEY} if sealing else {}
    p = ctx.pipeline(DATABASE_URL=url,
                     LOG_LEVEL="debug",  # the most a log could say
                     RINGCENTRAL_VERIFICATION_TOKEN=VERIFICATION_TOKEN,
                     RINGCENTRAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
                     GMAIL_PUSH_TOKEN=PUSH_TOKEN,
                     GMAIL_PUSH_AUDIENCE=AUDIENCE,
                     GMAIL_PUSH_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
                     GOOGLE_JWKS_FILE=harness.fixture_path("google", "test-jwks.json"),
                     GOOGLE_TOKEN_URL=fake.url + "/token",
                     GMAIL_API_BASE_URL=fake.url,
                     GOOGLE_CLIENT_ID="itest-client",
                     GOOGLE_CLIENT_SECRET=CLIENT_SECRET,
                     **extra)
    ctx.state["p"] = p
    stored = seal(REFRESH_TOKEN, "mailboxes.refresh_token:" + MAILBOX) if sealing \
        else REFRESH_TOKEN
    p.query("INSERT INTO mailboxes (email, refresh_token, history_id) VALUES (%s, %s, %s)",
            (MAILBOX, stored, 1843500))
    ctx.state["jwts"] = []
    ctx.state["signatures"] = []


def test_traffic_with_secrets_right_and_wrong(ctx):
    p = ctx.state["p"]
    q = urllib.parse.quote
    before = p.max_event_id()
    posts = 0

    def post(path, body, headers=None):
        nonlocal posts
        r = p.post(path, body, headers or {})
        check_eq(r.status, 200, "POST %s" % path[:60])
        posts += 1

    sms = harness.SMS_PATH
    # RingCentral: the right token, a wrong one, the secret where it does not belong.
    post(sms, harness.sms_body("9300000001"), {"Verification-Token": VERIFICATION_TOKEN})
    post(sms, harness.sms_body("9300000002"), {"Verification-Token": "vt-wrong-value"})
    post(sms + "?token=" + q(VERIFICATION_TOKEN), harness.sms_body("9300000003"))
    post(sms + "?auth=" + q(VERIFICATION_TOKEN) + "&x=1", harness.sms_body("9300000004"),
         {"Verification-Token": VERIFICATION_TOKEN})
    post(sms, harness.sms_body("9300000005"),
         {"Authorization": "Bearer " + VERIFICATION_TOKEN, "X-Request-Id": WEBHOOK_SECRET})
    post(harness.GMAIL_PATH, push_body("m-1"), {"Verification-Token": VERIFICATION_TOKEN})
    # The HMAC scheme: a right and a wrong signature, the secret itself as the signature.
    body = harness.sms_body("9300000006")
    sig = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    ctx.state["signatures"] += [sig, base64.b64encode(bytes.fromhex(sig)).decode()]
    post(sms, body, {"X-RingCentral-Signature": "sha256=" + sig})
    post(sms, harness.sms_body("9300000007"), {"X-RingCentral-Signature": sig})
    post(sms, harness.sms_body("9300000008"), {"X-RingCentral-Signature": WEBHOOK_SECRET})
    # Gmail: ?token= right (percent-encoded, as a client must send it), wrong, raw in the
    # User-Agent, as a bearer; a valid JWT and a JWT of the wrong audience.
    post(harness.GMAIL_PATH + "?token=" + q(PUSH_TOKEN, safe=""), push_body("m-2"))
    post(harness.GMAIL_PATH + "?token=not-it&token=" + q(PUSH_TOKEN, safe=""), push_body("m-3"))
    post(harness.GMAIL_PATH + "?x=1&token=wrong", push_body("m-4"),
         {"User-Agent": "agent " + PUSH_TOKEN})
    post(harness.GMAIL_PATH, push_body("m-5"), {"Authorization": "Bearer " + PUSH_TOKEN})
    good, other = mint(), mint("--aud", "https://evil.example.net/")
    ctx.state["jwts"] += [good, other]
    post(harness.GMAIL_PATH, push_body("m-6"), {"Authorization": "Bearer " + good})
    post(harness.GMAIL_PATH, push_body("m-7"), {"Authorization": "Bearer " + other})
    rows = p.wait_new_events(before, posts, timeout=30)
    check_eq(len(rows), posts, "one webhook_events row per request")
    outcomes = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        for name in ("verification-token", "authorization", "x-ringcentral-signature"):
            if name in r["headers"]:
                check_eq(r["headers"][name], "[redacted]", "stored header %s" % name)
    check(outcomes.get("rejected", 0) >= 6 and outcomes.get("stored", 0) >= 3,
          "a mix of accepted and rejected requests: %r", outcomes)
    # The Gmail pushes that passed fetched mail with the refresh token (so the token, the
    # client secret and the access tokens were all in use).
    check(p.count("communications", "provider = 'gmail'") >= 1, "e-mail fetched")
    check(ctx.state["fake"].count("token") >= 1, "an access token was issued")


def _forms(secret):
    """Every way a secret could have been written: as is, percent-encoded (both
    flavours), JSON-escaped, base64."""
    s = secret.encode()
    return {s, urllib.parse.quote(secret, safe="").encode(),
            urllib.parse.quote_plus(secret, safe="").encode(),
            json.dumps(secret)[1:-1].encode(), base64.b64encode(s)}


def test_no_secret_in_database_or_logs(ctx):
    p, fake = ctx.state["p"], ctx.state["fake"]
    p.stop()  # every log line is written, LeakSanitizer included
    dump = p.pg.pg_dump()
    check(b"CREATE TABLE public.webhook_events" in dump and len(dump) > 10000,
          "the dump holds the schema and data")
    logs = {}
    for path in p.log_paths() + [p.pg.logfile]:
        with open(path, "rb") as f:
            logs[os.path.basename(path)] = f.read()
    check(sum(len(v) for v in logs.values()) > 5000, "the logs say something")
    with fake.lock:
        access = list(fake.tokens)
    check(len(access) >= 1, "access tokens to look for")
    secrets = {"verification token": VERIFICATION_TOKEN, "webhook secret": WEBHOOK_SECRET,
               "gmail push token": PUSH_TOKEN, "google client secret": CLIENT_SECRET,
               "database password": DB_PASSWORD}
    for i, jwt in enumerate(ctx.state["jwts"]):
        secrets["jwt %d" % i] = jwt
        secrets["jwt %d signature" % i] = jwt.rsplit(".", 1)[1]
    for i, sig in enumerate(ctx.state["signatures"]):
        secrets["hmac signature %d" % i] = sig
    for i, token in enumerate(access):
        secrets["access token %d" % i] = token
    in_logs_only = {"refresh token": REFRESH_TOKEN}
    if ctx.state["sealing"]:
        secrets.update(in_logs_only)
        in_logs_only = {}
        check(p.scalar("SELECT refresh_token FROM mailboxes WHERE email = %s",
                       (MAILBOX,)).startswith("v1:"), "the refresh token is sealed")
    else:
        print("   (sb-enricher does not read SWITCHBOARD_SECRET_KEY yet: the refresh token is "
              "checked in the logs only)")
    hits = []
    for what, secret in list(secrets.items()) + list(in_logs_only.items()):
        for form in _forms(secret):
            if what not in in_logs_only and form in dump:
                at = dump.index(form)
                hits.append("%s in the database dump: ...%r..." % (
                    what, dump[max(0, at - 120):at + 40]))
            for name, text in logs.items():
                if form in text:
                    at = text.index(form)
                    hits.append("%s in %s: ...%r..." % (what, name, text[max(0, at - 120):at + 40]))
    check(not hits, "secrets found:\n  " + "\n  ".join(hits[:20]))
    print("   searched %d secrets x 5 encodings in a %d-byte dump and %d log files (%d bytes)" % (
        len(secrets) + len(in_logs_only), len(dump), len(logs), sum(map(len, logs.values()))))


if __name__ == "__main__":
    harness.run([test_traffic_with_secrets_right_and_wrong, test_no_secret_in_database_or_logs],
                setup=setup)
