"""Every stage's GET /metrics is valid Prometheus text exposition 0.0.4 (promcheck.py,
whose own test is test_promcheck.py), with samples in its counters and histograms.

The whole pipeline runs (ingress, verifier, enricher, writer) with sb-renewer, sb-sender
and sb-streamer beside it, against the fake providers. A few events of each kind go
through (SMS, a call event, a Gmail push, a rejected SMS, a 404 and a 413) and the
sender sends one reply, so that labelled counters and histograms have samples. Then each
/metrics is scraped and checked; a failure names the stage and quotes the offending
lines. When promtool is installed it must parse each page too (its lint findings are
printed, not failed: promcheck decides)."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sender_harness as sh  # noqa: E402  (puts tests/fakes on the path too)
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import promcheck  # noqa: E402

RENEWER = os.path.join(harness.BUILD_DIR, "renewer", "sb-renewer")
ODD_MAILBOX = 'o"dd\\box@example.com'  # a quote and a backslash
# A histogram of each event stage that must have observations after the traffic below.
OBSERVED = {"verifier": "sb_verify_duration_seconds", "enricher": "sb_enrich_duration_seconds",
            "writer": "sb_commit_seconds"}


def setup(ctx):
    rc, google = sh.fakes()
    ctx.state.update(rc=rc, google=google)
    # One SWITCHBOARD_SECRET_KEY for all: the renewer seals the mailbox's refresh token at
    # rest, and the enricher must open it for the Gmail push below.
    p = sh.pipeline(ctx, rc, google, SWITCHBOARD_SECRET_KEY=sh.SECRET_KEY)
    ctx.state["p"] = p
    sh.start_sender(p, rc, google)
    sh.start_streamer(p)
    # A mailbox whose address needs escaping in a label value (the renewer reports every
    # mailbox's expiry with id="<email>"); not active, so nothing calls Google for it.
    p.query("INSERT INTO mailboxes (email, status, watch_expires_at) VALUES (%s, "
            "'reauth_required', now() + interval '3 days')", (ODD_MAILBOX,))
    port = harness.free_port()
    env = sh._env(p, dict(sh.provider_env(rc, google), METRICS_LISTEN="127.0.0.1:%d" % port,
                          ACK_ENDPOINT=">tcp://127.0.0.1:%d" % p.ports["ack"],
                          INSTANCE_ID="renewer-itest", GMAIL_TOPIC="projects/p/topics/t",
                          SWITCHBOARD_SECRET_KEY=sh.SECRET_KEY, LOG_LEVEL="info"))
    st = sh.add_stage(p, "renewer", RENEWER, env, "renewer_metrics", port)
    sh.wait_http(port, "/metrics", st)  # /health is 503: the odd mailbox needs reauth
    check(harness.wait_until(lambda: b"sb_renewer_expiry_timestamp_seconds{" in scrape(port)
                             .body, 15), "the renewer reported no expiry in 15 s")


def test_traffic_through_every_stage(ctx):
    p = ctx.state["p"]
    for i in range(3):
        row = sh.post_sms_event(p, harness.sms_body("9300000000000000%03d" % i))
        check_eq(row["outcome"], "stored", "outcome of SMS %d" % i)
    rejected = p.post_sms(harness.sms_body("9300000000000000999"), token="wrong-token")
    check_eq(rejected.status, 200, "status of the SMS with a wrong token (rejected later)")
    call = harness.fixture_bytes("ringcentral", "call-inbound-answered",
                                 sorted(os.listdir(harness.fixture_path(
                                     "ringcentral", "call-inbound-answered")))[0])
    check_eq(p.post(harness.CALL_PATH, call, {"Verification-Token": harness.VERIFICATION_TOKEN})
             .status, 200, "status of the call event")
    check(harness.wait_until(lambda: p.count("webhook_events") >= 5, 15),
          "only %d webhook_events rows", p.count("webhook_events"))
    push = sh.gmail_push(p)  # waits for its own row: the rows before it must be in
    check(push["outcome"] in ("stored", "ignored"), "Gmail push: %s %s", push["outcome"],
          push["reason"])
    check_eq(p.get("/no/such/path").status, 404, "unknown path")
    size = 1048576 + 1  # MAX_BODY_BYTES + 1; the ingress may answer before it all arrives
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (harness.SMS_PATH, size)).encode()
    check_eq(harness.raw_http(p.http_port, head, [b"x" * 65536] * 16 + [b"x"]).status, 413,
             "oversized body")
    oid = sh.queue(p, "sms", "Your order is ready.", customer_id=p.maria_id)
    check_eq(sh.wait_status(p, oid)["status"], "sent", "outbox reply")
    check_eq(p.count("webhook_events"), 6, "webhook_events rows (the 404 and 413 make none)")


def scrape(port):
    r = harness.http_request(port, "GET", "/metrics", timeout=5)
    check_eq(r.status, 200, "GET /metrics on port %d" % port)
    return r


def stage_ports(p):
    """stage -> metrics port: everything the pipeline runs."""
    return {name: p.metrics_port(name) for name in p.stages}


def test_every_stage_exposes_valid_metrics(ctx):
    p = ctx.state["p"]
    bad, summary = [], []
    for name, port in sorted(stage_ports(p).items()):
        r = scrape(port)
        ctype = r.header("Content-Type") or ""
        if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
            bad.append("%s: Content-Type %r (want text/plain; version=0.0.4)" % (name, ctype))
        errors, warnings = promcheck.check(r.body)
        for e in errors[:10]:
            bad.append("%s: %s" % (name, e))
        if len(errors) > 10:
            bad.append("%s: ... and %d more" % (name, len(errors) - 10))
        for w in warnings:
            print("  %s: warning %s" % (name, w))
        text = r.body.decode("utf-8", "replace")
        summary.append("%s %d families/%d lines" % (
            name, text.count("# TYPE "), text.count("\n")))
        ctx.state.setdefault("pages", {})[name] = r.body
        if os.environ.get("SB_METRICS_DUMP"):
            with open(os.path.join(os.environ["SB_METRICS_DUMP"], name + ".prom"), "wb") as f:
                f.write(r.body)
    print("  " + ", ".join(summary))
    check(not bad, "invalid exposition:\n  %s", "\n  ".join(bad))


def test_histograms_and_counters_have_samples(ctx):
    pages = ctx.state.get("pages")
    check(pages is not None, "no scrape happened")
    empty = []
    for stage, hist in OBSERVED.items():
        count = sum(float(line.rsplit(" ", 1)[1])
                    for line in pages[stage].decode().splitlines()
                    if line.startswith(hist + "_count"))
        if not count > 0:
            empty.append("%s %s_count = %s" % (stage, hist, count))
    for stage in ("ingress", "verifier", "enricher", "writer"):
        text = pages[stage].decode()
        if not any(line.split("{")[0].split(" ")[0].endswith("_total") and
                   float(line.rsplit(" ", 1)[1]) > 0
                   for line in text.splitlines() if line and not line.startswith("#")):
            empty.append("%s: no counter above 0" % stage)
    check(not empty, "metrics without samples after the traffic: %s", empty)
    # The odd mailbox's label value, escaped as the format wants and read back intact.
    ids = []
    for line in pages["renewer"].decode().splitlines():
        if line.startswith("sb_renewer_expiry_timestamp_seconds{"):
            ids += [v for k, v in promcheck.parse_sample(line)[1] if k == "id"]
    check(ODD_MAILBOX in ids, "no expiry series of %r in the renewer's /metrics: ids %r",
          ODD_MAILBOX, ids)


def test_promtool_parses_every_page(ctx):
    tool = shutil.which("promtool")
    if tool is None:
        print("  promtool is not installed (apt-get install prometheus): skipped")
        return
    failed = []
    for name, body in sorted(ctx.state.get("pages", {}).items()):
        r = subprocess.run([tool, "check", "metrics"], input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode not in (0, 3) or "error while linting" in out:
            failed.append("%s: %s" % (name, out))
        elif out:
            print("  promtool lint, %s: %s" % (name, out.replace("\n", "; ")))
    check(not failed, "promtool cannot parse:\n  %s", "\n  ".join(failed))


if __name__ == "__main__":
    harness.run([test_traffic_through_every_stage, test_every_stage_exposes_valid_metrics,
                 test_histograms_and_counters_have_samples, test_promtool_parses_every_page],
                setup=setup)
