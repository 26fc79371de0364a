"""Calls end to end: telephony-session events -> one communications row per session
(SPEC "Matching and mapping", Calls; writer/migrations/0003_calls.sql).

For each call sequence (the shared fixtures inbound answered, inbound missed and outbound,
and tests/data/call-inbound-voicemail) every permutation of its events is posted under a
session id of its own, some with provider retries (the same bytes again), some posts one
after the other and some all at once, so that batches split differently. Each session must
end as exactly one row equal, column by column, to the expected one. Then the same again
with two writers consuming at once, and the bad inputs."""

import concurrent.futures
import datetime
import decimal
import glob
import itertools
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

UTC = datetime.timezone.utc
DATA_DIR = os.path.join(harness.SOURCE_DIR, "tests", "data")
SEED = int(os.environ.get("SB_CALLS_SEED", random.randrange(1 << 30)))


def ts(text):
    """'2026-11-24T15:02:11.204Z' -> aware datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def expected_voicemail():
    with open(os.path.join(DATA_DIR, "call-inbound-voicemail", "expected.json")) as f:
        e = json.load(f)
    return {
        "direction": e["direction"], "from_address": e["from_address"],
        "to_address": e["to_address"], "status": e["status"],
        "started_at": ts(e["started_at"]), "answered_at": None,
        "ended_at": ts(e["ended_at"]), "duration_seconds": decimal.Decimal(e["duration_seconds"]),
        "missed": e["missed"], "customer": "omar",
    }


# The rows of fixtures/README.md ("Expected derived row", talk times) and of our voicemail.
SEQUENCES = {
    "inbound-answered": (harness.fixture_path("ringcentral", "call-inbound-answered"), {
        "direction": "inbound", "from_address": "+14155550134", "to_address": "+16505550100",
        "status": "completed", "started_at": ts("2026-11-24T15:02:11.204Z"),
        "answered_at": ts("2026-11-24T15:02:21.015Z"), "ended_at": ts("2026-11-24T15:05:23.610Z"),
        "duration_seconds": decimal.Decimal("182.595"), "missed": False, "customer": "maria"}),
    "inbound-missed": (harness.fixture_path("ringcentral", "call-inbound-missed"), {
        "direction": "inbound", "from_address": "+13125550142", "to_address": "+16505550100",
        "status": "missed", "started_at": ts("2026-11-24T16:40:05.037Z"), "answered_at": None,
        "ended_at": ts("2026-11-24T16:40:32.967Z"), "duration_seconds": decimal.Decimal("0"),
        "missed": True, "customer": "james"}),
    "outbound": (harness.fixture_path("ringcentral", "call-outbound"), {
        "direction": "outbound", "from_address": "+16505550100", "to_address": "+12125550178",
        "status": "completed", "started_at": ts("2026-11-24T17:15:30.627Z"),
        "answered_at": ts("2026-11-24T17:15:37.900Z"), "ended_at": ts("2026-11-24T17:17:13.018Z"),
        "duration_seconds": decimal.Decimal("95.118"), "missed": False, "customer": "priya"}),
    "inbound-voicemail": (os.path.join(DATA_DIR, "call-inbound-voicemail"), None),
}

HEADERS = {"Content-Type": "application/json; charset=UTF-8"}


def load_events(directory):
    """The sequence's events in file order, as parsed JSON documents."""
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "[0-9][0-9]-*.json"))):
        with open(path, "rb") as f:
            out.append(json.loads(f.read()))
    check(len(out) >= 3, "too few events in %s", directory)
    return out


def with_session(doc, session):
    """The event under another telephonySessionId, as the bytes RingCentral would send."""
    d = json.loads(json.dumps(doc))
    d["body"]["telephonySessionId"] = session
    return json.dumps(d, indent=1).encode("utf-8")


def post_call(p, body):
    h = dict(HEADERS)
    h["Verification-Token"] = harness.VERIFICATION_TOKEN
    r = p.post(harness.CALL_PATH, body, h, timeout=20)
    check_eq(r.status, 200, "HTTP status of a call event")


