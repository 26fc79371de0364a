"""Hostile HTTP clients against a real sb-ingress and the pipeline behind it (issue #9,
docs/SECURITY.md "Hostile clients"). Every case has one defined outcome, and the ingress
keeps serving normal traffic during and after it: a normal SMS is posted during each
attack (200 at once) and every one of them must end up stored.

Bounded: at most 1,000 attacking sockets on loopback for ~13 s, one 10 MB body, the rest
single requests. Everything runs against one pipeline with every verification scheme on
(Verification-Token, the optional HMAC, the Pub/Sub JWT against the fixture JWKS) and the
fake Google behind the enricher, so that a replayed push meets a real mailbox."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import resource
import socket
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
REFRESH_TOKEN = "1//rt-hostile-itest-Vb6Qe2Ls"
MAX_BODY = 1048576

# The ingress's deadlines (ingress/ingress_http.c): headers within 10 s, bodies at
# 1 KiB/s after a 10 s grace, an oversized body discarded for 10 s at most; the sweep
# runs every 100 ms.
HEADER_TIMEOUT_S = 10
BODY_GRACE_S = 10
DISCARD_S = 10
SLOWLORIS_SOCKETS = 1000
SLOW_BODY_SOCKETS = 20


# ---------------------------------------------------------------------------------------
# Helpers


def mint(*args):
    """A JWT minted now (the fixture tokens are for a fixed clock in the past)."""
    out = subprocess.run(["bash", MINT, "--now", str(int(time.time()))] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip()


def push_body(marker, address=MAILBOX, history_id="1843562"):
    data = json.dumps({"emailAddress": address, "historyId": history_id}).encode()
    return json.dumps({"message": {"data": base64.b64encode(data).decode(),
                                   "messageId": marker,
                                   "publishTime": "2026-11-24T15:21:07.846Z"},
                       "subscription": "projects/example-project/subscriptions/x"}).encode()


def serving(ctx, tag):
    """Post one normal SMS now: it must be answered 200 at once; it is checked as stored
    at the end (test_every_normal_sms_was_stored)."""
    p = ctx.state["p"]
    n = len(ctx.state["normal"])
    msg_id = "9100%08d" % n
    t = time.monotonic()
    # lower case: the attacks' markers are upper case and must not match this body
    r = p.post_sms(harness.sms_body(msg_id, text="normal traffic during %s" % tag.lower()))
    took = time.monotonic() - t
    check_eq(r.status, 200, "normal SMS during %s" % tag)
    check(took < 3.0, "normal SMS during %s took %.2fs", tag, took)
    ctx.state["normal"].append(msg_id)
    return took


def event_with(p, marker, timeout=20):
    """The webhook_events row whose raw body contains marker (bytes)."""
    rows = {}

    def found():
        rows["r"] = p.dict_rows("SELECT * FROM webhook_events WHERE position(%s in body) > 0",
                                (marker,))
        return rows["r"]

    harness.wait_until(found, timeout)
    r = rows.get("r") or []
    check(len(r) == 1, "one webhook_events row with %r, got %d", marker, len(r))
    return r[0]


def check_outcome(p, marker, outcome, reason):
    ev = event_with(p, marker)
    check_eq((ev["outcome"], ev["reason"]), (outcome, reason), "outcome of %r" % marker)
    if outcome == "rejected":
        check(ev["communication_id"] is None, "a rejected event has no communication")
    return ev


def metric(p, name):
    """Value of one exposition line of the ingress's /metrics, e.g.
    'sb_http_connections_cut_total{reason="header_timeout"}'."""
    for line in p.get(harness.METRICS_PATH).body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def ingress_rss_kb(p):
    with open("/proc/%d/status" % p.stages["ingress"].proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw(p, data, timeout=10):
    """Send raw bytes on a new connection; return (status, response bytes) once the head
    of a response arrived or the server closed."""
    s = socket.create_connection(("127.0.0.1", p.http_port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and b"\r\n\r\n" not in out:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.") else 0
    return status, out


def sms_head(length=None, chunked=False, extra=()):
    lines = ["POST %s HTTP/1.1" % harness.SMS_PATH, "Host: 127.0.0.1",
             "Content-Type: application/json",
             "Verification-Token: %s" % harness.VERIFICATION_TOKEN]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def closed_by_peer(s):
    """Without waiting: has the server closed this socket (EOF or reset)? (No select():
    a thousand sockets are past its FD_SETSIZE.)"""
    timeout = s.gettimeout()
    s.setblocking(False)
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:  # reset
        return True
    finally:
        s.settimeout(timeout)


# ---------------------------------------------------------------------------------------
# Setup


def setup(ctx):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fake = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id="itest-client",
                                  client_secret="itest-client-secret").start()
    ctx.state["fake"] = fake
    ctx.state["secret"] = harness.WEBHOOK_SECRET
    p = ctx.pipeline(MAX_BODY_BYTES=str(MAX_BODY),
                     RINGCENTRAL_WEBHOOK_SECRET=harness.WEBHOOK_SECRET,
                     GMAIL_PUSH_AUDIENCE=AUDIENCE,
                     GMAIL_PUSH_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
                     GOOGLE_JWKS_FILE=harness.fixture_path("google", "test-jwks.json"),
                     GOOGLE_TOKEN_URL=fake.url + "/token",
                     GMAIL_API_BASE_URL=fake.url,
                     GOOGLE_CLIENT_ID="itest-client",
                     GOOGLE_CLIENT_SECRET="itest-client-secret")
    ctx.state["p"] = p
    ctx.state["normal"] = []
    p.query("INSERT INTO mailboxes (email, refresh_token, history_id) VALUES (%s, %s, %s)",
            (MAILBOX, REFRESH_TOKEN, 1843500))


# ---------------------------------------------------------------------------------------
# Slow clients: slowloris, a body slower than the minimum rate, an endless body, all at
# once while normal traffic flows.


def _slowloris(p, out):
    socks = []
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % harness.SMS_PATH.encode()
    for _ in range(SLOWLORIS_SOCKETS):
        s = socket.create_connection(("127.0.0.1", p.http_port), timeout=5)
        s.sendall(head)
        s.setblocking(False)
        socks.append(s)
    slow = []
    for i in range(SLOW_BODY_SOCKETS):
        s = socket.create_connection(("127.0.0.1", p.http_port), timeout=5)
        s.sendall(sms_head(length=2000))
        s.setblocking(False)
        slow.append(s)
    out["opened"] = time.monotonic()
    closed = {}
    deadline = out["opened"] + max(HEADER_TIMEOUT_S, BODY_GRACE_S) + 4
    sec = 0
    while time.monotonic() < deadline and len(closed) < len(socks) + len(slow):
        for group, lst in (("loris", socks), ("body", slow)):
            for i, s in enumerate(lst):
                key = (group, i)
                if key in closed:
                    continue
                if closed_by_peer(s):
                    closed[key] = time.monotonic() - out["opened"]
                    continue
                try:  # one more byte: a header name character, or one body byte
                    s.send(b"X" if group == "loris" else b"SLOWBODY-MARK"[sec % 13:sec % 13 + 1])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError, OSError):
                    closed[key] = time.monotonic() - out["opened"]
        sec += 1
        time.sleep(1.0)
    out["closed"] = closed
    for s in socks + slow:
        s.close()


def _endless_body(p, out):
    """A chunked body at ~1 MB/s that never ends."""
    s = socket.create_connection(("127.0.0.1", p.http_port), timeout=5)
    s.sendall(sms_head(chunked=True))
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
    t0 = time.monotonic()
    out["closed"] = None
    try:
        while time.monotonic() - t0 < DISCARD_S + 6:
            s.sendall(chunk)
            if closed_by_peer(s):
                break
            time.sleep(0.06)
        else:
            return
        out["closed"] = time.monotonic() - t0
    except (BrokenPipeError, ConnectionResetError, OSError):
        out["closed"] = time.monotonic() - t0
    finally:
        s.close()


def test_slow_clients_are_cut_while_normal_traffic_flows(ctx):
    p = ctx.state["p"]
    cut_h = metric(p, 'sb_http_connections_cut_total{reason="header_timeout"}')
    cut_b = metric(p, 'sb_http_connections_cut_total{reason="slow_body"}')
    cut_e = metric(p, 'sb_http_connections_cut_total{reason="endless_body"}')
    loris, endless = {}, {}
    # A client that keeps its connection alive between webhooks is not an attacker: idle
    # after an answer, it keeps the connection for MHD's 30 s idle timeout.
    keep = http.client.HTTPConnection("127.0.0.1", p.http_port, timeout=10)
    sms_headers = {"Content-Type": "application/json",
                   "Verification-Token": harness.VERIFICATION_TOKEN}
    keep.request("POST", harness.SMS_PATH, harness.sms_body("9100900001"), sms_headers)
    r = keep.getresponse()
    r.read()
    check_eq(r.status, 200, "first request on a kept-alive connection")
    ctx.state["normal"].append("9100900001")
    threads = [threading.Thread(target=_slowloris, args=(p, loris)),
               threading.Thread(target=_endless_body, args=(p, endless))]
    for t in threads:
        t.start()
    worst = 0.0
    t0 = time.monotonic()
    while any(t.is_alive() for t in threads):
        worst = max(worst, serving(ctx, "slowloris"))
        time.sleep(0.5)
        check(time.monotonic() - t0 < 60, "the slow-client attack did not end")
    for t in threads:
        t.join()
    keep.request("POST", harness.SMS_PATH, harness.sms_body("9100900002"), sms_headers)
    r = keep.getresponse()
    r.read()
    check_eq(r.status, 200, "second request on the same connection, idle for %.0f s" % (
        time.monotonic() - t0))
    keep.close()
    ctx.state["normal"].append("9100900002")
    closed = loris["closed"]
    lor = [v for (g, _i), v in closed.items() if g == "loris"]
    body = [v for (g, _i), v in closed.items() if g == "body"]
    check_eq(len(lor), SLOWLORIS_SOCKETS, "slowloris connections closed by the ingress")
    check_eq(len(body), SLOW_BODY_SOCKETS, "slow-body connections closed by the ingress")
    # Not before the deadline (a byte a second is a live client to MHD), and soon after.
    check(min(lor) >= HEADER_TIMEOUT_S - 1 and max(lor) <= HEADER_TIMEOUT_S + 3,
          "slowloris closed between %.1fs and %.1fs", min(lor), max(lor))
    check(min(body) >= BODY_GRACE_S - 1 and max(body) <= BODY_GRACE_S + 3,
          "slow bodies closed between %.1fs and %.1fs", min(body), max(body))
    check(endless["closed"] is not None and DISCARD_S - 1 <= endless["closed"] <= DISCARD_S + 4,
          "endless chunked body closed after %r s", endless["closed"])
    d_h = metric(p, 'sb_http_connections_cut_total{reason="header_timeout"}') - cut_h
    d_b = metric(p, 'sb_http_connections_cut_total{reason="slow_body"}') - cut_b
    check(d_h >= SLOWLORIS_SOCKETS, "header_timeout cuts counted: %d", d_h)
    check(d_b >= SLOW_BODY_SOCKETS, "slow_body cuts counted: %d", d_b)
    check(metric(p, 'sb_http_connections_cut_total{reason="endless_body"}') - cut_e >= 1,
          "endless_body cut counted")
    check(p.count("webhook_events", "position('SLOWBODY'::bytea in body) > 0") == 0,
          "nothing of a slow body was stored")
    print("   slowloris %d closed at %.1f-%.1fs, slow bodies at %.1f-%.1fs, endless body at "
          "%.1fs; slowest normal SMS meanwhile %.3fs" % (
              len(lor), min(lor), max(lor), min(body), max(body), endless["closed"], worst))


# ---------------------------------------------------------------------------------------
# Big bodies and header floods


def test_10mb_chunked_body_is_413_with_bounded_memory(ctx):
    p = ctx.state["p"]
    rss0 = ingress_rss_kb(p)
    chunk = b"[" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 160 + [b"0\r\n\r\n"]  # 10 MiB
    r = harness.raw_http(p.http_port, sms_head(chunked=True), chunks, timeout=30)
    check_eq(r.status, 413, "10 MiB chunked body")
    rss1 = ingress_rss_kb(p)
    serving(ctx, "10 MB chunked body")
    # Declared up front: refused before a byte of the body is read.
    st, _ = raw(p, sms_head(length=10 * 1024 * 1024))
    check_eq(st, 413, "Content-Length of 10 MiB")
    check(rss1 - rss0 < 8 * 1024, "ingress RSS grew by %d KiB for a 10 MiB body", rss1 - rss0)
    print("   ingress VmRSS %d KiB -> %d KiB" % (rss0, rss1))


def test_header_floods(ctx):
    p = ctx.state["p"]
    cases = [
        ("one 100 KB header", sms_head(extra=["X-Flood: " + "a" * 100000]), 431),
        ("10,000 headers", sms_head(extra=["X-F%d: v" % i for i in range(10000)]), 431),
        ("100 KB URL", b"POST /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("header line without a colon", b"POST %s HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"
         % harness.SMS_PATH.encode(), 400),
        ("negative Content-Length", sms_head(extra=["Content-Length: -1"]), 400),
    ]
    rss0 = ingress_rss_kb(p)
    for name, data, want in cases:
        st, _ = raw(p, data)
        check_eq(st, want, name)
        serving(ctx, name)
    # Fifty floods at once: MHD's 64 KiB per-connection buffer bounds each of them.
    results = []

    def flood():
        results.append(raw(p, sms_head(extra=["X-Flood: " + "b" * 200000]))[0])

    threads = [threading.Thread(target=flood) for _ in range(50)]
    for t in threads:
        t.start()
    serving(ctx, "50 parallel header floods")
    for t in threads:
        t.join()
    check_eq(sorted(set(results)), [431], "statuses of 50 parallel floods")
    check(ingress_rss_kb(p) - rss0 < 16 * 1024, "ingress RSS grew by %d KiB",
          ingress_rss_kb(p) - rss0)


# ---------------------------------------------------------------------------------------
# Bodies that are not what they claim: every one is acknowledged (it is durable) and
# stored as one webhook_events row with a defined outcome; none becomes a communication.


def _post_marked(ctx, body, marker, headers=None):
    p = ctx.state["p"]
    check(marker in body, "marker in body")
    r = p.post_sms(body, extra_headers=headers)
    check_eq(r.status, 200, "acknowledged")
    serving(ctx, marker.decode("latin-1"))
    return event_with(p, marker)


def test_invalid_utf8_and_nul_in_json(ctx):
    p = ctx.state["p"]
    good = harness.sms_body("9200000001", text="MARK-UTF8-PLACEHOLDER")
    bodies = {
        b"MARK-UTF8": good.replace(b"MARK-UTF8-PLACEHOLDER", b"MARK-UTF8 \xff\xfe \xc3("),
        b"MARK-NUL": good.replace(b"MARK-UTF8-PLACEHOLDER", b"MARK-NUL \x00 raw"),
        b"MARK-ESCNUL": good.replace(b"MARK-UTF8-PLACEHOLDER", b"MARK-ESCNUL \\u0000 escaped"),
        b"MARK-SURR": good.replace(b"MARK-UTF8-PLACEHOLDER", b"MARK-SURR \xed\xa0\x80 cesu"),
    }
    for marker, body in bodies.items():
        ev = _post_marked(ctx, body, marker)
        check_eq((ev["outcome"], ev["reason"]), ("rejected", "malformed_json"), marker)
        check_eq(bytes(ev["body"]), body, "raw body kept byte for byte (%s)" % marker)
    check_eq(p.count("communications", "external_id = '9200000001'"), 0, "no communication")
    # Invalid UTF-8 and a NUL in a header value: the event is still stored.
    body = harness.sms_body("9200000002", text="MARK-HDR")
    data = sms_head(length=len(body), extra=["User-Agent: evil-PLACEHOLDER"]) + body
    st, _ = raw(p, data.replace(b"evil-PLACEHOLDER", b"evil\xff\x00\xfe"))
    check_eq(st, 200, "header with invalid UTF-8 and NUL")
    ev = event_with(p, b"MARK-HDR")
    check_eq(ev["outcome"], "stored", "outcome with a garbled User-Agent")
    check(isinstance(ev["headers"], dict), "headers are a JSON object")


def test_deeply_nested_json(ctx):
    for marker, open_, close in ((b"MARK-NEST-ARR", b"[", b"]"),
                                 (b"MARK-NEST-OBJ", b'{"a":', b"}")):
        body = b'{"m":"' + marker + b'","x":' + open_ * 100000 + b"1" + close * 100000 + b"}"
        ev = _post_marked(ctx, body, marker)
        check_eq((ev["outcome"], ev["reason"]), ("rejected", "malformed_json"), marker)


def test_huge_numbers(ctx):
    p = ctx.state["p"]
    base = json.loads(harness.sms_body("1", text="PLACEHOLDER"))
    for marker, id_text in ((b"MARK-NUM-REAL", b"1e400"),
                            (b"MARK-NUM-INT", b"123456789012345678901234567890"),
                            (b"MARK-NUM-LONG", b"9" * 100000)):
        doc = dict(base, body=dict(base["body"], subject=marker.decode()))
        body = json.dumps(doc).encode().replace(b'"id": "1"', b'"id": ' + id_text, 1)
        check(id_text in body, "id replaced")
        ev = _post_marked(ctx, body, marker)
        check_eq((ev["outcome"], ev["reason"]), ("rejected", "malformed_json"), marker)
    # Above 2^53 but within 64 bits: kept exactly, as text.
    doc = dict(base, body=dict(base["body"], subject="MARK-NUM-2P53"))
    body = json.dumps(doc).encode().replace(b'"id": "1"', b'"id": 9007199254740993', 1)
    ev = _post_marked(ctx, body, b"MARK-NUM-2P53")
    check_eq(ev["outcome"], "stored", "an id above 2^53")
    check_eq(p.scalar("SELECT external_id FROM communications WHERE id = %s",
                      (ev["communication_id"],)), "9007199254740993", "exact id")


def test_duplicate_keys(ctx):
    p = ctx.state["p"]
    body = harness.sms_body("9200000003", text="MARK-DUPKEY")
    body = body.replace(b'"id":"9200000003"', b'"id":"9200000003","id":"9200000004"', 1)
    check(b'"id":"9200000004"' in body, "duplicate id in body")
    ev = _post_marked(ctx, body, b"MARK-DUPKEY")
    # One JSON parser decides (the writer's jansson): the last member wins, consistently.
    check_eq(ev["outcome"], "stored", "outcome")
    check_eq(p.scalar("SELECT external_id FROM communications WHERE id = %s",
                      (ev["communication_id"],)), "9200000004", "the last duplicate wins")


# ---------------------------------------------------------------------------------------
# Forged credentials: acknowledged, stored as 'rejected' with the reason, never a
# communication. A correct credential on the same path is the control.


def test_forged_jwts(ctx):
    p = ctx.state["p"]
    other = harness.fixture_path("google", "test-rsa-key-other.pem")
    cases = [
        ("MARK-JWT-NONE", ["--unsigned"], "bad_alg"),
        ("MARK-JWT-HS256-PUBKEY", ["--hs256-pubkey"], "bad_alg"),
        ("MARK-JWT-FORGED-KID", ["--kid", "forged-kid-0000", "--key", other], "unknown_kid"),
        ("MARK-JWT-WRONG-KEY", ["--wrong-key"], "bad_signature"),
        ("MARK-JWT-EXPIRED", ["--exp-offset", "-3600", "--iat-offset", "-7200"], "expired"),
        ("MARK-JWT-OTHER-AUD", ["--aud", "https://evil.example.net/push"], "bad_aud"),
        ("MARK-JWT-OTHER-ISS", ["--iss", "https://evil.example.net"], "bad_iss"),
        ("MARK-JWT-OTHER-SA", ["--email", "attacker@evil.example.net"], "bad_email"),
    ]
    for marker, args, reason in cases:
        r = p.post(harness.GMAIL_PATH, push_body(marker),
                   {"Authorization": "Bearer " + mint(*args)})
        check_eq(r.status, 200, "acknowledged: %s" % marker)
        serving(ctx, marker)
        check_outcome(p, marker.encode(), "rejected", reason)
    # No Authorization and no ?token=: the token scheme's reason.
    r = p.post(harness.GMAIL_PATH, push_body("MARK-JWT-ABSENT"))
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-JWT-ABSENT", "rejected", "missing_bearer")


def test_query_of_many_token_parameters(ctx):
    """?token=&token=&...&x=AAAA overflowed the verifier's token= redaction buffer
    (found by fuzz/fuzz_envelope.c, fixed in common/sb_envelope.c): now rejected, and
    every stage lives on."""
    p = ctx.state["p"]
    query = "?" + "token=&" * 64 + "x=" + "A" * 4000
    r = p.post(harness.GMAIL_PATH + query, push_body("MARK-QUERY-TOKENS"))
    check_eq(r.status, 200, "acknowledged")
    ev = check_outcome(p, b"MARK-QUERY-TOKENS", "rejected", "missing_bearer")
    check(harness.GMAIL_PUSH_TOKEN not in json.dumps(ev["headers"]), "no secret in headers")
    for name, st in p.stages.items():
        check(st.alive(), "sb-%s still running", name)
    serving(ctx, "many token= parameters")


def test_wrong_verification_token_and_hmac(ctx):
    p = ctx.state["p"]
    secret = ctx.state["secret"].encode()
    body = harness.sms_body("9200000010", text="MARK-VT-WRONG")
    r = p.post_sms(body, token="vt-wrong-" + "x" * 24)
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-VT-WRONG", "rejected", "bad_verification_token")
    # No token; a signature of another body, made with the right secret.
    body = harness.sms_body("9200000011", text="MARK-HMAC-OTHER")
    sig = hmac.new(secret, harness.sms_body("9200000011", text="what was signed"),
                   hashlib.sha256).hexdigest()
    r = p.post(harness.SMS_PATH, body, {"X-RingCentral-Signature": "sha256=" + sig})
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-HMAC-OTHER", "rejected", "bad_signature")
    # A signature of the exact body, by another secret.
    body = harness.sms_body("9200000012", text="MARK-HMAC-KEY")
    sig = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    r = p.post(harness.SMS_PATH, body, {"X-RingCentral-Signature": sig})
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-HMAC-KEY", "rejected", "bad_signature")
    # Neither: rejected, and the secret in a query string does not count either.
    body = harness.sms_body("9200000013", text="MARK-NO-CRED")
    r = p.post(harness.SMS_PATH + "?token=" + harness.VERIFICATION_TOKEN, body)
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-NO-CRED", "rejected", "missing_verification_token")
    # Control: the right signature of the exact body is accepted.
    body = harness.sms_body("9200000014", text="MARK-HMAC-GOOD")
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = p.post(harness.SMS_PATH, body, {"X-RingCentral-Signature": sig})
    check_eq(r.status, 200, "acknowledged")
    check_outcome(p, b"MARK-HMAC-GOOD", "stored", None)
    serving(ctx, "forged RingCentral credentials")


def test_replays_are_not_new_communications(ctx):
    p = ctx.state["p"]
    # The same Pub/Sub message twice (same messageId, same JWT): the first fetches the
    # mailbox's new mail, the second finds nothing new.
    jwt = mint()
    body = push_body("MARK-REPLAY-PUSH")
    for _ in range(2):
        r = p.post(harness.GMAIL_PATH, body, {"Authorization": "Bearer " + jwt})
        check_eq(r.status, 200, "acknowledged")
    rows = {}

    def both():
        rows["r"] = p.dict_rows("SELECT * FROM webhook_events WHERE position(%s in body) > 0 "
                                "ORDER BY id", (b"MARK-REPLAY-PUSH",))
        return len(rows["r"]) == 2

    harness.wait_until(both, 30)
    evs = rows.get("r", [])
    check_eq(len(evs), 2, "two webhook_events rows for two deliveries")
    check_eq(evs[0]["outcome"], "stored", "first delivery")
    check(evs[1]["outcome"] in ("duplicate", "ignored"), "second delivery: %r %r",
          evs[1]["outcome"], evs[1]["reason"])
    emails = p.count("communications", "provider = 'gmail'")
    check(emails >= 1, "the first delivery stored the mailbox's mail")
    # And a third, later: still nothing new.
    r = p.post(harness.GMAIL_PATH, body, {"Authorization": "Bearer " + jwt})
    check_eq(r.status, 200, "acknowledged")
    harness.wait_until(lambda: p.count("webhook_events",
                                       "position('MARK-REPLAY-PUSH'::bytea in body) > 0") == 3,
                       30)
    check_eq(p.count("communications", "provider = 'gmail'"), emails, "e-mails after a replay")
    # The same SMS twice: one communication, the second event 'duplicate'.
    sms = harness.sms_body("9200000020", text="MARK-REPLAY-SMS")
    for _ in range(2):
        check_eq(p.post_sms(sms).status, 200, "acknowledged")
    harness.wait_until(lambda: p.count("webhook_events",
                                       "position('MARK-REPLAY-SMS'::bytea in body) > 0") == 2,
                       20)
    outcomes = sorted(r[0] for r in p.query(
        "SELECT outcome FROM webhook_events WHERE position('MARK-REPLAY-SMS'::bytea in body) > 0"))
    check_eq(outcomes, ["duplicate", "stored"], "outcomes of a replayed SMS")
    check_eq(p.count("communications", "external_id = '9200000020'"), 1, "one SMS row")
    serving(ctx, "replays")


# ---------------------------------------------------------------------------------------


def test_every_normal_sms_was_stored(ctx):
    p = ctx.state["p"]
    ids = ctx.state["normal"]
    check(len(ids) >= 20, "normal traffic was posted (%d)", len(ids))
    got = p.wait_count("communications", len(ids), "external_id = ANY(%s)", (ids,), timeout=30)
    check_eq(got, len(ids), "normal SMS stored")
    for name, st in p.stages.items():
        check(st.alive(), "sb-%s still running", name)


if __name__ == "__main__":
    harness.run([
        test_slow_clients_are_cut_while_normal_traffic_flows,
        test_10mb_chunked_body_is_413_with_bounded_memory,
        test_header_floods,
        test_invalid_utf8_and_nul_in_json,
        test_deeply_nested_json,
        test_huge_numbers,
        test_duplicate_keys,
        test_forged_jwts,
        test_query_of_many_token_parameters,
        test_wrong_verification_token_and_hmac,
        test_replays_are_not_new_communications,
        test_every_normal_sms_was_stored,
    ], setup=setup)
