#!/usr/bin/env python3
"""Chaos: a bounded load generator, a kill driver and an exactly-once checker.

SPEC "What is stored": every acknowledged request ends as exactly one webhook_events row,
whatever happens to any process in between (crash, kill -9, restart of PostgreSQL), and
every communication is stored once. This module proves it under load:

  Workload    the logical requests of a run: unique RingCentral instant SMS (like
              shared/peers/sms.lua) and telephony-session events (the shape of
              shared/fixtures/ringcentral/call-*/, a unique telephonySessionId per call,
              events of a call in sequence order, calls interleaved).
  LoadGen     posts them at a fixed rate over keep-alive connections (asyncio, raw
              sockets, one thread). Every attempt carries its own top-level "uuid"
              (chaos-<tag>-a<n>) and is recorded with its answer. An attempt that gets
              no 200 (connection refused while the ingress is down, reset, timeout, 503)
              is retried later like a real provider would, as a NEW attempt with a new
              uuid; the communication key (body.id, telephonySessionId) stays the same.
  KillDriver  every few seconds kill -9s a stage (round robin over shuffled orders of
              every stage the pipeline runs, ingress included), restarts it after a
              short pause, and restarts PostgreSQL (immediate = crash) when asked.
  tally()     after the drain, reads webhook_events (the body is stored byte-exact, so
              the uuid identifies the attempt) and communications and counts:
                acked       attempts answered 200
                stored      acked attempts with exactly one webhook_events row
                lost        acked attempts with no row
                duplicated  attempts (acked or not) with more than one row
              plus communications: every communication with an acked attempt has exactly
              one row; per SMS exactly one event row has outcome 'stored'. Calls are
              checked the same way once the writer stores them (it detects whether any
              call communication exists; before call support they are 'ignored' rows).

Use it from a test (tests/integration/test_chaos_short.py), or on its own (the long form,
bench/chaos_long.sh):  SB_BUILD_DIR=build python3 tests/chaos/chaos.py --events 100000
Loopback only; everything it starts is stopped at exit (harness cleanup).
"""

import argparse
import asyncio
import heapq
import json
import os
import random
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

SMS_PHONES = ["+1 (415) 555-%04d", "(415) 555-%04d", "415.555.%04d", "1415555%04d"]
CALL_SCENARIOS = ("call-inbound-answered", "call-inbound-missed", "call-outbound")
# The final communications.status of a call once all its events arrived, in any order
# (SPEC "Calls"; tests/integration/test_calls.py checks every column, this only the end).
CALL_FINAL_STATUS = {"call-inbound-answered": "completed", "call-inbound-missed": "missed",
                     "call-outbound": "completed"}
OPEN_CALLS = 24  # calls in progress at once in the stream (their events interleave)


# ---------------------------------------------------------------------------------------
# Workload


class _CallTemplate:
    """One fixture call: its events as compact JSON with placeholders for the ids."""

    def __init__(self, scenario):
        d = harness.fixture_path("ringcentral", scenario)
        files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
        self.events = []
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                doc = json.loads(fh.read().decode("utf-8"))
            tsid = doc["body"]["telephonySessionId"]
            hexpart = tsid[2:] if tsid.startswith("s-") else tsid
            sid = doc["body"]["sessionId"]
            doc["uuid"] = "@@UUID@@"
            text = json.dumps(doc, separators=(",", ":"))
            # The hex part also names the parties (p-<hex>-2): replace it everywhere.
            text = text.replace(hexpart, "@@HEX@@").replace('"%s"' % sid, '"@@SID@@"')
            self.events.append(text)


