"""``info()`` (experimental, ``promql-experimental-functions``): Prometheus 3.5 ``promql/info.go``.

The v3.5 conformance scripts have no ``info`` cases (Prometheus tests it in Go,
``promql/info_test.go``); these follow the semantics documented there and in
``docs/querying/functions.md``.
"""

from __future__ import annotations

import pytest

from monitor.errors import QueryError
from monitor.promql import Engine
from monitor.tsdb.series import STALE_NAN
from monitor.tsdb.store import SampleStore
from model.labels import Labels

S = 1000
M = 60 * S
EXPERIMENTAL = frozenset({"promql-experimental-functions"})


def lb(**kv: str) -> Labels:
    kv = {("__name__" if k == "name" else k): v for k, v in kv.items()}
    return Labels.of(kv)


@pytest.fixture
def store() -> SampleStore:
    st = SampleStore(retention_seconds=None)
    for t in (0, M):
        st.append(lb(name="req_total", job="api", instance="a", code="200"), t, 1.0)
        st.append(lb(name="req_total", job="api", instance="b", code="200"), t, 2.0)
        st.append(lb(name="req_total", job="db", code="500"), t, 3.0)
        st.append(lb(name="target_info", job="api", instance="a", cluster="c1", version="1"), t, 1.0)
        st.append(lb(name="build_info", job="api", instance="b", version="2", code="999"), t, 1.0)
    return st


def got(store: SampleStore, q: str, t: int = M, engine: Engine | None = None) -> dict[Labels, float]:
    eng = engine or Engine(store, features=EXPERIMENTAL)
    return {s.labels: s.v for s in eng.instant_query(q, t)}


def test_target_info_by_default_joined_on_job_and_instance(store):
    assert got(store, "info(req_total)") == {
        lb(name="req_total", job="api", instance="a", code="200", cluster="c1", version="1"): 1.0,
        lb(name="req_total", job="api", instance="b", code="200"): 2.0,  # no target_info: kept as it is
        lb(name="req_total", job="db", code="500"): 3.0,
    }


def test_data_label_matchers_pick_labels_and_drop_series_without_them(store):
    assert got(store, 'info(req_total, {cluster=~".+"})') == {
        lb(name="req_total", job="api", instance="a", code="200", cluster="c1"): 1.0}
    # A matcher that matches the empty string keeps the series without an info series.
    assert got(store, 'info(req_total, {cluster=~".*"})') == {
        lb(name="req_total", job="api", instance="a", code="200", cluster="c1"): 1.0,
        lb(name="req_total", job="api", instance="b", code="200"): 2.0,
        lb(name="req_total", job="db", code="500"): 3.0,
    }


def test_name_matchers_choose_the_info_metrics_and_base_labels_win(store):
    assert got(store, 'info(req_total, {__name__="build_info"})') == {
        lb(name="req_total", job="api", instance="a", code="200"): 1.0,
        # code="999" of build_info does not replace the series' own code.
        lb(name="req_total", job="api", instance="b", code="200", version="2"): 2.0,
        lb(name="req_total", job="db", code="500"): 3.0,
    }
    assert got(store, 'info(req_total, {__name__=~".+_info", version=~".+"})') == {
        lb(name="req_total", job="api", instance="a", code="200", version="1"): 1.0,
        lb(name="req_total", job="api", instance="b", code="200", version="2"): 2.0,
    }


def test_info_series_pass_through(store):
    out = got(store, 'info({job="api"})')
    assert out[lb(name="target_info", job="api", instance="a", cluster="c1", version="1")] == 1.0
    assert out[lb(name="build_info", job="api", instance="b", version="2", code="999")] == 1.0


def test_conflicting_labels_and_duplicate_info_series_fail():
    st = SampleStore(retention_seconds=None)
    st.append(lb(name="x", job="j", instance="i"), 0, 1.0)
    st.append(lb(name="a_info", job="j", instance="i", version="1"), 0, 1.0)
    st.append(lb(name="b_info", job="j", instance="i", version="2"), 0, 1.0)
    with pytest.raises(QueryError, match="conflicting label: version"):
        got(st, 'info(x, {__name__=~".+_info"})', 0)
    st.append(lb(name="target_info", job="j", instance="i", v="1"), 0, 1.0)
    st.append(lb(name="target_info", job="j", instance="i", v="2"), 0, 1.0)
    with pytest.raises(QueryError, match="duplicate series for info metric"):
        got(st, "info(x)", 0)


def test_newer_info_sample_wins_and_stale_ones_are_gone():
    st = SampleStore(retention_seconds=None)
    for t in (0, M, 2 * M):
        st.append(lb(name="x", job="j", instance="i"), t, 1.0)
    st.append(lb(name="target_info", job="j", instance="i", version="1"), 0, 1.0)
    st.append(lb(name="target_info", job="j", instance="i", version="2"), M, 1.0)  # relabelled target
    eng = Engine(st, features=EXPERIMENTAL)
    assert got(st, "info(x)", M, eng) == {lb(name="x", job="j", instance="i", version="2"): 1.0}
    assert got(st, "info(x)", 2 * M, eng) == {lb(name="x", job="j", instance="i", version="2"): 1.0}
    st.append(lb(name="target_info", job="j", instance="i", version="2"), 2 * M, STALE_NAN)
    # version="1" is still within the 5 m lookback; the engine's cached result at 2m is not reused.
    assert got(st, "info(x)", 2 * M, eng) == {lb(name="x", job="j", instance="i", version="1"): 1.0}


def test_range_query_and_rate(store):
    eng = Engine(store, features=EXPERIMENTAL)
    mat = eng.range_query('sum by (cluster) (info(rate(req_total[2m])))', 0, M, M)
    assert [s.labels for s in mat] == [Labels(), lb(cluster="c1")]
    assert [len(s.points) for s in mat] == [1, 1]  # rate needs two samples: only at 1m


def test_needs_the_experimental_flag_and_prometheus_3(store):
    with pytest.raises(QueryError, match="not enabled"):
        Engine(store).instant_query("info(req_total)", M)
    with pytest.raises(QueryError, match="unknown function"):
        Engine(store, compat="2", features=EXPERIMENTAL).instant_query("info(req_total)", M)
    with pytest.raises(QueryError, match="label selector"):
        Engine(store, features=EXPERIMENTAL).instant_query("info(req_total, {job='api'} offset 1m)", M)
