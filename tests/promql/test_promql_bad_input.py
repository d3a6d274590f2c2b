"""Bad input never crashes the engine: every failure is a QueryError with a readable message."""

from __future__ import annotations

import pytest

from monitor.errors import QueryError
from monitor.promql import Engine, parse_expr
from model.labels import Labels
from monitor.tsdb.store import SampleStore


@pytest.fixture
def engine() -> Engine:
    store = SampleStore(retention_seconds=None)
    for i in range(5):
        for t in range(0, 300_000, 15_000):
            store.append(Labels.of({"__name__": "x", "i": str(i)}), t, float(t))
    store.append(Labels.of({"__name__": "a", "src": "1"}), 15_000, 1)
    store.append(Labels.of({"__name__": "b", "src": "1"}), 15_000, 1)
    return Engine(store, max_series=10, features=frozenset({"promql-experimental-functions"}))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ("sum(", "parse error"),
        ("x{", "parse error"),
        ("x{a=~\"(\"}", "parse error"),
        ("foo_bar_baz(x)", "unknown function"),
        ("rate(x)", "expected type matrix"),
        ("abs(x[5m])", "expected type vector"),
        ("ln(-1)", "expected type instant vector"),
        ("sum(x[5m])", "expected type vector"),
        ("x[5m] + 1", "binary expression must contain only scalar and instant vector"),
        ("1 == 1", "BOOL"),
        ("x and 1", "set operator"),
        ("x @ -10", "negative @"),
        ("label_replace(x, \"dst\", \"v\", \"i\", \"(.*\")", "invalid regular expression"),
        ("label_replace(x, \"bad-name\", \"v\", \"i\", \"(.*)\")", "invalid destination label name"),
        ("label_replace(x, \"i\", \"\", \"\", \"\")", "same labelset"),
        ("double_exponential_smoothing(x[5m], 0, 0.5)", "smoothing factor"),
        ("double_exponential_smoothing(x[5m], 0.5, 1)", "trend factor"),
        ("holt_winters(x[5m], 0.5, 0.5)", "renamed it double_exponential_smoothing"),
        ("topk(NaN, x)", "NaN"),
        ("count_values(\"0bad\", x)", "invalid label name"),
        ("ceil({__name__=~\"a|b\"})", "same labelset"),
        ("a + on() group_left b or {__name__=~\"a|b\"} * on() {__name__=~\"a|b\"}", "matching"),
        ("(" * 3000 + "x" + ")" * 3000, "nested too deeply"),
    ],
)
def test_bad_query_is_a_query_error(engine, query, message):
    with pytest.raises(QueryError) as info:
        engine.instant_query(query, 300_000)
    assert message.lower() in str(info.value).lower()


def test_parse_expr_reports_errors():
    with pytest.raises(QueryError, match="unknown function"):
        parse_expr("nope(x)")
    with pytest.raises(QueryError):
        parse_expr(None)  # type: ignore[arg-type]
    assert parse_expr("sum(rate(x[5m]))") is not None


def test_too_many_series_names_the_limit(engine):
    store = engine.store
    for i in range(20):
        store.append(Labels.of({"__name__": "many", "i": str(i)}), 0, 1)
    with pytest.raises(QueryError, match="more than the limit of 10 series"):
        engine.instant_query("sum(many)", 0)
    with pytest.raises(QueryError, match="limit"):
        engine.range_query("rate(many[5m])", 0, 60_000, 15_000)


def test_too_many_samples_names_the_limit():
    store = SampleStore(retention_seconds=None)
    for t in range(0, 100_000, 1000):
        store.append(Labels.of({"__name__": "x"}), t, 1.0)
    eng = Engine(store, max_samples=50)
    with pytest.raises(QueryError, match="max_samples"):
        eng.instant_query("count_over_time(x[100s])", 100_000)


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [(0, 60_000, 0, "step"), (60_000, 0, 1000, "before start"), (0, 10**12, 1, "11,000 points")],
)
def test_bad_range_query(engine, start, end, step, message):
    with pytest.raises(QueryError, match=message):
        engine.range_query("x", start, end, step)


def test_range_query_rejects_strings_and_matrices(engine):
    with pytest.raises(QueryError, match="range query"):
        engine.range_query('"s"', 0, 60_000, 15_000)
    with pytest.raises(QueryError, match="range query"):
        engine.range_query("x[5m]", 0, 60_000, 15_000)


def test_nan_and_inf_values_flow_through(engine):
    store = engine.store
    store.append(Labels.of({"__name__": "n"}), 0, float("nan"))
    store.append(Labels.of({"__name__": "n", "k": "inf"}), 0, float("inf"))
    res = engine.instant_query("sum(n) + 1", 0)
    assert res[0].v != res[0].v  # NaN propagates
    assert engine.instant_query("max(n)", 0)[0].v == float("inf")
    assert engine.instant_query("ln(vector(-1))", 0)[0].v != engine.instant_query("ln(vector(-1))", 0)[0].v
    assert engine.instant_query("ln(vector(0))", 0)[0].v == float("-inf")
    assert engine.instant_query("sqrt(vector(-1))", 0)[0].v != engine.instant_query("sqrt(vector(-1))", 0)[0].v
    assert engine.instant_query("exp(vector(1000))", 0)[0].v == float("inf")
    assert engine.instant_query("2 ^ 10000", 0).v == float("inf")
