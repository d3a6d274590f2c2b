"""Edge cases of the PromQL engine against the real sample store.

Expected values are worked out from Prometheus v2.53 semantics (source cited per test).
"""

from __future__ import annotations

import math

import pytest

from monitor.errors import QueryError
from monitor.promql import Engine, Matrix, Scalar, String, Vector, parse_expr, selected_metric_names
from monitor.tsdb.series import STALE_NAN
from model.labels import Labels
from monitor.tsdb.store import SampleStore

S = 1000
M = 60_000


def lbl(name: str, **kw: str) -> Labels:
    return Labels.of({"__name__": name, **kw})


@pytest.fixture
def store() -> SampleStore:
    return SampleStore(retention_seconds=None)


@pytest.fixture
def engine(store: SampleStore) -> Engine:
    return Engine(store)


def load(store: SampleStore, labels: Labels, step_ms: int, values: list[float | None], start: int = 0) -> None:
    for i, v in enumerate(values):
        if v is not None:
            assert store.append(labels, start + i * step_ms, v)


def as_dict(vec: Vector) -> dict[Labels, float]:
    assert isinstance(vec, Vector)
    return {s.labels: s.v for s in vec}


def one(vec: Vector) -> float:
    assert isinstance(vec, Vector) and len(vec) == 1, vec
    return vec[0].v


# --- rate / increase / delta: promql/functions.go extrapolatedRate ---------------------------


def test_rate_without_extrapolation(store, engine):
    load(store, lbl("x"), 30 * S, [i * 30.0 for i in range(11)])
    assert one(engine.instant_query("rate(x[5m])", 300 * S)) == pytest.approx(1.0)
    assert one(engine.instant_query("increase(x[5m])", 300 * S)) == pytest.approx(300.0)


def test_rate_counter_reset(store):
    engine = Engine(store, compat="2")
    load(store, lbl("x"), 15 * S, [0, 10, 20, 5, 15])
    # 2.x: 15 - 0 plus the 20 lost at the reset; window [0s, 60s] is fully covered.
    assert one(engine.instant_query("increase(x[1m])", 60 * S)) == pytest.approx(35.0)
    assert one(engine.instant_query("rate(x[1m])", 60 * S)) == pytest.approx(35.0 / 60)
    assert one(engine.instant_query("resets(x[1m])", 60 * S)) == 1
    # delta() ignores resets.
    assert one(engine.instant_query("delta(x[1m])", 60 * S)) == pytest.approx(15.0)
    # Prometheus 3: the window (0s, 60s] leaves out the sample at 0s: 10 -> 20, reset, 5 -> 15
    # is 25 over 45s of samples, extrapolated to the 60s window (the gap at its start is < 1.1
    # x the 15s interval).
    v3 = Engine(store)
    assert one(v3.instant_query("increase(x[1m])", 60 * S)) == pytest.approx(25.0 * 60 / 45)
    assert one(v3.instant_query("resets(x[1m])", 60 * S)) == 1


def test_rate_extrapolates_to_window_edges(store, engine):
    load(store, lbl("x"), 30 * S, [100, 110, 120], start=30 * S)
    # Samples 30s..90s in window [0s, 120s]: 30s gaps on both sides (< 1.1 x 30s), so
    # extrapolate over 120s instead of 60s: increase 20 * 2.
    assert one(engine.instant_query("increase(x[2m])", 120 * S)) == pytest.approx(40.0)


def test_rate_extrapolation_stops_at_zero(store, engine):
    load(store, lbl("x"), 30 * S, [5, 25, 45], start=30 * S)
    # Zero point: 60s * 5/40 = 7.5s before the first sample < 30s to the window start.
    expected = 40 * (60 + 7.5 + 30) / 60
    assert one(engine.instant_query("increase(x[2m])", 120 * S)) == pytest.approx(expected)


def test_rate_needs_two_samples(store, engine):
    load(store, lbl("x"), 30 * S, [1])
    assert engine.instant_query("rate(x[5m])", 10 * S) == Vector()


def test_irate_and_idelta(store, engine):
    load(store, lbl("x"), 10 * S, [0, 50, 20])
    assert one(engine.instant_query("irate(x[1m])", 20 * S)) == pytest.approx(2.0)  # reset: 20/10s
    assert one(engine.instant_query("idelta(x[1m])", 20 * S)) == pytest.approx(-30.0)


