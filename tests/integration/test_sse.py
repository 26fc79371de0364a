"""The real-time stream (issue 10, streamer/streamer.h, docs/SENDER.md "Live updates"):
sb-streamer relays the database's notifications as Server-Sent Events.

  - no token, a wrong token: 401; another path 404; POST 405
  - an SSE client receives a new SMS within 1 s of its webhook POST, with the row's id
  - ?token= works (EventSource cannot send headers); ?customer_id= filters
  - Last-Event-ID resumes after a reconnect without losing the event in between
  - a back-fill is relayed as "customers_backfill"
  - STREAM_MAX_CLIENTS: one more stream gets 503 with Retry-After
  - a database restart: the stream stays open and says "resync"
  - SIGTERM: the streams end, exit 0"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sender_harness as sh  # noqa: E402  (puts tests/fakes on the path too)
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

MAX_CLIENTS = 4


def setup(ctx):
    rc, google = sh.fakes()
    p = sh.pipeline(ctx, rc, google)
    ctx.state["p"] = p
    st, port = sh.start_streamer(p, STREAM_MAX_CLIENTS=str(MAX_CLIENTS),
                                 STREAM_HEARTBEAT_MS="500")
    ctx.state.update(streamer=st, port=port)
    check(harness.wait_until(lambda: metric(ctx, "sb_streamer_database_up") == 1, 15),
          "the streamer never LISTENed")


def metric(ctx, name):
    r = harness.http_request(ctx.state["p"].ports["streamer_metrics"], "GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def open_stream(ctx, **kw):
    s, status, hdrs, reader = sh.sse_connect(ctx.state["port"], **kw)
    check_eq(status, 200, "stream status")
    check(hdrs.get("content-type", "").startswith("text/event-stream"), "content type %r",
          hdrs.get("content-type"))
    return s, reader


def next_of(reader, event, timeout, match=lambda d: True):
    """The next event named `event` whose JSON data satisfies match, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        ev = reader.next_event(timeout=max(0.01, deadline - time.monotonic()))
        if ev["event"] == event:
            data = json.loads(ev["data"])
            if match(data):
                return ev, data


def test_the_stream_needs_its_token(ctx):
    port = ctx.state["port"]
    for token in (None, "wrong-token", sh.STREAM_TOKEN + "x"):
        s, status, hdrs, _ = sh.sse_connect(port, token=token)
        s.close()
        check_eq(status, 401, "status with token %r" % token)
        check_eq(hdrs.get("www-authenticate"), "Bearer", "WWW-Authenticate")
    r = harness.http_request(port, "GET", "/api/communications",
                             headers={"Authorization": "Bearer " + sh.STREAM_TOKEN})
    check_eq(r.status, 404, "another path")
    r = harness.http_request(port, "POST", "/api/communications/stream", body=b"{}",
                             headers={"Authorization": "Bearer " + sh.STREAM_TOKEN})
    check_eq((r.status, r.header("Allow")), (405, "GET"), "POST")
    check(metric(ctx, "sb_streamer_unauthorized_total") >= 3, "unauthorized requests counted")


def test_new_sms_reaches_the_client_within_a_second(ctx):
    p = ctx.state["p"]
    s, reader = open_stream(ctx)
    body = harness.sms_body("3062991800001", text="Is the shop open on Sunday?")
    t0 = time.monotonic()
    r = p.post_sms(body)
    check_eq(r.status, 200, "webhook status")
    ev, data = next_of(reader, "communications", 1.0,
                       lambda d: d.get("channel") == "sms" and d.get("op") == "INSERT")
    elapsed = time.monotonic() - t0
    print("   (SSE event %.0f ms after the POST began)" % (elapsed * 1000))
    check(elapsed < 1.0, "took %.3f s", elapsed)
    row = p.dict_rows("SELECT id, customer_id, direction FROM communications "
                      "WHERE external_id = '3062991800001'")[0]
    check_eq((data["id"], data["customer_id"], data["direction"]),
             (row["id"], p.maria_id, "inbound"), "event data")
    check(ev["id"] and "-" in ev["id"], "event id %r", ev["id"])
    ctx.state["last_id"] = ev["id"]
    s.close()