class Workload:
    """n logical requests: ("sms", msg_id, i) or ("call", tsid, (template, k, session_no)).

    call_share of them are call events. Message ids are 19-digit numbers above 2^53 (the
    provider quirk), starting with "8" and the run tag so that a run finds its own rows."""

    def __init__(self, n, call_share=0.25, tag=None, seed=None):
        rnd = random.Random(seed)
        self.tag = tag or "%06d" % rnd.randint(100000, 999999)
        self.templates = [_CallTemplate(s) for s in CALL_SCENARIOS] if call_share > 0 else []
        self.session_template = {}  # tsid -> index into CALL_SCENARIOS
        self.session_events = {}  # tsid -> events of it in the workload
        self.items = []
        open_calls = []  # [template index, next event, session number]
        n_sms = n_sessions = 0
        for _ in range(n):
            if self.templates and rnd.random() < call_share:
                if len(open_calls) < OPEN_CALLS:
                    open_calls.append([rnd.randrange(len(self.templates)), 0, n_sessions])
                    n_sessions += 1
                c = open_calls[rnd.randrange(len(open_calls))]
                tsid = self.tsid(c[2])
                self.items.append(("call", tsid, (c[0], c[1], c[2])))
                self.session_template[tsid] = c[0]
                self.session_events[tsid] = self.session_events.get(tsid, 0) + 1
                c[1] += 1
                if c[1] == len(self.templates[c[0]].events):
                    open_calls.remove(c)
            else:
                mid = "8%s%012d" % (self.tag, n_sms)
                self.items.append(("sms", mid, n_sms))
                n_sms += 1
        self.n_sms = n_sms
        self.n_sessions = n_sessions

    def tsid_hex(self, session):
        return "c0ffee%s%020x" % (self.tag, session)  # 32 hex digits

    def tsid(self, session):
        return "s-" + self.tsid_hex(session)

    def sms_prefix(self):
        return "8" + self.tag

    def request(self, idx, uuid):
        """-> (path, body bytes) of attempt uuid of item idx."""
        kind, key, arg = self.items[idx]
        if kind == "sms":
            phone = SMS_PHONES[arg % len(SMS_PHONES)] % (arg % 10000)
            return harness.SMS_PATH, harness.sms_body(
                key, from_phone=phone, text="chaos %s %d" % (self.tag, arg),
                conversation_id="9%s%04d" % (self.tag, arg % 97), uuid=uuid)
        t, k, session = arg
        text = (self.templates[t].events[k].replace("@@UUID@@", uuid)
                .replace("@@HEX@@", self.tsid_hex(session))
                .replace("@@SID@@", "7%s%06d" % (self.tag, session)))
        return harness.CALL_PATH, text.encode("utf-8")


# ---------------------------------------------------------------------------------------
# Load generator