def setup(ctx):
    p = ctx.pipeline()
    ctx.state["p"] = p
    ctx.state["customers"] = {
        "maria": p.maria_id,
        # Stored the way a CRM user types them; matching goes through E.164.
        "james": p.add_customer("James Chen", "312-555-0142", None),
        "priya": p.add_customer("Priya", "(212) 555-0178", None),
        "omar": p.add_customer("Omar Haddad", "617.555.0166", None),
    }
    SEQUENCES["inbound-voicemail"] = (SEQUENCES["inbound-voicemail"][0], expected_voicemail())
    ctx.state["events"] = {name: load_events(d) for name, (d, _e) in SEQUENCES.items()}
    print("random seed %d (set SB_CALLS_SEED to replay)" % SEED)


def plan_runs(ctx, tag, rng):
    """One run per permutation of each sequence: (name, session, [bodies in post order],
    concurrent, number of distinct events, number of duplicates)."""
    runs = []
    for name, events in ctx.state["events"].items():
        for i, perm in enumerate(itertools.permutations(range(len(events)))):
            session = "s-itest-%s-%s-%d" % (tag, name, i)
            order = list(perm)
            dups = 0
            if rng.random() < 0.4:  # provider retries: some events arrive again, anywhere
                for _ in range(rng.randint(1, 3)):
                    order.insert(rng.randrange(len(order) + 1), rng.choice(perm))
                    dups += 1
            bodies = [with_session(events[k], session) for k in order]
            runs.append((name, session, bodies, rng.random() < 0.3, len(events), dups))
    rng.shuffle(runs)
    return runs


def post_runs(p, runs, workers):
    """Post every run; a run is posted one event after the other (its order is the
    arrival order), or all at once when marked concurrent. Runs overlap in `workers`
    threads, so batches mix sessions."""
    def one(run):
        _name, _session, bodies, concurrent, _k, _d = run
        if concurrent:
            with concurrent_pool(len(bodies)) as pool:
                list(pool.map(lambda b: post_call(p, b), bodies))
        else:
            for b in bodies:
                post_call(p, b)

    with concurrent_pool(workers) as pool:
        list(pool.map(one, runs))
    return sum(len(r[2]) for r in runs)


def concurrent_pool(n):
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, n))


ROW_COLUMNS = ("direction", "from_address", "to_address", "status", "started_at",
               "answered_at", "ended_at", "duration_seconds", "missed")


def check_runs(ctx, p, runs, before_event_id):
    total = sum(len(r[2]) for r in runs)
    got = p.wait_count("webhook_events", total, "id > %s", (before_event_id,), timeout=60)
    check_eq(got, total, "webhook_events rows for the posted call events")
    customers = ctx.state["customers"]
    sessions = [r[1] for r in runs]
    rows = p.dict_rows("SELECT * FROM communications WHERE channel = 'call' AND"
                       " external_id = ANY(%s)", (sessions,))
    by_session = {}
    for row in rows:
        check(row["external_id"] not in by_session, "two rows for session %s",
              row["external_id"])
        by_session[row["external_id"]] = row
    events = p.dict_rows("SELECT e.outcome, e.reason, e.communication_id, c.external_id"
                         " FROM webhook_events e LEFT JOIN communications c"
                         " ON c.id = e.communication_id WHERE e.id > %s", (before_event_id,))
    outcomes = {}
    for e in events:
        check(e["external_id"] is not None, "event without its call row: %r", e)
        outcomes.setdefault(e["external_id"], []).append(e["outcome"])
    for name, session, _bodies, concurrent, k, dups in runs:
        expected = SEQUENCES[name][1]
        row = by_session.get(session)
        check(row is not None, "no communications row for %s (%s)", session, name)
        what = "%s %s%s" % (name, session, " (posted at once)" if concurrent else "")
        for col in ROW_COLUMNS:
            check_eq(row[col], expected[col], "%s: %s" % (what, col))
        check_eq(row["customer_id"], customers[expected["customer"]], "%s: customer_id" % what)
        check_eq(row["occurred_at"], expected["started_at"], "%s: occurred_at" % what)
        check_eq((row["channel"], row["provider"]), ("call", "ringcentral"), what)
        check_eq((row["subject"], row["body"]), (None, None), "%s: subject, body" % what)
        got = sorted(outcomes.get(session, []))
        check_eq(got, sorted(["stored"] * k + ["duplicate"] * dups),
                 "%s: webhook_events outcomes" % what)


def check_no_deadlocks(p):
    for path in p.log_paths():
        with open(path, "rb") as f:
            data = f.read()
        check(b"40P01" not in data and b"deadlock" not in data,
              "a deadlock in %s: the batch's sessions must be locked in one order", path)