def test_query_token_and_customer_filter(ctx):
    p = ctx.state["p"]
    other = p.add_customer("Other Person", "(312) 555-0111", None)
    sf, filtered = open_stream(ctx, token=None,
                               path="/api/communications/stream?token=%s&customer_id=%d" % (
                                   sh.STREAM_TOKEN, other))
    sa, everything = open_stream(ctx)
    p.post_sms(harness.sms_body("3062991800002", text="From Maria"))
    next_of(everything, "communications", 5, lambda d: d.get("customer_id") == p.maria_id)
    p.post_sms(harness.sms_body("3062991800003", from_phone="+13125550111", text="From Other"))
    _, data = next_of(filtered, "communications", 5)
    check_eq(data["customer_id"], other, "the filtered stream's first event")
    sf.close()
    sa.close()


def test_last_event_id_resumes_after_a_reconnect(ctx):
    p = ctx.state["p"]
    s, reader = open_stream(ctx)
    p.post_sms(harness.sms_body("3062991800004", text="one"))
    ev, first = next_of(reader, "communications", 5, lambda d: d.get("op") == "INSERT")
    s.close()  # the client goes away; an event happens meanwhile
    p.post_sms(harness.sms_body("3062991800005", text="two"))
    want = p.wait_count("communications", 1, "external_id = '3062991800005'")
    check_eq(want, 1, "the second SMS is stored")
    s, reader = open_stream(ctx, headers={"Last-Event-ID": ev["id"]})
    _, missed = next_of(reader, "communications", 5, lambda d: d.get("op") == "INSERT")
    second = p.scalar("SELECT id FROM communications WHERE external_id = '3062991800005'")
    check_eq(missed["id"], second, "the event missed while away comes first")
    s.close()


def test_backfill_is_relayed(ctx):
    p = ctx.state["p"]
    ev = sh.post_sms_event(p, harness.sms_body("3062991800006", from_phone="+13125550122",
                                               text="Unknown so far"))
    s, reader = open_stream(ctx)
    cid = p.add_customer("Late Customer", "312-555-0122", None)
    _, data = next_of(reader, "customers_backfill", 2)
    check_eq((data["customer_id"], data["communication_ids"]), (cid, [ev["communication_id"]]),
             "back-fill event")
    s.close()


def test_too_many_streams_get_503(ctx):
    check(harness.wait_until(lambda: metric(ctx, "sb_streamer_clients") == 0, 10),
          "closed streams are not released: %r" % metric(ctx, "sb_streamer_clients"))
    streams = [open_stream(ctx)[0] for _ in range(MAX_CLIENTS)]
    s, status, hdrs, _ = sh.sse_connect(ctx.state["port"])
    s.close()
    check_eq((status, hdrs.get("retry-after")), (503, "5"), "one stream too many")
    for s in streams:
        s.close()
    check(harness.wait_until(lambda: metric(ctx, "sb_streamer_clients") == 0, 10),
          "streams not released")
    s, reader = open_stream(ctx)  # room again
    s.close()


def test_database_restart_says_resync(ctx):
    p = ctx.state["p"]
    s, reader = open_stream(ctx)
    p.pg.restart(mode="fast")
    ev = reader.next_event(timeout=20)
    while ev["event"] != "resync":
        ev = reader.next_event(timeout=20)
    check_eq(json.loads(ev["data"])["reason"], "database_reconnected", "resync reason")
    p.post_sms(harness.sms_body("3062991800007", text="after the restart"))
    next_of(reader, "communications", 15, lambda d: d.get("op") == "INSERT")
    ctx.state["open"] = (s, reader)


def test_sigterm_ends_the_streams_and_exits_0(ctx):
    s, reader = ctx.state["open"]
    sh.stop_clean(ctx.state["streamer"])
    try:
        while True:
            reader.next_event(timeout=5)
    except EOFError:
        pass  # the stream ended
    except socket.timeout:
        raise harness.TestFailure("the stream stayed open after SIGTERM")
    s.close()


if __name__ == "__main__":
    harness.run([test_the_stream_needs_its_token,
                 test_new_sms_reaches_the_client_within_a_second,
                 test_query_token_and_customer_filter,
                 test_last_event_id_resumes_after_a_reconnect,
                 test_backfill_is_relayed,
                 test_too_many_streams_get_503,
                 test_database_restart_says_resync,
                 test_sigterm_ends_the_streams_and_exits_0], setup=setup)