class LoadGen:
    """Posts every item of a Workload at `rate` attempts/s over `connections` keep-alive
    connections, retrying each until it gets a 200 (or until finish_by). Runs in its own
    thread (start/join).

    attempts: uuid -> [item index, status, monotonic time of the answer]; status 200 =
    acked, 0 = in flight, -1 = connection error or timeout, else the HTTP status.
    """

    def __init__(self, port, workload, rate, connections=16, retry_delay=0.25,
                 retry_max=2.0, attempt_timeout=10.0, retry_after_cap=5.0, finish_by=None,
                 token=None, retry=True):
        self.port = port
        self.w = workload
        self.rate = float(rate)
        self.connections = connections
        self.retry_delay = retry_delay
        self.retry_max = retry_max
        self.attempt_timeout = attempt_timeout
        self.retry_after_cap = retry_after_cap
        self.finish_by = finish_by  # monotonic deadline; None: until everything is acked
        self.retry = retry
        self.token = token if token is not None else harness.VERIFICATION_TOKEN
        self.attempts = {}
        self.acked = bytearray(len(workload.items))
        self.tries = bytearray(len(workload.items))  # attempts per item (saturating)
        self.statuses = {}  # status -> count
        self.latencies = []  # seconds, of 200 answers
        self.errors = []  # a few examples
        self.retry_after_seen = []  # Retry-After values of 503 answers
        self.n_acked = 0
        self.t_start = self.t_end = None
        self._next_new = 0
        self._retries = []  # heap of (due time, item index)
        self._in_flight = 0
        self._counter = 0
        self._slot = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # readers in other threads take snapshots
        self._thread = None
        self.exc = None

    # -- control -------------------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._main, name="loadgen", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop sending new attempts (in-flight ones finish)."""
        self._stop.set()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def progress(self):
        with self._lock:
            return {"acked": self.n_acked, "attempts": self._counter,
                    "new_sent": self._next_new, "retry_queue": len(self._retries),
                    "in_flight": self._in_flight, "statuses": dict(self.statuses)}

    # -- the loop ------------------------------------------------------------------------

    def _main(self):
        try:
            asyncio.run(self._run())
        except BaseException as e:  # reported by the caller
            self.exc = e

    async def _run(self):
        loop = asyncio.get_running_loop()
        self.t_start = time.monotonic()
        self._slot = loop.time()
        await asyncio.gather(*(self._worker(loop) for _ in range(self.connections)))
        self.t_end = time.monotonic()

    def _next_job(self, now):
        """-> item index, or a float (wait that long and ask again), or None (done)."""
        if self._stop.is_set() or (self.finish_by and time.monotonic() > self.finish_by):
            return None
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[1]
        if self._next_new < len(self.w.items):
            i = self._next_new
            self._next_new += 1
            return i
        if self._retries:
            return min(0.05, self._retries[0][0] - now)
        if self._in_flight:
            return 0.02  # one of them may fail and come back
        return None

    async def _worker(self, loop):
        conn = None
        try:
            while True:
                job = self._next_job(loop.time())
                if job is None:
                    return
                if isinstance(job, float):
                    await asyncio.sleep(job)
                    continue
                # Pace: one attempt per 1/rate seconds over all connections; after a stall
                # catch up by at most 50 ms worth of attempts, not with a burst.
                now = loop.time()
                slot = max(self._slot, now - 0.05)
                self._slot = slot + 1.0 / self.rate
                if slot > now:
                    await asyncio.sleep(slot - now)
                self._in_flight += 1
                try:
                    conn = await self._attempt(job, conn)
                finally:
                    self._in_flight -= 1
        finally:
            if conn is not None:
                conn[1].close()

    async def _attempt(self, idx, conn):
        with self._lock:
            self._counter += 1
            uuid = "chaos-%s-a%d" % (self.w.tag, self._counter)
            rec = [idx, 0, 0.0]
            self.attempts[uuid] = rec
            if self.tries[idx] < 255:
                self.tries[idx] += 1
        path, body = self.w.request(idx, uuid)
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                "Verification-Token: %s\r\nContent-Length: %d\r\n\r\n" % (
                    path, self.port, self.token, len(body))).encode("ascii")
        t0 = time.monotonic()
        status, retry_after, keep = -1, None, False
        try:
            if conn is None:
                conn = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), self.attempt_timeout)
            status, retry_after, keep = await asyncio.wait_for(
                self._exchange(conn, head + body), self.attempt_timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            status = -1
            if len(self.errors) < 20:
                self.errors.append("%s: %r" % (uuid, e))
        t1 = time.monotonic()
        if not keep and conn is not None:
            conn[1].close()
            conn = None
        with self._lock:
            rec[1], rec[2] = status, t1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                if not self.acked[idx]:
                    self.n_acked += 1
                self.acked[idx] = 1
                self.latencies.append(t1 - t0)
            elif status == 503:
                self.retry_after_seen.append(retry_after)
            if status != 200 and self.retry and status in (-1, 503, 502, 504):
                k = self.tries[idx]
                delay = min(self.retry_max, self.retry_delay * (2 ** max(0, k - 1)))
                if status == 503 and retry_after is not None:
                    delay = max(delay, min(self.retry_after_cap, float(retry_after)))
                delay *= random.uniform(0.8, 1.2)
                heapq.heappush(self._retries, (asyncio.get_running_loop().time() + delay, idx))
        return conn

    @staticmethod
    async def _exchange(conn, request):
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        length, keep, retry_after = 0, True, None
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and v.lower() == "close":
                keep = False
            elif k == "retry-after":
                retry_after = v
        if length:
            await reader.readexactly(length)
        return status, retry_after, keep

    # -- results -------------------------------------------------------------------------

    def acked_uuids(self):
        with self._lock:
            return [u for u, r in self.attempts.items() if r[1] == 200]

    def latency_ms(self, q):
        with self._lock:
            lat = sorted(self.latencies)
        if not lat:
            return None
        return 1000.0 * lat[min(len(lat) - 1, int(q * len(lat)))]

    def answers_between(self, t0, t1):
        """{status: count} of attempts answered in [t0, t1) (monotonic)."""
        out = {}
        with self._lock:
            for r in self.attempts.values():
                if r[1] != 0 and t0 <= r[2] < t1:
                    out[r[1]] = out.get(r[1], 0) + 1
        return out


# ---------------------------------------------------------------------------------------
# Kill driver


class KillDriver:
    """kill -9 a stage every `interval` (a (min, max) range of seconds, kept on a fixed
    schedule), restart it after `down` seconds; PostgreSQL restarts (in place of a kill)
    once the given offsets (seconds after start) have passed."""

    def __init__(self, pipeline, interval=(1.5, 2.5), down=(0.05, 0.6), stages=None,
                 pg_restarts_at=(), pg_down=1.5, pg_mode="immediate", seed=None):
        self.p = pipeline
        self.interval = interval
        self.down = down
        self.stages = list(stages or pipeline.stages.keys())
        self.pg_plan = sorted(pg_restarts_at)
        self.pg_down = pg_down
        self.pg_mode = pg_mode
        self.rnd = random.Random(seed)
        self.events = []  # (seconds since start, what)
        self.kills = {}  # stage -> count
        self.pg_restarts = 0
        self.errors = []
        self._order = []
        self._stop = threading.Event()
        self._thread = None
        self._t0 = None

    def start(self):
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="killer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=60):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def n_kills(self):
        return sum(self.kills.values())

    def _note(self, what):
        self.events.append((time.monotonic() - self._t0, what))

    def _next_stage(self):
        if not self._order:
            self._order = list(self.stages)
            self.rnd.shuffle(self._order)
        return self._order.pop()

    def _main(self):
        # Actions on a fixed schedule (not a pause after each one), so that the time a
        # restart takes does not stretch the plan.
        next_at = self._t0
        try:
            while True:
                next_at += self.rnd.uniform(*self.interval)
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
                if self.pg_plan and time.monotonic() - self._t0 >= self.pg_plan[0]:
                    self.pg_plan.pop(0)
                    self.restart_pg()
                else:
                    self.kill_one(self._next_stage())
        except Exception as e:  # reported by the caller
            self.errors.append("driver: %r" % (e,))

    def restart_pg(self):
        self._note("postgres stop (%s)" % self.pg_mode)
        self.p.pg.stop(self.pg_mode)
        time.sleep(self.pg_down)
        self.p.pg.start()
        self.pg_restarts += 1
        self._note("postgres started")

    def kill_one(self, stage):
        st = self.p.stages[stage]
        if not st.alive():
            self.errors.append("%s was not running before its kill (rc %s)" % (
                stage, st.proc.returncode if st.proc else None))
        else:
            self.p.kill(stage, signal.SIGKILL)
            rc = st.proc.returncode
            if rc != -signal.SIGKILL:
                self.errors.append("%s: exit status %r after kill -9" % (stage, rc))
            self.kills[stage] = self.kills.get(stage, 0) + 1
            self._note("kill -9 %s" % stage)
        time.sleep(self.rnd.uniform(*self.down))
        self.ensure_up(stage)

    def ensure_up(self, stage, tries=3):
        for k in range(tries):
            st = self.p.stages[stage]
            if not st.alive():
                st.start()
            try:
                if self.p.wait_stage_up(stage, timeout=20):
                    self._note("%s up" % stage)
                    return True
            except RuntimeError as e:  # it exited at start
                self.errors.append("%s restart %d: %s" % (stage, k + 1, str(e)[:300]))
            time.sleep(0.5)
        self.errors.append("%s did not come back up" % stage)
        return False


# ---------------------------------------------------------------------------------------
# Checking


def metric(port, name, path="/metrics"):
    """Sum of a Prometheus metric's samples (any labels) from 127.0.0.1:port, or None."""
    try:
        r = harness.http_request(port, "GET", path, timeout=3)
    except OSError:
        return None
    total, seen = 0.0, False
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


def vm_rss_kb(pid):
    """VmRSS of a process in KiB from /proc, or None."""
    try:
        with open("/proc/%d/status" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


INGRESS_METRICS = ("sb_events_redelivered_total", "sb_events_acked_total",
                   "sb_push_blocked_total", "sb_push_deferred_total", "sb_spool_depth",
                   "sb_spool_bytes")


class Sampler:
    """Every `interval` s: VmRSS of every stage process, the ingress's health document and
    a few of its metrics. samples: list of dicts {"t": monotonic, "wall": time.time(),
    "rss": {stage: KiB},
    "health": (status, doc), "m": {metric: value}}."""

    def __init__(self, p, interval=0.5, metrics=INGRESS_METRICS):
        self.p = p
        self.interval = interval
        self.metrics = metrics
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._main, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def sample(self):
        s = {"t": time.monotonic(), "wall": time.time(), "rss": {}, "health": None, "m": {}}
        for name, st in self.p.stages.items():
            if st.alive():
                s["rss"][name] = vm_rss_kb(st.proc.pid)
        try:
            s["health"] = self.p.health()
        except (OSError, ValueError):
            pass
        text = None
        try:
            text = harness.http_request(self.p.http_port, "GET", "/metrics", timeout=3).body
        except OSError:
            pass
        if text:
            for line in text.decode("utf-8", "replace").splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if name in self.metrics:
                    try:
                        s["m"][name] = s["m"].get(name, 0.0) + float(line.rsplit(" ", 1)[1])
                    except ValueError:
                        pass
        return s

    def _main(self):
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.interval)

    def max_rss(self):
        out = {}
        for s in self.samples:
            for k, v in s["rss"].items():
                if v is not None:
                    out[k] = max(out.get(k, 0), v)
        return out

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s["t"] < t1]


