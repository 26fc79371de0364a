#!/usr/bin/env python3
"""promcheck - a strict checker of the Prometheus text exposition format 0.0.4.

What every stage serves on GET /metrics must parse in Prometheus and mean what it says.
This checks, line by line (standard library only):

  syntax     metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
             (not "__..."), label values in double quotes with only \\\\, \\" and \\n escapes,
             no label twice in a sample, values that parse as floats (decimal, or NaN,
             +Inf, -Inf as Go reads them; not hex, not "1_000"), an optional integer
             timestamp, UTF-8,
             "\\n" line ends and a final newline
  metadata   "# HELP name text" (escapes \\\\ and \\n only) and "# TYPE name type" with type
             counter, gauge, histogram, summary or untyped, each at most once per family
             and before the family's first sample
  families   the samples of a family are contiguous; no series (name and label set) twice
  counters   values >= 0; the name ends in _total (an ERROR here, not a warning: every
             counter of this project follows the convention, so a miss is a mistake)
  histograms every label set has _bucket samples with an "le" label whose bounds
             increase and whose counts never decrease, an le="+Inf" bucket equal to
             _count, and _sum and _count
  summaries  quantile labels in [0, 1], _sum and _count present
Warnings (reported, not failures): counters or gauges named like the parts of a
histogram (_bucket, _sum, _count), a gauge named *_total, a family with no HELP.

  from promcheck import check
  errors, warnings = check(text)   # lists of Problem(line number, line, message)

Command line: promcheck.py FILE|URL...  (prints every problem, exit 1 on errors).
"""

