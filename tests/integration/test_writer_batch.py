#!/usr/bin/python3
"""test_writer_batch - the writer's set-wise batch statement (writer/db_batch.h) stores
exactly what one statement per event stores, in a real PostgreSQL.

sb-writer-batch (writer/tools) maps events as sb-writer does and stores each batch with
sb_db_write, once set-wise (the default) into one database and once with --per-event (the
writer's previous path) into another. Each batch mixes what a busy writer sees:
redeliveries of stored events and copies of one event within the batch, provider retries
of stored messages and duplicates within the batch, known customers (inbound: the sender,
outbound: the recipient, two customers on one number: the lowest id) and unknown numbers,
malformed, unverified and ignored events, text that quoting would break, calls and
enricher rows between the SMS (which split the set-wise runs), and a poison event (a
trigger refuses its row). Checked: each event's outcome against the expected one, both
databases row for row, the NOTIFYs an application hears, and from the server's statement
log that a batch of plain SMS is one statement whatever its size."""

import json
import os
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

TOOL = os.path.join(harness.BUILD_DIR, "writer", "sb-writer-batch")
RECEIVED = 1795964400000  # 2026-11-29T15:00:00Z, the ingress's receive time of every event
HEADERS = json.dumps({"content-type": "application/json", "verification-token": "secret-vt"})
NASTY = 'a "quoted" \\back\\slash, {braces}, NULL, \'single\'\n\ttab, caf\u00e9 \u6f22\u5b57 \U0001F600'


def sms(event_id, msg_id, frm="+14155550134", to="+16505550100", direction="Inbound",
        text="Is order #48213 ready?", created="2026-11-24T15:00:12.418Z", **kw):
    body = {"uuid": "u-" + event_id,
            "event": "/restapi/v1.0/account/~/extension/~/message-store/instant?type=SMS",
            "body": {"id": msg_id, "type": "SMS", "direction": direction,
                     "from": {"phoneNumber": frm}, "to": [{"phoneNumber": to}] if to else [],
                     "creationTime": created, "subject": text, "messageStatus": "Received",
                     "conversation": {"id": "7876416245344257449"}}}
    body["body"].update(kw.pop("extra_body", {}))
    ev = {"event_id": event_id, "source": "ringcentral_sms", "received_at_ms": RECEIVED,
          "headers": HEADERS, "verdict": "accepted",
          "body": json.dumps(body, ensure_ascii=False)}
    ev.update(kw)
    return ev


def raw(event_id, body, source="ringcentral_sms", **kw):
    ev = {"event_id": event_id, "source": source, "received_at_ms": RECEIVED,
          "headers": HEADERS, "verdict": "accepted"}
    if isinstance(body, bytes):
        ev["body_hex"] = body.hex()
    else:
        ev["body"] = body
    ev.update(kw)
    return ev


CALL = json.dumps({"uuid": "c1", "event": "/restapi/v1.0/account/~/extension/~/telephony/sessions",
                   "body": {"sequence": 2, "telephonySessionId": "s-batch-1",
                            "eventTime": "2026-11-24T15:02:11.204Z",
                            "parties": [{"id": "p-1", "extensionId": "100", "direction": "Inbound",
                                         "from": {"phoneNumber": "+14155550134"},
                                         "to": {"phoneNumber": "+16505550100"},
                                         "status": {"code": "Setup"}, "missedCall": False}]}})


def extra(event_id, msg_id, to="+14155550188"):
    """A message-store notification the enricher filled: one outbound SMS row."""
    row = {"channel": "sms", "direction": "outbound", "provider": "ringcentral",
           "external_id": msg_id, "thread_id": "7876416245344257449",
           "from_address": "+16505550100", "to_address": to, "subject": None,
           "body": "fetched " + msg_id, "status": "Delivered",
           "occurred_at": "2026-11-24T15:05:00.000Z", "match_phone": to}
    ev = raw(event_id, '{"uuid":"ms","body":{"changes":[{"type":"SMS","newCount":1}]}}')
    ev["extra"] = json.dumps({"communications": [row]})
    return ev


