"""PromQL text is bounded before promql_parser sees it (monitor/promql/bounds.py): length, nesting
depth, operator count and regex matchers, each violation a QueryError naming the limit; regex
patterns reach the parser as placeholders, so RE2 (not Rust's regex crate) compiles them.

The exact hostile inputs of issue 9 run in a child process: before the bounds, 5,000 chained
``1-1-…`` terms killed the process with SIGSEGV (a crash here fails the test, not pytest).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.errors import QueryError
from monitor.promql import Engine, parse_expr
from monitor.promql.bounds import (MAX_NESTING_DEPTH, MAX_QUERY_LENGTH, MAX_QUERY_NODES, MAX_REGEX_MATCHERS,
                                   prepare_query, regex_of_placeholder, restore_placeholders)
from monitor.tsdb.store import SampleStore
from model.labels import Labels

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("query", "depth", "nodes", "regexes"), [
    ("up", 0, 0, 0),
    ("a + b + c", 2, 2, 0),
    ('sum by (job) (rate(x{job=~"a|b", le!="1"}[5m])) / on(job) group_left sum(up) > 0.5', 5, 8, 1),
    ('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))', 4, 5, 0),
    ('label_replace(up, "a", "$1", "b", "(.*)")', 1, 1, 0),  # string arguments are not regex matchers
    ("max_over_time(rate(x[5m])[1h:1m])", 3, 4, 0),
    ('up # ((((( a comment\n + 1', 1, 1, 0),
    ('up{a="-- (( [["}', 1, 0, 0),  # strings are skipped
])
def test_shape_estimates(query, depth, nodes, regexes):
    p = prepare_query(query)
    assert (p.depth, p.nodes, p.regexes) == (depth, nodes, regexes), p


def test_each_limit_is_named():
    with pytest.raises(QueryError, match=rf"^query is too long: 65537 characters, more than the limit of "
                                         rf"{MAX_QUERY_LENGTH} characters$"):
        prepare_query("1" * (MAX_QUERY_LENGTH + 1))
    chain = "-".join(["1"] * (MAX_NESTING_DEPTH + 1))
    prepare_query(chain)  # 64 operators: at the limit
    with pytest.raises(QueryError, match=rf"^query is nested too deeply: depth 65, more than the limit of "
                                         rf"{MAX_NESTING_DEPTH} \(nested brackets plus chained binary operators\)$"):
        prepare_query(chain + "-1")
    with pytest.raises(QueryError, match="nested too deeply: depth at least 65"):
        prepare_query("(" * 5000 + "1" + ")" * 5000)
    nested_chains = " + ".join(["(" + " + ".join(["1"] * 30) + ")"] * 40)  # 39 + (1 + 29) = 69 levels
    with pytest.raises(QueryError, match="nested too deeply: depth 69"):
        prepare_query(nested_chains)
    wide = " + ".join(["sum(" + " + ".join(["1"] * 30) + ")"] * 34)  # 34 * 30 + 33 = 1,053 nodes, 63 levels
    assert prepare_query(" + ".join(["sum(" + " + ".join(["1"] * 30) + ")"] * 33)).nodes == 1_022
    with pytest.raises(QueryError, match=rf"^query is too complex: \d+ operators and brackets, more than the "
                                         rf"limit of {MAX_QUERY_NODES}$"):
        prepare_query(wide)
    many = "up{" + ",".join(f'a=~"v{i}"' for i in range(MAX_REGEX_MATCHERS + 1)) + "}"
    with pytest.raises(QueryError, match=rf"^too many regex matchers: more than the limit of {MAX_REGEX_MATCHERS}$"):
        prepare_query(many)
    with pytest.raises(QueryError, match="negative @ modifier timestamps are not supported"):
        prepare_query("up @ -10")


def test_the_limits_apply_wherever_expressions_are_parsed():
    deep = "-".join(["1"] * 5000)
    with pytest.raises(QueryError, match="nested too deeply"):
        parse_expr(deep)
    with pytest.raises(QueryError, match="nested too deeply"):
        Engine(SampleStore()).instant_query(deep, 0)
    with pytest.raises(QueryError, match="nested too deeply"):
        Engine(SampleStore()).range_query(deep, 0, 60_000, 15_000)


def test_regexes_reach_the_parser_as_placeholders():
    p = prepare_query('up{a=~"x.*", b!~"\\\\d+", c="not a regex"} or up{d=~`\\pL`}')
    assert p.regexes == 3
    assert '"x.*"' not in p.text and '"not a regex"' in p.text
    values = [regex_of_placeholder(v) for v in p.text.split('"')[1::2]]
    assert values == ["x.*", "\\d+", None, "\\pL"]
    assert restore_placeholders(p.text) == 'up{a=~"x.*", b!~"\\\\d+", c="not a regex"} or up{d=~"\\\\pL"}'
    assert regex_of_placeholder("__re2_zz_") is None and regex_of_placeholder("x") is None


def test_selectors_with_regexes_evaluate_and_print_the_real_pattern():
    store = SampleStore()
    store.append(Labels.of({"__name__": "up", "a": "x1", "b": "7"}), 1000, 1.0)
    store.append(Labels.of({"__name__": "up", "a": "y1", "b": "z"}), 1000, 2.0)
    engine = Engine(store, max_series=1)
    assert [s.v for s in engine.instant_query('up{b!~"\\\\d+"}', 1000)] == [2.0]
    assert [s.v for s in engine.instant_query("up{a=~'x.*'}", 1000)] == [1.0]
    assert [s.v for s in engine.instant_query('up{a=~"(?i)X\\\\d"}', 1000)] == [1.0]  # Go syntax, RE2
    with pytest.raises(QueryError, match=r'for up\{a=~"\.\+"\}'):  # the selector's text, not a placeholder
        engine.instant_query('up{a=~".+"}', 1000)


@pytest.mark.parametrize(("query", "message"), [
    ('up{a=~"("}', "parse error: invalid regex '(': missing ): ("),
    ('up{a=~"\\q"}', "parse error: unknown escape sequence \\q"),
    ('up{a=~"\\xff"}', "parse error: invalid escape \\xff (not UTF-8 text)"),
    ('up{a=~"x}', "parse error: unterminated quoted string"),
])
def test_bad_regex_literals_are_parse_errors(query, message):
    with pytest.raises(QueryError) as info:
        Engine(SampleStore()).instant_query(query, 0)
    assert str(info.value) == message


@pytest.mark.parametrize("query", [
    'up{a=~"\\u00e9\\n\\"\'"}',        # double quotes: \u, \n, \" and a bare '
    "up{a=~'\\U000000e9\\x0a\"\\''}",  # single quotes: \U, \x, a bare " and \'
    'up{a=~`é\n"\'`}',                   # backquotes: raw
])
def test_regex_literals_unescape_as_prometheus_strings(query):
    store = SampleStore()
    store.append(Labels.of({"__name__": "up", "a": "é\n\"'"}), 1000, 1.0)
    assert len(Engine(store).instant_query(query, 1000)) == 1


HOSTILE = textwrap.dedent('''
    import json, sys, time
    from monitor.errors import QueryError
    from monitor.promql import Engine
    from monitor.rules.rulefmt import parse_rule_text
    from monitor.tsdb.store import SampleStore
    queries = {
        "chain_5000": "-".join(["1"] * 5000),
        "parens_5000": "(" * 5000 + "1" + ")" * 5000,
        "or_10000": " or ".join(["up"] * 10000),
        "unary_100000": "-" * 100000 + "1",
        "long_70000": "up" + " " * 70000,
        "quotes_32k": '"' + '\\\\"' * 16000,
        # Rust's regex crate took 30-70 ms per Unicode \\w{100..199}; RE2's \\w is ASCII.
        "heavy_regexes": "up{" + ",".join(f'a=~"\\\\\\\\w{{{100 + i}}}"' for i in range(100)) + "}",
        "huge_regex": 'up{a=~"\\\\\\\\pL{200}"}',
    }
    out = {}
    engine = Engine(SampleStore())
    for name, q in queries.items():
        t0 = time.perf_counter()
        try:
            engine.instant_query(q, 0)
            res = "ok"
        except QueryError as e:
            res = str(e)
        out[name] = [res, time.perf_counter() - t0]
    rule = "groups:\\n- name: g\\n  rules:\\n  - record: r\\n    expr: " + "-".join(["1"] * 5000) + "\\n"
    _, errors = parse_rule_text(rule, "deep.yaml")
    out["rule_file"] = [str(errors[0]) if errors else "ok", 0]
    print(json.dumps(out))
''')


def test_hostile_inputs_do_not_crash_the_process(tmp_path):
    """Each exact input from the issue, in a child process: it must exit 0 with a QueryError."""
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE)
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-2000:]}"
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["chain_5000"][0].startswith("query is nested too deeply: depth 4999, more than the limit of 64")
    assert got["parens_5000"][0].startswith("query is nested too deeply: depth at least 65")
    assert got["or_10000"][0].startswith("query is nested too deeply")
    assert got["unary_100000"][0].startswith("query is too long")
    assert got["long_70000"][0].startswith("query is too long: 70002 characters")
    assert got["quotes_32k"][0].startswith("parse error")  # an unterminated string, scanned linearly
    assert got["heavy_regexes"][0] == "ok"
    assert "pattern too large" in got["huge_regex"][0]  # RE2's 1 MiB budget
    assert "nested too deeply" in got["rule_file"][0] and "deep.yaml" in got["rule_file"][0]
    for name, (_, seconds) in got.items():
        assert seconds < 5, (name, seconds)  # generous: each takes milliseconds
