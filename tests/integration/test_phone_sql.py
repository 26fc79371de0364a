#!/usr/bin/python3
"""test_phone_sql - the SQL twins in writer/migrations/0001_normalise.sql give what the C
code gives: sb_e164() for every row of tests/data/phone_cases.tsv (the table
tests/unit/test_phone.c checks sb_phone_e164() against) and sb_email_norm() for the
e-mail cases of test_phone.c.

Self-contained: it starts its own throwaway PostgreSQL (initdb in a temporary directory,
as the postgres user when run as root, unix socket only) and removes it at the end, even
on failure. Environment: SB_SOURCE_DIR, the repository root (default: two levels up).
Prints "N passed, M failed" and exits non-zero on any failure."""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import psycopg2

SOURCE_DIR = os.environ.get("SB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
MIGRATION = os.path.join(SOURCE_DIR, "writer", "migrations", "0001_normalise.sql")
PHONE_CASES = os.path.join(SOURCE_DIR, "tests", "data", "phone_cases.tsv")
MIN_PHONE_ROWS = 25

# The same cases as email_cases[] in tests/unit/test_phone.c (None: no valid address).
EMAIL_CASES = [
    ("Name <Addr@Example.COM>", "addr@example.com"),
    ("addr@example.com", "addr@example.com"),
    ("  Addr@Example.com \t", "addr@example.com"),
    ("<Addr@Example.com>", "addr@example.com"),
    ("Name < Addr@Example.com >", "addr@example.com"),
    ("Dana Whitfield <dana.whitfield@example.com>", "dana.whitfield@example.com"),
    ("\"O'Neil, Sam\" <billing@example.net>", "billing@example.net"),
    ("\"a <b@c.com>\" <real@example.com>", "real@example.com"),
    ("Name <a@example.com> (work)", "a@example.com"),
    ("first.last+tag@sub.Example.org", "first.last+tag@sub.example.org"),
    ("\u00dcSER@Example.com", "\u00dcser@example.com"),
    ("", None),
    ("   ", None),
    ("no-at-sign", None),
    ("a@b@example.com", None),
    ("@example.com", None),
    ("addr@", None),
    ("Name <>", None),
    ("Name <addr@example.com", None),
    ("first last@example.com", None),
    ("Name addr@example.com", None),
    ("undisclosed-recipients:;", None),
    ("a,b@example.com", None),
    ("\"quoted\"@example.com", None),
    ("a" * 242 + "@example.com", "a" * 242 + "@example.com"),  # 254 bytes: the limit
    ("a" * 243 + "@example.com", None),
]


def pg_bindir():
    """Directory of initdb and pg_ctl: pg_config's, else the newest Debian one."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if os.path.exists(os.path.join(out, "initdb")):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    if not dirs:
        sys.exit("cannot find initdb (install postgresql)")
    return dirs[-1]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """initdb + pg_ctl start in a fresh temporary directory; stop() removes it all."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.tmp = tempfile.mkdtemp(prefix="sb_phone_sql_")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.started = False
        self.user = None
        if os.geteuid() == 0:  # initdb refuses root: hand the directory to postgres
            self.user = pwd.getpwnam("postgres")
            os.chown(self.tmp, self.user.pw_uid, self.user.pw_gid)

    def _run(self, args):
        def demote():
            if self.user is not None:
                os.setgid(self.user.pw_gid)
                os.setgroups([])
                os.setuid(self.user.pw_uid)
        return subprocess.run(args, cwd=self.tmp, preexec_fn=demote, capture_output=True,
                              text=True)

    def start(self):
        r = self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                       "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout + r.stderr)
        opts = (f"-k {self.tmp} -p {self.port} -c listen_addresses='' -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off")
        r = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l",
                       os.path.join(self.tmp, "postgres.log"), "-w", "-t", "60", "-o", opts,
                       "start"])
        self.started = True  # even a failed start may leave a postmaster behind
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed:\n" + r.stdout + r.stderr + self.log())

    def log(self):
        try:
            with open(os.path.join(self.tmp, "postgres.log"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connect(self):
        return psycopg2.connect(host=self.tmp, port=self.port, user="postgres",
                                dbname="postgres")

    def stop(self):
        if self.started:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m",
                       "immediate", "-w", "stop"])
            self.started = False
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_phone_cases():
    """Rows (line, input, default_cc, expected or None). Split on "\\n" only:
    str.splitlines() would also split inside an input at \\v, \\f or U+2028."""
    rows = []
    with open(PHONE_CASES, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f.read().split("\n"), 1):
            line = line.rstrip("\r")
            if line == "" or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise ValueError(f"{PHONE_CASES}:{lineno}: want input<TAB>default_cc<TAB>expected")
            rows.append((lineno, fields[0], fields[1], fields[2] or None))
    return rows


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what)


