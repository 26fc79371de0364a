#!/usr/bin/env python3
"""fake_google - a local stand-in for Google's OAuth token endpoint and the parts of the
Gmail API the enricher calls (GOOGLE_TOKEN_URL, GMAIL_API_BASE_URL). Standard library only.

Served:
  POST /token                                        refresh-token grant (form body)
  GET  /gmail/v1/users/{user}/history                startHistoryId, historyTypes, maxResults,
                                                     pageToken; 404 when the start is too old
  GET  /gmail/v1/users/{user}/messages/{id}          format=full
  GET  /gmail/v1/users/{user}/messages               labelIds=INBOX, maxResults (full sync);
                                                     q: "rfc822msgid:<id>", "in:sent", "to:<a>"
                                                     and "after:<epoch s>" (others ignored)
  POST /gmail/v1/users/{user}/messages/send          users.messages.send (sb-sender): the raw
                                                     message becomes a SENT message of the
                                                     mailbox (a history record too); what was
                                                     received is kept in FakeGoogle.sent
  GET  /gmail/v1/users/{user}/profile                emailAddress, historyId
  POST /gmail/v1/users/{user}/watch                  users.watch (the renewer): topicName needed;
                                                     {historyId, expiration = now + 7 days}
  POST /gmail/v1/users/{user}/stop                   users.stop: 204
  GET  /_stats                                       request counts (JSON)
  POST /_control                                     change behaviour (JSON, see control())

The mailbox support@example.com holds the shared fixtures (../shared/fixtures/gmail): the
four messages of history-list.json / history-list-page2.json, with the same record ids
and checkpoint (1843562), two records per page so that paging is exercised. The three
inbound messages are the fixture files byte for byte; the SENT one (19a6f4aa01b2c3d4) is
built from send-request.json's raw RFC 2822 text. Other mailboxes are generated
(--generate MAILBOXESxMESSAGES: bench-000@example.com ...).

users.watch and users.stop are counted per mailbox too ("watch:<address>", "stop:<address>"
in /_stats counts); Mailbox.watch holds the last watch request (None after users.stop).
Failures are injected with kinds "watch" and "stop".

messages.send answers {id, threadId (the request's, else a new one), labelIds: ["SENT"]};
kind "send" for injected failures; control {"send_response_delay_ms": n} stores the message
and then holds the answer (a client killed meanwhile sent it without knowing).

Access tokens are checked: an API call needs a Bearer token this server issued and has not
expired (control {"expire_tokens": true} makes every issued one answer 401 once more).

Run alone:  fake_google.py --port 0 --generate 50x100 --latency-ms 100
            (prints "fake_google listening on 127.0.0.1:PORT" on stdout first)
In a test:  fake = FakeGoogle(fixtures_dir); fake.start(); ... fake.url; fake.stop()
"""

import argparse
import base64
import email
import email.policy
import email.utils
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures"))
FIXTURE_MAILBOX = "support@example.com"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class Mailbox:
    """Messages in history order: records [(record_id, message_id, labels, thread_id)]."""

    def __init__(self, address, history_id, page_size=500):
        self.address = address
        self.records = []
        self.messages = {}  # id -> message resource (dict) or raw JSON bytes
        self.history_id = history_id
        self.min_history = 0  # a startHistoryId below this answers 404
        self.page_size = page_size
        self.watch = None  # users.watch: {"topicName", "labelIds", "expiration"} (the renewer)

    def add(self, record_id, message_id, labels, thread_id, resource):
        self.records.append((record_id, message_id, list(labels), thread_id))
        self.messages[message_id] = resource
        self.history_id = max(self.history_id, record_id)


