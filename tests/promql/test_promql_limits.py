"""Query limits of the PromQL engine (monitor/promql/limits.py): the samples limit counts
loaded samples, subquery steps and points, and range-query points, and rejects a huge subquery
before evaluating it; the deadline is checked in range steps, subquery steps and per-series
loops. Both are QueryErrors; a failed query leaves the engine's caches correct."""

from __future__ import annotations

import pytest

from monitor.errors import QueryError
from monitor.promql.engine import Engine
from monitor.promql.limits import (TIMED_OUT, TOO_MANY_SAMPLES, QueryTimeoutError, TooManySamplesError,
                                   subquery_steps)
from model.labels import Labels
from monitor.tsdb.store import SampleStore

T = 1_700_000_000_000


def store_with(series: int, points: int = 10, name: str = "x") -> SampleStore:
    store = SampleStore(retention_seconds=None)
    for i in range(series):
        lb = Labels.of({"__name__": name, "i": str(i)})
        for k in range(points):
            store.append(lb, T - (points - 1 - k) * 15_000, float(i * k))
    return store


def test_errors_are_query_errors_with_prometheus_messages():
    assert issubclass(TooManySamplesError, QueryError) and issubclass(QueryTimeoutError, QueryError)
    assert str(TooManySamplesError(5)).startswith(
        "query processing would load too many samples into memory in query execution")
    assert str(QueryTimeoutError(1.5)).startswith("query timed out in expression evaluation")


def test_subquery_steps():
    assert subquery_steps(0, 10, 1) == 11
    assert subquery_steps(10, 0, 1) == 0
    assert subquery_steps(0, 365 * 86_400_000, 1) == 365 * 86_400_000 + 1
    with pytest.raises(QueryError):
        subquery_steps(0, 10, 0)


@pytest.mark.parametrize("query", [
    "max_over_time(vector(1)[1y:1ms])",
    "count_over_time(vector(1)[1h:1ms])",
    "max_over_time(x[1y:1ms] @ 0)",
    "sum_over_time(sum(x)[1y:1ms] offset 1d)",
])
def test_huge_subquery_is_rejected_before_evaluation(query):
    # The message names the step count, which only the up-front check knows: nothing was
    # evaluated (a [1y:1ms] subquery would be 3.15e10 steps).
    eng = Engine(store_with(1), max_samples=1_000_000, timeout=None)
    with pytest.raises(TooManySamplesError, match=r"subquery of \d+ steps") as err:
        eng.instant_query(query, T)
    assert TOO_MANY_SAMPLES in str(err.value)


def test_huge_subquery_in_a_range_query_is_rejected():
    eng = Engine(store_with(1), max_samples=1_000_000, timeout=None)
    with pytest.raises(TooManySamplesError, match="subquery of"):
        eng.range_query("max_over_time(vector(1)[1y:1ms])", T, T + 60_000, 15_000)


def test_subquery_points_count_towards_the_limit():
    # 61 steps fit, but 61 steps x 20 series = 1220 points do not fit in 1000 samples.
    eng = Engine(store_with(20), max_samples=1000, timeout=None)
    with pytest.raises(TooManySamplesError) as err:
        eng.instant_query("max_over_time(x[60s:1s])", T)
    assert "steps" not in str(err.value)
    # The same with room for them.
    eng.max_samples = 10_000
    res = eng.instant_query("max_over_time(x[60s:1s])", T)
    assert len(res) == 20


def test_range_query_points_count_towards_the_limit():
    eng = Engine(store_with(1), max_samples=50, timeout=None)
    with pytest.raises(TooManySamplesError):
        eng.range_query("vector(1)", T, T + 100_000, 1000)  # 101 points
    with pytest.raises(TooManySamplesError):
        eng.range_query("1", T, T + 100_000, 1000)  # scalars too
    assert len(eng.range_query("vector(1)", T, T + 40_000, 1000)[0].points) == 41


def test_loaded_samples_still_count():
    eng = Engine(store_with(5, points=20), max_samples=50, timeout=None)
    with pytest.raises(TooManySamplesError, match="max_samples"):
        eng.instant_query("count_over_time(x[10m])", T)


def test_queries_under_the_limits_are_unchanged():
    store = store_with(3)
    limited = Engine(store, max_samples=5_000_000, timeout=10.0)
    free = Engine(store, max_samples=10**12, timeout=None)
    for q in ["sum(rate(x[2m]))", "max_over_time(x[5m:15s])", "count_over_time(vector(1)[1h:1s])",
              "max_over_time(max_over_time(x[2m:30s])[5m:1m])"]:
        assert limited.instant_query(q, T) == free.instant_query(q, T), q
    assert limited.range_query("rate(x[1m])", T - 60_000, T, 15_000) == \
        free.range_query("rate(x[1m])", T - 60_000, T, 15_000)


# The deadline: a timeout far shorter than the work (a nanosecond against at least thousands
# of evaluation steps or series) fails the query; no wall-clock measurement is asserted.

def test_timeout_in_subquery_steps():
    eng = Engine(store_with(1), timeout=1e-9)
    with pytest.raises(QueryTimeoutError, match=TIMED_OUT):
        eng.instant_query("count_over_time(vector(1)[1d:1s])", T)


def test_timeout_in_range_steps():
    eng = Engine(store_with(1), timeout=1e-9)
    with pytest.raises(QueryTimeoutError):
        eng.range_query("vector(1)", T, T + 10_000_000, 1000)


def test_timeout_in_per_series_loops():
    # An instant query without subqueries: only the per-series checks can stop it.
    eng = Engine(store_with(3000, points=3), timeout=1e-9)
    with pytest.raises(QueryTimeoutError):
        eng.instant_query("sum(rate(x[1m]))", T)


def test_no_timeout_means_no_deadline():
    eng = Engine(store_with(1), timeout=None)
    assert eng.instant_query("count_over_time(vector(1)[1h:1s])", T)[0].v == 3600  # (T - 1h, T]


@pytest.mark.parametrize(("max_samples", "timeout"), [
    (4000, None),     # fails while loading x
    (10_000, None),   # fails at the subquery, after sum(rate(...)) was computed and cached
    (50_000_000, 1e-9),
])
def test_failed_query_leaves_caches_correct(max_samples, timeout):
    # Instant queries share results (per-timestamp cache, per-series range memo): a query that
    # fails half-way must not leave partial results behind.
    store = store_with(3000, points=3)
    eng = Engine(store, max_samples=max_samples, timeout=timeout)
    q = "sum(rate(x[1m])) + count_over_time(vector(1)[1h:1s])"
    with pytest.raises(QueryError):
        eng.instant_query(q, T)
    eng.max_samples, eng.timeout = 50_000_000, None
    fresh = Engine(store, timeout=None)
    assert eng.instant_query(q, T) == fresh.instant_query(q, T)
    assert eng.instant_query("rate(x[1m])", T) == fresh.instant_query("rate(x[1m])", T)
    assert eng.instant_query("sum(rate(x[1m]))", T)[0].v == fresh.instant_query("sum(rate(x[1m]))", T)[0].v