def run_checks(cur, res):
    with open(MIGRATION, encoding="utf-8") as f:
        sql = f.read()
    cur.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
    before = cur.fetchone()[0]
    cur.execute(sql)
    cur.execute(sql)  # every migration must be idempotent on its own
    cur.execute("SELECT proname, provolatile, proparallel, pronargs FROM pg_proc "
                "WHERE pronamespace = 'public'::regnamespace ORDER BY proname")
    procs = cur.fetchall()
    res.check(len(procs) == before + 2, f"0001 defines exactly two functions: {procs}")
    res.check(procs == [("sb_e164", "i", "s", 2), ("sb_email_norm", "i", "s", 1)],
              f"sb_e164/sb_email_norm are IMMUTABLE PARALLEL SAFE: {procs}")

    rows = read_phone_cases()
    res.check(len(rows) >= MIN_PHONE_ROWS, f"{len(rows)} phone rows, want >= {MIN_PHONE_ROWS}")
    for lineno, phone, cc, want in rows:
        cur.execute("SELECT sb_e164(%s, %s)", (phone, cc))
        got = cur.fetchone()[0]
        res.check(got == want, f"phone_cases.tsv:{lineno}: sb_e164({phone!r}, {cc!r}) = "
                               f"{got!r}, want {want!r}")

    for addr, want in EMAIL_CASES:
        cur.execute("SELECT sb_email_norm(%s)", (addr,))
        got = cur.fetchone()[0]
        res.check(got == want, f"sb_email_norm({addr!r}) = {got!r}, want {want!r}")

    cur.execute("SELECT sb_e164(NULL, '1'), sb_e164('4155550123', NULL), sb_email_norm(NULL)")
    res.check(cur.fetchone() == (None, None, None), "NULL in, NULL out")

    # The functions must be usable where the writer uses them: in an index expression.
    cur.execute("CREATE TEMP TABLE t (phone text, email text)")
    cur.execute("CREATE INDEX ON t (sb_e164(phone, '1'))")
    cur.execute("CREATE INDEX ON t (sb_email_norm(email))")
    cur.execute("INSERT INTO t VALUES ('(415) 555-0123', 'Dana <Dana@Example.com>')")
    cur.execute("SELECT count(*) FROM t WHERE sb_e164(phone, '1') = '+14155550123' "
                "AND sb_email_norm(email) = 'dana@example.com'")
    res.check(cur.fetchone()[0] == 1, "index expressions over both functions match")


def main():
    # ctest and a terminal send SIGTERM/SIGINT: unwind so the server is stopped and removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    res = Results()
    pg = ThrowawayPostgres()
    try:
        pg.start()
        conn = pg.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                run_checks(cur, res)
        finally:
            conn.close()
    except Exception as e:  # report, count, and still clean up below
        res.check(False, f"{type(e).__name__}: {e}")
    finally:
        pg.stop()
    print(f"{res.passed} passed, {res.failed} failed")
    return 0 if res.failed == 0 and res.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