def sanitized_build(build_dir=None):
    """The sanitizers the stages were built with (SB_SANITIZE in the build's CMakeCache),
    "" for none. Under AddressSanitizer VmRSS says nothing about the program (shadow
    memory, quarantine) and everything runs a few times slower."""
    path = os.path.join(build_dir or harness.BUILD_DIR, "CMakeCache.txt")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("SB_SANITIZE:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def wait_drained(p, timeout):
    """Wait until the ingress reports spool depth 0. -> (ok, seconds, last health doc)."""
    t0 = time.monotonic()
    last = {}

    def drained():
        status, doc = p.health()
        last["doc"] = doc
        return (doc or {}).get("spool", {}).get("depth") == 0

    ok = harness.wait_until(drained, timeout, interval=0.25)
    return bool(ok), time.monotonic() - t0, last.get("doc")


UUID_RE = "\"uuid\":\"(chaos-[0-9]+-a[0-9]+)\""


def tally(p, w, gen):
    """Compare what the load generator saw with what the database holds. -> dict."""
    rows = p.query(
        "SELECT substring(convert_from(body, 'UTF8') from %s), source, outcome, "
        "communication_id FROM webhook_events "
        "WHERE position(%s in convert_from(body, 'UTF8')) > 0",
        (UUID_RE, '"uuid":"chaos-%s-a' % w.tag))
    per_uuid = {}
    for uuid, source, outcome, comm in rows:
        per_uuid.setdefault(uuid, []).append((source, outcome, comm))
    with gen._lock:
        attempts = dict(gen.attempts)
    acked = [u for u, r in attempts.items() if r[1] == 200]
    lost = [u for u in acked if u not in per_uuid]
    stored = sum(1 for u in acked if len(per_uuid.get(u, ())) == 1)
    duplicated = sorted(u for u, rs in per_uuid.items() if len(rs) > 1)
    unknown = sorted(u for u in per_uuid if u not in attempts)
    stored_unacked = sum(1 for u in per_uuid if u in attempts and attempts[u][1] != 200)

    # Per communication: which items were acked, and the event outcomes of all attempts.
    item_acked = {}  # key -> acked at least once
    for idx, (kind, key, _a) in enumerate(w.items):
        item_acked[(kind, key)] = item_acked.get((kind, key), False) or bool(gen.acked[idx])
    outcomes = {}  # (kind, key) -> [outcome...]
    bad_outcomes = []
    for uuid, rs in per_uuid.items():
        if uuid not in attempts:
            continue
        kind, key, _a = w.items[attempts[uuid][0]]
        for source, outcome, _c in rs:
            outcomes.setdefault((kind, key), []).append(outcome)
            allowed = ("stored", "duplicate") if kind == "sms" else (
                "stored", "duplicate", "ignored")
            if outcome not in allowed:
                bad_outcomes.append("%s %s: %s" % (kind, key, outcome))

    comms = p.query(
        "SELECT channel, external_id, count(*) FROM communications WHERE provider = "
        "'ringcentral' AND (external_id LIKE %s OR external_id LIKE %s) GROUP BY 1, 2",
        (w.sms_prefix() + "%", "s-c0ffee" + w.tag + "%"))
    comm_count = {}
    for channel, ext, n in comms:
        comm_count[(channel, ext)] = n
    calls_stored = any(ch == "call" for ch, _e in comm_count)
    channel_of = {"sms": "sms", "call": "call"}
    checked_kinds = ["sms"] + (["call"] if calls_stored else [])
    # A call whose every event is in the workload and acked ends in its fixture's status.
    call_wrong, calls_complete = [], 0
    if calls_stored:
        status = dict(p.query(
            "SELECT external_id, status FROM communications WHERE provider = 'ringcentral' "
            "AND channel = 'call' AND external_id LIKE %s", ("s-c0ffee" + w.tag + "%",)))
        acked_events = {}
        for idx, (kind, key, _a) in enumerate(w.items):
            if kind == "call" and gen.acked[idx]:
                acked_events[key] = acked_events.get(key, 0) + 1
        for tsid, t in w.session_template.items():
            if acked_events.get(tsid, 0) == len(w.templates[t].events):
                calls_complete += 1
                want = CALL_FINAL_STATUS[CALL_SCENARIOS[t]]
                if status.get(tsid) != want:
                    call_wrong.append((tsid, status.get(tsid), want))
    comm_missing, comm_dup, sms_not_once_stored = [], [], []
    comm_expected = 0
    for (kind, key), was_acked in item_acked.items():
        if kind not in checked_kinds:
            continue
        n = comm_count.get((channel_of[kind], key), 0)
        if n > 1:
            comm_dup.append(key)
        if was_acked:
            comm_expected += 1
            if n == 0:
                comm_missing.append(key)
        if kind == "sms" and (kind, key) in outcomes:
            if outcomes[(kind, key)].count("stored") != 1:
                sms_not_once_stored.append((key, outcomes[(kind, key)]))
    return {
        "attempts": len(attempts), "acked": len(acked), "stored": stored, "lost": lost,
        "duplicated": duplicated, "unknown": unknown, "stored_unacked": stored_unacked,
        "items": len(w.items), "items_acked": sum(gen.acked), "rows": len(rows),
        "bad_outcomes": bad_outcomes, "calls_stored": calls_stored,
        "comm_expected": comm_expected, "comm_rows": sum(comm_count.values()),
        "comm_missing": comm_missing, "comm_dup": comm_dup,
        "sms_not_once_stored": sms_not_once_stored, "call_wrong_status": call_wrong,
        "calls_complete": calls_complete,
    }


def summary(t):
    return ("acked=%d stored=%d lost=%d duplicated=%d | attempts=%d items=%d items_acked=%d "
            "event_rows=%d (of unacked attempts %d, unknown %d) | communications: "
            "expected=%d rows=%d missing=%d duplicated=%d (calls %s) | bad outcomes=%d, "
            "sms without exactly one 'stored'=%d, complete calls in a wrong final "
            "status=%d of %d" % (
                t["acked"], t["stored"], len(t["lost"]), len(t["duplicated"]), t["attempts"],
                t["items"], t["items_acked"], t["rows"], t["stored_unacked"],
                len(t["unknown"]), t["comm_expected"], t["comm_rows"],
                len(t["comm_missing"]), len(t["comm_dup"]),
                "checked" if t["calls_stored"] else "not stored yet: only their events checked",
                len(t["bad_outcomes"]), len(t["sms_not_once_stored"]),
                len(t["call_wrong_status"]), t["calls_complete"]))


def problems(t):
    """Failures found by tally(), as sentences (empty: exactly once held)."""
    out = []
    for key, what in (("lost", "acked attempts without a webhook_events row"),
                      ("duplicated", "attempts with several webhook_events rows"),
                      ("unknown", "webhook_events rows of attempts never made"),
                      ("bad_outcomes", "rows with an unexpected outcome"),
                      ("comm_missing", "acked communications without a row"),
                      ("comm_dup", "communications stored twice"),
                      ("sms_not_once_stored", "SMS whose event rows do not say 'stored' once"),
                      ("call_wrong_status", "complete calls not in their final status "
                       "(tsid, got, want)")):
        if t[key]:
            out.append("%d %s, e.g. %r" % (len(t[key]), what, t[key][:5]))
    if not out and t["acked"] != t["stored"]:  # cannot happen without one of the above
        out.append("acked %d != stored %d" % (t["acked"], t["stored"]))
    return out


def explain_losses(p, w, gen, t, limit=5):
    """For a few lost attempts: when they were answered, and the log lines naming them
    (the ingress logs the event id only on trouble, so mostly the time line helps)."""
    lines = []
    for uuid in t["lost"][:limit]:
        idx, status, when = gen.attempts[uuid]
        lines.append("lost %s (item %d %s %s): answered %s at +%.2fs" % (
            uuid, idx, w.items[idx][0], w.items[idx][1], status, when - gen.t_start))
    return lines


# ---------------------------------------------------------------------------------------
# One run


def run_chaos(p, events, rate, min_kills=10, pg_restarts=1, call_share=0.25,
              connections=16, drain_timeout=120.0, kill_down=(0.05, 0.6), stages=None,
              seed=None, log=print):
    """Load + kills + PostgreSQL restarts, then drain and tally. -> result dict with
    "tally", "kills", "pg_restarts", "problems" (empty = pass) and timings."""
    w = Workload(events, call_share=call_share, seed=seed)
    expect_s = events / float(rate)
    # Kills spread over the load: min_kills + 2 intervals, so that min_kills fit with
    # room for the PostgreSQL restarts and the retries at the end.
    slots = min_kills + pg_restarts + 1
    mean = expect_s / slots
    interval = (0.7 * mean, 1.1 * mean)
    pg_at = [expect_s * (k + 1) / (pg_restarts + 1) for k in range(pg_restarts)]
    log("chaos: tag %s, %d requests (%d SMS, %d call sessions) at %.0f/s over ~%.0fs, a kill "
        "every %.1f-%.1fs of %s, PostgreSQL restarts at %s s" % (
            w.tag, events, w.n_sms, w.n_sessions, rate, expect_s, interval[0], interval[1],
            ",".join(stages or p.stages.keys()), ",".join("%.0f" % x for x in pg_at)))
    gen = LoadGen(p.http_port, w, rate, connections=connections,
                  finish_by=time.monotonic() + 3 * expect_s + 60)
    driver = KillDriver(p, interval=interval, down=kill_down, stages=stages,
                        pg_restarts_at=pg_at, seed=seed)
    t0 = time.monotonic()
    gen.start()
    driver.start()
    last = t0
    while gen.running():
        gen.join(1.0)
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            pr = gen.progress()
            log("  +%4.0fs acked %d/%d, attempts %d, retry queue %d, kills %d, pg restarts "
                "%d" % (last - t0, pr["acked"], events, pr["attempts"], pr["retry_queue"],
                        driver.n_kills, driver.pg_restarts))
    load_s = time.monotonic() - t0
    driver.stop()
    for stage in p.stages:  # whatever the driver was doing, everything runs now
        if not p.stages[stage].alive():
            driver.ensure_up(stage)
    log("chaos: load done in %.1fs: %s; kills %r, PostgreSQL restarts %d" % (
        load_s, gen.statuses, driver.kills, driver.pg_restarts))
    ok, drain_s, doc = wait_drained(p, drain_timeout)
    log("chaos: drained=%s in %.1fs (spool %s)" % (ok, drain_s, (doc or {}).get("spool")))
    redelivered = metric(p.http_port, "sb_events_redelivered_total")
    time.sleep(2.0)  # late redeliveries that wrongly add rows would show now
    t = tally(p, w, gen)
    log("chaos: " + summary(t))
    probs = problems(t)
    if not ok:
        probs.insert(0, "the spool did not drain in %.0fs: %r" % (drain_timeout, doc))
    if gen.exc is not None:
        probs.append("load generator failed: %r" % (gen.exc,))
    if gen.n_acked < events:
        probs.append("only %d of %d requests were ever acknowledged" % (gen.n_acked, events))
    probs += driver.errors
    if probs:
        for line in explain_losses(p, w, gen, t):
            log("  " + line)
    return {"tally": t, "problems": probs, "kills": dict(driver.kills),
            "n_kills": driver.n_kills, "pg_restarts": driver.pg_restarts,
            "timeline": driver.events, "load_seconds": load_s, "drain_seconds": drain_s,
            "drained": ok, "statuses": dict(gen.statuses), "errors": gen.errors[:5],
            "p50_ms": gen.latency_ms(0.5), "p99_ms": gen.latency_ms(0.99),
            "redelivered_since_last_ingress_start": redelivered, "workload": w, "gen": gen}


# ---------------------------------------------------------------------------------------
# Command line (the long form)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Switchboard chaos run (kill -9 under load)")
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--rate", type=float, default=1500)
    ap.add_argument("--min-kills", type=int, default=40)
    ap.add_argument("--pg-restarts", type=int, default=3)
    ap.add_argument("--call-share", type=float, default=0.25)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--redeliver-after-ms", type=int, default=1500)
    ap.add_argument("--redeliver-max-ms", type=int, default=6000)
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    pg = harness.Postgres()
    p = harness.Pipeline(pg, REDELIVER_AFTER_MS=str(a.redeliver_after_ms),
                         REDELIVER_MAX_MS=str(a.redeliver_max_ms), LOG_LEVEL="warn")
    rc = 1
    try:
        res = run_chaos(p, a.events, a.rate, min_kills=a.min_kills, pg_restarts=a.pg_restarts,
                        call_share=a.call_share, connections=a.connections,
                        drain_timeout=a.drain_timeout, seed=a.seed)
        t = res["tally"]
        print("RESULT events=%d acked=%d stored=%d lost=%d duplicated=%d kills=%d "
              "pg_restarts=%d load=%.1fs drain=%.1fs p50=%.1fms p99=%.1fms" % (
                  a.events, t["acked"], t["stored"], len(t["lost"]), len(t["duplicated"]),
                  res["n_kills"], res["pg_restarts"], res["load_seconds"],
                  res["drain_seconds"], res["p50_ms"] or 0, res["p99_ms"] or 0))
        if res["n_kills"] < a.min_kills:
            res["problems"].append("only %d kills (wanted %d)" % (res["n_kills"], a.min_kills))
        for line in res["problems"]:
            print("PROBLEM: " + line)
        rc = 1 if res["problems"] else 0
        if rc:
            p.dump_logs(30)
    finally:
        p.destroy()
        pg.destroy()
    return rc


if __name__ == "__main__":
    sys.exit(main())
