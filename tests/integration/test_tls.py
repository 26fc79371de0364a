"""Native HTTPS on sb-ingress (TLS_CERT_FILE, TLS_KEY_FILE; README "HTTPS"): a
self-signed certificate made with openssl, and curl --cacert as the client.

Only the ingress runs: it answers 200 once a request is in its spool, which needs no
other stage, so this checks TLS and nothing else. Cases: a webhook over HTTPS is
accepted and spooled; the Validation-Token handshake works over HTTPS; a client that
does not trust the certificate fails; plain HTTP on the HTTPS port gets no HTTP answer;
TLS 1.1 is refused while 1.2 and 1.3 work; a connection that never finishes its
handshake is closed by the header deadline; a half or mismatched configuration stops
the process at start with a clear message."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

HEADER_TIMEOUT_S = 10  # ingress/ingress_http.c


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=60, cwd=cwd)


def make_cert(directory, name):
    """A self-signed certificate for 127.0.0.1 (and localhost): (cert path, key path)."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return cert, key


class Ingress:
    """sb-ingress alone, with its own spool and log."""

    def __init__(self, tmp, **env):
        self.port, ack = harness.free_ports(2)
        self.dir = tempfile.mkdtemp(prefix="ingress-", dir=tmp)
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "ASAN_OPTIONS",
                                           "UBSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ}
        base.update({"INGRESS_LISTEN": "127.0.0.1:%d" % self.port,
                     "SPOOL_DIR": os.path.join(self.dir, "spool"), "INGRESS_ID": "tls",
                     "INGRESS_PUSH_ENDPOINT": ">tcp://127.0.0.1:%d" % harness.free_port(),
                     "INGRESS_ACK_ENDPOINT": "@tcp://127.0.0.1:%d" % ack})
        base.update({k: v for k, v in env.items() if v is not None})
        self.stage = harness.StageProcess("ingress", harness.BINARIES["ingress"], base,
                                          os.path.join(self.dir, "ingress.log"))
        self.stage.start()

    def wait_listening(self, timeout=15):
        def up():
            check(self.stage.alive(), "sb-ingress exited:\n%s" % harness.tail(self.stage.logpath))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        check(harness.wait_until(up, timeout), "sb-ingress listens")

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        return self.stage.stop()

    def log(self):
        with open(self.stage.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")


def curl(*args):
    """Run curl; returns (exit code, stdout text, stderr text)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def s_client(port, version):
    """Does a handshake with only this TLS version succeed?"""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, version,
                        "-servername", "localhost"], input=b"", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    return p.returncode == 0 and "Cipher is (NONE)" not in out and "New, " in out


def setup(ctx):
    for tool in ("openssl", "curl"):
        check(shutil.which(tool) is not None, "%s is needed" % tool)
    tmp = tempfile.mkdtemp(prefix="sb-itest-tls-")
    harness._register_cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    ctx.state["tmp"] = tmp
    ctx.state["cert"], ctx.state["key"] = make_cert(tmp, "server")
    ctx.state["other_cert"], ctx.state["other_key"] = make_cert(tmp, "other")
    ing = Ingress(tmp, TLS_CERT_FILE=ctx.state["cert"], TLS_KEY_FILE=ctx.state["key"])
    harness._register_cleanup(ing.stop)
    ing.wait_listening()
    ctx.state["ingress"] = ing


def test_webhook_over_https_is_accepted(ctx):
    ing, cert = ctx.state["ingress"], ctx.state["cert"]
    body = harness.sms_body("9400000001")
    rc, out, err = curl("--cacert", cert, "-H", "Content-Type: application/json",
                        "-H", "Verification-Token: " + harness.VERIFICATION_TOKEN,
                        "--data-binary", body.decode(), "-w", "\n%{http_code} %{ssl_verify_result}",
                        ing.url(harness.SMS_PATH))
    check_eq(rc, 0, "curl exit status (%s)" % err.strip())
    text, _, status = out.rpartition("\n")
    check_eq(status, "200 0", "HTTP status and certificate verification")
    check_eq(text, '{"status":"accepted"}', "body")
    rc, out, err = curl("--cacert", cert, ing.url(harness.METRICS_PATH))
    check_eq(rc, 0, "curl /metrics (%s)" % err.strip())
    depth = [line for line in out.splitlines() if line.startswith("sb_spool_depth ")]
    check(depth and float(depth[0].split()[1]) >= 1, "the webhook is in the spool: %r", depth)
    check("serving HTTPS on" in ing.log(), "the ingress says it serves HTTPS")


def test_validation_handshake_over_https(ctx):
    ing, cert = ctx.state["ingress"], ctx.state["cert"]
    rc, out, err = curl("--cacert", cert, "-D", "-", "-o", "/dev/null", "-X", "POST",
                        "-H", "Validation-Token: vt-handshake-123", ing.url(harness.SMS_PATH))
    check_eq(rc, 0, "curl (%s)" % err.strip())
    check(out.startswith("HTTP/1.1 200"), "status line: %r", out[:40])
    check("validation-token: vt-handshake-123" in out.lower(), "echoed header: %r", out)


def test_untrusted_certificate_fails(ctx):
    ing = ctx.state["ingress"]
    rc, _, err = curl(ing.url(harness.HEALTH_PATH))  # the system's CAs only
    check_eq(rc, 60, "curl exit status without --cacert (%s)" % err.strip())
    rc, _, err = curl("--cacert", ctx.state["other_cert"], ing.url(harness.HEALTH_PATH))
    check_eq(rc, 60, "curl exit status with another CA (%s)" % err.strip())


def test_plain_http_on_the_https_port_gets_no_answer(ctx):
    ing = ctx.state["ingress"]
    s = socket.create_connection(("127.0.0.1", ing.port), timeout=5)
    try:
        s.sendall(b"GET /api/webhooks/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while len(data) < 4096:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        s.close()
    check(not data.startswith(b"HTTP/"), "plain HTTP got an HTTP answer: %r", data[:60])
    check(ing.stage.alive(), "sb-ingress still runs")


def test_tls_versions(ctx):
    port = ctx.state["ingress"].port
    check(s_client(port, "-tls1_2"), "TLS 1.2 handshake")
    check(s_client(port, "-tls1_3"), "TLS 1.3 handshake")
    check(not s_client(port, "-tls1_1"), "TLS 1.1 must be refused")


def test_stalled_handshake_is_closed(ctx):
    ing, cert = ctx.state["ingress"], ctx.state["cert"]
    s = socket.create_connection(("127.0.0.1", ing.port), timeout=HEADER_TIMEOUT_S + 5)
    t0 = time.monotonic()
    try:
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
        try:
            while s.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        s.close()
    took = time.monotonic() - t0
    check(HEADER_TIMEOUT_S - 1 <= took <= HEADER_TIMEOUT_S + 3, "closed after %.1fs", took)
    rc, _, err = curl("--cacert", cert, ing.url(harness.METRICS_PATH))
    check_eq(rc, 0, "HTTPS still served (%s)" % err.strip())


def _start_fails(ctx, what, **env):
    ing = Ingress(ctx.state["tmp"], **env)
    try:
        ing.stage.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        ing.stop()
        raise harness.TestFailure("%s: sb-ingress kept running" % what)
    check(ing.stage.proc.returncode != 0, "%s: exit status %r", what, ing.stage.proc.returncode)
    return ing.log()


def test_bad_configurations_stop_the_process(ctx):
    c, k = ctx.state["cert"], ctx.state["key"]
    log = _start_fails(ctx, "certificate without key", TLS_CERT_FILE=c)
    check("set both TLS_CERT_FILE and TLS_KEY_FILE" in log, "message: %s", log[-300:])
    log = _start_fails(ctx, "missing file", TLS_CERT_FILE=c, TLS_KEY_FILE=k + ".missing")
    check("cannot read TLS_KEY_FILE" in log, "message: %s", log[-300:])
    log = _start_fails(ctx, "key of another certificate", TLS_CERT_FILE=c,
                       TLS_KEY_FILE=ctx.state["other_key"])
    check("TLS_CERT_FILE/TLS_KEY_FILE" in log, "message: %s", log[-300:])
    check(k not in log or "cannot read" in log, "no key material in the log")
    with open(k) as f:
        pem = f.read()
    body = pem.split("-----")[2].strip().splitlines()[0]
    check(body not in log, "the private key is never logged")


def test_clean_stop_without_sanitizer_reports(ctx):
    ing = ctx.state["ingress"]
    check_eq(ing.stop(), 0, "exit status after SIGTERM")
    with open(ing.stage.logpath, "rb") as f:
        log = f.read()
    bad = [m for m in harness.Pipeline.SANITIZER_MARKERS if m in log]
    check(not bad, "sanitizer reports in the ingress log: %r\n%s", bad, harness.tail(ing.stage.logpath))


if __name__ == "__main__":
    harness.run([
        test_webhook_over_https_is_accepted,
        test_validation_handshake_over_https,
        test_untrusted_certificate_fails,
        test_plain_http_on_the_https_port_gets_no_answer,
        test_tls_versions,
        test_stalled_handshake_is_closed,
        test_bad_configurations_stop_the_process,
        test_clean_stop_without_sanitizer_reports,
    ], setup=setup)
