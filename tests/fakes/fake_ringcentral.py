#!/usr/bin/env python3
"""A local fake of the RingCentral platform API for tests (Python standard library only).

It serves what Switchboard calls:
  POST /restapi/oauth/token                      JWT bearer grant, HTTP Basic client auth
  GET  /restapi/v1.0/account/{a}/extension/{e}/message-store/{id}
  GET  /restapi/v1.0/account/{a}/extension/{e}/message-store   list: messageType, direction,
                                                 dateFrom, perPage, page (sb-sender's search)
  POST /restapi/v1.0/account/{a}/extension/{e}/sms   (stores and echoes a message record,
                                                 creationTime now; the request is kept in
                                                 stats "sms_sent")
  POST   /restapi/v1.0/subscription              create (WebHook; the verificationToken is
                                                 kept, never echoed, as RingCentral does)
  POST   /restapi/v1.0/subscription/{id}/renew   new expirationTime; a Blacklisted or
                                                 Suspended one answers with its status unchanged
  GET    /restapi/v1.0/subscription/{id}         SubscriptionInfo
  DELETE /restapi/v1.0/subscription/{id}         204; unknown ids answer 404 everywhere
and, for the tests, a control surface:
  GET  /_stats        request counters: {"token": n, "message_store": n, "sms": n,
                      "by_status": {"200": n, ...}, "requests": [[method, path, status], ...],
                      "tokens_issued": n}
  POST /_control      JSON with any of: {"latency_ms": 50, "reset_stats": true,
                      "revoke_tokens": true, "token_expires_in": 3600,
                      "fail": [{"path": "<regex>", "status": 429, "times": 1,
                                "retry_after": "1", "method": "GET"}],
                      "clear_failures": true, "messages": [<message record>, ...],
                      "subscription_status": {"id": "...", "status": "Blacklisted"},
                      "sms_response_delay_ms": 3000}  (the SMS is stored, then the answer
                      waits: a client killed meanwhile sent it without knowing)

Error injection: a "fail" rule answers the next `times` requests whose path matches with
that status (and a Retry-After when given), before any other handling. "revoke_tokens"
makes every token issued so far invalid, so the next API call gets a 401 and the client
must fetch a new token. Message ids are served from the fixture sms-send-response.json and
from whatever was added (add_message / "messages"); any other id is a 404 as RingCentral
answers it.

In-process use (tests/integration):
    fake = FakeRingCentral(client_id, client_secret, jwt)
    fake.add_message(fake_ringcentral.sms_record("3062991514999", ...))
    fake.fail(r"/message-store/", 429, times=1, retry_after="1")
    ... fake.url ... fake.stats() ... fake.close()
Standalone:  python3 tests/fakes/fake_ringcentral.py --port 18090
"""

import argparse
import base64
import copy
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES_DIR = os.environ.get("SB_FIXTURES_DIR") or os.path.abspath(
    os.path.join(HERE, "..", "..", "..", "shared", "fixtures"))

# The fixtures' credentials (ringcentral/oauth-token-request-jwt.txt).
CLIENT_ID = "TESTCLIENTID0001"
CLIENT_SECRET = "TEST-CLIENT-SECRET-DO-NOT-USE"
JWT = "TEST.ONLY.JWT-CREDENTIAL"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

MESSAGE_RE = re.compile(r"^/restapi/v1\.0/account/([^/]+)/extension/([^/]+)/message-store/"
                        r"([0-9]+)$")
SMS_RE = re.compile(r"^/restapi/v1\.0/account/([^/]+)/extension/([^/]+)/sms$")
STORE_LIST_RE = re.compile(r"^/restapi/v1\.0/account/([^/]+)/extension/([^/]+)/message-store$")
SUB_RE = re.compile(r"^/restapi/v1\.0/subscription(?:/([^/]+)(/renew)?)?$")


def sms_record(msg_id, from_phone="+14155550134", to_phone="+16505550100",
               text="Hello from the fake", direction="Inbound",
               conversation_id="7876416245344257449",
               creation_time="2026-11-24T15:30:00.000Z", status=None):
    """A message-store record shaped like RingCentral's (ids as JSON numbers, as it sends
    them; the conversation id also as a string under conversation.id)."""
    return {
        "uri": "https://platform.ringcentral.com/restapi/v1.0/account/401234567008/extension/"
               "401234569008/message-store/%s" % msg_id,
        "id": int(msg_id),
        "to": [{"phoneNumber": to_phone}],
        "from": {"phoneNumber": from_phone},
        "type": "SMS",
        "creationTime": creation_time,
        "readStatus": "Unread",
        "priority": "Normal",
        "attachments": [{"id": int(msg_id), "type": "Text", "contentType": "text/plain"}],
        "direction": direction,
        "availability": "Alive",
        "subject": text,
        "messageStatus": status or ("Received" if direction == "Inbound" else "Sent"),
        "conversationId": int(conversation_id),
        "conversation": {"id": str(conversation_id)},
        "lastModifiedTime": creation_time,
    }