def test_deriv_and_predict_linear(store, engine):
    load(store, lbl("x"), 10 * S, [0, 20, 40, 60])
    assert one(engine.instant_query("deriv(x[1m])", 30 * S)) == pytest.approx(2.0)
    assert one(engine.instant_query("predict_linear(x[1m], 60)", 30 * S)) == pytest.approx(180.0)


# --- lookback and staleness: engine.go vectorSelectorSingle -------------------------------


def test_lookback_is_five_minutes_inclusive_under_compat_2(store):
    engine = Engine(store, compat="2")
    load(store, lbl("x"), 10 * S, [1])
    assert one(engine.instant_query("x", 300 * S)) == 1
    assert engine.instant_query("x", 300 * S + 1) == Vector()


def test_lookback_is_left_open_in_prometheus_3(store, engine):
    """Prometheus 3: a sample exactly 5 minutes old is out of the lookback window."""
    load(store, lbl("x"), 10 * S, [1])
    assert one(engine.instant_query("x", 300 * S - 1)) == 1
    assert engine.instant_query("x", 300 * S) == Vector()


def test_staleness_marker_ends_series(store, engine):
    load(store, lbl("x"), 10 * S, [1, STALE_NAN, 2])
    assert engine.instant_query("x", 15 * S) == Vector()
    assert one(engine.instant_query("x", 25 * S)) == 2
    # Range selectors drop the marker.
    assert one(engine.instant_query("count_over_time(x[1m])", 25 * S)) == 2


def test_sample_timestamp_and_time(store, engine):
    load(store, lbl("x"), 10 * S, [1, 2])
    assert one(engine.instant_query("timestamp(x)", 15 * S)) == 10
    assert engine.instant_query("time()", 15 * S) == Scalar(15 * S, 15.0)


# --- histogram_quantile: promql/quantile.go bucketQuantile --------------------------------


def _buckets(store: SampleStore, counts: dict[str, float], **extra: str) -> None:
    for le, c in counts.items():
        store.append(lbl("h_bucket", le=le, **extra), 0, c)


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ({"1": 5, "2": 10, "+Inf": 10}, 0.5, 1.0),
        ({"1": 5, "2": 10, "+Inf": 10}, 0.75, 1.5),
        ({"1": 0, "2": 10, "+Inf": 20}, 0.9, 2.0),  # rank in +Inf bucket: highest finite bound
        ({"1": 10, "2": 8, "+Inf": 10}, 0.5, 0.5),  # non-monotonic: ensureMonotonic
        ({"1": 5, "2": 10}, 0.5, math.nan),  # no +Inf bucket
        ({"+Inf": 10}, 0.5, math.nan),  # fewer than two buckets
        ({"1": 0, "+Inf": 0}, 0.5, math.nan),  # no observations
        ({"-1": 5, "1": 10, "+Inf": 10}, 0.2, -1.0),  # lowest bucket bound <= 0
        ({"1": 5, "+Inf": 10}, -0.1, -math.inf),
        ({"1": 5, "+Inf": 10}, 1.1, math.inf),
        ({"1": 5, "+Inf": 10}, math.nan, math.nan),
        ({"1": 5, "1.0": 5, "+Inf": 10}, 0.5, 0.5),  # same bound twice: merged to 10
    ],
)
def test_histogram_quantile(store, engine, counts, q, expected):
    _buckets(store, counts)
    got = one(engine.instant_query(f"histogram_quantile({q}, h_bucket)", 0))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_histogram_quantile_groups_and_drops_name(store, engine):
    _buckets(store, {"1": 2, "+Inf": 4}, job="a")
    _buckets(store, {"1": 4, "+Inf": 4}, job="b")
    got = as_dict(engine.instant_query("histogram_quantile(0.5, h_bucket)", 0))
    assert got == {Labels.of(job="a"): 1.0, Labels.of(job="b"): 0.5}


# --- vector matching: engine.go VectorBinop -----------------------------------------------


@pytest.fixture
def matching(store):
    store.append(lbl("errors", job="api", code="500"), 0, 2)
    store.append(lbl("errors", job="api", code="503"), 0, 4)
    store.append(lbl("requests", job="api"), 0, 10)
    store.append(lbl("info", job="api", team="core"), 0, 1)
    return store


def test_one_to_one_needs_unique_sides(matching, engine):
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        engine.instant_query("errors / on(job) requests", 0)


