#!/usr/bin/python3
"""bench/fixed_rate.py - post unique RingCentral SMS at a fixed rate, time each one, and
find when its row was committed. Used by bench/latency.sh; standard library + psycopg2.

Open loop: request k is due at start + k / rate whatever happened to the ones before, so
a slow answer shows up as latency (counted from the due time too) instead of quietly
lowering the rate. A few keep-alive connections (one thread each, raw sockets, so that
the client adds little) take the next due request as soon as they are free.

For each request: when it was due, sent, and acknowledged (wall clock when the whole
response had arrived). With --listen, a separate process LISTENs on PostgreSQL's
"communications" channel (the writer's NOTIFY, sent at commit) and notes when each row's
notification arrived. After the load, the rows of this run are read back: their
transaction's commit time (pg_xact_commit_timestamp, which needs
track_commit_timestamp = on) and created_at. Every clock is this machine's.

Prints "name value..." lines: counts, the achieved rate, and p50 p99 max in ms of
req_ack (sent -> 200), due_ack (due -> 200), ack_commit (200 -> row committed),
req_commit (sent -> row committed), due_commit (due -> row committed), ack_notify (200 ->
NOTIFY received), send_late (due -> sent: how far the generator fell behind).
"""
import argparse
import itertools
import json
import multiprocessing
import random
import select
import socket
import sys
import threading
import time

import psycopg2

BODY = (
    '{"uuid":"u-%(id)s","event":"/restapi/v1.0/account/~/extension/~/message-store/instant'
    '?type=SMS","timestamp":"2026-11-24T10:00:00.000Z","subscriptionId":"sub-1","ownerId":"100",'
    '"body":{"id":"%(id)s","to":[{"phoneNumber":"+16505550100","name":"Front desk"}],'
    '"from":{"phoneNumber":"+1 (415) 555-%(phone)04d","name":"Caller"},"type":"SMS",'
    '"creationTime":"2026-11-24T10:00:00.000Z","lastModifiedTime":"2026-11-24T10:00:00.000Z",'
    '"readStatus":"Unread","priority":"Normal","attachments":[{"id":"1","type":"Text",'
    '"contentType":"text/plain"}],"direction":"Inbound","availability":"Alive",'
    '"subject":"Hi, is my order ready? Reference 12345, thanks!","messageStatus":"Received",'
    '"conversationId":"77"}}'
)  # the request of ../shared/peers/sms.lua


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/api/webhooks/ringcentral/sms")
    p.add_argument("--token", required=True, help="Verification-Token header")
    p.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--dsn", required=True, help="the database the target stores into")
    p.add_argument("--table", default="communications")
    p.add_argument("--listen", action="store_true", help="LISTEN on 'communications'")
    p.add_argument("--drain-max", type=float, default=30.0,
                   help="longest wait for the rows after the load")
    p.add_argument("--no-quickack", dest="quickack", action="store_false",
                   help="let the kernel delay our ACKs (see Client)")
    return p.parse_args()


# ---- the load ---------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP/1.1 connection; one request at a time.

    With QUICKACK the socket acknowledges every segment at once. A server that writes its
    headers and its body in two small writes with Nagle's algorithm on (uvicorn's h11
    protocol, as Debian ships it, does) otherwise waits for our delayed ACK, about 40 ms,
    before the body goes out: every request after the first on a kept-alive connection
    would take 40 ms more, which measures the TCP stacks, not the server."""

    def __init__(self, host, port, quickack):
        self.addr = (host, port)
        self.quickack = quickack
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, data):
        """Send DATA, return the status once the whole response is in."""
        if self.sock is None:
            self._connect()
        try:
            self.sock.sendall(data)
            return self._response()
        except OSError:  # the server closed a kept-alive connection: once more, afresh
            self.close()
            self._connect()
            self.sock.sendall(data)
            return self._response()

    def _response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported here")
        self.buf = rest
        while len(self.buf) < length:
            self._fill()
        self.buf = self.buf[length:]
        if close:
            self.close()
        return status

    def _fill(self):
        if self.quickack:  # not sticky: Linux may fall back to delayed ACKs at any time
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        self.buf += chunk

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_load(args, prefix):
    total = int(args.rate * args.duration)
    head = (
        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        "Verification-Token: %s\r\nContent-Length: %%d\r\n\r\n"
        % (args.path, args.host, args.port, args.token)
    )
    # k -> (due, sent, acked_wall, status); perf_counter times except acked_wall.
    results = [None] * total
    counter = itertools.count()  # next() is atomic under the GIL
    errors = []
    start = time.perf_counter() + 0.2  # every thread is waiting by then

    def worker():
        client = Client(args.host, args.port, args.quickack)
        try:
            while True:
                k = next(counter)
                if k >= total:
                    return
                due = start + k / args.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                body = BODY % {"id": "%s%06d" % (prefix, k), "phone": k % 10000}
                data = (head % len(body) + body).encode()
                sent = time.perf_counter()
                status = client.request(data)
                acked_wall = time.time()
                results[k] = (due, sent, time.perf_counter(), acked_wall, status)
        except Exception as e:  # reported once the others are done
            errors.append(repr(e))
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("fixed_rate: load failed: %s" % errors[0])
    return results


# ---- the rows ---------------------------------------------------------------------------
def listener(dsn, pipe):
    """LISTEN on 'communications' until told to stop; send back [(row id, arrival)]."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    conn.cursor().execute("LISTEN communications")
    pipe.send("ready")
    seen = []
    while True:
        readable, _, _ = select.select([conn, pipe], [], [], 1.0)
        if conn in readable:
            conn.poll()
            now = time.time()
            for n in conn.notifies:
                try:
                    seen.append((int(json.loads(n.payload)["id"]), now))
                except (ValueError, KeyError, TypeError):
                    pass
            conn.notifies.clear()
        if pipe in readable:
            pipe.recv()
            break
    conn.close()
    pipe.send(seen)