def test_fixture_delivery_order_with_duplicate(ctx):
    """The shuffled order of the fixtures (a duplicate included) gives the README's row."""
    p = ctx.state["p"]
    d = SEQUENCES["inbound-answered"][0]
    names = [line.strip() for line in open(os.path.join(d, "delivery-order-shuffled.txt"))
             if line.strip() and not line.startswith("#")]
    before = p.max_event_id()
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            post_call(p, f.read())
    runs = [("inbound-answered", "s-a0d7f1c2e3b44c5d9e8f7a6b5c4d3e2f", [b""] * len(names),
             False, 4, len(names) - 4)]
    check_runs(ctx, p, runs, before)


def test_intermediate_states(ctx):
    """While a call is going on the row says so: ringing, then in progress."""
    p = ctx.state["p"]
    events = ctx.state["events"]["outbound"]
    session = "s-itest-live"
    before = p.max_event_id()
    post_call(p, with_session(events[1], session))  # Proceeding
    p.wait_new_events(before, 1)
    row = p.dict_rows("SELECT * FROM communications WHERE external_id = %s", (session,))[0]
    check_eq((row["status"], row["answered_at"], row["ended_at"], row["missed"],
              row["duration_seconds"]), ("ringing", None, None, False, decimal.Decimal(0)),
             "after Proceeding")
    check_eq(row["started_at"], ts("2026-11-24T17:15:34.166Z"), "started_at so far")
    post_call(p, with_session(events[2], session))  # Answered
    p.wait_new_events(before, 2)
    row = p.dict_rows("SELECT * FROM communications WHERE external_id = %s", (session,))[0]
    check_eq((row["status"], row["answered_at"], row["ended_at"], row["duration_seconds"]),
             ("in_progress", ts("2026-11-24T17:15:37.900Z"), None, None), "after Answered")
    post_call(p, with_session(events[0], session))  # Setup, late: an earlier start
    p.wait_new_events(before, 3)
    row = p.dict_rows("SELECT * FROM communications WHERE external_id = %s", (session,))[0]
    check_eq(row["started_at"], ts("2026-11-24T17:15:30.627Z"), "started_at after Setup")
    check_eq(row["status"], "in_progress", "status before Disconnected")


def test_every_permutation_one_writer(ctx):
    p = ctx.state["p"]
    rng = random.Random(SEED)
    runs = plan_runs(ctx, "w1", rng)
    before = p.max_event_id()
    t = time.monotonic()
    n = post_runs(p, runs, workers=6)
    check_runs(ctx, p, runs, before)
    print("  %d sessions, %d events in %.1fs" % (len(runs), n, time.monotonic() - t))


def add_writer(p):
    """Start a second sb-writer on its own port and make the stage that feeds the writer
    push to both (libzmq load-balances over connected peers)."""
    (pull_port, metrics_port) = harness.free_ports(2)
    first = p.stages["writer"]
    old = first.env["WRITER_PULL_ENDPOINT"].lstrip("@")
    env = dict(first.env)
    env["WRITER_PULL_ENDPOINT"] = "@tcp://127.0.0.1:%d" % pull_port
    env["METRICS_LISTEN"] = "127.0.0.1:%d" % metrics_port
    second = harness.StageProcess("writer", first.binary, env,
                                  os.path.join(p.tmp, "writer2.log"))
    second.start()
    p.stages["writer2"] = second  # stopped, and its log checked, with the others
    feeders = [(name, var) for name, st in p.stages.items() for var, value in st.env.items()
               if var.endswith("PUSH_ENDPOINT") and value == ">" + old]
    check(len(feeders) == 1, "cannot find the stage that pushes to the writer: %r", feeders)
    name, var = feeders[0]
    p.stages[name].env[var] = ">%s,>tcp://127.0.0.1:%d" % (old, pull_port)
    p.restart(name)
    p.wait_ready()
    return second


def test_every_permutation_two_writers(ctx):
    """Two writers consume at once: every session still converges to the same row."""
    p = ctx.state["p"]
    second = add_writer(p)
    check(second.alive(), "the second writer did not start")
    rng = random.Random(SEED + 1)
    runs = plan_runs(ctx, "w2", rng)
    before = p.max_event_id()
    post_runs(p, runs, workers=8)
    check_runs(ctx, p, runs, before)
    # Both writers did some of the work (each logs nothing per event; use the metrics).
    for st in (p.stages["writer"], second):
        port = int(st.env["METRICS_LISTEN"].rsplit(":", 1)[1])
        text = harness.http_request(port, "GET", "/metrics").body.decode()
        stored = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("sb_events_written_total{")
                     and 'source="ringcentral_call"' in line)
        check(stored > 0, "writer on %s stored no call event", st.env["WRITER_PULL_ENDPOINT"])
    check_no_deadlocks(p)