# Message ids are 19-digit integers above 2^53, as RingCentral's are.
M = {k: "30629915140%08d" % i for i, k in enumerate(
    ["s1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "p1", "p2", "p3"], start=1)}

BATCHES = [
    # 0: what is stored before the mixed batch comes
    [sms("ing:e:1", M["s1"]),
     raw("ing:e:2", "{not json", verdict="rejected", reason="bad_verification_token")],
    # 1: the mixed batch
    [sms("ing:e:1", M["s1"]),                                    # redelivered: nothing
     sms("ing:e:10", M["s1"]),                                   # provider retry: duplicate
     sms("ing:e:11", M["m2"], frm="(212) 555-0199"),             # unknown number
     sms("ing:e:12", M["m3"], frm="415.555.0177"),               # two customers: lowest id
     sms("ing:e:13", M["m3"], frm="415.555.0177"),               # same message again: dup
     sms("ing:e:11", M["m2"], frm="(212) 555-0199"),             # copy of an event in here
     raw("ing:e:14", b'{"body": \x00\xff\xfe not json'),         # malformed, bytes kept
     sms("ing:e:15", M["m4"], frm="+16505550100", to="14155550188",
         direction="Outbound"),                                  # outbound: the recipient
     raw("ing:e:16", json.dumps({"event": "/restapi/v1.0/subscription/~?threshold=86400"})),
     sms("ing:e:17", M["m5"], text=NASTY, to=None),              # quoting would break it
     sms("ing:e:18", M["m9"], verdict="rejected", reason="bad_verification_token"),
     raw("ing:e:2", "{not json", verdict="rejected", reason="bad_verification_token"),
     raw("ing:e:19", CALL, source="ringcentral_call"),           # a call splits the run
     sms("ing:e:20", M["m6"], created="2026-02-30T10:00:00Z"),   # bad time: received_at
     extra("ing:e:21", M["m7"]),                                 # enricher row, new
     sms("ing:e:22", M["m7"], frm="+16505550100", to="14155550188",
         direction="Outbound"),                                  # same message: duplicate
     sms("ing:e:23", M["m8"], extra_body={"type": "Fax"}),       # ignored
     extra("ing:e:24", M["m6"])],                                # SMS stored it: duplicate
    # 2: a poison event inside a run (a trigger refuses its communication)
    [sms("ing:e:30", M["p1"]),
     sms("ing:e:31", M["p2"], text="POISON"),
     sms("ing:e:32", M["p3"]),
     sms("ing:e:33", M["p1"])],
    # 3: the mixed batch delivered again: nothing new
    None,
    # 4: fifty plain SMS, a few from customers, one repeated: one statement
    [sms("ing:e:%d" % (100 + i), "40000000000000%05d" % (i - (i == 49)),
         frm="+1415555%04d" % (134 if i % 7 == 0 else 5000 + i)) for i in range(50)],
]
BATCHES[3] = BATCHES[1]

CUSTOMERS = [  # name, phone, email; ids 1.. in this order
    ("Maria Lopez", "(415) 555-0134", "Maria.Lopez@Example.com"),
    ("Twin B", "+1 415 555 0177", None),
    ("Twin A", "415-555-0177", None),
    ("Outbound Olga", "1 (415) 555-0188", None),
    ("No Phone", None, "nophone@example.com"),
    ("Bad Phone", "n/a", None),
]

EXPECTED = [  # event_id -> outcome (None: redelivery, no row)
    [("ing:e:1", "stored"), ("ing:e:2", "rejected")],
    [("ing:e:1", None), ("ing:e:10", "duplicate"), ("ing:e:11", "stored"),
     ("ing:e:12", "stored"), ("ing:e:13", "duplicate"), ("ing:e:11", None),
     ("ing:e:14", "rejected"), ("ing:e:15", "stored"), ("ing:e:16", "ignored"),
     ("ing:e:17", "stored"), ("ing:e:18", "rejected"), ("ing:e:2", None),
     ("ing:e:19", "stored"), ("ing:e:20", "stored"), ("ing:e:21", "stored"),
     ("ing:e:22", "duplicate"), ("ing:e:23", "ignored"), ("ing:e:24", "duplicate")],
    [("ing:e:30", "stored"), ("ing:e:31", "failed"), ("ing:e:32", "stored"),
     ("ing:e:33", "duplicate")],
    [(x["event_id"], None) for x in BATCHES[1]],
    [("ing:e:%d" % (100 + i), "duplicate" if i == 49 else "stored") for i in range(50)],
]

POISON_TRIGGER = """
CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'POISON' THEN
        RAISE EXCEPTION 'poison message';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_poison BEFORE INSERT ON communications
    FOR EACH ROW EXECUTE FUNCTION test_poison();
"""


def run_tool(pg, dbname, per_event, batches):
    url = "postgresql://postgres@127.0.0.1:%d/%s" % (pg.port, dbname)
    args = [TOOL, "apply"] + (["--per-event"] if per_event else []) + [url]
    p = subprocess.run(args, input=json.dumps({"default_cc": "1", "batches": batches}).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "%s failed (%d): %s", " ".join(args[:3]), p.returncode,
          p.stderr.decode("utf-8", "replace")[-2000:])
    return json.loads(p.stdout)["batches"]


def db_conn(pg, dbname):
    import psycopg2
    conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=dbname)
    conn.autocommit = True
    return conn


def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


# What is compared between the two databases: everything but surrogate ids (sequence gaps
# may differ) and now(); a communication_id is shown as its row's key, and the order of
# the ids is kept.
EVENTS_SQL = """
SELECT w.event_id, w.source, w.received_at, w.outcome, w.reason, w.headers, w.body,
       c.provider, c.channel, c.external_id
FROM webhook_events w LEFT JOIN communications c ON c.id = w.communication_id ORDER BY w.id"""
COMMS_SQL = """
SELECT customer_id, channel, direction, provider, external_id, thread_id, from_address,
       to_address, subject, body, status, occurred_at, started_at, answered_at, ended_at,
       duration_seconds, missed
FROM communications ORDER BY id"""


def setup(ctx):
    check(os.access(TOOL, os.X_OK), "%s is not built", TOOL)
    pg = ctx.postgres()
    admin = pg.connect()
    for db in ("setwise", "perevent"):
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % db)
    # Only the set-wise database logs its statements (for the statement count below).
    with admin.cursor() as cur:
        cur.execute("ALTER DATABASE setwise SET log_statement = 'all'")
        cur.execute("ALTER DATABASE setwise SET log_parameter_max_length = 0")
    admin.close()
    results = {}
    for db, per_event in (("setwise", False), ("perevent", True)):
        run_tool(pg, db, per_event, [])  # the migrations
        conn = db_conn(pg, db)
        with conn.cursor() as cur:
            for name, phone, email in CUSTOMERS:
                cur.execute("INSERT INTO customers (name, phone, email) VALUES (%s, %s, %s)",
                            (name, phone, email))
            cur.execute(POISON_TRIGGER)
        with conn.cursor() as cur:
            cur.execute("LISTEN communications")
        results[db] = run_tool(pg, db, per_event, BATCHES)
        ctx.state["notified_" + db] = notifications(conn)
        conn.close()
    ctx.state["results"] = results


def notifications(conn):
    """What a LISTEN communications connection heard: [(op, external_id)] in order."""
    # Notifications arrive after the commits, asynchronously: read until none came for
    # half a second (a single poll missed most of them on a loaded machine).
    deadline, quiet_since, seen = time.monotonic() + 15, time.monotonic(), 0
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.5:
        select.select([conn], [], [], 0.1)
        conn.poll()
        if len(conn.notifies) != seen:
            seen, quiet_since = len(conn.notifies), time.monotonic()
    heard = [json.loads(n.payload) for n in conn.notifies]
    keys = dict(rows(conn, "SELECT id, external_id FROM communications"))
    return [(n["op"], keys.get(n["id"])) for n in heard]


def test_outcomes_are_the_expected_ones(ctx):
    for db, results in ctx.state["results"].items():
        check_eq(len(results), len(EXPECTED), db + ": batches")
        for b, (got, want) in enumerate(zip(results, EXPECTED)):
            check_eq(got["final"], "ok", "%s batch %d final status" % (db, b))
            check_eq([(e["event_id"], e.get("outcome")) for e in got["events"]], want,
                     "%s batch %d outcomes" % (db, b))


def test_poison_is_named_in_both_paths(ctx):
    for db, results in ctx.state["results"].items():
        statuses = [(r["status"], r["poison"]) for r in results]
        check_eq(statuses, [("ok", None), ("ok", None), ("data", "ing:e:31"), ("ok", None),
                            ("ok", None)], db + ": first attempt of each batch")


def test_both_paths_store_the_same_rows(ctx):
    pg = ctx.pg
    a, b = db_conn(pg, "setwise"), db_conn(pg, "perevent")
    try:
        for what, sql in (("webhook_events", EVENTS_SQL), ("communications", COMMS_SQL)):
            ra, rb = rows(a, sql), rows(b, sql)
            check_eq(len(ra), len(rb), what + " row count")
            for i, (x, y) in enumerate(zip(ra, rb)):
                check(x == y, "%s row %d differs:\n set-wise:  %r\n per-event: %r", what, i, x, y)
        check_eq(rows(a, "SELECT count(*) FROM webhook_events")[0][0], 2 + 15 + 4 + 50,
                 "webhook_events rows")
        check_eq(rows(a, "SELECT count(*) FROM communications")[0][0], 1 + 7 + 2 + 49,
                 "communications rows")
    finally:
        a.close()
        b.close()


def test_notifications_come_in_the_same_order(ctx):
    a, b = ctx.state["notified_setwise"], ctx.state["notified_perevent"]
    check_eq(len(a), 1 + 7 + 2 + 49, "notifications (one per inserted row)")
    check_eq(a, b, "NOTIFY communications, set-wise against per-event")


def test_rows_hold_what_the_events_carried(ctx):
    conn = db_conn(ctx.pg, "setwise")
    try:
        def comm(msg_id):
            r = rows(conn, "SELECT customer_id, from_address, to_address, body, occurred_at,"
                           " thread_id FROM communications WHERE external_id = '%s'" % msg_id)
            check_eq(len(r), 1, "rows of " + msg_id)
            return r[0]

        def event(event_id):
            return rows(conn, "SELECT outcome, reason, communication_id, body, headers"
                              " FROM webhook_events WHERE event_id = '%s'" % event_id)[0]

        ids = dict(rows(conn, "SELECT name, id FROM customers"))
        check_eq(comm(M["s1"])[0], ids["Maria Lopez"], "inbound SMS matched on the sender")
        check_eq(comm(M["m2"])[0], None, "unknown number")
        check_eq(comm(M["m3"])[0], min(ids["Twin A"], ids["Twin B"]), "lowest id wins")
        check_eq(comm(M["m4"])[0], ids["Outbound Olga"], "outbound SMS matched on recipient")
        check_eq(comm(M["m4"])[1:3], ("+16505550100", "+14155550188"), "addresses in E.164")
        check_eq(comm(M["m7"])[3], "fetched " + M["m7"], "the enricher's row came first")
        nasty = comm(M["m5"])
        check_eq(nasty[3], NASTY, "text that quoting would break, byte for byte")
        check_eq(nasty[2], None, "no recipient")
        check_eq(str(comm(M["m6"])[4]), "2026-11-29 15:00:00+00:00", "bad time: received_at")
        check_eq(event("ing:e:14")[3].tobytes(), b'{"body": \x00\xff\xfe not json',
                 "malformed body stored byte for byte")
        check_eq(event("ing:e:14")[1], "malformed_json", "reason")
        check_eq(event("ing:e:18")[0:2], ("rejected", "bad_verification_token"), "unverified")
        check_eq(event("ing:e:16")[0:2], ("ignored", "subscription_notification"), "ignored")
        check_eq(event("ing:e:10")[2], event("ing:e:1")[2], "retry points at the stored row")
        check_eq(event("ing:e:13")[2], event("ing:e:12")[2], "in-batch duplicate, same row")
        check(event("ing:e:13")[2] is not None, "in-batch duplicate has a communication_id")
        check_eq(event("ing:e:24")[2], event("ing:e:20")[2], "enricher duplicate, same row")
        check_eq(event("ing:e:17")[4]["verification-token"], "[redacted]", "headers redacted")
        poison = event("ing:e:31")
        check_eq(poison[0:3], ("failed", "P0001: poison message", None), "poison stored as failed")
        # ids follow the batch: the mixed batch's new rows in the order of their events
        order = [r[0] for r in rows(conn, "SELECT external_id FROM communications"
                                          " ORDER BY id")][:9]
        check_eq(order, [M["s1"], M["m2"], M["m3"], M["m4"], M["m5"], "s-batch-1", M["m6"],
                         M["m7"], M["p1"]], "communications ids in batch order")
    finally:
        conn.close()


def test_plain_sms_batch_is_one_statement(ctx):
    """From the set-wise database's statement log: batch 4 (fifty plain SMS) sent one
    sb_batch statement and no per-event one; batch 1 one per run."""
    with open(ctx.pg.logfile, encoding="utf-8", errors="replace") as f:
        log = f.read()
    batches = re.split(r"statement: SELECT 'sb-writer-batch batch (\d+)'", log)
    per_batch = {}
    for i in range(1, len(batches) - 1, 2):
        text = batches[i + 1]
        per_batch[int(batches[i])] = {name: len(re.findall(r"execute %s\b" % name, text))
                                      for name in ("sb_batch", "sb_comm", "sb_event",
                                                   "sb_call", "sb_extra")}
    check_eq(per_batch.get(4), {"sb_batch": 1, "sb_comm": 0, "sb_event": 0, "sb_call": 0,
                                "sb_extra": 0}, "statements of 50 plain SMS")
    # Batch 1: runs [0..11] set-wise, the call, [13] alone, the extra, [15..16] set-wise,
    # the extra.
    check_eq(per_batch.get(1), {"sb_batch": 2, "sb_comm": 1, "sb_event": 0, "sb_call": 1,
                                "sb_extra": 2}, "statements of the mixed batch")


if __name__ == "__main__":
    harness.run([test_outcomes_are_the_expected_ones, test_poison_is_named_in_both_paths,
                 test_both_paths_store_the_same_rows, test_notifications_come_in_the_same_order,
                 test_rows_hold_what_the_events_carried,
                 test_plain_sms_batch_is_one_statement], setup=setup)