def message_store_notification(ids, uuid=None, extension_id="401234569008",
                               account_id="401234567008"):
    """A message-store change notification announcing ids (like the fixture), bytes."""
    doc = {
        "uuid": uuid or "ms-%s" % "-".join(str(i) for i in ids),
        "event": "/restapi/v1.0/account/%s/extension/%s/message-store" % (account_id,
                                                                        extension_id),
        "timestamp": "2026-11-24T15:30:01.000Z",
        "subscriptionId": "7f3c2a9e-4b1d-4e8a-9c61-2d5f0b8e7a13",
        "ownerId": extension_id,
        "body": {
            "accountId": account_id,
            "extensionId": extension_id,
            "lastUpdated": "2026-11-24T15:30:00.900Z",
            "changes": [{"type": "SMS", "newCount": len(ids), "updatedCount": 0,
                         "newMessageIds": [int(i) for i in ids]}],
        },
    }
    return json.dumps(doc, indent=2).encode("utf-8")


class _State:
    def __init__(self, client_id, client_secret, jwt):
        self.lock = threading.Lock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwt = jwt
        self.latency_ms = 0
        self.sms_response_delay_ms = 0
        self.token_expires_in = 3600
        self.tokens = {}  # access token -> expiry (monotonic)
        self.serial = 0
        self.failures = []  # [{"path": re, "status", "times", "retry_after", "method"}]
        self.messages = {}
        self.subscriptions = {}  # id -> SubscriptionInfo, plus "verificationToken" (ours)
        self.reset_stats()
        path = os.path.join(FIXTURES_DIR, "ringcentral", "sms-send-response.json")
        try:
            with open(path, "rb") as f:
                record = json.loads(f.read())
            self.messages[str(record["id"])] = record
        except OSError:
            pass  # no fixtures: only added messages are served

    def reset_stats(self):
        self.stats = {"token": 0, "message_store": 0, "sms": 0, "subscription": 0, "other": 0,
                      "message_list": 0, "sms_sent": [], "by_status": {},
                      "requests": [], "tokens_issued": 0}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeRingCentral/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests print what matters
        pass

    @property
    def st(self):
        return self.server.state

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, doc, headers=None):
        body = json.dumps(doc).encode("utf-8") if not isinstance(doc, bytes) else doc
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/_"):
            with self.st.lock:
                s = self.st.stats
                s["by_status"][str(status)] = s["by_status"].get(str(status), 0) + 1
                s["requests"].append([self.command, path, status])

    def _count(self, kind):
        with self.st.lock:
            self.st.stats[kind] += 1

    def _injected(self, path):
        """The first matching failure rule, consumed; or None."""
        with self.st.lock:
            for rule in self.st.failures:
                if rule["times"] <= 0 or not re.search(rule["path"], path):
                    continue
                if rule.get("method") and rule["method"] != self.command:
                    continue
                rule["times"] -= 1
                return dict(rule)
        return None

    def _authorized(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return False
        with self.st.lock:
            expiry = self.st.tokens.get(auth[7:])
        return expiry is not None and time.monotonic() < expiry

    def _dispatch(self):
        path = urllib.parse.urlsplit(self.path).path
        body = self._read_body()
        if path == "/_stats" and self.command == "GET":
            with self.st.lock:
                return self._send(200, json.loads(json.dumps(self.st.stats)))
        if path == "/_control" and self.command == "POST":
            return self._control(json.loads(body or b"{}"))
        if self.st.latency_ms:
            time.sleep(self.st.latency_ms / 1000.0)
        kind = ("token" if path == "/restapi/oauth/token" else
                "message_store" if MESSAGE_RE.match(path) else
                "sms" if SMS_RE.match(path) else
                "message_list" if STORE_LIST_RE.match(path) else
                "subscription" if SUB_RE.match(path) else "other")
        self._count(kind)
        rule = self._injected(path)
        if rule is not None:
            headers = {"Retry-After": rule["retry_after"]} if rule.get("retry_after") else {}
            return self._send(rule["status"], {"errorCode": "FAKE-%d" % rule["status"],
                                               "message": "injected by the fake"}, headers)
        if kind == "token" and self.command == "POST":
            return self._token(body)
        if not self._authorized():
            return self._send(401, {"errorCode": "TokenInvalid",
                                    "message": "Access token corrupted or expired"})
        m = MESSAGE_RE.match(path)
        if m and self.command == "GET":
            with self.st.lock:
                record = copy.deepcopy(self.st.messages.get(m.group(3)))
            if record is None:
                return self._send(404, {"errorCode": "MSG-333", "message": "Record not found"})
            return self._send(200, record)
        if SMS_RE.match(path) and self.command == "POST":
            return self._sms(body)
        if STORE_LIST_RE.match(path) and self.command == "GET":
            return self._message_list(urllib.parse.urlsplit(self.path).query)
        m = SUB_RE.match(path)
        if m:
            return self._subscription(m.group(1), bool(m.group(2)), body)
        return self._send(404, {"errorCode": "CMN-102", "message": "Resource not found"})

    def _token(self, body):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        expected = "Basic " + base64.b64encode(
            ("%s:%s" % (self.st.client_id, self.st.client_secret)).encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"error": "invalid_client", "errorCode": "OAU-123"})
        if form.get("grant_type") != [JWT_GRANT] or form.get("assertion") != [self.st.jwt]:
            return self._send(400, {"error": "invalid_grant", "errorCode": "OAU-251"})
        with self.st.lock:
            self.st.serial += 1
            token = "fake-at-%d-%d" % (os.getpid(), self.st.serial)
            self.st.tokens[token] = time.monotonic() + self.st.token_expires_in
            self.st.stats["tokens_issued"] += 1
            expires = self.st.token_expires_in
        return self._send(200, {"access_token": token, "token_type": "bearer",
                                "expires_in": expires, "refresh_token": "fake-rt",
                                "refresh_token_expires_in": 604800,
                                "scope": "ReadMessages SMS", "owner_id": "401234569008"})

    def _sms(self, body):
        req = json.loads(body or b"{}")
        with self.st.lock:
            self.st.serial += 1
            msg_id = str(3062991600000 + self.st.serial)
        record = sms_record(msg_id, from_phone=req.get("from", {}).get("phoneNumber", ""),
                            to_phone=(req.get("to") or [{}])[0].get("phoneNumber", ""),
                            text=req.get("text", ""), direction="Outbound", status="Queued",
                            creation_time=_iso(time.time()))
        with self.st.lock:
            self.st.messages[msg_id] = record
            self.st.stats["sms_sent"].append(req)
            delay = self.st.sms_response_delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        return self._send(200, record)

    def _message_list(self, query):
        """The message store, newest first, filtered like RingCentral's list."""
        q = dict(urllib.parse.parse_qsl(query))
        per_page = max(1, min(int(q.get("perPage") or 100), 1000))
        page = max(1, int(q.get("page") or 1))
        with self.st.lock:
            records = [copy.deepcopy(r) for r in self.st.messages.values()]
        if q.get("messageType"):
            records = [r for r in records if r.get("type") == q["messageType"]]
        if q.get("direction"):
            records = [r for r in records if r.get("direction") == q["direction"]]
        if q.get("dateFrom"):
            records = [r for r in records if r.get("creationTime", "") >= q["dateFrom"]]
        records.sort(key=lambda r: r.get("creationTime", ""), reverse=True)
        pages = max(1, (len(records) + per_page - 1) // per_page)
        chunk = records[(page - 1) * per_page:page * per_page]
        doc = {"records": chunk, "paging": {"page": page, "totalPages": pages,
                                            "perPage": per_page, "pageStart": 0,
                                            "pageEnd": max(0, len(chunk) - 1)},
               "navigation": {}}
        if page < pages:
            doc["navigation"]["nextPage"] = {"uri": "page=%d" % (page + 1)}
        return self._send(200, doc)

    def _subscription(self, sub_id, renew, body):
        st = self.st
        if sub_id is None and self.command == "POST":
            req = json.loads(body or b"{}")
            mode = req.get("deliveryMode") or {}
            if not req.get("eventFilters") or mode.get("transportType") != "WebHook" or \
                    not mode.get("address"):
                return self._send(400, {"errorCode": "SUB-505", "message": "invalid request"})
            with st.lock:
                st.serial += 1
                sub_id = "fake-sub-%04d-%s" % (st.serial, os.urandom(4).hex())
                st.subscriptions[sub_id] = _subscription_info(
                    sub_id, req["eventFilters"], mode["address"],
                    int(req.get("expiresIn") or 604800), mode.get("verificationToken"))
                info = _public(st.subscriptions[sub_id])
            return self._send(200, info)
        with st.lock:
            sub = st.subscriptions.get(sub_id)
            if sub is not None and renew and self.command == "POST" and \
                    sub["status"] == "Active":
                sub["expirationTime"] = _iso(time.time() + sub["expiresIn"])
            if sub is not None and self.command == "DELETE":
                del st.subscriptions[sub_id]
            info = _public(sub) if sub is not None else None
        if info is None:
            return self._send(404, {"errorCode": "SUB-203",
                                    "message": "Resource for parameter [subscriptionId] is not "
                                               "found"})
        if self.command == "DELETE":
            return self._send(204, b"")
        if self.command == "GET" or (renew and self.command == "POST"):
            return self._send(200, info)
        return self._send(405, {"errorCode": "CMN-405", "message": "method not allowed"})

    def _control(self, doc):
        with self.st.lock:
            if doc.get("reset_stats"):
                self.st.reset_stats()
            if doc.get("clear_failures"):
                self.st.failures = []
            if "latency_ms" in doc:
                self.st.latency_ms = int(doc["latency_ms"])
            if "sms_response_delay_ms" in doc:
                self.st.sms_response_delay_ms = int(doc["sms_response_delay_ms"])
            if "token_expires_in" in doc:
                self.st.token_expires_in = int(doc["token_expires_in"])
            if doc.get("revoke_tokens"):
                self.st.tokens.clear()
            for rule in doc.get("fail", []):
                self.st.failures.append({"path": rule.get("path", "."),
                                         "status": int(rule.get("status", 500)),
                                         "times": int(rule.get("times", 1)),
                                         "retry_after": rule.get("retry_after"),
                                         "method": rule.get("method")})
            for record in doc.get("messages", []):
                self.st.messages[str(record["id"])] = record
            change = doc.get("subscription_status")
            if change and change.get("id") in self.st.subscriptions:
                self.st.subscriptions[change["id"]]["status"] = change["status"]
        return self._send(200, {"ok": True})

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + \
        ".%03dZ" % int((epoch % 1) * 1000)


def _subscription_info(sub_id, filters, address, expires_in, token, status="Active",
                       expires_at=None):
    return {"uri": "https://platform.ringcentral.com/restapi/v1.0/subscription/%s" % sub_id,
            "id": sub_id, "creationTime": _iso(time.time()), "status": status,
            "eventFilters": list(filters),
            "expirationTime": _iso(expires_at if expires_at is not None
                                   else time.time() + expires_in),
            "expiresIn": expires_in,
            "deliveryMode": {"transportType": "WebHook", "encryption": False,
                             "address": address},
            "verificationToken": token}


def _public(sub):
    """What RingCentral answers: the verification token is never echoed."""
    out = copy.deepcopy(sub)
    out.pop("verificationToken", None)
    if out["status"] == "Blacklisted":
        out["blacklistedData"] = {"reason": "Webhook responses with code: [503], reason: "
                                            "[Service Unavailable]",
                                  "blacklistedAt": out["creationTime"]}
    return out


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that goes away mid-answer (a sender killed in a test) is expected.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeRingCentral:
    """The fake on 127.0.0.1 (port 0: a free one), served from a daemon thread."""

    def __init__(self, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, jwt=JWT, port=0):
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = _State(client_id, client_secret, jwt)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def state(self):
        return self.httpd.state

    def add_message(self, record):
        with self.state.lock:
            self.state.messages[str(record["id"])] = record

    def fail(self, path, status, times=1, retry_after=None, method=None):
        with self.state.lock:
            self.state.failures.append({"path": path, "status": status, "times": times,
                                        "retry_after": retry_after, "method": method})

    def add_subscription(self, sub_id, filters, address, status="Active", expires_at=None,
                         token=None):
        """A subscription that exists already (expires_at: epoch seconds)."""
        with self.state.lock:
            self.state.subscriptions[sub_id] = _subscription_info(
                sub_id, filters, address, 604800, token, status, expires_at)

    def set_subscription_status(self, sub_id, status):
        with self.state.lock:
            self.state.subscriptions[sub_id]["status"] = status

    def subscriptions(self):
        """id -> SubscriptionInfo with our "verificationToken" (a copy)."""
        with self.state.lock:
            return copy.deepcopy(self.state.subscriptions)

    def revoke_tokens(self):
        with self.state.lock:
            self.state.tokens.clear()

    def set_latency(self, ms):
        with self.state.lock:
            self.state.latency_ms = ms

    def reset_stats(self):
        with self.state.lock:
            self.state.reset_stats()

    def stats(self):
        with self.state.lock:
            return json.loads(json.dumps(self.state.stats))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="A fake RingCentral API for local runs and tests.")
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--client-id", default=CLIENT_ID)
    ap.add_argument("--client-secret", default=CLIENT_SECRET)
    ap.add_argument("--jwt", default=JWT)
    args = ap.parse_args(argv)
    fake = FakeRingCentral(args.client_id, args.client_secret, args.jwt, args.port)
    print("fake RingCentral on %s (RINGCENTRAL_SERVER_URL)" % fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