def wait_rows(cur, table, prefix, want, drain_max):
    """Poll until the table holds WANT rows of this run, or nothing moved for 2 s."""
    deadline = time.monotonic() + drain_max
    last, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        cur.execute("SELECT count(*) FROM " + table + " WHERE external_id LIKE %s",
                    (prefix + "%",))
        n = cur.fetchone()[0]
        if n >= want:
            return n
        if n != last:
            last, still = n, time.monotonic()
        elif time.monotonic() - still > 2:
            break
        time.sleep(0.2)
    return last


def read_rows(cur, table, prefix):
    """external_id -> (row id, commit time or None, created_at), epoch seconds."""
    cur.execute("SHOW track_commit_timestamp")
    commit = "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
    if cur.fetchone()[0] != "on":
        commit = "NULL::float8"
    cur.execute(
        "SELECT external_id, id, " + commit + ", extract(epoch FROM created_at)::float8 FROM "
        + table + " WHERE external_id LIKE %s", (prefix + "%",))
    return {r[0]: r[1:] for r in cur.fetchall()}


# ---- report -----------------------------------------------------------------------------
def stats(name, values):
    """'name p50 p99 max' in ms (nearest rank), or dashes without values."""
    if not values:
        return "%s - - - 0" % name
    v = sorted(values)

    def rank(q):
        return v[min(len(v) - 1, max(0, int(q * len(v) + 0.5) - 1))]

    return "%s %.3f %.3f %.3f %d" % (name, 1000 * rank(0.50), 1000 * rank(0.99), 1000 * v[-1], len(v))


def main():
    args = parse_args()
    prefix = "%d" % random.randint(100000000, 999999999)  # this run's ids: prefix + 6 digits
    if args.listen:
        ours, theirs = multiprocessing.Pipe()
        proc = multiprocessing.Process(target=listener, args=(args.dsn, theirs), daemon=True)
        proc.start()
        if not ours.poll(30) or ours.recv() != "ready":
            sys.exit("fixed_rate: the LISTEN connection did not start")

    results = run_load(args, prefix)
    ok = [(k, r) for k, r in enumerate(results) if r[4] == 200]
    first_sent = min(r[1] for r in results)
    last_ack = max(r[2] for r in results)

    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    n_rows = wait_rows(cur, args.table, prefix, len(ok), args.drain_max)
    rows = read_rows(cur, args.table, prefix)
    notified = {}
    if args.listen:
        time.sleep(0.5)  # the last notifications are on their way
        ours.send("stop")
        notified = dict(ours.recv()) if ours.poll(30) else {}
        proc.join(5)
    conn.close()

    req_ack, due_ack, late, ack_commit, req_commit, due_commit, ack_notify = ([] for _ in range(7))
    for k, (due, sent, acked, acked_wall, _) in ok:
        req_ack.append(acked - sent)
        due_ack.append(acked - due)
        late.append(sent - due)
        row = rows.get("%s%06d" % (prefix, k))
        if row is None:
            continue
        row_id, committed, _ = row
        sent_wall = acked_wall - (acked - sent)
        if committed is not None:
            ack_commit.append(committed - acked_wall)
            req_commit.append(committed - sent_wall)
            due_commit.append(committed - (sent_wall - (sent - due)))
        if row_id in notified:
            ack_notify.append(notified[row_id] - acked_wall)

    print("requests %d" % len(results))
    print("ok %d" % len(ok))
    print("rows %d" % n_rows)
    print("notified %d" % len(notified))
    print("rate %.1f" % (len(ok) / (last_ack - first_sent)))
    for line in (stats("req_ack", req_ack), stats("due_ack", due_ack),
                 stats("send_late", late), stats("ack_commit", ack_commit),
                 stats("req_commit", req_commit), stats("due_commit", due_commit),
                 stats("ack_notify", ack_notify)):
        print(line)


if __name__ == "__main__":
    main()