BAD_BODIES = [
    ("malformed", b'{"body": {"telephonySessionId": ', "rejected", "malformed_json"),
    ("array", b"[1,2,3]", "rejected", "unrecognized_payload"),
    ("no body", b'{"event": "/restapi/v1.0/account/~/extension/~/telephony/sessions"}',
     "rejected", "unrecognized_payload"),
]


def bad_event(events, edit):
    d = json.loads(json.dumps(events[0]))
    edit(d["body"], d["body"]["parties"][0])
    return json.dumps(d).encode()


def test_bad_input(ctx):
    p = ctx.state["p"]
    events = ctx.state["events"]["inbound-missed"]
    cases = list(BAD_BODIES)
    cases += [
        ("no session id", bad_event(events, lambda b, _p: b.pop("telephonySessionId")),
         "rejected", "missing_telephony_session_id"),
        ("no sequence", bad_event(events, lambda b, _p: b.pop("sequence")),
         "rejected", "missing_sequence"),
        ("empty parties", bad_event(events, lambda b, _p: b.update(parties=[])),
         "ignored", "no_parties"),
        ("party without numbers",
         bad_event(events, lambda _b, pt: pt.update({"from": {"name": "Anonymous"}, "to": {}})),
         "ignored", "party_without_phone_number"),
        ("party without status", bad_event(events, lambda _b, pt: pt.pop("status")),
         "rejected", "unrecognized_party"),
        ("subscription reminder",
         b'{"event": "/restapi/v1.0/subscription/~?threshold=86400&interval=3600",'
         b' "body": {"id": "c41d8e02", "expiresIn": 86398}}',
         "ignored", "subscription_notification"),
    ]
    calls_before = p.count("communications", "channel = 'call'")
    before = p.max_event_id()
    for _name, body, _o, _r in cases:
        post_call(p, body)
    rows = p.wait_new_events(before, len(cases), timeout=20)
    check_eq(len(rows), len(cases), "webhook_events rows for the bad inputs")
    # With two writers the rows need not come in the order of the posts: match on the body.
    by_body = {bytes(row["body"]): row for row in rows}
    for name, body, outcome, reason in cases:
        row = by_body.get(body)
        check(row is not None, "%s: no webhook_events row with this body", name)
        check_eq((row["outcome"], row["reason"]), (outcome, reason), name)
        check_eq(row["communication_id"], None, "%s: communication_id" % name)
    check_eq(p.count("communications", "channel = 'call'"), calls_before,
             "call rows after bad input")
    status, health = p.health()
    check_eq(status, 200, "health after bad input: %r" % (health,))


def test_unverified_call_is_rejected(ctx):
    p = ctx.state["p"]
    events = ctx.state["events"]["outbound"]
    before = p.max_event_id()
    h = dict(HEADERS)
    h["Verification-Token"] = "wrong-token-itest"
    r = p.post(harness.CALL_PATH, with_session(events[0], "s-itest-forged"), h)
    check_eq(r.status, 200, "HTTP status (verification happens after the ack)")
    rows = p.wait_new_events(before, 1)
    check_eq(rows[0]["outcome"], "rejected", "outcome of a forged call event")
    check_eq(p.count("communications", "external_id = 's-itest-forged'"), 0, "forged row")
    check_eq(p.count("call_party_events", "telephony_session_id = 's-itest-forged'"), 0,
             "forged party states")


def test_stop_second_writer(ctx):
    """Stop the extra writer cleanly, so its sanitizer report (if any) is in its log."""
    p = ctx.state["p"]
    st = p.stages.get("writer2")
    if st is not None:
        check_eq(st.stop(), 0, "exit status of the second writer on SIGTERM")


if __name__ == "__main__":
    harness.run([test_fixture_delivery_order_with_duplicate, test_intermediate_states,
                 test_every_permutation_one_writer, test_every_permutation_two_writers,
                 test_bad_input, test_unverified_call_is_rejected, test_stop_second_writer],
                setup=setup)