def test_group_left(matching, engine):
    got = as_dict(engine.instant_query("errors / on(job) group_left requests", 0))
    assert got == {Labels.of(job="api", code="500"): 0.2, Labels.of(job="api", code="503"): 0.4}
    got = as_dict(engine.instant_query("errors * on(job) group_left(team) info", 0))
    assert set(got) == {Labels.of(job="api", code="500", team="core"),
                        Labels.of(job="api", code="503", team="core")}


def test_group_right_and_duplicate_error(matching, engine):
    got = as_dict(engine.instant_query("requests / on(job) group_right errors", 0))
    assert got == {Labels.of(job="api", code="500"): 5.0, Labels.of(job="api", code="503"): 2.5}
    with pytest.raises(QueryError, match="found duplicate series for the match group"):
        engine.instant_query("requests / on(job) group_left errors", 0)


def test_ignoring_and_bool(matching, engine):
    got = as_dict(engine.instant_query("errors > bool ignoring(code) group_left requests", 0))
    assert got == {Labels.of(job="api", code="500"): 0.0, Labels.of(job="api", code="503"): 0.0}
    # Filtering comparison keeps the left value and the metric name.
    assert as_dict(engine.instant_query("errors > 3", 0)) == {lbl("errors", job="api", code="503"): 4.0}
    assert engine.instant_query("1 < bool 2", 0) == Scalar(0, 1.0)


def test_set_operators(matching, engine):
    assert len(engine.instant_query("errors and on(job) requests", 0)) == 2
    assert len(engine.instant_query("errors unless on(job) requests", 0)) == 0
    assert len(engine.instant_query("errors or requests", 0)) == 3
    assert len(engine.instant_query("errors and requests", 0)) == 0  # labels differ


def test_division_by_zero(store, engine):
    store.append(lbl("x", a="1"), 0, 1)
    store.append(lbl("x", a="0"), 0, 0)
    store.append(lbl("x", a="-1"), 0, -1)
    got = engine.instant_query("x / 0", 0)
    vals = {s.labels.get("a"): s.v for s in got}
    assert vals["1"] == math.inf and vals["-1"] == -math.inf and math.isnan(vals["0"])
    assert math.isnan(engine.instant_query("1 % 0", 0).v)
    assert engine.instant_query("-1 / 0", 0).v == -math.inf


# --- aggregations -------------------------------------------------------------------------


def test_aggregations(store, engine):
    for i, v in enumerate([1, 2, 3, 4]):
        store.append(lbl("x", job="a" if i < 2 else "b", i=str(i)), 0, v)
    assert as_dict(engine.instant_query("sum by (job) (x)", 0)) == {Labels.of(job="a"): 3, Labels.of(job="b"): 7}
    assert as_dict(engine.instant_query("avg without (i) (x)", 0)) == {Labels.of(job="a"): 1.5,
                                                                        Labels.of(job="b"): 3.5}
    assert one(engine.instant_query("count(x)", 0)) == 4
    assert one(engine.instant_query("group(x)", 0)) == 1
    assert one(engine.instant_query("stdvar(x)", 0)) == pytest.approx(1.25)
    assert one(engine.instant_query("quantile(0.5, x)", 0)) == pytest.approx(2.5)
    top = engine.instant_query("topk(2, x)", 0)
    assert [s.v for s in top] == [4, 3] and top[0].labels.name == "x"
    assert [s.v for s in engine.instant_query("bottomk(1, x)", 0)] == [1]
    cv = as_dict(engine.instant_query('count_values("v", x)', 0))
    assert cv[Labels.of(v="1")] == 1


# --- offset, @, subqueries, range queries -------------------------------------------------


def test_offset_and_at(store, engine):
    load(store, lbl("x"), M, [0, 1, 2, 3, 4, 5])
    assert one(engine.instant_query("x offset 2m", 5 * M)) == 3
    assert one(engine.instant_query("x @ 120", 5 * M)) == 2
    assert one(engine.instant_query("x @ 120 offset 1m", 5 * M)) == 1
    mat = engine.range_query("x @ start()", M, 3 * M, M)
    assert mat[0].points == [(M, 1.0), (2 * M, 1.0), (3 * M, 1.0)]
    mat = engine.range_query("x @ end()", M, 3 * M, M)
    assert [v for _, v in mat[0].points] == [3.0, 3.0, 3.0]


