"""Delayed ``__name__`` removal (``rules.enable_features: [promql-delayed-name-removal]``).

Semantics of Prometheus 3.5 ``EngineOpts.EnableDelayedNameRemoval`` (``promql/engine.go``
``cleanupMetricLabels``; cases of ``promqltest/testdata/name_label_dropping.test``): operations
that drop the name keep it, marked, until the query ends, so ``label_replace``/``label_join``
and ``by (__name__)`` still see it; the result is then checked for duplicate label sets.
"""

from __future__ import annotations

import pytest

from monitor.config.loader import load_config_text
from monitor.errors import ConfigErrors, QueryError
from monitor.promql import Engine
from monitor.promql.value import DroppedName
from monitor.tsdb.store import SampleStore
from model.labels import Labels

S = 1000
M = 60 * S
DELAYED = frozenset({"promql-delayed-name-removal"})


@pytest.fixture
def store() -> SampleStore:
    st = SampleStore(retention_seconds=None)
    for i, v in enumerate((0, 60, 120)):
        st.append(Labels.of(__name__="metric_total", env="1"), i * 5 * M, float(v))
        st.append(Labels.of(__name__="another_metric_total", env="1"), i * 5 * M, float(v + 60))
    return st


def by_labels(result) -> dict[Labels, float]:
    return {s.labels: s.v for s in result}


def plain(result) -> bool:
    """Return whether no marked name left the engine (every label value a plain ``str``)."""
    return all(type(v) is str for s in result for _, v in s.labels)


def test_label_replace_reads_a_name_a_function_dropped(store):
    q = 'label_replace(rate({env="1"}[10m]), "my_name", "rate_$1", "__name__", "(.+)")'
    with pytest.raises(QueryError, match="same labelset"):
        Engine(store).instant_query(q, 10 * M)  # the name is gone before label_replace runs
    got = Engine(store, features=DELAYED).instant_query(q, 10 * M)
    assert by_labels(got) == {Labels.of(my_name="rate_metric_total", env="1"): pytest.approx(0.2),
                              Labels.of(my_name="rate_another_metric_total", env="1"): pytest.approx(0.2)}
    assert plain(got)


def test_setting_the_name_keeps_it(store):
    eng = Engine(store, features=DELAYED)
    got = eng.instant_query('label_replace(rate({env="1"}[10m]), "__name__", "rate_$1", "__name__", "(.+)")', 10 * M)
    assert set(by_labels(got)) == {Labels.of(__name__="rate_metric_total", env="1"),
                                   Labels.of(__name__="rate_another_metric_total", env="1")}
    got = eng.instant_query('label_join(rate({env="1"}[10m]), "__name__", "_", "__name__", "env")', 10 * M)
    assert set(by_labels(got)) == {Labels.of(__name__="metric_total_1", env="1"),
                                   Labels.of(__name__="another_metric_total_1", env="1")}
    assert plain(got)


def test_names_go_at_the_end_and_duplicates_fail_there(store):
    eng = Engine(store, features=DELAYED)
    assert by_labels(eng.instant_query('sum(rate({env="1"}[10m])) by (env)', 10 * M)) == {
        Labels.of(env="1"): pytest.approx(0.4)}
    with pytest.raises(QueryError, match="same labelset"):
        eng.instant_query('sum by (__name__) (rate({env="1"}[10m]))', 10 * M)
    with pytest.raises(QueryError, match="same labelset"):
        eng.instant_query('rate({env="1"}[10m])', 10 * M)
    with pytest.raises(QueryError, match="same labelset"):
        eng.range_query('-{env="1"}', 0, 10 * M, 5 * M)


@pytest.mark.parametrize("q, name_kept", [
    ('metric_total{env="1"}', True),
    ('-metric_total', False),
    ('metric_total * 2', False),
    ('metric_total + another_metric_total', False),
    ('metric_total <= another_metric_total', True),
    ('metric_total <= bool another_metric_total', False),
    ('clamp(metric_total, 0, 100)', False),
    ('rate(metric_total[10m]) > 0', False),
    ('last_over_time(metric_total[10m])', True),
    ('max_over_time(metric_total[10m])', False),
    ('max_over_time(rate(metric_total[10m])[5m:5m])', False),
    ('last_over_time(rate(metric_total[10m])[5m:5m])', False),
    ('sum by (__name__, env) (metric_total)', True),
    ('topk(10, sum by (__name__, env) (rate(metric_total[10m])))', False),
])
def test_same_names_as_immediate_removal(store, q, name_kept):
    """Where nothing reads the name in between, delayed and immediate removal agree."""
    delayed = Engine(store, features=DELAYED).instant_query(q, 10 * M)
    assert by_labels(delayed) == by_labels(Engine(store).instant_query(q, 10 * M))
    assert delayed and all(bool(s.labels.get("__name__")) == name_kept for s in delayed)
    assert plain(delayed)
    ranged = Engine(store, features=DELAYED).range_query(q, 0, 10 * M, 5 * M)
    assert ranged and all(bool(s.labels.get("__name__")) == name_kept for s in ranged)
    assert all(type(v) is str for s in ranged for _, v in s.labels)


def test_group_labels_memo_keeps_marks_apart(store):
    """``by (__name__)`` over a kept and over a marked name, in one engine (its group-label memo)."""
    eng = Engine(store, features=DELAYED)
    for _ in range(2):
        kept = eng.instant_query('sum by (__name__, env) (metric_total)', 10 * M)
        assert [s.labels for s in kept] == [Labels.of(__name__="metric_total", env="1")]
        dropped = eng.instant_query('sum by (__name__, env) (rate(metric_total[10m]))', 10 * M)
        assert [s.labels for s in dropped] == [Labels.of(env="1")]


def test_matching_ignores_only_the_name():
    """Prometheus 3.5 ``signatureFunc``: ``__type__``/``__unit__`` still on a marked series match."""
    st = SampleStore(retention_seconds=None)
    st.append(Labels.of(__name__="a", __type__="counter", job="x"), 0, 1.0)
    st.append(Labels.of(__name__="b", __type__="gauge", job="x"), 0, 1.0)
    st.append(Labels.of(__name__="a", __type__="counter", job="y"), 0, 2.0)
    q = "(a + 1) and a"
    assert [s.labels for s in Engine(st, features=DELAYED).instant_query(q, 0)] == [
        Labels.of(job="x"), Labels.of(job="y")]
    assert Engine(st, features=DELAYED).instant_query("a / ignoring(job) b", 0) == []


def test_marked_name_is_a_plain_equal_string():
    v = DroppedName("up")
    assert v == "up" and hash(v) == hash("up") and str(v) is v
    assert Labels.of({"__name__": v})[0][1] is v


def test_config_takes_the_flag_under_3_only():
    ok = load_config_text("rules:\n  enable_features: [promql-delayed-name-removal]\n")
    assert ok.rules.enable_features == ["promql-delayed-name-removal"]
    with pytest.raises(ConfigErrors, match=r"monitor\.yaml:3:3: rules\.enable_features: .*promql_compat"):
        load_config_text('rules:\n  promql_compat: "2"\n  enable_features: [promql-delayed-name-removal]\n')
    with pytest.raises(ValueError):
        Engine(SampleStore(retention_seconds=None), compat="2", features=DELAYED)
