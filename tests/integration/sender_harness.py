"""What test_sender, test_timeline and test_sse share: sb-sender and sb-streamer started
next to a harness.Pipeline (they join pipeline.stages, so the pipeline's teardown and its
sanitizer check cover them), the fakes' credentials, and small waits.

Not a test itself (CMake runs test_*.py only)."""

import json
import os
import signal
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import fake_google  # noqa: E402
import fake_ringcentral  # noqa: E402

SENDER = os.path.join(harness.BUILD_DIR, "sender", "sb-sender")
STREAMER = os.path.join(harness.BUILD_DIR, "streamer", "sb-streamer")

MAILBOX = "support@example.com"
REFRESH_TOKEN = "1//rt-sender-itest-Hq2Wm9Kd"
GOOGLE_CLIENT = ("itest-client", "itest-client-secret")
OUR_NUMBER = "+16505550100"  # the fixtures' Front Desk
MARIA_E164 = "+14155550134"
STREAM_TOKEN = "stream-token-itest-7Gh3Lq"
SECRET_KEY = "8f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100"


def seal(plaintext, context):
    """sb_secretbox_seal in Python ("v1:" + base64(nonce | ciphertext | tag), AES-256-GCM,
    the context as additional data), or None without the cryptography package."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return None
    import base64
    nonce = os.urandom(12)
    box = AESGCM(bytes.fromhex(SECRET_KEY)).encrypt(nonce, plaintext.encode(), context.encode())
    return "v1:" + base64.b64encode(nonce + box).decode()

_BASE_ENV = ("PATH", "HOME", "LANG", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def fakes():
    """A fake RingCentral and a fake Google (started)."""
    rc = fake_ringcentral.FakeRingCentral()
    google = fake_google.FakeGoogle(harness.FIXTURES_DIR, client_id=GOOGLE_CLIENT[0],
                                    client_secret=GOOGLE_CLIENT[1]).start()
    return rc, google


def provider_env(rc, google):
    """The provider settings every stage that calls them gets."""
    return {"RINGCENTRAL_SERVER_URL": rc.url,
            "RINGCENTRAL_CLIENT_ID": fake_ringcentral.CLIENT_ID,
            "RINGCENTRAL_CLIENT_SECRET": fake_ringcentral.CLIENT_SECRET,
            "RINGCENTRAL_JWT": fake_ringcentral.JWT,
            "GOOGLE_TOKEN_URL": google.url + "/token",
            "GMAIL_API_BASE_URL": google.url,
            "GOOGLE_CLIENT_ID": GOOGLE_CLIENT[0],
            "GOOGLE_CLIENT_SECRET": GOOGLE_CLIENT[1]}


def pipeline(ctx, rc, google, **overrides):
    """The pipeline with the enricher pointed at the fakes, and the mailbox connected."""
    env = provider_env(rc, google)
    env.update(ENRICHER_HTTP_BACKOFF_MS="50", ENRICHER_HTTP_ATTEMPTS="3")
    env.update(overrides)
    p = ctx.pipeline(**env)
    p.query("INSERT INTO mailboxes (email, refresh_token, history_id) VALUES (%s, %s, %s)",
            (MAILBOX, REFRESH_TOKEN, 1843500))
    return p


def _env(p, extra):
    env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
    env.update({"DATABASE_URL": p.pg.url, "LOG_LEVEL": "debug", "DEFAULT_COUNTRY_CODE": "1"})
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def add_stage(p, name, binary, env, port_key, port):
    """Start binary as pipeline stage `name` (it joins p.stages for teardown)."""
    st = harness.StageProcess(name, binary, env, os.path.join(p.tmp, name + ".log"))
    p.stages[name] = st
    p.ports[port_key] = port
    st.start()
    return st


def start_sender(p, rc, google, name="sender", **extra):
    """sb-sender against the fakes; returns the StageProcess. Short timings for tests:
    a NOTIFY must be what wakes it (SENDER_POLL_MS is long unless a test says otherwise)."""
    port = harness.free_port()
    env = provider_env(rc, google)
    env.update({"METRICS_LISTEN": "127.0.0.1:%d" % port,
                "RINGCENTRAL_SMS_FROM": OUR_NUMBER,
                "SENDER_POLL_MS": "60000",
                "SENDER_BACKOFF_MS": "200",
                "SENDER_BACKOFF_MAX_MS": "1000",
                "SENDER_HTTP_TIMEOUT_MS": "2000",
                "SENDER_RECONCILE_AFTER_MS": "3000",
                "SENDER_VERIFY_DELAY_MS": "300",
                "SENDER_LEASE_MS": "60000",
                "SWITCHBOARD_SECRET_KEY": SECRET_KEY})
    env.update(extra)
    st = add_stage(p, name, SENDER, _env(p, env), name + "_metrics", port)
    wait_http(port, "/health", st)
    return st


def start_streamer(p, name="streamer", **extra):
    port, metrics = harness.free_ports(2)
    env = {"STREAM_LISTEN": "127.0.0.1:%d" % port, "STREAM_TOKEN": STREAM_TOKEN,
           "METRICS_LISTEN": "127.0.0.1:%d" % metrics}
    env.update(extra)
    st = add_stage(p, name, STREAMER, _env(p, env), name + "_metrics", metrics)
    p.ports[name] = port
    wait_http(metrics, "/health", st)
    return st, port


def wait_http(port, path, st, timeout=15):
    def up():
        if not st.alive():
            raise harness.TestFailure("%s exited (rc %s):\n%s" % (
                st.name, st.proc.returncode, harness.tail(st.logpath)))
        try:
            return harness.http_request(port, "GET", path, timeout=2).status == 200
        except OSError:
            return False
    check(harness.wait_until(up, timeout), "%s did not answer on port %d", st.name, port)


def queue(p, channel, body, **cols):
    """INSERT an outbox row as the application does; returns its id."""
    names = ["channel", "body"] + list(cols)
    values = [channel, body] + list(cols.values())
    return p.scalar("INSERT INTO outbox (%s) VALUES (%s) RETURNING id" % (
        ", ".join(names), ", ".join(["%s"] * len(names))), values)


def outbox_row(p, oid):
    rows = p.dict_rows("SELECT * FROM outbox WHERE id = %s", (oid,))
    return rows[0] if rows else None


def wait_status(p, oid, statuses=("sent", "failed"), timeout=15):
    """Wait until the outbox row reaches one of statuses; returns the row."""
    got = {}

    def done():
        got["row"] = outbox_row(p, oid)
        return got["row"] and got["row"]["status"] in statuses

    harness.wait_until(done, timeout)
    row = got.get("row")
    check(row is not None and row["status"] in statuses,
          "outbox %s did not reach %s in %ss: %r", oid, statuses, timeout, row)
    return row


def sms_sent(rc):
    """What the fake RingCentral received on POST .../sms, in order."""
    return rc.stats()["sms_sent"]


def gmail_push(p, history_id=1843562):
    """A Pub/Sub push for the mailbox (GMAIL_PUSH_TOKEN scheme); returns its event row."""
    data = json.dumps({"emailAddress": MAILBOX, "historyId": str(history_id)}).encode()
    import base64
    body = json.dumps({"message": {"data": base64.b64encode(data).decode(),
                                   "messageId": str(time.time_ns()),
                                   "publishTime": "2026-11-24T15:21:07.846Z"},
                       "subscription": "projects/example-project/subscriptions/x"}).encode()
    before = p.max_event_id()
    r = p.post(harness.GMAIL_PATH + "?token=" + urllib.parse.quote(harness.GMAIL_PUSH_TOKEN),
               body)
    check_eq(r.status, 200, "HTTP status of the Gmail push")
    rows = p.wait_new_events(before, 1, timeout=20)
    check(len(rows) == 1, "expected one webhook_events row for the push, got %d", len(rows))
    return rows[0]


def post_sms_event(p, body):
    """POST a RingCentral SMS webhook body; returns its webhook_events row."""
    before = p.max_event_id()
    r = p.post_sms(body)
    check_eq(r.status, 200, "HTTP status of the SMS webhook")
    rows = p.wait_new_events(before, 1, timeout=20)
    check(len(rows) == 1, "expected one webhook_events row, got %d", len(rows))
    return rows[0]


def log_has(st, text):
    with open(st.logpath, "rb") as f:
        return text.encode() in f.read()


def stop_clean(st):
    """SIGTERM: the stage must exit 0 (after finishing what it has in hand)."""
    rc = st.stop(timeout=15)
    check_eq(rc, 0, "exit status of %s after SIGTERM" % st.name)


def kill9(st):
    st.kill(signal.SIGKILL)
    check(not st.alive(), "%s still alive after SIGKILL", st.name)


def sse_connect(port, token=STREAM_TOKEN, path="/api/communications/stream", headers=None,
                timeout=10):
    """An open SSE stream: (socket, status, response headers). The caller reads events with
    SseReader."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    h = {"Host": "127.0.0.1", "Accept": "text/event-stream"}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    req = "GET %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in h.items()))
    s.sendall(req.encode())
    reader = SseReader(s)
    status, hdrs = reader.read_head()
    return s, status, hdrs, reader


