"""The strict exposition parser (monitor/scrape/exposition.py, lines.py): each rule it enforces, and
hypothesis fuzzing — it never raises anything but ExpositionError, never accepts a known-bad line
wherever it stands, and reads back what a correct writer wrote."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.scrape.exposition import ExpositionError, ExpositionParser, parse_exposition

OM = "application/openmetrics-text; version=1.0.0"

#: (bad line, the reason Prometheus / expfmt give, in our words): each fails any exposition it is in.
BAD_LINES = [
    ('a{x="a\\tb"} 1', "invalid escape sequence '\\t' in value of label \"x\""),
    ('a{x="\\u00e9"} 1', "invalid escape sequence '\\u' in value of label \"x\""),
    ('a{x="1",x="2"} 1', 'duplicate label name "x"'),
    ('a{__name__="b"} 1', 'label name "__name__" is reserved'),
    ('a{x="1" y="2"} 1', 'expected "," or "}" after the value of label "x"'),
    ('a{x="1} 1', 'unterminated value of label "x"'),
    ("a{x=1} 1", "expected '\"' at start of the value of label \"x\""),
    ('a{1x="1"} 1', "expected label name, got '1x=\"1\"} 1'"),
    ('a{x-y="1"} 1', 'expected "=" after label name "x"'),
    ('a{x="1"', 'expected "," or "}" after the value of label "x"'),
    ("a{ ", "unterminated label set: expected '}'"),
    ("a-b 1", 'expected float as value, got "-b"'),  # name a, value -b: as promlex splits it
    ("1a 1", "expected a metric name, got '1a 1'"),
    ('{x="1"} 1', "metric name not set"),
    ('a{"b"} 1', 'metric name already set: "a"'),
    ("a", 'expected value after metric "a"'),
    ("a 1_000", 'expected float as value, got "1_000"'),
    ("a 0x1p3", 'expected float as value, got "0x1p3"'),
    ("a one", 'expected float as value, got "one"'),
    ("a \u0661", 'expected float as value, got "\u0661"'),  # an Arabic-Indic digit: Python's float takes it
    ("a 1\x0c", 'expected float as value, got "1\x0c"'),  # a form feed: Python's float skips it
    ("a 1 1.5", 'expected integer timestamp (ms) or end of line, got "1.5"'),
    ("a 1 -5", 'expected integer timestamp (ms) or end of line, got "-5"'),
    ("a 1 99999999999999999999", 'timestamp out of range: "99999999999999999999"'),
    ("a 1 2 3", 'unexpected "3" after the timestamp'),
    ("# TYPE a gauges", 'invalid metric type "gauges"'),
    ("# TYPE a Counter", 'invalid metric type "Counter"'),
    ("# TYPE a-b gauge", "invalid metric name in TYPE: 'a-b'"),
    ("# HELP 9a help", "invalid metric name in HELP: '9a'"),
]


def _fails_at(text: str, line: int, reason: str, content_type: str | None = None) -> None:
    with pytest.raises(ExpositionError) as e:
        parse_exposition(text, content_type)
    assert (e.value.line, e.value.reason) == (line, reason)
    assert str(e.value) == f"line {line}: {reason}"


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_each_known_bad_line_fails_with_its_reason(line, reason):
    _fails_at(f"ok 1\n{line}\nafter 2\n", 2, reason)


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("# TYPE a counter\n# TYPE a gauge\n", 2,
     'second TYPE line for metric name "a", or TYPE reported after samples'),
    ("a 1\n# TYPE a gauge\n", 2, 'second TYPE line for metric name "a", or TYPE reported after samples'),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nother 1\n# TYPE h histogram\n", 5,
     'second TYPE line for metric name "h", or TYPE reported after samples'),
    ("# HELP a one\n# TYPE a gauge\na 1\n# HELP a two\n", 4, 'second HELP line for metric name "a"'),
])
def test_family_rules_across_lines(text, line, reason):
    _fails_at(text, line, reason)


def test_what_prometheus_accepts_is_accepted():
    text = (
        "# A comment\n#no blank after the hash\n# HELP a The a \\\\ help\\nsecond line, \\d kept\n"
        "# TYPE a counter\n"
        'a{x="q\\"uote",y="back\\\\slash",z="new\\nline",} 1e3 1700000000000\n'
        "  a{ x = \"2\" }\t-Inf\n"
        'a_total 1\n'  # its own (untyped) family: 'a' is a counter, but a_total is named apart
        '{"my.metric", "a.b"="c"} NaN\n'
        'b{}3\n'
        "# TYPE a_total gauge\n"
    )
    got = parse_exposition(text)
    assert got[0] == ("a", {"x": 'q"uote', "y": "back\\slash", "z": "new\nline"}, 1000.0, 1_700_000_000_000)
    assert got[1] == ("a", {"x": "2"}, -math.inf, None)
    assert got[3][0:2] == ("my.metric", {"a.b": "c"}) and math.isnan(got[3][2])
    assert got[4] == ("b", {}, 3.0, None)
    assert parse_exposition("a0.5\nb-1 2\n") == [("a0", {}, 0.5, None), ("b", {}, -1.0, 2)]  # as promlex


def test_a_type_after_samples_of_another_family_and_untyped_suffixes():
    # TYPE h after an untyped family named h_sum: a different family (expfmt's keying), accepted
    assert parse_exposition("h_sum 1\n# TYPE h summary\nh_sum 2\nh_count 1\n")[1] == ("h_sum", {}, 2.0, None)


def test_metadata_of_each_family():
    parser = ExpositionParser(openmetrics=True)
    parser.feed("# TYPE req_seconds histogram\n# UNIT req_seconds seconds\n# HELP req_seconds Latency \\\"x\\\".\n"
                'req_seconds_bucket{le="+Inf"} 1\nreq_seconds_count 1\nreq_seconds_sum 0.5\n'
                "# TYPE up_ stateset\n# EOF\n", final=True)
    assert len(list(parser.parse(100))) == 3
    parser.close()
    assert {k: v.api() for k, v in parser.metadata().items()} == {
        "req_seconds": {"type": "histogram", "help": 'Latency "x".', "unit": "seconds"},
        "up_": {"type": "stateset", "help": "", "unit": ""}}


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("a 1\n", 2, "data does not end with # EOF"),
    ("# EOF\na 1\n", 2, "unexpected data after # EOF"),
    ("# just a comment\n# EOF\n", 1,
     "invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF, each with a metric name"),
    ("# UNIT a_bytes seconds\n# EOF\n", 1, 'unit "seconds" not a suffix of metric "a_bytes"'),
    ("# UNIT a_seconds seconds\n# UNIT a_seconds seconds\n# EOF\n", 2, 'second UNIT line for metric name "a_seconds"'),
    ("# TYPE a untyped\n# EOF\n", 1, 'invalid metric type "untyped"'),
    ("a_total 1 # trace 1\n# EOF\n", 1, "expected exemplar label set after '#'"),
    ("a 1 nan\n# EOF\n", 1, 'invalid timestamp "nan"'),
])
def test_openmetrics_rules(text, line, reason):
    _fails_at(text, line, reason, OM)


def test_openmetrics_exemplars_and_second_timestamps():
    assert parse_exposition('# TYPE a counter\na_total{x="1"} 2 1.25 # {t="x y"} 1 1.0\n# EOF\n', OM) == [
        ("a_total", {"x": "1"}, 2.0, 1250)]


# ---------------------------------------------------------------- fuzzing

_NAMES = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True)
_LABEL_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "__name__")
_VALUES = st.floats(allow_nan=False, width=64)
_SAMPLES = st.tuples(_NAMES, st.dictionaries(_LABEL_NAMES, st.text(max_size=8), max_size=4), _VALUES,
                     st.none() | st.integers(0, 2**63 - 1))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _render(sample: tuple[str, dict[str, str], float, int | None]) -> str:
    name, labels, value, ts = sample
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value!r}" + (f" {ts}" if ts is not None else "")


def _valid(samples: list[tuple[str, dict[str, str], float, int | None]]) -> bool:
    return all("\r" not in v and all(not ("\ud800" <= c <= "\udfff") for c in v)
               for _, labels, _, _ in samples for v in labels.values())


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from('ab_:{}="\\ #\t\n\r\x0c,.01eE+-xpNInfTYPEHLUOm\u0661\xe9'), max_size=80),
       st.booleans())
def test_fuzz_only_expositionerror_escapes(text, openmetrics):
    try:
        out = parse_exposition(text, OM if openmetrics else None)
    except ExpositionError as e:
        assert e.line >= 1 and str(e).startswith(f"line {e.line}: ")
        return
    for name, labels, value, ts in out:
        assert isinstance(name, str) and name and isinstance(value, float)
        assert all(isinstance(k, str) and k and k != "__name__" for k in labels)
        assert ts is None or isinstance(ts, int)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.integers(1, 7))
def test_fuzz_bytes_in_any_chunking_only_expositionerror(data, size):
    parser = ExpositionParser()
    try:
        for i in range(0, len(data), size):
            parser.feed(data[i:i + size])
            list(parser.parse(10))
        parser.feed(b"", final=True)
        list(parser.parse(1000))
        parser.close()
    except ExpositionError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(_SAMPLES, max_size=6), st.lists(_SAMPLES, max_size=6), st.sampled_from(BAD_LINES))
def test_fuzz_a_known_bad_line_anywhere_fails_at_its_line(before, after, bad):
    lines = [_render(s) for s in before] + [bad[0]] + [_render(s) for s in after]
    with pytest.raises(ExpositionError) as e:
        parse_exposition("\n".join(lines) + "\n")
    assert (e.value.line, e.value.reason) == (len(before) + 1, bad[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(_SAMPLES, max_size=10))
def test_fuzz_what_a_correct_writer_writes_reads_back(samples):
    if not _valid(samples):
        return
    text = "".join(_render(s) + "\n" for s in samples)
    assert parse_exposition(text) == [(n, lbl, v, ts) for n, lbl, v, ts in samples]


OM_BAD_LINES = [
    ("# comment", "invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF, each with a metric name"),
    ("# TYPE x untyped", 'invalid metric type "untyped"'),
    ("# UNIT x_bytes seconds", 'unit "seconds" not a suffix of metric "x_bytes"'),
    ("a_total 1 # t 1", "expected exemplar label set after '#'"),
    ('a{x="\\q"} 1', "invalid escape sequence '\\q' in value of label \"x\""),
]


@settings(max_examples=100, deadline=None)
@given(st.lists(_SAMPLES, max_size=5), st.sampled_from(OM_BAD_LINES))
def test_fuzz_a_known_bad_openmetrics_line_fails_at_its_line(before, bad):
    # OpenMetrics timestamps are seconds: render the generated ones as such
    lines = [_render((n, lbl, v, None)) + ("" if ts is None else f" {ts % 10**12 / 1000}") for n, lbl, v, ts in before]
    with pytest.raises(ExpositionError) as e:
        parse_exposition("\n".join([*lines, bad[0], "# EOF"]) + "\n", OM)
    assert (e.value.line, e.value.reason) == (len(before) + 1, bad[1])


# ---------------------------------------------------------------- against promtool (expfmt)

#: Refused by Prometheus's scrape parser (promlex: a timestamp is digits; types are lower case),
#: which we follow, though expfmt (promtool check metrics) accepts them.
_PROMTOOL_ACCEPTS = {"a 1 -5", "# TYPE a Counter"}


def _promtool_parse_error(text: str) -> str | None:
    """Return promtool check metrics' parse error for ``text`` (``None``: it parsed; lint findings aside)."""
    import shutil
    import subprocess

    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian's prometheus package; .ci/run installs it)")
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    return out if "parsing error" in out else None


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_promtool_refuses_each_known_bad_line_too(line, reason):
    err = _promtool_parse_error(f"ok 1\n{line}\nafter 2\n")
    if line in _PROMTOOL_ACCEPTS:
        assert err is None
    else:
        assert err is not None and "line 2:" in err, err


@pytest.mark.parametrize("text", [
    "# TYPE a counter\n# TYPE a gauge\n",
    "a 1\n# TYPE a gauge\n",
    "# HELP a one\n# TYPE a gauge\na 1\n# HELP a two\n",
])
def test_promtool_refuses_the_family_rules_too(text):
    assert _promtool_parse_error(text) is not None


def test_promtool_and_we_accept_the_same_good_exposition():
    text = ('# HELP a The a \\\\ help\\n.\n# TYPE a counter\n'
            'a{x="q\\"uote",y="back\\\\slash",z="new\\nline",} 1e3 1700000000000\n'
            "  a{ x = \"2\" }\t-Inf\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\nb{}3\n")
    assert _promtool_parse_error(text) is None
    assert len(parse_exposition(text)) == 6