def test_subquery(store, engine):
    load(store, lbl("x"), 30 * S, [i * 30.0 for i in range(21)])
    # rate is 1/s everywhere; max over a 5m subquery at 1m resolution.
    assert one(engine.instant_query("max_over_time(rate(x[1m])[5m:1m])", 10 * M)) == pytest.approx(1.0)
    # Prometheus 3: steps after the window start (5m, 10m]; 2.x: from it, [5m, 10m].
    assert one(engine.instant_query("count_over_time(x[5m:1m])", 10 * M)) == 5
    assert one(Engine(store, compat="2").instant_query("count_over_time(x[5m:1m])", 10 * M)) == 6


def test_range_query_matches_instant_queries(store, engine):
    load(store, lbl("x", job="a"), 15 * S, [i * 15.0 for i in range(40)])
    load(store, lbl("x", job="b"), 15 * S, [i * 30.0 for i in range(40)])
    q = "sum(rate(x[1m])) / count(x)"
    mat = engine.range_query(q, 2 * M, 9 * M, 30 * S)
    assert isinstance(mat, Matrix) and len(mat) == 1
    for t, v in mat[0].points:
        assert v == pytest.approx(one(engine.instant_query(q, t)))
    scal = engine.range_query("time()", 0, 2 * M, M)
    assert scal[0].labels == Labels() and [v for _, v in scal[0].points] == [0, 60, 120]


def test_result_types(store, engine):
    load(store, lbl("x"), 10 * S, [1, 2, 3])
    assert engine.instant_query('"hello"', 0) == String(0, "hello")
    mat = engine.instant_query("x[20s]", 20 * S)  # Prometheus 3: (0s, 20s]
    assert isinstance(mat, Matrix) and mat[0].points == [(10 * S, 2.0), (20 * S, 3.0)]
    mat = Engine(store, compat="2").instant_query("x[20s]", 20 * S)  # 2.x: [0s, 20s]
    assert isinstance(mat, Matrix) and mat[0].points == [(0, 1.0), (10 * S, 2.0), (20 * S, 3.0)]


def test_label_functions(store, engine):
    store.append(lbl("x", src="a-b"), 0, 1)
    got = engine.instant_query('label_replace(x, "dst", "$2/$1", "src", "(.*)-(.*)")', 0)
    assert got[0].labels.get("dst") == "b/a" and got[0].labels.name == "x"
    got = engine.instant_query('label_join(x, "dst", ",", "src", "__name__")', 0)
    assert got[0].labels.get("dst") == "a-b,x"


def test_absent(store, engine):
    assert as_dict(engine.instant_query('absent(nope{job="a", x=~"y"})', 0)) == {Labels.of(job="a"): 1.0}
    assert as_dict(engine.instant_query('absent_over_time(nope{job="a"}[5m])', 0)) == {Labels.of(job="a"): 1.0}
    store.append(lbl("x"), 0, 1)
    assert engine.instant_query("absent(x)", 0) == Vector()


def test_selected_metric_names():
    assert selected_metric_names("sum(rate(a[5m])) / on() b offset 1m") == {"a", "b"}
    assert selected_metric_names('{__name__="a", job="x"}') == {"a"}
    assert selected_metric_names('{__name__=~"a.*"}') is None
    assert selected_metric_names("vector(1)") == set()
    assert selected_metric_names(parse_expr("max_over_time(a[5m:1m])")) == {"a"}


# --- the result cache shared between instant queries --------------------------------------


def test_result_cache_is_invalidated_by_new_samples(store, engine):
    load(store, lbl("x"), 15 * S, [0, 15, 30, 45, 60])
    load(store, lbl("y"), 15 * S, [1, 1, 1, 1, 1])
    q = "sum(rate(x[1m]))"
    first = one(engine.instant_query(q, 60 * S))
    assert one(engine.instant_query(q, 60 * S)) == first  # served from the cache
    store.append(lbl("y"), 75 * S, 1)  # another metric: entry kept
    assert engine.result_cache
    # A late sample for x at the same timestamp range must be seen.
    store.append(lbl("x", other="1"), 45 * S, 0)
    store.append(lbl("x", other="1"), 60 * S, 100)
    assert one(engine.instant_query(q, 60 * S)) != first


def test_result_cache_disabled_and_cleared(store):
    load(store, lbl("x"), 15 * S, [0, 15, 30])
    eng = Engine(store, result_cache_samples=0)
    eng.instant_query("rate(x[1m])", 30 * S)
    assert not eng.result_cache
    cached = Engine(store)
    cached.instant_query("rate(x[1m])", 30 * S)
    assert cached.result_cache
    cached.clear_cache()
    assert not cached.result_cache
