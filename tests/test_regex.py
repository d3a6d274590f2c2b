"""Regular expressions use RE2 (google-re2) everywhere users write them: label matchers, PromQL
selectors and ``label_replace``, template ``match``/``reReplaceAll`` and config matchers.

Semantics are Go's (Prometheus, Alertmanager): fully anchored ``^(?s:...)$`` for matchers and
``label_replace``, unanchored for templates, Go syntax as written. Catastrophic patterns finish
in linear time; the regression bounds below are generous (5 s), the measured times microseconds.
"""

from __future__ import annotations

import time

import pytest

from model.matchers import Matcher, parse_matcher
from model.regex import RegexError, anchored, expand, unanchored
from monitor.config.routing import RouteConfig
from monitor.errors import QueryError, RuleError
from monitor.promql.engine import Engine
from monitor.rules.templates import render_template
from monitor.tsdb.store import SampleStore
from model.labels import Labels

EVIL_VALUE = "a" * 40 + "!"
EVIL_PATTERN = "(a+)+$"
BOUND_S = 5.0


def test_catastrophic_pattern_in_a_matcher_is_instant():
    m = Matcher("v", "=~", EVIL_PATTERN)
    t0 = time.perf_counter()
    assert not m.matches(EVIL_VALUE)
    assert m.matches("a" * 40)
    assert time.perf_counter() - t0 < BOUND_S


def test_catastrophic_label_replace_is_instant():
    """The issue's query: before RE2 it held the event loop for more than ten minutes."""
    engine = Engine(SampleStore())
    q = f'label_replace(label_replace(vector(1),"v","{EVIL_VALUE}","",""),"x","$1","v","{EVIL_PATTERN}")'
    t0 = time.perf_counter()
    res = engine.instant_query(q, 1000)
    assert time.perf_counter() - t0 < BOUND_S
    assert [dict(s.labels) for s in res] == [{"v": EVIL_VALUE}]


def test_catastrophic_selector_and_template_are_instant():
    store = SampleStore()
    store.append(Labels.of({"__name__": "up", "v": EVIL_VALUE}), 1000, 1.0)
    t0 = time.perf_counter()
    assert Engine(store).instant_query(f'up{{v=~"{EVIL_PATTERN}"}}', 1000) == []
    assert len(Engine(store).instant_query(f'up{{v!~"{EVIL_PATTERN}"}}', 1000)) == 1
    out = render_template('{{ if match "(a+)+$" $labels.v }}y{{ else }}n{{ end }}'
                          '{{ reReplaceAll "(a|aa)+$" "X" $labels.v }}', labels={"v": EVIL_VALUE}, value=1.0)
    assert out == "n" + EVIL_VALUE
    assert time.perf_counter() - t0 < BOUND_S


def test_matchers_are_anchored_and_dot_matches_newline():
    r"""Prometheus 3 (model/labels/regexp.go): ^(?s:pattern)$; `$` is the end of the text (Python's
    re also let "api\n" match ^api$)."""
    assert Matcher("a", "=~", "api").matches("api")
    assert not Matcher("a", "=~", "api").matches("api\n")
    assert not Matcher("a", "=~", "api").matches("xapi")
    assert Matcher("a", "=~", "a.b").matches("a\nb")
    assert Matcher("a", "=~", ".*").matches("x\ny")
    assert Matcher("a", "=~", ".+").matches("\n") and not Matcher("a", "=~", ".+").matches("")
    assert Matcher("a", "=~", "x|y|").matches("") and Matcher("a", "=~", "x|y|").matches("y")
    assert Matcher("a", "!~", "x|y").matches("z") and not Matcher("a", "!~", "x|y").matches("x")


