"""compose.yaml and the Dockerfile, for real where a Docker engine is available.

1. `docker-compose config` validates compose.yaml (with and without the monitoring
   profile) against an env file made from .env.example, and the topology endpoints are
   what docs/topology.md says.
2. Live, when the engine answers and the base images of scripts/build-base-images exist
   (or SB_DOCKER_BUILD=1, when the ordinary Debian and postgres images can be pulled):
   build the image, `up -d --scale writer=2` under a private project name and host port,
   post the RingCentral SMS fixture with the token from the env file, find its rows in
   PostgreSQL (psql inside the postgres container), post more SMS and check that both
   writer replicas did a share (their /metrics), then `down -v`.
Otherwise the live part says why it is skipped. Standard library only; every step has a
timeout; the only networks and volumes are the ones compose creates for the project.
Environment: SB_DOCKER_BUILD=1 (build on the ordinary bases), SB_DOCKER_KEEP=1 (leave the
project running for a look), SB_FIXTURES_DIR, SB_SOURCE_DIR.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SB_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES_DIR = os.environ.get("SB_FIXTURES_DIR") or os.path.abspath(
    os.path.join(SOURCE_DIR, "..", "shared", "fixtures"))

BASE_IMAGES = {
    "SB_BUILD_BASE": "switchboard/base-build:bookworm",
    "SB_RUNTIME_BASE": "switchboard/base-runtime:bookworm",
    "POSTGRES_IMAGE": "switchboard/postgres:15",
}
TEST_IMAGE = "switchboard/switchboard:compose-test"
SMS_PATH = "/api/webhooks/ringcentral/sms"
HEALTH_PATH = "/api/webhooks/health"
EXTRA_SMS = 19  # after the fixture itself: enough for both writers to get a share

BUILD_TIMEOUT = 900
UP_TIMEOUT = 300
STEP_TIMEOUT = 60


class Skip(Exception):
    pass


class Failure(AssertionError):
    pass


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


def say(fmt, *args):
    print("test_compose: " + (fmt % args if args else fmt), flush=True)


def run(cmd, timeout=STEP_TIMEOUT, env=None, check_rc=True, quiet=False):
    """Run cmd (a list); return CompletedProcess. Raises Failure on timeout or rc != 0."""
    if not quiet:
        say("$ %s", " ".join(cmd))
    try:
        cp = subprocess.run(cmd, cwd=SOURCE_DIR, env=env, capture_output=True, text=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("timed out after %d s: %s" % (timeout, " ".join(cmd)))
    if check_rc and cp.returncode != 0:
        raise Failure("exit %d: %s\n%s%s" % (cp.returncode, " ".join(cmd), cp.stdout[-3000:],
                                             cp.stderr[-3000:]))
    return cp


def compose_command():
    """`docker compose` (v2 plugin) if it works, else docker-compose (v1, Debian's)."""
    if shutil.which("docker"):
        try:
            cp = subprocess.run(["docker", "compose", "version"], capture_output=True,
                                text=True, timeout=20)
            if cp.returncode == 0:
                return ["docker", "compose"]
        except subprocess.TimeoutExpired:
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def verification_token():
    """The token the RingCentral fixtures carry (notification-request-headers.txt)."""
    path = os.path.join(FIXTURES_DIR, "ringcentral", "notification-request-headers.txt")
    with open(path, "rb") as f:
        for line in f.read().decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "verification-token":
                return value.strip()
    raise Failure("no Verification-Token in %s" % path)


def write_env_file(path, extra):
    """.env.example with its placeholders replaced by test values, plus extra settings."""
    with open(os.path.join(SOURCE_DIR, ".env.example")) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        name = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        if name is not None and name in extra:
            continue
        out.append(line)
    out += ["%s=%s" % (k, v) for k, v in extra.items()]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def read_env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                values[k] = v
    return values


class Project:
    def __init__(self, compose, tmp, extra_env):
        self.compose = compose
        self.name = "sbtest%d" % os.getpid()
        self.env_file = os.path.join(tmp, "test.env")
        write_env_file(self.env_file, extra_env)
        self.values = read_env_file(self.env_file)
        self.env = dict(os.environ)
        self.env["SB_ENV_FILE"] = self.env_file
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        self.env.pop("COMPOSE_FILE", None)

    def cmd(self, *args, profile=None):
        base = self.compose + ["--env-file", self.env_file, "-f",
                               os.path.join(SOURCE_DIR, "compose.yaml"), "-p", self.name]
        if profile:
            base += ["--profile", profile]
        return base + list(args)

    def run(self, *args, timeout=STEP_TIMEOUT, profile=None, check_rc=True, quiet=False):
        return run(self.cmd(*args, profile=profile), timeout=timeout, env=self.env,
                   check_rc=check_rc, quiet=quiet)

    def psql(self, sql):
        user = self.values.get("POSTGRES_USER", "switchboard")
        db = self.values.get("POSTGRES_DB", "switchboard")
        cp = self.run("exec", "-T", "postgres", "psql", "-X", "-q", "-At", "-U", user, "-d", db,
                      "-c", sql, quiet=True, check_rc=False)
        return cp.returncode, cp.stdout.strip(), cp.stderr.strip()


# ---------------------------------------------------------------------------------------
# 1. static: docker-compose config


def test_config(compose, tmp):
    p = Project(compose, tmp, {"POSTGRES_PASSWORD": "config-test-password",
                               "RINGCENTRAL_VERIFICATION_TOKEN": "config-test-token"})
    p.run("config", "-q")
    services = set(p.run("config", "--services").stdout.split())
    check({"postgres", "ingress", "verifier", "enricher", "writer"} <= services,
          "services: %s", sorted(services))
    p.run("config", "-q", profile="monitoring")
    text = p.run("config").stdout
    for want in ["INGRESS_PUSH_ENDPOINT: '>tcp://verifier:5557'",
                 "VERIFIER_PULL_ENDPOINT: '@tcp://*:5557'",
                 "VERIFIER_PUSH_ENDPOINT: '>tcp://enricher:5560'",
                 "ENRICHER_PULL_ENDPOINT: '@tcp://*:5560'",
                 "ENRICHER_PUSH_ENDPOINT: '>tcp://writer:5558'",
                 "WRITER_PULL_ENDPOINT: '@tcp://*:5558'",
                 "ACK_ENDPOINT: '>tcp://ingress:5559'",
                 "INGRESS_ACK_ENDPOINT: '@tcp://*:5559'",
                 "RINGCENTRAL_VERIFICATION_TOKEN: config-test-token",
                 "condition: service_healthy",
                 "postgresql://switchboard:config-test-password@postgres:5432/switchboard"]:
        check(want in text, "compose config lacks %r:\n%s", want, text)
    # Without POSTGRES_PASSWORD compose must refuse, not start a database with no password.
    env = dict(p.env)
    bare = os.path.join(tmp, "bare.env")
    with open(bare, "w") as f:
        f.write("LOG_LEVEL=info\n")
    env["SB_ENV_FILE"] = bare
    cp = run(compose + ["--env-file", bare, "-f", os.path.join(SOURCE_DIR, "compose.yaml"),
                        "config", "-q"], env=env, check_rc=False)
    check(cp.returncode != 0 and "POSTGRES_PASSWORD" in cp.stderr,
          "config without POSTGRES_PASSWORD: rc %d, %s", cp.returncode, cp.stderr)


# ---------------------------------------------------------------------------------------
# 2. live: build, up --scale writer=2, post, check rows and the replicas' shares


def image_exists(name):
    cp = subprocess.run(["docker", "image", "inspect", name], capture_output=True, timeout=30)
    return cp.returncode == 0


def live_settings():
    """Extra env-file settings for the live run, or raise Skip with the reason."""
    if not shutil.which("docker"):
        raise Skip("no docker CLI")
    try:
        cp = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise Skip("the Docker engine does not answer (docker info timed out)")
    if cp.returncode != 0:
        raise Skip("no usable Docker engine (docker info: %s)" % cp.stderr.strip()[:200])
    have = {k: v for k, v in BASE_IMAGES.items() if image_exists(v)}
    if len(have) != len(BASE_IMAGES) and os.environ.get("SB_DOCKER_BUILD") != "1":
        missing = sorted(set(BASE_IMAGES.values()) - set(have.values()))
        raise Skip("base images missing (%s): run `sudo scripts/build-base-images`, or set "
                   "SB_DOCKER_BUILD=1 where debian:bookworm and postgres:15 can be pulled"
                   % ", ".join(missing))
    return have


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, headers=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(what, timeout, fn, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise Failure("timed out after %d s waiting for %s (last: %r)" % (timeout, what, last))


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})?\s+([0-9.eE+-]+)" % re.escape(name), line)
        if m:
            total += float(m.group(2))
    return total