import math
import re
import sys
import urllib.request

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
SPECIAL = re.compile(r"(?i)(?:nan|[+-]?inf(?:inity)?)$")
TIMESTAMP = re.compile(r"-?[0-9]+$")
# "# HELP name text" / "# TYPE name type"; any other line starting with # is a comment.
META = re.compile(r"#[ \t]*(HELP|TYPE)(?:[ \t]+(\S+)(?:[ \t]+(.*))?)?[ \t]*$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


class Problem:
    def __init__(self, lineno, line, message):
        self.lineno = lineno  # 1-based; 0 for the document as a whole
        self.line = line
        self.message = message

    def __str__(self):
        if self.lineno == 0:
            return self.message
        if not self.line:
            return "line %d: %s" % (self.lineno, self.message)
        return "line %d: %s: %r" % (self.lineno, self.message, self.line)

    __repr__ = __str__


class _Family:
    def __init__(self, name):
        self.name = name
        self.type = None  # declared type, or None (untyped)
        self.help_line = 0
        self.type_line = 0
        self.first_sample = 0
        self.closed = False  # another family came after its samples
        # histogram/summary: label set without le/quantile -> {"buckets": [(le, count,
        # lineno)], "sum": value, "count": value, "quantiles": [...]}
        self.groups = {}


def parse_float(text):
    """Prometheus value -> float, or None. Decimal floats, and the special values Go's
    strconv.ParseFloat reads (NaN, +Inf, -Inf, Inf, Infinity; any case)."""
    if FLOAT.match(text) or SPECIAL.match(text):
        return float(text)
    return None


def _unescape(text, allowed):
    """Undo backslash escapes; None when one is not in allowed ({char: replacement})."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                return None
            out.append(allowed[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _skip_blanks(s, i):
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def parse_sample(line):
    """'name{a="b"} 1 123' -> (name, [(label, value)], value text, timestamp text or None).
    Raises ValueError with the reason."""
    m = METRIC_NAME.match(line)
    if not m:
        raise ValueError("invalid metric name")
    name, i = m.group(0), m.end()
    labels = []
    if line[_skip_blanks(line, i):].startswith("{"):
        i = _skip_blanks(line, _skip_blanks(line, i) + 1)
        while True:
            if i < len(line) and line[i] == "}":
                i += 1
                break
            lm = LABEL_NAME.match(line, i)
            if not lm:
                raise ValueError("invalid label name at column %d" % (i + 1))
            i = _skip_blanks(line, lm.end())
            if i >= len(line) or line[i] != "=":
                raise ValueError("expected '=' after label %r" % lm.group(0))
            i = _skip_blanks(line, i + 1)
            if i >= len(line) or line[i] != '"':
                raise ValueError("label value of %r is not in double quotes" % lm.group(0))
            j, raw = i + 1, []
            while j < len(line) and line[j] != '"':
                if line[j] == "\\":
                    raw.append(line[j:j + 2])
                    j += 2
                else:
                    raw.append(line[j])
                    j += 1
            if j >= len(line):
                raise ValueError("unterminated label value of %r" % lm.group(0))
            value = _unescape("".join(raw), {"\\": "\\", '"': '"', "n": "\n"})
            if value is None:
                raise ValueError("invalid escape in the label value of %r (only \\\\, \\\" "
                                 "and \\n)" % lm.group(0))
            labels.append((lm.group(0), value))
            i = _skip_blanks(line, j + 1)
            if i < len(line) and line[i] == ",":
                i = _skip_blanks(line, i + 1)
            elif i < len(line) and line[i] != "}":
                raise ValueError("expected ',' or '}' after the value of %r" % lm.group(0))
    rest = line[i:]
    if not rest or rest[0] not in " \t":
        raise ValueError("expected a blank and a value after the name and labels")
    parts = rest.split()
    if len(parts) not in (1, 2):
        raise ValueError("expected a value and an optional timestamp, got %r" % rest.strip())
    return name, labels, parts[0], parts[1] if len(parts) == 2 else None


def check(text, counter_total_error=True):
    """-> (errors, warnings): lists of Problem, errors in line order. text: str or bytes
    (UTF-8). counter_total_error=False makes a counter without _total a warning."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            return [Problem(0, "", "not UTF-8: %s" % e)], []
    c = _Checker(counter_total_error)
    if text and not text.endswith("\n"):
        c.err(0, "", "the exposition does not end with a newline")
    c.lines = text.split("\n")
    if c.lines and c.lines[-1] == "":
        c.lines.pop()
    for lineno, line in enumerate(c.lines, 1):
        if "\r" in line:
            c.err(lineno, line, "carriage return in the line (lines end with \\n only)")
        elif line.startswith("#"):
            m = META.match(line)
            if m:  # else a plain comment
                c.metadata(lineno, line, m.group(1), m.group(2) or "", m.group(3) or "")
        elif line.strip():
            c.sample(lineno, line)
    c.finish()
    c.errors.sort(key=lambda p: p.lineno)
    return c.errors, c.warnings


class _Checker:
    """The state of one check(): families seen, series seen, the family being read."""

    def __init__(self, counter_total_error):
        self.counter_total_error = counter_total_error
        self.errors, self.warnings = [], []
        self.lines = []
        self.families = {}  # name -> _Family
        self.series = {}  # (sample name, sorted labels) -> line of its first sample
        self.current = None  # the family whose samples or metadata came last

    def err(self, lineno, line, msg):
        self.errors.append(Problem(lineno, line, msg))

    def warn(self, lineno, line, msg):
        self.warnings.append(Problem(lineno, line, msg))

    def family(self, name):
        f = self.families.get(name)
        if f is None:
            f = self.families[name] = _Family(name)
        return f

    def enter(self, f, lineno, line):
        """f's line comes now: the family read before it is over, if it had samples."""
        if self.current is not None and self.current is not f and self.current.first_sample:
            self.current.closed = True
        if f.closed:
            self.err(lineno, line, "samples of %s are not together: the family appeared "
                     "earlier, before other families" % f.name)
            f.closed = False  # report it once
        self.current = f

    def metadata(self, lineno, line, kind, name, doc):
        if not METRIC_NAME.fullmatch(name):
            self.err(lineno, line, "invalid metric name %r in %s" % (name, kind))
            return
        f = self.family(name)
        if f.first_sample:
            self.err(lineno, line, "%s of %s after its samples" % (kind, name))
        self.enter(f, lineno, line)
        if kind == "HELP":
            if f.help_line:
                self.err(lineno, line, "second HELP of %s (first on line %d)" % (
                    name, f.help_line))
            f.help_line = f.help_line or lineno
            if _unescape(doc, {"\\": "\\", "n": "\n"}) is None:
                self.err(lineno, line, "invalid escape in HELP (only \\\\ and \\n)")
            return
        value = doc.strip()
        if f.type_line:
            self.err(lineno, line, "second TYPE of %s (first on line %d)" % (name, f.type_line))
        elif value not in TYPES:
            self.err(lineno, line, "invalid TYPE %r (want one of %s)" % (value, ", ".join(TYPES)))
        else:
            f.type, f.type_line = value, lineno
            self.name_rules(lineno, line, value, name)

    def name_rules(self, lineno, line, type_, name):
        if type_ == "counter" and not name.endswith("_total"):
            (self.err if self.counter_total_error else self.warn)(
                lineno, line, "counter %s does not end in _total" % name)
        if type_ in ("counter", "gauge") and name.endswith(("_bucket", "_sum", "_count")):
            self.warn(lineno, line, "%s %s is named like a part of a histogram" % (type_, name))
        if type_ == "gauge" and name.endswith("_total"):
            self.warn(lineno, line, "gauge %s is named like a counter" % name)

    def sample(self, lineno, line):
        try:
            name, labels, value_text, ts = parse_sample(line)
        except ValueError as e:
            self.err(lineno, line, str(e))
            return
        value = parse_float(value_text)
        if value is None:
            self.err(lineno, line, "invalid value %r" % value_text)
            return
        if ts is not None and not TIMESTAMP.match(ts):
            self.err(lineno, line, "invalid timestamp %r (want integer milliseconds)" % ts)
        names = [k for k, _v in labels]
        dup = sorted({k for k in names if names.count(k) > 1})
        if dup:
            self.err(lineno, line, "label %s given twice" % ", ".join(dup))
        reserved = [k for k in names if k.startswith("__")]
        if reserved:
            self.err(lineno, line, "reserved label name %s" % ", ".join(reserved))
        key = (name, tuple(sorted(labels)))
        if key in self.series:
            self.err(lineno, line, "duplicate series (first on line %d)" % self.series[key])
        else:
            self.series[key] = lineno
        f, suffix = self.family_of(name)
        if f.type == "histogram" and not suffix:
            self.err(lineno, line, "histogram %s has a sample without a _bucket/_sum/_count "
                     "suffix" % name)
            return
        self.enter(f, lineno, line)
        f.first_sample = f.first_sample or lineno
        if f.type == "counter" and not value >= 0:
            self.err(lineno, line, "counter value %s is negative or NaN" % value_text)
        if f.type in SUFFIXES:
            self.part(f, suffix, lineno, line, labels, value)

    def family_of(self, name):
        """-> (family, suffix): the declared histogram or summary that name is a part of
        (name = family + suffix), else the family called name (suffix "")."""
        for type_, sufs in SUFFIXES.items():
            for s in sufs:
                base = name[:-len(s)]
                if name.endswith(s) and base in self.families and \
                        self.families[base].type == type_:
                    return self.families[base], s
        return self.family(name), ""

    def part(self, f, suffix, lineno, line, labels, value):
        """A sample of histogram or summary f: remember what finish() checks."""
        special = "le" if f.type == "histogram" else "quantile"
        rest = tuple(sorted((k, v) for k, v in labels if k != special))
        g = f.groups.setdefault(rest, {"buckets": [], "sum": None, "count": None,
                                       "count_line": 0, "line": lineno})
        if suffix in ("_sum", "_count"):
            if special in dict(labels):
                self.err(lineno, line, "%s%s carries a %s label" % (f.name, suffix, special))
            if suffix == "_sum":
                g["sum"] = value
                return
            g["count"], g["count_line"] = value, lineno
        bound_text = dict(labels).get(special)
        if suffix == "_count" or suffix == "_bucket":
            if not (value >= 0 and value == math.floor(value)):
                self.err(lineno, line, "%s%s is not a whole number >= 0" % (f.name, suffix))
            if suffix == "_count":
                return
        bound = parse_float(bound_text) if bound_text is not None else None
        if bound_text is None:
            self.err(lineno, line, "%s sample without a %s label" % (f.type, special))
        elif bound is None:
            self.err(lineno, line, "%s=%r is not a number" % (special, bound_text))
        elif special == "quantile" and not 0 <= bound <= 1:
            self.err(lineno, line, "quantile %s is not in [0, 1]" % bound_text)
        elif special == "le":
            g["buckets"].append((bound, value, lineno, line))

    def finish(self):
        """Whole-family checks: each histogram or summary label set is complete."""
        for f in self.families.values():
            for rest, g in f.groups.items():
                self.group(f, rest, g)
            if not f.help_line and (f.first_sample or f.type_line):
                self.warn(f.first_sample or f.type_line, "", "%s has no HELP" % f.name)

    def group(self, f, rest, g):
        where = "%s{%s}" % (f.name, ",".join('%s="%s"' % kv for kv in rest))
        line = self.lines[g["line"] - 1]
        for part in ("sum", "count"):
            if g[part] is None:
                self.err(g["line"], line, "%s has no _%s" % (where, part))
        if f.type != "histogram":
            return
        b = g["buckets"]
        if not b:
            self.err(g["line"], line, "%s has no _bucket samples" % where)
            return
        for (b0, c0, _l0, _t0), (b1, c1, l1, t1) in zip(b, b[1:]):
            if not b1 > b0:
                self.err(l1, t1, "le bounds of %s do not increase (%s after %s)" % (
                    where, b1, b0))
            if c1 < c0:
                self.err(l1, t1, "bucket counts of %s decrease (%s after %s)" % (where, c1, c0))
        if b[-1][0] != math.inf:
            self.err(b[-1][2], b[-1][3], "%s has no le=\"+Inf\" bucket (last)" % where)
        elif g["count"] is not None and b[-1][1] != g["count"]:
            self.err(g["count_line"], self.lines[g["count_line"] - 1],
                     "%s_count %s differs from its +Inf bucket %s" % (
                         f.name, g["count"], b[-1][1]))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    rc = 0
    for src in argv:
        if src.startswith(("http://", "https://")):
            with urllib.request.urlopen(src, timeout=10) as r:
                data = r.read()
        else:
            with open(src, "rb") as f:
                data = f.read()
        errors, warnings = check(data)
        for p in errors:
            print("%s: ERROR %s" % (src, p))
        for p in warnings:
            print("%s: warning %s" % (src, p))
        if errors:
            rc = 1
        else:
            print("%s: ok (%d lines, %d warnings)" % (src, data.count(b"\n"), len(warnings)))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