def _resource_from_raw(raw, mid, thread_id, labels, record_id):
    """A messages.get?format=full resource of a single-part RFC 5322 message (bytes)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    body = msg.get_payload(decode=True) or b""
    try:
        when_ms = int(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() * 1000)
    except (TypeError, ValueError):
        when_ms = int(time.time() * 1000)
    return {"id": mid, "threadId": thread_id, "labelIds": list(labels),
            "snippet": body.decode("utf-8", "replace")[:100], "historyId": str(record_id),
            "internalDate": str(when_ms), "sizeEstimate": len(raw),
            "payload": {"partId": "", "mimeType": "text/plain", "filename": "",
                        "headers": [{"name": k, "value": v} for k, v in msg.items()],
                        "body": {"size": len(body), "data": b64url(body)}}}


def _header(resource, name):
    """A header of a message resource (dict or raw JSON bytes), or None."""
    if isinstance(resource, (bytes, str)):
        resource = json.loads(resource)
    for h in (resource.get("payload") or {}).get("headers") or []:
        if h.get("name", "").lower() == name.lower():
            return h.get("value")
    return None


def _query_matches(resource, labels, q):
    """Gmail search, the few operators sb-sender uses."""
    for term in q.split():
        op, _, arg = term.partition(":")
        if op == "rfc822msgid" and (_header(resource, "Message-ID") or "").strip("<> ") != \
                arg.strip("<>"):
            return False
        if op == "in" and arg.lower() == "sent" and "SENT" not in labels:
            return False
        if op == "to" and arg.lower() not in (_header(resource, "To") or "").lower():
            return False
        if op == "after" and arg.isdigit():
            if isinstance(resource, (bytes, str)):
                resource = json.loads(resource)
            if int(resource.get("internalDate") or 0) < int(arg) * 1000:
                return False
    return True


def _sent_fixture_message(fixtures):
    """The SENT reply of the fixtures as a messages.get?format=full resource."""
    with open(os.path.join(fixtures, "gmail", "send-request.json")) as f:
        req = json.load(f)
    with open(os.path.join(fixtures, "gmail", "send-response.json")) as f:
        resp = json.load(f)
    raw = base64.urlsafe_b64decode(req["raw"] + "=" * (-len(req["raw"]) % 4))
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    body = msg.get_payload(decode=True) or b""
    when = email.utils.parsedate_to_datetime(msg["Date"])
    return {
        "id": resp["id"],
        "threadId": resp["threadId"],
        "labelIds": resp["labelIds"],
        "snippet": body.decode("utf-8", "replace")[:100],
        "historyId": "1843529",
        "internalDate": str(int(when.timestamp() * 1000)),
        "sizeEstimate": len(raw),
        "payload": {
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": [{"name": k, "value": v} for k, v in msg.items()],
            "body": {"size": len(body), "data": b64url(body)},
        },
    }


def synthetic_message(mailbox, index, message_id, thread_id, record_id, sender=None,
                      labels=("UNREAD", "INBOX")):
    sender = sender or "Customer %d <customer-%d@example.org>" % (index, index)
    text = ("Hello,\n\nThis is message %d for %s. Order #%d is late.\n\nThanks\n"
            % (index, mailbox, 40000 + index)).encode()
    date_ms = 1795533000000 + index * 1000
    return {
        "id": message_id,
        "threadId": thread_id,
        "labelIds": list(labels),
        "snippet": text.decode()[:80],
        "historyId": str(record_id),
        "internalDate": str(date_ms),
        "sizeEstimate": len(text) + 400,
        "payload": {
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": [
                {"name": "From", "value": sender},
                {"name": "To", "value": mailbox},
                {"name": "Subject", "value": "Message %d" % index},
                {"name": "Date", "value": email.utils.formatdate(date_ms / 1000, usegmt=True)},
                {"name": "Message-ID", "value": "<m%d.%s>" % (index, mailbox)},
                {"name": "Content-Type", "value": "text/plain; charset=\"UTF-8\""},
            ],
            "body": {"size": len(text), "data": b64url(text)},
        },
    }


class FakeGoogle:
    def __init__(self, fixtures=DEFAULT_FIXTURES, host="127.0.0.1", port=0, latency_ms=0,
                 generate=None, fixture_page_size=2, client_id=None, client_secret=None):
        self.fixtures = fixtures
        self.lock = threading.Lock()
        self.latency_ms = latency_ms
        self.client_id = client_id
        self.client_secret = client_secret
        self.mailboxes = {}
        self.tokens = {}  # access token -> refresh token
        self.revoked = set()  # refresh tokens that answer invalid_grant
        self.token_seq = 0
        self.msg_seq = 0
        self.failures = []  # [{"kind", "status", "times", "mailbox"}]
        self.stats = {}
        self.inflight = 0
        self.max_inflight = 0
        self.sent = []  # messages.send: {"mailbox", "raw" (bytes), "threadId", "id"}
        self.send_response_delay_ms = 0
        self._load_fixture_mailbox(fixture_page_size)
        if generate:
            n_mailboxes, n_messages = generate
            for m in range(n_mailboxes):
                self.generate_mailbox("bench-%03d@example.com" % m, n_messages)
        self.server = _Server((host, port), _Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.thread = None

    # -- data -------------------------------------------------------------------------

    def _load_fixture_mailbox(self, page_size):
        g = os.path.join(self.fixtures, "gmail")
        mb = Mailbox(FIXTURE_MAILBOX, 1843500, page_size)
        files = {}
        for name in ("message-full-plain.json", "message-full-multipart.json",
                     "message-with-attachment.json"):
            with open(os.path.join(g, name), "rb") as f:
                raw = f.read()
            files[json.loads(raw)["id"]] = raw
        sent = _sent_fixture_message(self.fixtures)
        files[sent["id"]] = sent
        for page in ("history-list.json", "history-list-page2.json"):
            with open(os.path.join(g, page)) as f:
                doc = json.load(f)
            for rec in doc.get("history", []):
                for added in rec.get("messagesAdded", []):
                    m = added["message"]
                    mb.add(int(rec["id"]), m["id"], m.get("labelIds", []), m["threadId"],
                           files[m["id"]])
            mb.history_id = max(mb.history_id, int(doc["historyId"]))
        self.mailboxes[mb.address] = mb

    def generate_mailbox(self, address, n_messages, start=1000):
        mb = self.mailboxes.get(address) or Mailbox(address, start)
        self.mailboxes[address] = mb
        self.deliver(address, n_messages)
        return mb

    def deliver(self, address, count, sender=None):
        """Append count new synthetic inbound messages; returns their ids."""
        with self.lock:
            mb = self.mailboxes.get(address)
            if mb is None:
                mb = self.mailboxes[address] = Mailbox(address, 1000)
            ids = []
            for _ in range(count):
                index = len(mb.records)
                record = mb.history_id + 7
                self.msg_seq += 1  # ids unique across mailboxes, like the writer's key wants
                mid = "%016x" % (0x19b0000000000000 + self.msg_seq)
                mb.add(record, mid, ["UNREAD", "INBOX"], mid,
                       synthetic_message(address, index, mid, mid, record, sender))
                ids.append(mid)
            return ids

    # -- behaviour --------------------------------------------------------------------

    def control(self, doc):
        """latency_ms: int; fail: [{"kind": token|history|message|profile|list|any,
        "status": 500, "times": 1, "mailbox": optional}]; expire_history: address (its
        stored checkpoints answer 404 from now on); revoke: refresh token; unrevoke;
        expire_tokens: true; reset_stats: true; deliver: {"mailbox", "count", "sender"}."""
        with self.lock:
            if "latency_ms" in doc:
                self.latency_ms = int(doc["latency_ms"])
            for rule in doc.get("fail", []):
                self.failures.append(dict(rule, times=int(rule.get("times", 1))))
            if doc.get("clear_failures"):
                self.failures = []
            if "expire_history" in doc:
                mb = self.mailboxes[doc["expire_history"]]
                mb.min_history = mb.history_id + 1
            if "revoke" in doc:
                self.revoked.add(doc["revoke"])
            if "unrevoke" in doc:
                self.revoked.discard(doc["unrevoke"])
            if doc.get("expire_tokens"):
                self.tokens.clear()
            if "send_response_delay_ms" in doc:
                self.send_response_delay_ms = int(doc["send_response_delay_ms"])
            if doc.get("reset_stats"):
                self.stats = {}
                self.max_inflight = 0
        if "deliver" in doc:
            d = doc["deliver"]
            return {"ids": self.deliver(d["mailbox"], int(d.get("count", 1)), d.get("sender"))}
        return {"ok": True}

    def snapshot(self):
        with self.lock:
            return {"counts": dict(self.stats), "max_inflight": self.max_inflight,
                    "tokens_issued": self.token_seq}

    def count(self, kind):
        with self.lock:
            return self.stats.get(kind, 0)

    def _injected(self, kind, mailbox):
        """An injected failure status for this request, or None (consumes one use)."""
        with self.lock:
            for rule in self.failures:
                if rule["times"] <= 0:
                    continue
                if rule.get("kind", "any") not in ("any", kind):
                    continue
                if rule.get("mailbox") not in (None, mailbox):
                    continue
                rule["times"] -= 1
                return int(rule.get("status", 500))
        return None

    def _count(self, kind):
        with self.lock:
            self.stats[kind] = self.stats.get(kind, 0) + 1
            self.stats["total"] = self.stats.get("total", 0) + 1

    # -- lifecycle --------------------------------------------------------------------

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _error(code, status, message):
    return code, {"error": {"code": code, "message": message, "status": status,
                            "errors": [{"message": message, "domain": "global",
                                        "reason": status.lower()}]}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the enricher opens many connections at once

    def handle_error(self, request, client_address):
        # A client that goes away mid-answer (a killed enricher) is expected in tests.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_google/1"

    def log_message(self, fmt, *args):  # quiet: the tests read /_stats instead
        pass

    @property
    def fake(self):
        return self.server.fake

    def _send(self, code, body, content_type="application/json; charset=UTF-8"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if code == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self._read_body() if method == "POST" else b""
        fake = self.fake
        if url.path == "/_stats":
            return self._send(200, fake.snapshot())
        if url.path == "/_control" and method == "POST":
            return self._send(200, fake.control(json.loads(body or b"{}")))
        with fake.lock:
            fake.inflight += 1
            fake.max_inflight = max(fake.max_inflight, fake.inflight)
            latency = fake.latency_ms
        try:
            if latency:
                time.sleep(latency / 1000.0)
            code, answer = self._route(method, url.path, query, body)
        except Exception as e:  # a bug here must show as a 500, not a hang
            code, answer = _error(500, "INTERNAL", "fake_google: %r" % (e,))
        finally:
            with fake.lock:
                fake.inflight -= 1
        self._send(code, answer)

    def _route(self, method, path, query, body):
        fake = self.fake
        if path == "/token" and method == "POST":
            fake._count("token")
            return self._token(body)
        parts = path.split("/")
        # users.watch / users.stop (the renewer): POST /gmail/v1/users/{user}/watch|stop
        if method == "POST" and len(parts) == 6 and parts[1:4] == ["gmail", "v1", "users"] \
                and parts[5] in ("watch", "stop"):
            return self._watch(urllib.parse.unquote(parts[4]).lower(), parts[5], body)
        # users.messages.send (sb-sender): POST /gmail/v1/users/{user}/messages/send
        if method == "POST" and len(parts) == 7 and parts[1:4] == ["gmail", "v1", "users"] \
                and parts[5:7] == ["messages", "send"]:
            return self._send_message(urllib.parse.unquote(parts[4]).lower(), body)
        # /gmail/v1/users/{user}/...
        if len(parts) < 6 or parts[1:4] != ["gmail", "v1", "users"] or method != "GET":
            return _error(404, "NOT_FOUND", "no such endpoint")
        user = urllib.parse.unquote(parts[4]).lower()
        rest = parts[5:]
        kind = {"history": "history", "profile": "profile"}.get(rest[0])
        if rest[0] == "messages":
            kind = "message" if len(rest) > 1 else "list"
        if kind is None:
            return _error(404, "NOT_FOUND", "no such endpoint")
        fake._count(kind)
        injected = fake._injected(kind, user)
        if injected is not None:
            if injected == 404 and kind == "history":
                with open(os.path.join(fake.fixtures, "gmail", "history-404.json"), "rb") as f:
                    return 404, f.read()
            return _error(injected, "INJECTED", "injected failure")
        auth = self.headers.get("Authorization") or ""
        with fake.lock:
            ok = auth.startswith("Bearer ") and auth[7:] in fake.tokens
        if not ok:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                          "credentials.")
        mb = fake.mailboxes.get(user)
        if mb is None:
            return _error(404, "NOT_FOUND", "no such mailbox")
        if kind == "history":
            return self._history(mb, query)
        if kind == "profile":
            return 200, {"emailAddress": mb.address, "messagesTotal": len(mb.records),
                         "threadsTotal": len(mb.records), "historyId": str(mb.history_id)}
        if kind == "list":
            want = query.get("labelIds")
            n = int(query.get("maxResults") or 100)
            q = query.get("q") or ""
            out = [{"id": mid, "threadId": tid} for (_r, mid, labels, tid)
                   in reversed(mb.records) if (want is None or want in labels) and
                   (not q or _query_matches(mb.messages[mid], labels, q))][:n]
            return 200, {"messages": out, "resultSizeEstimate": len(out)}
        mid = urllib.parse.unquote(rest[1])
        resource = mb.messages.get(mid)
        if resource is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        return 200, resource

    def _send_message(self, user, body):
        fake = self.fake
        fake._count("send")
        injected = fake._injected("send", user)
        if injected is not None:
            return _error(injected, "INJECTED", "injected failure")
        auth = self.headers.get("Authorization") or ""
        with fake.lock:
            ok = auth.startswith("Bearer ") and auth[7:] in fake.tokens
            mb = fake.mailboxes.get(user)
        if not ok:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                          "credentials.")
        if mb is None:
            return _error(404, "NOT_FOUND", "no such mailbox")
        req = json.loads(body or b"{}")
        try:
            raw = base64.urlsafe_b64decode(req["raw"] + "=" * (-len(req["raw"]) % 4))
        except (KeyError, TypeError, ValueError):
            return _error(400, "INVALID_ARGUMENT", "'raw' RFC822 payload message string or "
                          "uploading message via /upload/* URL required")
        with fake.lock:
            fake.msg_seq += 1
            mid = "%016x" % (0x19c0000000000000 + fake.msg_seq)
            tid = req.get("threadId") or mid
            record = mb.history_id + 7
            mb.add(record, mid, ["SENT"], tid,
                   _resource_from_raw(raw, mid, tid, ["SENT"], record))
            fake.sent.append({"mailbox": user, "raw": raw, "threadId": req.get("threadId"),
                              "id": mid})
            delay = fake.send_response_delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        return 200, {"id": mid, "threadId": tid, "labelIds": ["SENT"]}

    def _watch(self, user, kind, body):
        fake = self.fake
        fake._count(kind)
        fake._count("%s:%s" % (kind, user))
        injected = fake._injected(kind, user)
        if injected is not None:
            return _error(injected, "INJECTED", "injected failure")
        auth = self.headers.get("Authorization") or ""
        with fake.lock:
            ok = auth.startswith("Bearer ") and auth[7:] in fake.tokens
            mb = fake.mailboxes.get(user)
        if not ok:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                          "credentials.")
        if mb is None:
            return _error(404, "NOT_FOUND", "no such mailbox")
        if kind == "stop":
            with fake.lock:
                mb.watch = None
            return 204, b""
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not req.get("topicName"):
            return _error(400, "INVALID_ARGUMENT", "Invalid topicName does not match "
                          "projects/SOME-PROJECT/topics/SOME-TOPIC")
        expiration = int(time.time() * 1000) + 7 * 86400 * 1000
        with fake.lock:
            mb.watch = {"topicName": req["topicName"], "labelIds": req.get("labelIds"),
                        "labelFilterBehavior": req.get("labelFilterBehavior"),
                        "expiration": expiration}
            history = mb.history_id
        return 200, {"historyId": str(history), "expiration": str(expiration)}

    def _token(self, body):
        fake = self.fake
        injected = fake._injected("token", None)
        if injected is not None:
            return _error(injected, "INJECTED", "injected failure")
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            return 400, {"error": "invalid_request", "error_description": "bad grant"}
        if (fake.client_id is not None and form.get("client_id") != fake.client_id) or \
                (fake.client_secret is not None and
                 form.get("client_secret") != fake.client_secret):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        if form["refresh_token"] in fake.revoked:
            with open(os.path.join(fake.fixtures, "gmail",
                                   "oauth-token-error-invalid-grant.json"), "rb") as f:
                return 400, f.read()
        with fake.lock:
            fake.token_seq += 1
            token = "ya29.fake-%d-%s" % (fake.token_seq, b64url(os.urandom(12)))
            fake.tokens[token] = form["refresh_token"]
        return 200, {"access_token": token, "expires_in": 3599,
                     "scope": "https://www.googleapis.com/auth/gmail.modify",
                     "token_type": "Bearer"}

    def _history(self, mb, query):
        try:
            start = int(query.get("startHistoryId", ""))
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid startHistoryId")
        if start < mb.min_history:
            with open(os.path.join(self.fake.fixtures, "gmail", "history-404.json"), "rb") as f:
                return 404, f.read()
        size = min(int(query.get("maxResults") or 100), mb.page_size)
        offset = int(query.get("pageToken") or 0) if (query.get("pageToken") or "").isdigit() \
            else 0
        with self.fake.lock:
            records = [r for r in mb.records if r[0] > start]
            current = mb.history_id
        page = records[offset:offset + size]
        history = []
        for record_id, mid, labels, tid in page:
            history.append({"id": str(record_id),
                            "messages": [{"id": mid, "threadId": tid}],
                            "messagesAdded": [{"message": {"id": mid, "threadId": tid,
                                                           "labelIds": labels}}]})
        doc = {"historyId": str(current)}
        if history:
            doc = {"history": history, "historyId": str(current)}
        if offset + size < len(records):
            doc["nextPageToken"] = str(offset + size)
        return 200, doc


def main():
    ap = argparse.ArgumentParser(description="fake Google OAuth + Gmail API for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fixtures", default=os.environ.get("SB_FIXTURES_DIR", DEFAULT_FIXTURES))
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--generate", default=None, help="MAILBOXESxMESSAGES, e.g. 50x100")
    ap.add_argument("--page-size", type=int, default=2, help="history page size (fixtures)")
    args = ap.parse_args()
    generate = None
    if args.generate:
        a, _, b = args.generate.partition("x")
        generate = (int(a), int(b))
    fake = FakeGoogle(args.fixtures, args.host, args.port, args.latency_ms, generate,
                      args.page_size)
    print("fake_google listening on %s:%d" % (args.host, fake.port), flush=True)
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