def sms_variant(fixture, n):
    """The fixture with another message id and uuid: one more communication."""
    doc = json.loads(fixture)
    doc["uuid"] = "%s%03d" % (doc["uuid"][:-3], n)
    doc["body"]["id"] = "9%012d" % n
    doc["body"]["subject"] = "compose test message %d" % n
    return json.dumps(doc).encode()


def live(compose, tmp, have):
    port = free_port()
    token = verification_token()
    extra = {"POSTGRES_PASSWORD": "pw" + secrets.token_hex(12),
             "RINGCENTRAL_VERIFICATION_TOKEN": token,
             "INGRESS_PUBLISH": "127.0.0.1:%d" % port,
             "SB_IMAGE": TEST_IMAGE,
             "LOG_LEVEL": "info"}
    extra.update(have)
    p = Project(compose, tmp, extra)
    say("live run: project %s, ingress on 127.0.0.1:%d, bases %s", p.name, port,
        ", ".join(sorted(have.values())) or "the ordinary Debian images")
    try:
        t0 = time.monotonic()
        p.run("build", "ingress", timeout=BUILD_TIMEOUT)
        say("image built in %.0f s", time.monotonic() - t0)
        p.run("up", "-d", "--no-build", "--scale", "writer=2", timeout=UP_TIMEOUT)
        live_checks(p, port, token)
    except BaseException:
        cp = p.run("logs", "--no-color", "--tail=40", check_rc=False, quiet=True, timeout=60)
        print(cp.stdout[-12000:], file=sys.stderr)
        raise
    finally:
        if os.environ.get("SB_DOCKER_KEEP") == "1":
            say("SB_DOCKER_KEEP=1: leaving project %s up (%s)", p.name,
                " ".join(p.cmd("down", "-v")))
        else:
            p.run("down", "-v", "--remove-orphans", "-t", "20", timeout=180, check_rc=False)


