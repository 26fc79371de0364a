"""HTTP edge cases of sb-ingress (SPEC "HTTP endpoints"): the Validation-Token handshake,
body limits (Content-Length and chunked), 404/405, health and metrics, and health turning
degraded when the writer goes away."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

MAX_BODY = 1048576


def setup(ctx):
    ctx.state["p"] = ctx.pipeline(MAX_BODY_BYTES=str(MAX_BODY))
    ctx.state["expected_events"] = 0


def sized_sms(msg_id, size):
    """A valid SMS notification of exactly size bytes (the text is padding)."""
    base = len(harness.sms_body(msg_id, text=""))
    check(size >= base, "size too small")
    body = harness.sms_body(msg_id, text="x" * (size - base))
    check_eq(len(body), size, "built body size")
    return body


def head(path, headers):
    lines = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1"]
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def test_validation_token_handshake(ctx):
    p = ctx.state["p"]
    method, path, headers, body = harness.parse_http_fixture("ringcentral",
                                                             "validation-request.txt")
    vtoken = harness.header_value(headers, "Validation-Token")
    h = {k: v for k, v in headers if k.lower() not in ("host", "content-length")}
    r = p.request(method, path, body=body, headers=h)
    check_eq(r.status, 200, "status")
    check_eq(r.header("Validation-Token"), vtoken, "echoed Validation-Token")
    check_eq(r.body, b"", "body")
    cl = r.header("Content-Length")
    check(cl in (None, "0"), "Content-Length %r", cl)


def test_body_at_limit_accepted(ctx):
    p = ctx.state["p"]
    body = sized_sms("990000000001", MAX_BODY)
    r = p.post_sms(body)
    check_eq(r.status, 200, "status of a body of exactly MAX_BODY_BYTES")
    ctx.state["expected_events"] += 1


def test_chunked_2mb_is_413(ctx):
    p = ctx.state["p"]
    body = sized_sms("990000000002", 2 * 1024 * 1024)
    chunks = []
    for i in range(0, len(body), 32768):
        part = body[i:i + 32768]
        chunks.append(b"%x\r\n" % len(part) + part + b"\r\n")
    chunks.append(b"0\r\n\r\n")
    h = head(harness.SMS_PATH, [("Content-Type", "application/json"),
                                ("Verification-Token", harness.VERIFICATION_TOKEN),
                                ("Transfer-Encoding", "chunked"), ("Connection", "close")])
    r = harness.raw_http(p.http_port, h, chunks, timeout=15)
    check_eq(r.status, 413, "status of a 2 MB chunked body")


def test_content_length_over_limit_is_413(ctx):
    p = ctx.state["p"]
    body = sized_sms("990000000003", MAX_BODY + 1)
    h = head(harness.SMS_PATH, [("Content-Type", "application/json"),
                                ("Verification-Token", harness.VERIFICATION_TOKEN),
                                ("Content-Length", str(len(body))), ("Connection", "close")])
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    r = harness.raw_http(p.http_port, h, chunks, timeout=15)
    check_eq(r.status, 413, "status with Content-Length = MAX_BODY_BYTES + 1")
    # The refusal must not depend on reading the body: a huge declared length, no body.
    h = head(harness.SMS_PATH, [("Content-Type", "application/json"),
                                ("Verification-Token", harness.VERIFICATION_TOKEN),
                                ("Content-Length", str(50 * MAX_BODY)), ("Connection", "close")])
    r = harness.raw_http(p.http_port, h, [], timeout=10)
    check_eq(r.status, 413, "status with Content-Length = 50 MiB")


def test_refused_requests_stored_nothing(ctx):
    # Barrier: a normal SMS posted after the refused ones; once its row is there, the
    # handshake and the 413s would have had ample time to leave rows too.
    p = ctx.state["p"]
    r = p.post_sms(harness.sms_body("990000000009", text="barrier"))
    check_eq(r.status, 200, "barrier status")
    ctx.state["expected_events"] += 1
    want = ctx.state["expected_events"]
    n = p.wait_count("webhook_events", want, timeout=15)
    time.sleep(0.5)
    n = p.count("webhook_events")
    ids = p.query("SELECT coalesce(convert_from(body, 'UTF8')::json->'body'->>'id', '?'), "
                  "outcome, length(body) FROM webhook_events ORDER BY id")
    check_eq(n, want, "webhook_events rows (at-limit SMS + barrier only): %r" % (ids,))
    got = sorted(r[0] for r in ids)
    check_eq(got, ["990000000001", "990000000009"], "stored message ids")
    check_eq(p.count("communications", "external_id IN ('990000000002', '990000000003')"), 0,
             "communications from refused bodies")
    check_eq(p.count("communications", "external_id = '990000000001'"), 1,
             "communication from the at-limit body")


def test_unknown_path_404(ctx):
    p = ctx.state["p"]
    r = p.post("/api/webhooks/ringcentral/nope", b"{}", {})
    check_eq(r.status, 404, "POST unknown webhook path")
    r = p.get("/nope")
    check_eq(r.status, 404, "GET /nope")
    r = p.post(harness.SMS_PATH + "/extra", b"{}", {})
    check_eq(r.status, 404, "POST sms path + /extra")


def test_wrong_method_405(ctx):
    p = ctx.state["p"]
    for path in (harness.SMS_PATH, harness.CALL_PATH, harness.GMAIL_PATH):
        r = p.get(path)
        check_eq(r.status, 405, "GET %s" % path)
        allow = r.header("Allow") or ""
        check("POST" in allow, "GET %s: Allow header %r should list POST", path, allow)
    r = p.request("PUT", harness.SMS_PATH, body=b"{}")
    check_eq(r.status, 405, "PUT sms path")
    r = p.post(harness.HEALTH_PATH, b"{}", {})
    check_eq(r.status, 405, "POST health")
    allow = r.header("Allow") or ""
    check("GET" in allow, "POST health: Allow header %r should list GET", allow)


def test_health_ok(ctx):
    p = ctx.state["p"]
    got = {}

    def ok():
        got["r"] = p.health()
        return got["r"][0] == 200

    harness.wait_until(ok, 10, interval=0.2)
    status, doc = got["r"]
    check_eq(status, 200, "health status code (doc %r)" % (doc,))
    check(doc is not None, "health is not JSON")
    check_eq(doc.get("status"), "ok", "status")
    check_eq(doc.get("reasons", []), [], "reasons")
    st = doc.get("stages", {})
    check_eq(st.get("ingress", {}).get("alive"), True, "stages.ingress.alive")
    check_eq(st.get("verifier", {}).get("alive"), True, "stages.verifier.alive")
    check_eq(st.get("writer", {}).get("alive"), True, "stages.writer.alive")
    check(st.get("verifier", {}).get("instances", 0) >= 1, "verifier instances: %r", st)
    check(st.get("writer", {}).get("instances", 0) >= 1, "writer instances: %r", st)
    check_eq(doc.get("database", {}).get("reachable"), True, "database.reachable")
    spool = doc.get("spool", {})
    for k in ("depth", "bytes", "oldest_unacked_age_seconds", "torn_records"):
        check(isinstance(spool.get(k), (int, float)), "spool.%s missing: %r", k, spool)
    check_eq(spool.get("torn_records"), 0, "spool.torn_records")


def test_metrics(ctx):
    p = ctx.state["p"]
    r = p.get(harness.METRICS_PATH)
    check_eq(r.status, 200, "status")
    ctype = r.header("Content-Type") or ""
    check(ctype.startswith("text/plain"), "Content-Type %r", ctype)
    text = r.body.decode("utf-8")
    samples = [ln for ln in text.splitlines() if ln.startswith("sb_")]
    check(len(samples) >= 3, "too few sb_ samples:\n%s", text[:2000])
    for ln in samples:
        parts = ln.rsplit(" ", 1)
        check(len(parts) == 2, "bad sample line %r", ln)
        try:
            float(parts[1])
        except ValueError:
            raise harness.TestFailure("sample value not a number: %r" % ln)
    ctx.state["metrics"] = text


def test_metrics_count_413(ctx):
    # SPEC: an oversized body is "counted in metrics". We sent three 413s above.
    text = ctx.state.get("metrics") or ctx.state["p"].get(harness.METRICS_PATH).body.decode()
    hits = []
    for ln in text.splitlines():
        if not ln.startswith("sb_"):
            continue
        name_labels, _, value = ln.rpartition(" ")
        low = name_labels.lower()
        if "413" in low or "too_large" in low or "oversize" in low or "too_big" in low:
            hits.append((ln, float(value)))
    check(hits, "no metric line mentions 413/too_large/oversize:\n%s", text[:3000])
    total = sum(v for _ln, v in hits)
    check(total >= 3, "413 metric(s) sum to %s, want >= 3: %r", total, hits)


def test_health_degraded_without_writer(ctx):
    p = ctx.state["p"]
    rc = p.stop_stage("writer")
    check_eq(rc, 0, "sb-writer exit code after SIGTERM")
    got = {}

    def degraded():
        got["r"] = p.health()
        return got["r"][0] == 503

    harness.wait_until(degraded, 15, interval=0.25)
    status, doc = got["r"]
    check_eq(status, 503, "health status code without a writer (doc %r)" % (doc,))
    check(doc is not None, "health is not JSON")
    check_eq(doc.get("status"), "degraded", "status")
    reasons = " ".join(str(x) for x in doc.get("reasons", []))
    check("writer" in reasons.lower(), "reasons %r should mention the writer", reasons)
    check_eq(doc.get("stages", {}).get("writer", {}).get("alive"), False, "stages.writer.alive")
    check_eq(doc.get("stages", {}).get("verifier", {}).get("alive"), True,
             "stages.verifier.alive")


def test_health_recovers(ctx):
    p = ctx.state["p"]
    p.restart("writer")
    ok = harness.wait_until(lambda: p.health()[0] == 200, 15, interval=0.25)
    check(ok, "health still %r 15 s after the writer came back", p.health())


if __name__ == "__main__":
    harness.run([
        test_validation_token_handshake,
        test_body_at_limit_accepted,
        test_chunked_2mb_is_413,
        test_content_length_over_limit_is_413,
        test_refused_requests_stored_nothing,
        test_unknown_path_404,
        test_wrong_method_405,
        test_health_ok,
        test_metrics,
        test_metrics_count_413,
        test_health_degraded_without_writer,
        test_health_recovers,
    ], setup=setup)
