"""Self-test of promcheck.py (the exposition format checker that test_metrics_format runs
on every stage's /metrics): a valid document passes, and each kind of mistake it claims
to catch is caught, with the rule's own message. No processes, no database; when
promtool (Debian's prometheus package) is installed, it must agree that the valid
document parses and that the unparseable ones do not."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check  # noqa: E402
import promcheck  # noqa: E402

GOOD = r'''# HELP sb_events_in_total events received, with "quotes" and a \\ backslash\n2nd line
# TYPE sb_events_in_total counter
sb_events_in_total{source="ringcentral_sms"} 3
sb_events_in_total{source="a \"quoted\" \\ value\nwith a newline",} 4 1700000000000
# TYPE sb_spool_depth gauge
# HELP sb_spool_depth records in the spool
sb_spool_depth 0
# a plain comment
sb_temperature_celsius{room="x"} -12.5e-1
sb_temperature_celsius{room="y"} NaN
# HELP sb_commit_seconds time to store one batch
# TYPE sb_commit_seconds histogram
sb_commit_seconds_bucket{le="0.0005"} 0
sb_commit_seconds_bucket{le="0.001"} 2
sb_commit_seconds_bucket{le="+Inf"} 2
sb_commit_seconds_sum 0.0015
sb_commit_seconds_count 2
sb_commit_seconds_bucket{stage="b",le="1"} 1
sb_commit_seconds_bucket{stage="b",le="+Inf"} 1
sb_commit_seconds_sum{stage="b"} 0.5
sb_commit_seconds_count{stage="b"} 1
# HELP sb_rpc_seconds a summary
# TYPE sb_rpc_seconds summary
sb_rpc_seconds{quantile="0.5"} 0.01
sb_rpc_seconds{quantile="0.99"} +Inf
sb_rpc_seconds_sum 1
sb_rpc_seconds_count 3
'''

COUNTER = "# HELP c_total c\n# TYPE c_total counter\n"
HIST = "# HELP h h\n# TYPE h histogram\n"

# (why, text, a fragment of the expected error message, promtool's parser rejects it too).
# promtool 2.42 parses some real mistakes: a family split in two (the format says "one
# single group"), a series twice (a scrape fails with "duplicate sample"), a histogram
# bucket without le or sample without suffix.
BAD = [
    ("no final newline", "a 1", "does not end with a newline", False),
    ("metric name starting with a digit", "1a 1\n", "invalid metric name", True),
    ("label name with a dash", 'a{b-c="1"} 1\n', "expected '='", True),
    ("label name starting with a digit", 'a{1b="1"} 1\n', "invalid label name", True),
    ("reserved label name", 'a{__x="1"} 1\n', "reserved label name", False),
    ("label value without quotes", "a{b=1} 1\n", "not in double quotes", True),
    ("unknown escape in a label value", 'a{b="x\\t"} 1\n', "invalid escape", True),
    ("unterminated label value", 'a{b="x} 1\n', "unterminated label value", True),
    ("missing comma between labels", 'a{b="1" c="2"} 1\n', "expected ',' or '}'", True),
    ("label given twice", 'a{b="1",b="2"} 1\n', "given twice", True),
    ("no value", "a\n", "expected a blank and a value", True),
    ("no value after labels", 'a{b="1"}\n', "expected a blank and a value", True),
    ("value with a comma", "a 1,5\n", "invalid value", True),
    ("value that is a word", "a one\n", "invalid value", True),
    ("value with digit separators", "a 1_000\n", "invalid value", False),
    ("fractional timestamp", "a 1 1.5\n", "invalid timestamp", True),
    ("three tokens after the name", "a 1 2 3\n", "optional timestamp", True),
    ("carriage return line end", "a 1\r\n", "carriage return", True),
    ("HELP twice", "# HELP a x\n# HELP a y\na 1\n", "second HELP", True),
    ("TYPE twice", "# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE", True),
    ("TYPE after the samples", "a 1\n# TYPE a gauge\n", "after its samples", True),
    ("HELP after the samples", "a 1\n# HELP a x\n", "after its samples", False),
    ("unknown TYPE", "# TYPE a countr\na 1\n", "invalid TYPE", True),
    ("unknown escape in HELP", "# HELP a tab\\there\na 1\n", "invalid escape in HELP", True),
    ("family split by another", '# TYPE a gauge\na{x="1"} 1\n# TYPE b gauge\nb 1\n'
     'a{x="2"} 2\n', "not together", False),
    ("same series twice", "a 1\na 2\n", "duplicate series", False),
    ("same series, labels reordered", 'a{x="1",y="2"} 1\na{y="2",x="1"} 1\n',
     "duplicate series", False),
    ("counter without _total", "# TYPE requests counter\nrequests 1\n",
     "does not end in _total", False),
    ("negative counter", COUNTER + "c_total -1\n", "negative", False),
    ("histogram bounds not increasing", HIST + 'h_bucket{le="1"} 1\nh_bucket{le="0.5"} 1\n'
     'h_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', "do not increase", False),
    ("histogram counts decreasing", HIST + 'h_bucket{le="0.5"} 2\nh_bucket{le="1"} 1\n'
     'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n', "decrease", False),
    ("histogram without +Inf", HIST + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
     'no le="+Inf" bucket', False),
    ("+Inf bucket differs from _count", HIST + 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
     'h_sum 1\nh_count 3\n', "differs from its +Inf bucket", False),
    ("histogram without _sum", HIST + 'h_bucket{le="+Inf"} 1\nh_count 1\n', "has no _sum",
     False),
    ("histogram without _count", HIST + 'h_bucket{le="+Inf"} 1\nh_sum 1\n', "has no _count",
     False),
    ("bucket without le", HIST + 'h_bucket 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
     "without a le label", False),
    ("le that is not a number", HIST + 'h_bucket{le="big"} 1\nh_bucket{le="+Inf"} 1\nh_sum '
     '1\nh_count 1\n', "is not a number", True),
    ("histogram sample without a suffix", HIST + "h 1\n", "without a _bucket", False),
    ("quantile above 1", "# TYPE s summary\ns{quantile=\"1.5\"} 1\ns_sum 1\ns_count 1\n",
     "not in [0, 1]", False),
    ("invalid UTF-8", b"a{b=\"\xff\"} 1\n", "not UTF-8", False),
]


def test_valid_document_passes(ctx):
    errors, warnings = promcheck.check(GOOD)
    check(not errors, "errors on a valid document:\n  %s", "\n  ".join(map(str, errors)))
    # The one family without HELP is reported as a warning, not an error.
    check([w.message for w in warnings] == ["sb_temperature_celsius has no HELP"],
          "warnings: %r", warnings)


def test_each_mistake_is_caught(ctx):
    missed = []
    for why, text, want, _promtool in BAD:
        errors, _w = promcheck.check(text)
        if not any(want in str(e) for e in errors):
            missed.append("%s: want %r, got %r" % (why, want, [str(e) for e in errors]))
    check(not missed, "%d of %d mistakes not caught as expected:\n  %s", len(missed), len(BAD),
          "\n  ".join(missed))


def test_errors_name_the_line(ctx):
    errors, _w = promcheck.check("a 1\nb 2\nc{x=1} 3\n")
    check(len(errors) == 1 and errors[0].lineno == 3 and errors[0].line == "c{x=1} 3",
          "errors: %r", errors)
    check("line 3:" in str(errors[0]) and "c{x=1} 3" in str(errors[0]), "text: %s", errors[0])


def test_counter_suffix_can_be_a_warning(ctx):
    errors, warnings = promcheck.check("# TYPE requests counter\nrequests 1\n",
                                       counter_total_error=False)
    check(not errors and any("_total" in w.message for w in warnings), "%r %r", errors,
          warnings)


def promtool_parses(text):
    """True/False: promtool check metrics could parse text (lint findings are not parse
    errors); None without promtool."""
    tool = shutil.which("promtool")
    if tool is None:
        return None
    data = text if isinstance(text, bytes) else text.encode()
    p = subprocess.run([tool, "check", "metrics"], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    # Exit status 1 and "error while linting: text format parsing error ..." when it cannot
    # parse; 3 for lint findings only ("no help text", ...); 0 when clean.
    out = p.stdout.decode("utf-8", "replace")
    return p.returncode in (0, 3) and "error while linting" not in out


def test_promtool_agrees(ctx):
    if shutil.which("promtool") is None:
        print("  promtool is not installed (apt-get install prometheus): skipped")
        return
    check(promtool_parses(GOOD), "promtool cannot parse the valid document")
    disagree = [why for why, text, _want, rejects in BAD if rejects and promtool_parses(text)]
    check(not disagree, "promtool parses what promcheck calls unparseable: %r", disagree)


if __name__ == "__main__":
    harness.run([test_valid_document_passes, test_each_mistake_is_caught,
                 test_errors_name_the_line, test_counter_suffix_can_be_a_warning,
                 test_promtool_agrees])