def live_checks(p, port, token):
    writers = p.run("ps", "-q", "writer", quiet=True).stdout.split()
    check(len(writers) == 2, "writer replicas: %r", writers)

    def healthy():
        status, body = http(port, "GET", HEALTH_PATH, timeout=5)
        return status == 200 and body
    health = wait_until("ingress health 200 (every stage connected, database up)", 180, healthy,
                        interval=1)
    say("health: %s", health.decode(errors="replace")[:300])

    with open(os.path.join(FIXTURES_DIR, "ringcentral", "sms-inbound.json"), "rb") as f:
        fixture = f.read()
    headers = {"Content-Type": "application/json", "Verification-Token": token}
    status, body = http(port, "POST", SMS_PATH, fixture, headers)
    check(status == 200, "POST fixture: %d %r", status, body)

    def stored():
        rc, out, err = p.psql("SELECT c.channel, c.direction, c.from_address, c.body, e.outcome "
                              "FROM communications c JOIN webhook_events e "
                              "ON e.communication_id = c.id "
                              "WHERE c.provider = 'ringcentral' AND c.external_id = '3062991514017'")
        return out if rc == 0 and out else None
    row = wait_until("the fixture's row in communications", 60, stored, interval=1)
    say("stored: %s", row)
    fields = row.split("|")
    check(fields[0] == "sms" and fields[1] == "inbound", "row: %s", row)
    check(fields[2] == "+14155550134", "from_address: %s", row)
    check(fields[3].startswith("Hi, this is Maria Lopez"), "body: %s", row)
    check(fields[4] == "stored", "outcome: %s", row)

    # More SMS: exactly once each, and both writer replicas must take a share.
    for n in range(EXTRA_SMS):
        status, body = http(port, "POST", SMS_PATH, sms_variant(fixture, n), headers)
        check(status == 200, "POST variant %d: %d %r", n, status, body)

    def all_stored():
        rc, out, _ = p.psql("SELECT count(*), count(DISTINCT external_id) FROM communications "
                            "WHERE provider = 'ringcentral' AND channel = 'sms'")
        return out if rc == 0 and out == "%d|%d" % (EXTRA_SMS + 1, EXTRA_SMS + 1) else None
    wait_until("%d communications" % (EXTRA_SMS + 1), 60, all_stored, interval=1)
    rc, out, err = p.psql("SELECT count(*) FROM webhook_events")
    check(rc == 0 and out == str(EXTRA_SMS + 1), "webhook_events rows: %s %s", out, err)

    shares = []
    for index in (1, 2):
        cp = p.run("exec", "-T", "--index=%d" % index, "writer", "curl", "-s", "--max-time", "5",
                   "http://127.0.0.1:9104/metrics", quiet=True)
        shares.append(metric_sum(cp.stdout, "sb_events_in_total"))
    say("events per writer replica: %s", shares)
    check(sum(shares) >= EXTRA_SMS + 1, "writers saw %s events in all", shares)
    check(all(s > 0 for s in shares),
          "one writer replica got no events (%s): the verifier is connected to one writer "
          "only; it must use sb_resolver for VERIFIER_PUSH_ENDPOINT (docs/compose.md)", shares)

    # The container's own health check agrees (curl on each stage's health endpoint).
    def containers_healthy():
        ids = p.run("ps", "-q", quiet=True).stdout.split()
        states = run(["docker", "inspect", "-f", "{{.Name}} {{.State.Health.Status}}"] + ids,
                     quiet=True).stdout.split("\n")
        states = [s for s in states if s.strip()]
        return states if all(s.endswith(" healthy") for s in states) else None
    states = wait_until("every container healthy", 90, containers_healthy, interval=2)
    say("containers: %s", ", ".join(s.strip() for s in states))


# ---------------------------------------------------------------------------------------


def main():
    passed = failed = skipped = 0
    compose = compose_command()
    if compose is None:
        say("SKIPPED: neither `docker compose` nor docker-compose is installed "
            "(apt-get install docker-compose)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    tmp = tempfile.mkdtemp(prefix="sb-compose-test-")
    try:
        for name, fn in (("config", lambda: test_config(compose, tmp)),
                         ("live", lambda: live(compose, tmp, live_settings()))):
            t0 = time.monotonic()
            try:
                fn()
                passed += 1
                print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            except Skip as e:
                skipped += 1
                print("SKIP %s: %s" % (name, e), flush=True)
            except Exception as e:  # noqa: BLE001 - report and go on
                failed += 1
                print("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