@pytest.mark.parametrize(("pattern", "value"), [
    ("[[:alpha:]]+", "abc"),           # POSIX classes
    ("a(?i)b", "aB"),                  # flags mid-pattern
    ("(?U)a+", "aaa"),                 # ungreedy flag
    ("abc\\z", "abc"),                 # \z
    ("\\Q.*\\E", ".*"),                # quoted literal text
    ("\\pL+", "héllo"),                # Unicode classes
    ("(?P<x>a)(?<y>b)", "ab"),         # named groups, both spellings
])
def test_go_syntax_needs_no_translation(pattern, value):
    assert Matcher("l", "=~", pattern).matches(value)


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(", "missing ): ("),
    ("a)|(b", "unexpected ): a)|(b"),  # would compile once wrapped as ^(?s:a)|(b)$
    ("(?<=a)b", "invalid perl operator: (?<="),
    ("a{1001}", "invalid repetition size: {1001}"),
    ("\\Z", "invalid escape sequence: \\Z"),
    ("\\C", "invalid escape sequence: \\C"),  # C++ RE2 accepts it, Go does not
])
def test_invalid_patterns_keep_the_message_shape(pattern, reason):
    with pytest.raises(ValueError) as info:
        Matcher("a", "=~", pattern)
    assert str(info.value) == f"invalid regex {pattern!r}: {reason}"
    with pytest.raises(RegexError):
        unanchored(pattern)


def test_invalid_regex_errors_in_queries_and_config():
    with pytest.raises(QueryError, match=r"^invalid regular expression in label_replace\(\): \(\.\*$"):
        Engine(SampleStore()).instant_query('label_replace(vector(1), "a", "b", "c", "(.*")', 0)
    with pytest.raises(ValueError, match="invalid regex"):
        RouteConfig.model_validate({"receiver": "r", "match_re": {"a": "("}})
    with pytest.raises(ValueError, match="invalid regex"):
        parse_matcher('a=~"(?<=x)"')


def test_label_replace_expands_go_style():
    engine = Engine(SampleStore())
    q = ('label_replace(vector(1), "dst", "${host}-$2$$-$1x-$9", "src", "(?P<host>[^:]+):(\\\\d+)")')
    q = q.replace('vector(1)', 'label_replace(vector(1), "src", "db:5432", "", "")')
    res = engine.instant_query(q, 0)
    assert dict(res[0].labels)["dst"] == "db-5432$--"


def test_template_functions_follow_go():
    assert unanchored("x*").replace_all("abxd", "-") == "-a-b-d-"  # Go, not re.sub's "-a-b--d-"
    assert unanchored("a*").replace_all("baaac", "<$0>") == "<>b<aaa>c<>"
    assert unanchored("^a").replace_all("aaa", "x") == "xaa"
    assert unanchored("é").replace_all("aébé", "E") == "aEbE"
    assert unanchored("a.c").matches("xxabcxx") and not unanchored("a.c").matches("a\nc")
    assert render_template('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}',
                           labels={"instance": "host:9100"}, value=0.0) == "host"
    with pytest.raises(RuleError, match="missing"):  # Go: MustCompile panics, a template error
        render_template('{{ reReplaceAll "(" "x" "y" }}', labels={}, value=0.0)


def test_expand_unknown_groups_are_empty():
    m = anchored("(a)(b)?").match("a")
    assert m is not None
    assert expand("[$1][$2][$3][${nope}][$]", m) == "[a][][][][$]"


def test_lone_surrogates_match_as_replacement_characters():
    assert Matcher("a", "=~", ".").matches("\ud800")
    assert not Matcher("a", "=~", "a").matches("\ud800")


def test_matcher_parsing_is_linear_in_whitespace():
    r"""The old ``\s*(.*?)\s*$`` tail took 1.2 s for 16,000 inner spaces (quadratic)."""
    text = "a=x" + " " * 60_000 + "y"
    t0 = time.perf_counter()
    assert parse_matcher(text) == Matcher("a", "=", "x" + " " * 60_000 + "y")
    assert time.perf_counter() - t0 < BOUND_S
    assert parse_matcher('  a =~ "b|c"  ') == Matcher("a", "=~", "b|c")