class SseReader:
    """Reads a text/event-stream (chunked or not) into events {"event", "data", "id"}."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.chunked = False
        self.text = b""  # de-chunked stream bytes not yet parsed
        self.ended = False

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no data in time")
        self.sock.settimeout(left)
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("stream closed")
        self.buf += d

    def read_head(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._recv(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        self.chunked = hdrs.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            self.text, self.buf = self.buf, b""
        return status, hdrs

    def _dechunk(self):
        while True:
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.ended = True  # the last chunk: the stream is over
                return
            if len(rest) < size + 2:
                return
            self.text += rest[:size]
            self.buf = rest[size + 2:]

    def next_event(self, timeout=5):
        """The next event (comments skipped), or raises socket.timeout / EOFError."""
        deadline = time.monotonic() + timeout
        while True:
            if self.chunked:
                self._dechunk()
            else:
                self.text += self.buf
                self.buf = b""
            while b"\n\n" in self.text:
                block, _, self.text = self.text.partition(b"\n\n")
                ev = {"event": "message", "data": None, "id": None}
                data = []
                for line in block.decode("utf-8").split("\n"):
                    if not line or line.startswith(":"):
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data":
                        data.append(v)
                    elif k in ("event", "id", "retry"):
                        ev[k] = v
                if data:
                    ev["data"] = "\n".join(data)
                    return ev
            if self.ended:
                raise EOFError("stream ended")
            self._recv(deadline)
