#!/usr/bin/env python3
"""mkseeds.py - build the seed corpus of a fuzz target from ../shared/fixtures and the
hand-made seeds committed under fuzz/seeds/<target>/, at build or run time (copies of
the shared fixtures are never committed).

usage: mkseeds.py TARGET OUTDIR [--fixtures DIR]   seeds of one target into OUTDIR
       mkseeds.py --all OUTDIR [--fixtures DIR]    OUTDIR/<target>/ for every target

Inputs are wrapped the way each target reads them (fuzz/fuzz_*.c say how): envelopes
in the spool record format, spool segments with CRC-32C framing, a mode byte for
fuzz_jwt. Files are named by the SHA-1 of their content, like a libFuzzer corpus."""

import base64
import glob
import hashlib
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["fuzz_spool", "fuzz_envelope", "fuzz_map_ringcentral", "fuzz_jwt", "fuzz_pubsub",
           "fuzz_mime", "fuzz_phone"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fixture_files(fx, pattern):
    return sorted(glob.glob(os.path.join(fx, pattern)))


def http_fixture(path):
    """(headers dict with lower-case names, body) of an HTTP request fixture."""
    head, _, body = read(path).partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, body


# --- spool formats (common/sb_envelope.c, common/sb_spool.c) ---------------------------

def envelope(event_id, source, received_ms, headers, body, verdict=b"", reason=b"",
             extra=b""):
    frames = [b"SB1", event_id.encode(), source.encode(), str(received_ms).encode(),
              headers.encode(), body, verdict, reason, extra]
    return b"".join(struct.pack("<I", len(f)) + f for f in frames)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def record(kind, seq, payload, ms=1795533668000):
    """kind 1 data, 2 ack (payload = packed seqs, seq 0)."""
    head = struct.pack("<IIQq", 0x53425300 | kind, len(payload), seq, ms)
    return head + struct.pack("<I", crc32c(payload, crc32c(head))) + payload


def acks(*seqs):
    return record(2, 0, b"".join(struct.pack("<Q", s) for s in seqs))


# --- per target ----------------------------------------------------------------------

def sample_envelopes(fx):
    out = []
    rc_headers = json.dumps({"content-type": "application/json; charset=UTF-8",
                             "user-agent": "RingCentral-Webhook/8.3",
                             "verification-token": "vt-3kQ9xW7pLm2Zr8Yc4Tn6Bd1Fh5Gj0Sa"},
                            separators=(",", ":"), sort_keys=True)
    for i, path in enumerate(fixture_files(fx, "ringcentral/sms-*.json") +
                             fixture_files(fx, "ringcentral/call-*/*.json")):
        source = "ringcentral_call" if "/call-" in path else "ringcentral_sms"
        out.append(envelope("itest:0123456789abcdef:%d" % (i + 1), source, 1795533668000 + i,
                            rc_headers, read(path)))
    push = os.path.join(fx, "gmail", "pubsub-push-request.txt")
    if os.path.exists(push):
        h, body = http_fixture(push)
        headers = {"authorization": h.get("authorization", ""), ":query": "token=abc&x=1",
                   "user-agent": h.get("user-agent", "")}
        out.append(envelope("itest:0123456789abcdef:99", "gmail_push", 1795533668999,
                            json.dumps(headers, separators=(",", ":")), body,
                            b"accepted", b"", b'{"communications":[]}'))
    return out


def seeds_envelope(fx):
    return sample_envelopes(fx)


def seeds_spool(fx):
    envs = sample_envelopes(fx)[:4] or [envelope("a:0123456789abcdef:1", "ringcentral_sms", 1,
                                                 "{}", b"{}")]
    recs = [record(1, i + 1, e) for i, e in enumerate(envs)]
    body = b"".join(recs)
    out = [
        bytes([0, 0, 0]) + body,                                 # as written
        bytes([1, 0, 0]) + body,                                 # CRCs fixed after mutation
        bytes([5, 0, 0]) + body,                                 # and every record acked
        bytes([1, 0, 0]) + recs[0] + acks(1) + b"".join(recs[1:]),  # an ack record inside
        bytes([3, 128, 10]) + body,                              # two segments
        bytes([0, 0, 0]) + body[:-7],                            # a torn tail
        bytes([0, 0, 0]) + recs[0] + b"\0" * 40,                 # zeroed tail (preallocated)
    ]
    return out


def seeds_map(fx):
    return [read(p) for p in fixture_files(fx, "ringcentral/*.json") +
            fixture_files(fx, "ringcentral/call-*/*.json")]


def _b64url_json(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def seeds_jwt(fx):
    out = []
    for path in fixture_files(fx, "google/tokens/*.jwt"):
        token = read(path).strip()
        out.append(b"\0Bearer " + token)
        parts = token.decode("ascii").split(".")
        if len(parts) == 3:
            try:
                out.append(b"\2" + _b64url_json(parts[0]) + b"\n" + _b64url_json(parts[1]))
            except ValueError:
                pass
    jwks = os.path.join(fx, "google", "test-jwks.json")
    if os.path.exists(jwks):
        out.append(b"\1" + read(jwks))
    return out


def seeds_pubsub(fx):
    out = [read(p) for p in fixture_files(fx, "gmail/pubsub-push*.json")]
    for body in list(out):
        data = json.loads(body)["message"]["data"]
        out.append(data.encode())
    # What the enricher reads next: history pages, the watch response's historyId.
    out += [read(p) for p in fixture_files(fx, "gmail/history-*.json") +
            fixture_files(fx, "gmail/watch-response.json")]
    return out


def seeds_mime(fx):
    return [read(p) for p in fixture_files(fx, "gmail/message-*.json") +
            fixture_files(fx, "gmail/attachment-get-response.json") +
            fixture_files(fx, "gmail/send-request.json")]


def seeds_phone(_fx):
    out = []
    tsv = os.path.join(HERE, "..", "tests", "data", "phone_cases.tsv")
    if os.path.exists(tsv):
        for line in read(tsv).split(b"\n"):
            if line and not line.startswith(b"#"):
                out.append(line.split(b"\t")[0])
    return out


GENERATORS = {"fuzz_spool": seeds_spool, "fuzz_envelope": seeds_envelope,
              "fuzz_map_ringcentral": seeds_map, "fuzz_jwt": seeds_jwt,
              "fuzz_pubsub": seeds_pubsub, "fuzz_mime": seeds_mime, "fuzz_phone": seeds_phone}


def build(target, outdir, fx):
    os.makedirs(outdir, exist_ok=True)
    seeds = GENERATORS[target](fx)
    hand = os.path.join(HERE, "seeds", target)
    for path in sorted(glob.glob(os.path.join(hand, "*"))):
        if os.path.isfile(path):
            seeds.append(read(path))
    for data in seeds:
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    return len(seeds)


def main(argv):
    fx = os.environ.get("SB_FIXTURES_DIR") or os.path.join(HERE, "..", "..", "shared", "fixtures")
    if "--fixtures" in argv:
        i = argv.index("--fixtures")
        if i + 1 >= len(argv):
            print("mkseeds: --fixtures needs a directory", file=sys.stderr)
            return 2
        fx = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) != 2 or (argv[0] != "--all" and argv[0] not in GENERATORS):
        print(__doc__, file=sys.stderr)
        return 2
    if not os.path.isdir(fx):
        print("mkseeds: no fixtures directory %s" % fx, file=sys.stderr)
        return 1
    target, outdir = argv
    if target == "--all":
        shutil.rmtree(outdir, ignore_errors=True)
        for t in TARGETS:
            n = build(t, os.path.join(outdir, t), fx)
            print("mkseeds: %s: %d seeds" % (t, n))
        return 0
    n = build(target, outdir, fx)
    print("mkseeds: %s: %d seeds in %s" % (target, n, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
