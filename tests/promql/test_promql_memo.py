"""The engine's per-series memo of range-function results and its column path for aggregations.

The memo must never change a result: every query here is checked against an engine without
caches (``result_cache_samples=0``) on the same store, at the same time, in the same order.
"""

from __future__ import annotations

import math

import pytest

from monitor.errors import QueryError
from monitor.promql import Engine, Vector
from monitor.tsdb.series import STALE_NAN
from model.labels import Labels
from monitor.tsdb.store import SampleStore

S = 1000
STEP = 15 * S


def lbl(name: str, **kw: str) -> Labels:
    return Labels.of({"__name__": name, **kw})


def as_dict(v: Vector) -> dict[Labels, float]:
    return {s.labels: s.v for s in v}


def same(a: Vector, b: Vector) -> bool:
    """Same samples, same order, values bit-identical (NaN equal to NaN)."""
    return [s.labels for s in a] == [s.labels for s in b] and all(
        x.v == y.v or (math.isnan(x.v) and math.isnan(y.v)) for x, y in zip(a, b))


@pytest.fixture
def store() -> SampleStore:
    st = SampleStore(retention_seconds=None)
    for ep in ("a", "b", "c"):
        for status in ("200", "500"):
            base = 10.0 if status == "200" else 1.0
            for i in range(41):
                v = base * i * (1.5 if ep == "b" else 1.0)
                if ep == "c" and i == 30:  # a counter reset
                    base = 0.5
                st.append(lbl("req_total", endpoint=ep, status=status), i * STEP, v)
    # one sample only in the last 5 m; one dead for 10 m; one ended by a staleness marker
    st.append(lbl("req_total", endpoint="d", status="200"), 40 * STEP, 3.0)
    st.append(lbl("req_total", endpoint="e", status="200"), 0, 1.0)
    st.append(lbl("req_total", endpoint="e", status="200"), STEP, 2.0)
    for i in range(30):
        st.append(lbl("req_total", endpoint="f", status="500"), i * STEP, float(i))
    st.append(lbl("req_total", endpoint="f", status="500"), 30 * STEP, STALE_NAN)
    return st


QUERIES = [
    'rate(req_total{status="500", endpoint="a"}[5m])',
    'rate(req_total{endpoint="a"}[5m])',
    'sum(rate(req_total{status=~"5.."}[5m])) / sum(rate(req_total[5m]))',
    'sum by (endpoint) (rate(req_total[5m]))',
    'rate(req_total[5m])',
    'increase(req_total[10m])',
    'sum without (status) (increase(req_total{endpoint!="b"}[10m]))',
    'count_over_time(req_total[5m])',
    'count(count_over_time(req_total{status="200"}[5m]))',
    'last_over_time(req_total{endpoint="d"}[5m])',
    'max by (status) (last_over_time(req_total[5m]))',
    'irate(req_total[5m])',
    'avg(irate(req_total[5m] offset 1m))',
    'sum((rate(req_total[5m])))',
    'quantile(0.5, rate(req_total{status="200"}[5m]))',
    'rate(req_total{status="200" or status="500"}[5m])',
]


@pytest.mark.parametrize("t", [40 * STEP, 40 * STEP + 7 * S, 29 * STEP])
def test_memo_never_changes_results(store, t):
    cached, plain = Engine(store), Engine(store, result_cache_samples=0)
    for _ in range(2):  # second pass: everything served from memo and cache
        for q in QUERIES:
            got, want = cached.instant_query(q, t), plain.instant_query(q, t)
            assert same(got, want), q


def test_memo_serves_filtered_then_unfiltered_selectors(store):
    engine = Engine(store)
    t = 40 * STEP
    engine.instant_query('rate(req_total{status="500"}[5m])', t)
    engine.instant_query('rate(req_total{status="200"}[5m])', t)
    # Every series of req_total is now memoised: the unfiltered selector reads no samples.
    [memo] = engine.range_memos.values()
    assert len(memo.values) == len(store.series())
    calls = []
    select = store.select
    store.select = lambda *a: calls.append(a) or select(*a)  # type: ignore[method-assign]
    assert set(as_dict(engine.instant_query("rate(req_total[5m])", t))) == {
        lb.without_name() for lb in store.series() if lb.get("endpoint") not in ("d", "e")}
    assert calls == []


def test_memo_dropped_on_new_samples(store):
    engine = Engine(store)
    t = 41 * STEP
    before = as_dict(engine.instant_query('rate(req_total{endpoint="a"}[5m])', t))
    store.append(lbl("req_total", endpoint="a", status="200"), t, 1e6)
    after = as_dict(engine.instant_query('rate(req_total{endpoint="a"}[5m])', t))
    assert after[Labels.of(endpoint="a", status="200")] > before[Labels.of(endpoint="a", status="200")]
    assert after == as_dict(Engine(store, result_cache_samples=0).instant_query(
        'rate(req_total{endpoint="a"}[5m])', t))


def test_memo_sees_new_series(store):
    engine = Engine(store)
    t = 40 * STEP
    engine.instant_query("rate(req_total[5m])", t)
    store.append(lbl("req_total", endpoint="g", status="200"), t - STEP, 1.0)
    store.append(lbl("req_total", endpoint="g", status="200"), t, 2.0)
    got = as_dict(engine.instant_query("rate(req_total[5m])", t))
    assert Labels.of(endpoint="g", status="200") in got
    assert got == as_dict(Engine(store, result_cache_samples=0).instant_query("rate(req_total[5m])", t))


def test_max_series_applies_when_served_from_memo(store):
    engine = Engine(store, max_series=3)
    t = 40 * STEP
    engine.instant_query('rate(req_total{endpoint="a"}[5m])', t)
    engine.instant_query('rate(req_total{endpoint="b"}[5m])', t)
    with pytest.raises(QueryError, match="max_series"):
        engine.instant_query('rate(req_total{endpoint=~"a|b"}[5m])', t)


@pytest.mark.parametrize("cache", [200_000, 0])
def test_duplicate_labelsets_after_dropping_names_are_an_error(cache):
    """engine.go ``rangeEval``: a function result with two equal label sets is an error, also
    when an aggregation consumes it directly."""
    store = SampleStore(retention_seconds=None)
    for name in ("a_total", "b_total"):
        for i in range(3):
            store.append(lbl(name, job="x"), i * STEP, float(i))
    engine = Engine(store, result_cache_samples=cache)
    for q in ('sum(rate({__name__=~"a_total|b_total"}[5m]))', 'rate({__name__=~"a_total|b_total"}[5m])'):
        with pytest.raises(QueryError, match="same labelset"):
            engine.instant_query(q, 2 * STEP)
    assert as_dict(engine.instant_query('sum(last_over_time({__name__=~"a_total|b_total"}[5m]))', 2 * STEP)) == {
        Labels(): 4.0}


def test_group_keys_memo_keeps_first_appearance_order(store):
    engine = Engine(store)
    t = 40 * STEP
    for _ in range(2):
        got = engine.instant_query("sum by (endpoint) (rate(req_total[5m]))", t)
        assert [s.labels.get("endpoint") for s in got] == ["a", "b", "c", "f"]
