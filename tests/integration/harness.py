"""Integration test harness: a private PostgreSQL, the real sb-* binaries, and a tiny runner.

Only the Python standard library plus psycopg2 (python3-psycopg2). Environment (set by
tests/integration/CMakeLists.txt):
  SB_BUILD_DIR     cmake build dir: $SB_BUILD_DIR/{ingress/sb-ingress,verifier/sb-verifier,
                   enricher/sb-enricher,writer/sb-writer}
  SB_FIXTURES_DIR  shared/fixtures
  SB_SOURCE_DIR    the source tree

Everything a test starts (PostgreSQL, processes, temp dirs) is registered and torn down at
exit, also when a test fails or the run is interrupted with SIGINT/SIGTERM.
"""

import atexit
import glob
import http.client
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import psycopg2
import psycopg2.extensions

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SB_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("SB_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
FIXTURES_DIR = os.environ.get("SB_FIXTURES_DIR") or os.path.abspath(
    os.path.join(SOURCE_DIR, "..", "shared", "fixtures"))

BINARIES = {
    "ingress": os.path.join(BUILD_DIR, "ingress", "sb-ingress"),
    "verifier": os.path.join(BUILD_DIR, "verifier", "sb-verifier"),
    "enricher": os.path.join(BUILD_DIR, "enricher", "sb-enricher"),
    "writer": os.path.join(BUILD_DIR, "writer", "sb-writer"),
}
STAGES = ("writer", "enricher", "verifier", "ingress")  # start order: the receivers first

# Test secrets. The RingCentral ones are the fixtures' (they are what the fixtures were
# signed with); the Gmail one is ours.
VERIFICATION_TOKEN = None  # read from the fixture below
WEBHOOK_SECRET = None
GMAIL_PUSH_TOKEN = "gmail-push-token-itest-9Qw2Ze7Lk"

SMS_PATH = "/api/webhooks/ringcentral/sms"
CALL_PATH = "/api/webhooks/ringcentral/call"
GMAIL_PATH = "/api/webhooks/gmail/push"
HEALTH_PATH = "/api/webhooks/health"
METRICS_PATH = "/metrics"

MARIA = {"name": "Maria Lopez", "phone": "(415) 555-0134", "email": "Maria.Lopez@Example.com"}


# ---------------------------------------------------------------------------------------
# Fixtures


def fixture_path(*parts):
    return os.path.join(FIXTURES_DIR, *parts)


def fixture_bytes(*parts):
    with open(fixture_path(*parts), "rb") as f:
        return f.read()


def parse_http_fixture(*parts):
    """An HTTP request fixture (CRLF) -> (method, path, [(name, value)], body bytes)."""
    raw = fixture_bytes(*parts)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return method, path, headers, body


def header_value(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def fixture_kv(*parts):
    """key=value lines (comments skipped) -> dict."""
    out = {}
    for line in fixture_bytes(*parts).decode("utf-8").splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def sms_notification_headers():
    """The headers RingCentral sends with a notification, minus Host/Content-Length (the
    client sets those), as a dict."""
    _m, _p, headers, _b = parse_http_fixture("ringcentral", "notification-request-headers.txt")
    return {k: v for k, v in headers if k.lower() not in ("host", "content-length")}


def _load_secrets():
    global VERIFICATION_TOKEN, WEBHOOK_SECRET
    try:
        VERIFICATION_TOKEN = header_value(
            parse_http_fixture("ringcentral", "notification-request-headers.txt")[2],
            "Verification-Token")
        WEBHOOK_SECRET = fixture_kv("ringcentral", "hmac-signature.txt")["secret"]
    except OSError as e:
        print("harness: cannot read fixtures in %s: %s" % (FIXTURES_DIR, e), file=sys.stderr)


_load_secrets()


def sms_body(msg_id, from_phone="+14155550134", text="Hi, is my order ready?",
             conversation_id="7876416245344257449", to_phone="+16505550100",
             creation_time="2026-11-24T10:00:00.000Z", uuid=None):
    """A RingCentral-shaped instant SMS notification (like shared/peers/sms.lua), bytes."""
    doc = {
        "uuid": uuid or "u-%s" % msg_id,
        "event": "/restapi/v1.0/account/~/extension/~/message-store/instant?type=SMS",
        "timestamp": creation_time,
        "subscriptionId": "sub-itest",
        "ownerId": "401234569008",
        "body": {
            "id": str(msg_id),
            "to": [{"phoneNumber": to_phone, "name": "Front Desk"}],
            "from": {"phoneNumber": from_phone, "name": "Caller"},
            "type": "SMS",
            "creationTime": creation_time,
            "lastModifiedTime": creation_time,
            "readStatus": "Unread",
            "priority": "Normal",
            "attachments": [{"id": str(msg_id), "type": "Text", "contentType": "text/plain"}],
            "direction": "Inbound",
            "availability": "Alive",
            "subject": text,
            "messageStatus": "Received",
            "conversation": {"id": str(conversation_id)},
            "eventType": "Create",
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------
# Cleanup registry

_cleanups = []
_cleanup_lock = threading.Lock()


def _register_cleanup(fn):
    with _cleanup_lock:
        _cleanups.append(fn)
    return fn


def _unregister_cleanup(fn):
    with _cleanup_lock:
        if fn in _cleanups:
            _cleanups.remove(fn)


def cleanup_all():
    while True:
        with _cleanup_lock:
            if not _cleanups:
                return
            fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning the rest
            print("harness: cleanup error: %r" % (e,), file=sys.stderr)


atexit.register(cleanup_all)


def _on_signal(signum, _frame):
    # Turn SIGTERM/SIGINT into SystemExit so that finally blocks and atexit run.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


# ---------------------------------------------------------------------------------------
# Small helpers


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_ports(n):
    """n distinct free ports (held open together so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_until(predicate, timeout, interval=0.05, what=None):
    """Poll predicate() until it returns a truthy value (returned) or timeout seconds pass
    (returns the last value, falsy). Exceptions from predicate count as falsy."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        try:
            value = predicate()
        except Exception as e:  # e.g. the table does not exist yet
            value = None
            last_exc = e
        if value:
            return value
        if time.monotonic() >= deadline:
            if what:
                print("wait_until: gave up after %.1fs waiting for %s" % (timeout, what))
            return value
        time.sleep(interval)


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def _as_postgres(cmd):
    """Run as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _pg_bindir():
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    if cands:
        return cands[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("no PostgreSQL binaries (initdb) found")


# ---------------------------------------------------------------------------------------
# PostgreSQL


class Postgres:
    """A throwaway cluster: initdb into a temp dir, trust auth, TCP on a free port of
    127.0.0.1 and a unix socket inside the temp dir."""

    def __init__(self):
        self.bindir = _pg_bindir()
        self.tmp = tempfile.mkdtemp(prefix="sb-itest-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.sockdir = self.tmp
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.port = free_port()
        self.user = "postgres"
        self.dbname = "postgres"
        self.running = False
        self._cleanup = _register_cleanup(self.destroy)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust",
                   "-U", self.user, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self.start()

    @property
    def url(self):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.user, self.port, self.dbname)

    def _run(self, cmd, check=True, timeout=120):
        p = subprocess.run(_as_postgres(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=self.tmp)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (
                " ".join(cmd), p.returncode, p.stdout.decode("utf-8", "replace")))
        return p

    def start(self):
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50" % (
            self.port, self.sockdir)
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-o", opts,
                   "-l", self.logfile, "-w", "-t", "60", "start"])
        self.running = True

    def stop(self, mode="fast"):
        """mode: smart, fast or immediate (a crash, as far as the data is concerned)."""
        if not self.running:
            return
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", mode, "-w",
                   "-t", "60", "stop"], check=False)
        self.running = False

    def restart(self, mode="fast", down_seconds=0.0):
        self.stop(mode)
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def destroy(self):
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            _unregister_cleanup(self._cleanup)

    def connect(self, autocommit=True):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                dbname=self.dbname, connect_timeout=5)
        conn.autocommit = autocommit
        return conn

    def pg_dump(self):
        """Plain-text dump of the database (bytes)."""
        p = self._run([os.path.join(self.bindir, "pg_dump"), "-h", self.sockdir, "-p",
                       str(self.port), "-U", self.user, self.dbname])
        return p.stdout


# ---------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        return header_value(self.headers, name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __iter__(self):  # (status, headers, body) unpacking
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<HTTP %s %r %r>" % (self.status, self.headers, self.body[:200])


def http_request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data)
    finally:
        conn.close()


def metric_sample(port, name, labels):
    """The value of name{labels} (labels exactly as exposed) in the /metrics on port, or
    None when absent."""
    text = http_request(port, "GET", METRICS_PATH, timeout=3).body.decode()
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def raw_http(port, head, chunks, timeout=10):
    """Send a raw request head (bytes, ending with CRLFCRLF) and then the body chunks,
    stopping early if the server answers (or closes) before the body is all sent, as a
    server refusing an oversized body may. Returns Response (status 0 if none came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        received = b""
        complete = False
        try:
            s.sendall(head)
            for c in chunks:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
                s.sendall(c)
            else:
                complete = True
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not complete:
            # We stopped early: say so, but keep reading what the server answered. (A
            # complete request is not half-closed: a server may take EOF as an abort.)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not d:
                break
            received += d
            if _complete_response(received):
                break
        return _parse_response(received)
    finally:
        s.close()


def _complete_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(body) >= int(v.strip())
    return False


def _parse_response(data):
    if not data:
        return Response(0, [], b"")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return Response(status, headers, body)


# ---------------------------------------------------------------------------------------
# The pipeline


class StageProcess:
    def __init__(self, name, binary, env, logpath):
        self.name = name
        self.binary = binary
        self.env = env
        self.logpath = logpath
        self.proc = None
        self.starts = 0

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("%s binary missing: %s (build it first)" % (self.name, self.binary))
        log = open(self.logpath, "ab")
        try:
            log.write(("--- harness: start #%d of %s at %s ---\n" % (
                self.starts + 1, self.name, time.strftime("%H:%M:%S"))).encode())
            log.flush()
            self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=os.path.dirname(self.logpath))
        finally:
            log.close()
        self.starts += 1

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    self.proc.wait(timeout=10 if sig == signal.SIGTERM else 5)
                except subprocess.TimeoutExpired:
                    pass

    def stop(self, timeout=10):
        """SIGTERM, wait, then SIGKILL. Returns the exit code (negative: signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note("did not exit %ds after SIGTERM; SIGKILL" % timeout)
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def _note(self, msg):
        with open(self.logpath, "ab") as f:
            f.write(("--- harness: %s ---\n" % msg).encode())


class Pipeline:
    """sb-writer, sb-enricher, sb-verifier and sb-ingress on free ports, logs in a temp dir.

    overrides: env values by name; they go to every stage that uses the variable (see
    STAGE_VARS); a value None removes the variable. Also accepted:
      seed_customers (default True): insert Maria Lopez once migrations are applied.
      wait_ok (default True): wait for health "ok" (falls back to "HTTP answers").
      replicas: {"verifier": n, "enricher": n, "writer": n} (default 1 each), as
        `scripts/run --verifiers n ...` runs them. Replica k > 1 is the stage "<stage><k>"
        (p.stages["writer2"], p.ports["writer2_pull"], p.ports["writer2_metrics"]) with
        its own PULL port, METRICS_LISTEN and INSTANCE_ID; the stage before pushes to
        every replica. Kill, restart and wait_stage_up take these names too.
    """

    REPLICATED = ("verifier", "enricher", "writer")  # stages that may run as replicas
    PULL_VAR = {"verifier": "VERIFIER_PULL_ENDPOINT", "enricher": "ENRICHER_PULL_ENDPOINT",
                "writer": "WRITER_PULL_ENDPOINT"}
    PUSH_TO = {"verifier": "INGRESS_PUSH_ENDPOINT", "enricher": "VERIFIER_PUSH_ENDPOINT",
               "writer": "ENRICHER_PUSH_ENDPOINT"}  # who pushes to the stage

    STAGE_VARS = {
        "ingress": ["INGRESS_LISTEN", "SPOOL_DIR", "MAX_BODY_BYTES", "SPOOL_MAX_BYTES",
                    "HEALTH_MAX_LAG_SECONDS", "INGRESS_ID", "REDELIVER_AFTER_MS",
                    "REDELIVER_MAX_MS", "INGRESS_PUSH_ENDPOINT", "INGRESS_ACK_ENDPOINT",
                    "LOG_LEVEL"],
        "verifier": ["VERIFIER_PULL_ENDPOINT", "VERIFIER_PUSH_ENDPOINT", "ACK_ENDPOINT",
                     "METRICS_LISTEN", "RINGCENTRAL_VERIFICATION_TOKEN",
                     "RINGCENTRAL_WEBHOOK_SECRET", "GMAIL_PUSH_TOKEN",
                     "SWITCHBOARD_ALLOW_UNVERIFIED", "LOG_LEVEL"],
        "enricher": ["ENRICHER_PULL_ENDPOINT", "ENRICHER_PUSH_ENDPOINT", "ACK_ENDPOINT",
                     "METRICS_LISTEN", "DATABASE_URL", "DEFAULT_COUNTRY_CODE", "LOG_LEVEL",
                     "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_TOKEN_URL",
                     "GMAIL_API_BASE_URL", "GMAIL_FULL_SYNC_MAX_MESSAGES",
                     "GMAIL_MAX_MESSAGES_PER_PUSH", "ENRICHER_MAX_INFLIGHT",
                     "ENRICHER_MAX_EVENTS", "ENRICHER_HTTP_TIMEOUT_MS",
                     "ENRICHER_HTTP_ATTEMPTS", "ENRICHER_HTTP_BACKOFF_MS",
                     "RINGCENTRAL_SERVER_URL", "RINGCENTRAL_CLIENT_ID",
                     "RINGCENTRAL_CLIENT_SECRET", "RINGCENTRAL_JWT"],
        "writer": ["DATABASE_URL", "WRITER_PULL_ENDPOINT", "ACK_ENDPOINT", "METRICS_LISTEN",
                   "WRITER_BATCH_ROWS", "DEFAULT_COUNTRY_CODE", "LOG_LEVEL"],
    }

    def __init__(self, pg, **overrides):
        self.pg = pg
        self.seed = overrides.pop("seed_customers", True)
        wait_ok = overrides.pop("wait_ok", True)
        self.replicas = dict(overrides.pop("replicas", None) or {})
        self.tmp = tempfile.mkdtemp(prefix="sb-itest-run-")
        self._cleanup = _register_cleanup(self.destroy)
        n_extra = sum(int(n) - 1 for n in self.replicas.values()
                      if isinstance(n, int) and 1 <= n <= 16)
        all_ports = free_ports(8 + 2 * n_extra)  # at once, so that they all differ
        (self.http_port, p1, p2, p3, p4, p5, p6, p7) = all_ports[:8]
        self.ports = {"http": self.http_port, "verifier_pull": p1, "writer_pull": p2,
                      "ack": p3, "verifier_metrics": p4, "writer_metrics": p5,
                      "enricher_pull": p6, "enricher_metrics": p7}
        self.spool_dir = os.path.join(self.tmp, "spool")
        common = {
            "LOG_LEVEL": "info",
            "INGRESS_LISTEN": "127.0.0.1:%d" % self.http_port,
            "SPOOL_DIR": self.spool_dir,
            "MAX_BODY_BYTES": "1048576",
            "HEALTH_MAX_LAG_SECONDS": "30",
            "INGRESS_ID": "itest",
            "REDELIVER_AFTER_MS": "1500",
            "REDELIVER_MAX_MS": "4000",
            "INGRESS_PUSH_ENDPOINT": ">tcp://127.0.0.1:%d" % p1,
            "INGRESS_ACK_ENDPOINT": "@tcp://127.0.0.1:%d" % p3,
            "VERIFIER_PULL_ENDPOINT": "@tcp://127.0.0.1:%d" % p1,
            "VERIFIER_PUSH_ENDPOINT": ">tcp://127.0.0.1:%d" % p6,
            "ENRICHER_PULL_ENDPOINT": "@tcp://127.0.0.1:%d" % p6,
            "ENRICHER_PUSH_ENDPOINT": ">tcp://127.0.0.1:%d" % p2,
            "ACK_ENDPOINT": ">tcp://127.0.0.1:%d" % p3,
            "RINGCENTRAL_VERIFICATION_TOKEN": VERIFICATION_TOKEN,
            "GMAIL_PUSH_TOKEN": GMAIL_PUSH_TOKEN,
            "DATABASE_URL": pg.url,
            "WRITER_PULL_ENDPOINT": "@tcp://127.0.0.1:%d" % p2,
            "WRITER_BATCH_ROWS": "500",
            "DEFAULT_COUNTRY_CODE": "1",
        }
        metrics = {"verifier": "127.0.0.1:%d" % p4, "writer": "127.0.0.1:%d" % p5,
                   "enricher": "127.0.0.1:%d" % p7}
        extra = self._replica_ports(all_ports[8:])
        for stage, names in extra.items():
            pulls = [self.ports[stage + "_pull"]] + [self.ports[n + "_pull"] for n in names]
            common[self.PUSH_TO[stage]] = ">" + ",".join(
                "tcp://127.0.0.1:%d" % port for port in pulls)
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ", "ASAN_OPTIONS",
                                           "UBSAN_OPTIONS", "LSAN_OPTIONS")
                if k in os.environ}
        self.env = {}
        self.stages = {}
        for stage in STAGES:
            env = dict(base)
            for var in self.STAGE_VARS[stage]:
                if var == "METRICS_LISTEN":
                    value = overrides.get(var + "_" + stage.upper(), metrics[stage])
                else:
                    value = common.get(var)
                if var in overrides:
                    value = overrides[var]
                if value is not None:
                    env[var] = str(value)
            # Anything else that was overridden and is not in a stage table goes to all.
            for var, value in overrides.items():
                if not any(var in v for v in self.STAGE_VARS.values()) and \
                        not var.startswith("METRICS_LISTEN_"):
                    if value is None:
                        env.pop(var, None)
                    else:
                        env[var] = str(value)
            self.env[stage] = env
            self.stages[stage] = StageProcess(stage, BINARIES[stage], env,
                                              os.path.join(self.tmp, stage + ".log"))
        for stage, names in extra.items():
            for name in names:
                env = dict(self.env[stage])
                env[self.PULL_VAR[stage]] = "@tcp://127.0.0.1:%d" % self.ports[name + "_pull"]
                env["METRICS_LISTEN"] = "127.0.0.1:%d" % self.ports[name + "_metrics"]
                env["INSTANCE_ID"] = name
                self.env[name] = env
                self.stages[name] = StageProcess(name, BINARIES[stage], env,
                                                 os.path.join(self.tmp, name + ".log"))
        self.maria_id = None
        self.start(wait_ok=wait_ok)

    def _replica_ports(self, free):
        """Give replicas 2..n of each stage in self.replicas two of the free ports each
        (PULL, metrics). -> {stage: [names]}."""
        extra = {}
        for stage, n in self.replicas.items():
            if stage not in self.REPLICATED or not isinstance(n, int) or not 1 <= n <= 16:
                raise ValueError("replicas: %s=%r (want 1-16 of %s)" % (
                    stage, n, ", ".join(self.REPLICATED)))
            names = ["%s%d" % (stage, k) for k in range(2, n + 1)]
            for name in names:
                self.ports[name + "_pull"] = free.pop()
                self.ports[name + "_metrics"] = free.pop()
            if names:
                extra[stage] = names
        return extra

    def replica_names(self, stage):
        """The stage's processes: "writer", "writer2", ... (those this pipeline runs)."""
        return [stage] + ["%s%d" % (stage, k) for k in range(2, self.replicas.get(stage, 1) + 1)]

    def metrics_port(self, name):
        """Port of GET /metrics of a process ("ingress" is the HTTP port)."""
        return self.http_port if name == "ingress" else self.ports[name + "_metrics"]

    # -- lifecycle -----------------------------------------------------------------------

    def _start_replicas(self, stage):
        for name in self.replica_names(stage)[1:]:
            self.stages[name].start()

    def start(self, wait_ok=True):
        self.stages["writer"].start()
        # The writer applies the migrations at start; the customers table is ours to fill.
        ok = wait_until(lambda: self._table_exists("customers") or not
                        self.stages["writer"].alive(), 30)
        if not self.stages["writer"].alive():
            raise RuntimeError("sb-writer exited at start (rc %s):\n%s" % (
                self.stages["writer"].proc.returncode, tail(self.stages["writer"].logpath)))
        if not ok:
            raise RuntimeError("sb-writer did not create the customers table in 30 s:\n%s"
                               % tail(self.stages["writer"].logpath))
        if self.seed and self.maria_id is None:
            self.maria_id = self.add_customer(MARIA["name"], MARIA["phone"], MARIA["email"])
        self._start_replicas("writer")
        for stage in ("enricher", "verifier"):
            self.stages[stage].start()
            self._start_replicas(stage)
        self.stages["ingress"].start()
        self.wait_ready(wait_ok)

    def wait_ready(self, want_ok=True, timeout=20):
        """Wait until health says ok (want_ok) or at least the HTTP server answers.
        Returns the last health JSON (or None)."""
        last = {}

        def probe():
            for name, st in self.stages.items():
                if st.proc is not None and not st.alive():
                    raise RuntimeError("sb-%s exited (rc %s):\n%s" % (
                        name, st.proc.returncode, tail(st.logpath)))
            try:
                r = self.get(HEALTH_PATH, timeout=2)
            except OSError:
                return False
            last["r"] = r
            if not want_ok:
                return True
            try:
                return r.status == 200 and r.json().get("status") == "ok"
            except ValueError:
                return False

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return last["r"].json()
            time.sleep(0.1)
        if "r" in last:
            print("harness: health never became ok within %ds; last: %s %s" % (
                timeout, last["r"].status, last["r"].body[:500]))
            return None
        raise RuntimeError("sb-ingress never answered HTTP on port %d within %ds:\n%s" % (
            self.http_port, timeout, tail(self.stages["ingress"].logpath)))

    def wait_stage_up(self, stage, timeout=15):
        """After a restart: the process is running and its HTTP endpoint answers."""
        st = self.stages[stage]

        def up():
            if not st.alive():
                raise RuntimeError("sb-%s exited (rc %s):\n%s" % (
                    stage, st.proc.returncode, tail(st.logpath)))
            if stage == "ingress":
                port, path = self.http_port, HEALTH_PATH
            else:
                port, path = self.ports[stage + "_metrics"], "/metrics"
            try:
                http_request(port, "GET", path, timeout=2)
                return True
            except OSError:
                return False

        return wait_until(up, timeout)

    def kill(self, stage, sig=signal.SIGKILL):
        self.stages[stage].kill(sig)

    def stop_stage(self, stage):
        return self.stages[stage].stop()

    def restart(self, stage, wait=True):
        st = self.stages[stage]
        if st.alive():
            st.stop()
        st.start()
        if wait:
            self.wait_stage_up(stage)

    def stop(self):
        """Stop the stages, ingress first (SIGTERM, wait, SIGKILL). Returns {stage: rc}."""
        rcs = {}
        for stage in list(reversed(STAGES)) + [n for n in self.stages if n not in STAGES]:
            rcs[stage] = self.stages[stage].stop()
        return rcs

    def destroy(self):
        try:
            for st in self.stages.values() if hasattr(self, "stages") else []:
                try:
                    st.stop(timeout=5)
                except Exception:
                    if st.proc is not None and st.proc.poll() is None:
                        st.proc.kill()
        finally:
            if os.environ.get("SB_ITEST_KEEP"):
                print("harness: keeping %s" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
            _unregister_cleanup(self._cleanup)

    # -- HTTP ----------------------------------------------------------------------------

    def post(self, path, body, headers=None, timeout=10):
        """-> Response (iterable as (status, headers, body))."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return http_request(self.http_port, "POST", path, body=body, headers=h,
                            timeout=timeout)

    def get(self, path, headers=None, timeout=10):
        return http_request(self.http_port, "GET", path, headers=headers, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        return http_request(self.http_port, method, path, body=body, headers=headers,
                            timeout=timeout)

    def health(self):
        r = self.get(HEALTH_PATH, timeout=5)
        try:
            return r.status, r.json()
        except ValueError:
            return r.status, None

    def post_sms(self, body, token=None, extra_headers=None):
        h = {"Verification-Token": VERIFICATION_TOKEN if token is None else token}
        h.update(extra_headers or {})
        return self.post(SMS_PATH, body, h)

    # -- database ------------------------------------------------------------------------

    def db(self, autocommit=True):
        return self.pg.connect(autocommit)

    def query(self, sql, args=None):
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def scalar(self, sql, args=None):
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def _table_exists(self, name):
        return bool(self.scalar("SELECT to_regclass(%s) IS NOT NULL", ("public." + name,)))

    def add_customer(self, name, phone=None, email=None):
        return self.scalar("INSERT INTO customers (name, phone, email) VALUES (%s, %s, %s) "
                           "RETURNING id", (name, phone, email))

    def count(self, table, where="TRUE", args=None):
        return self.scalar("SELECT count(*) FROM %s WHERE %s" % (table, where), args)

    def wait_count(self, table, n, where="TRUE", args=None, timeout=10):
        """Wait until count(table where ...) >= n; returns the count then (or at timeout)."""
        got = {}

        def ok():
            got["n"] = self.count(table, where, args)
            return got["n"] >= n

        wait_until(ok, timeout)
        return got.get("n")

    def max_event_id(self):
        return self.scalar("SELECT coalesce(max(id), 0) FROM webhook_events")

    def wait_new_events(self, after_id, n=1, timeout=10):
        """Wait for n webhook_events rows with id > after_id; returns them as dicts
        (ordered by id), possibly fewer at timeout."""
        rows = {}

        def ok():
            rows["r"] = self.dict_rows("SELECT * FROM webhook_events WHERE id > %s ORDER BY id",
                                       (after_id,))
            return len(rows["r"]) >= n

        wait_until(ok, timeout)
        return rows.get("r", [])

    def dict_rows(self, sql, args=None):
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                cols = [d[0] for d in cur.description]
                return [dict(zip(cols, r)) for r in cur.fetchall()]
        finally:
            conn.close()

    # -- diagnostics ---------------------------------------------------------------------

    def log_paths(self):
        return [st.logpath for st in self.stages.values()]

    SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                         b"runtime error:", b"WARNING: ThreadSanitizer",
                         b"ERROR: ThreadSanitizer")

    def sanitizer_reports(self):
        """Lines of sanitizer reports in the stage logs ('stage: line')."""
        out = []
        for name, st in self.stages.items():
            try:
                with open(st.logpath, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for line in data.splitlines():
                if any(m in line for m in self.SANITIZER_MARKERS):
                    out.append("%s: %s" % (name, line.decode("utf-8", "replace")[:300]))
        return out

    def dump_logs(self, lines=40):
        for name in self.stages:
            st = self.stages[name]
            print("===== tail of %s log (%s) =====" % (name, st.logpath))
            print(tail(st.logpath, lines))
        print("===== tail of postgres log =====")
        print(tail(self.pg.logfile, 15))


class Listener:
    """LISTEN on a channel with psycopg2; collect notifications (payloads parsed as JSON
    when possible)."""

    def __init__(self, pg, channel="communications"):
        self.conn = pg.connect(autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute("LISTEN %s" % channel)
        self.received = []

    def poll(self, timeout):
        if select.select([self.conn], [], [], timeout)[0]:
            self.conn.poll()
            while self.conn.notifies:
                n = self.conn.notifies.pop(0)
                try:
                    payload = json.loads(n.payload)
                except ValueError:
                    payload = n.payload
                self.received.append((n.channel, payload))

    def wait_for(self, match, timeout=5):
        """Wait for a payload for which match(payload) is true; returns it or None."""
        deadline = time.monotonic() + timeout
        while True:
            for _ch, p in self.received:
                if match(p):
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.poll(min(left, 0.2))

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------------------
# The runner


class TestFailure(AssertionError):
    pass


def check(cond, msg, *args):
    if not cond:
        raise TestFailure(msg % args if args else msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


class Context:
    """What a test file's tests share: the PG, the pipelines started, arbitrary state."""

    def __init__(self):
        self.pg = None
        self.pipelines = []
        self.state = {}

    def postgres(self):
        if self.pg is None:
            self.pg = Postgres()
        return self.pg

    def pipeline(self, **overrides):
        p = Pipeline(self.postgres(), **overrides)
        self.pipelines.append(p)
        return p

    def close(self):
        for p in self.pipelines:
            p.destroy()
        if self.pg is not None:
            self.pg.destroy()


def run(tests, setup=None):
    """tests: list of functions f(ctx), run in order (they may depend on earlier ones).
    setup(ctx): optional, before the first test; if it fails, every test fails.
    Prints a PASS/FAIL line per test and the final "N passed, M failed"; exits non-zero
    on any failure."""
    ctx = Context()
    passed = failed = 0
    t0 = time.monotonic()
    try:
        try:
            if setup:
                setup(ctx)
            setup_ok = True
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            setup_ok = False
            print("SETUP FAILED: %s" % e)
            traceback.print_exc(file=sys.stdout)
        for fn in tests:
            name = fn.__name__
            if not setup_ok:
                print("FAIL %s: setup failed" % name)
                failed += 1
                continue
            t = time.monotonic()
            try:
                fn(ctx)
                print("PASS %s (%.2fs)" % (name, time.monotonic() - t))
                passed += 1
            except (KeyboardInterrupt, SystemExit):
                raise
            except TestFailure as e:
                print("FAIL %s (%.2fs): %s" % (name, time.monotonic() - t, e))
                failed += 1
            except Exception as e:
                print("FAIL %s (%.2fs): %r" % (name, time.monotonic() - t, e))
                traceback.print_exc(file=sys.stdout)
                failed += 1
            sys.stdout.flush()
        if setup_ok and ctx.pipelines:
            # Stop the stages first (a LeakSanitizer report comes at exit), then look
            # for sanitizer reports in every log: a stage that misbehaved under a
            # sanitizer build fails the run even if the tests above did not notice.
            t = time.monotonic()
            for p in ctx.pipelines:
                p.stop()
            reports = []
            for p in ctx.pipelines:
                reports += p.sanitizer_reports()
            if reports:
                print("FAIL no_sanitizer_reports (%.2fs):\n%s" % (
                    time.monotonic() - t, "\n".join(reports)))
                failed += 1
            else:
                print("PASS no_sanitizer_reports (%.2fs)" % (time.monotonic() - t))
                passed += 1
        if failed:
            for p in ctx.pipelines:
                p.dump_logs()
    finally:
        try:
            ctx.close()
        finally:
            print("total %.1fs" % (time.monotonic() - t0))
            print("%d passed, %d failed" % (passed, failed))
            sys.stdout.flush()
    sys.exit(1 if failed else 0)
