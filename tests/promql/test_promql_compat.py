"""Prometheus 3 semantics by default, ``promql_compat: "2"`` for 2.53's, and the feature flags."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from monitor.config.model import RulesConfig
from monitor.errors import QueryError
from monitor.promql import Engine, Vector
from monitor.promql.durations import duration_ms, rewrite_durations
from monitor.promql.quantile import bucket_fraction
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import parse_rule_text
from monitor.scrape.exposition import format_float_label, normalize_float_labels
from monitor.tsdb.store import SampleStore
from model.labels import Labels

S = 1000
EXPERIMENTAL = frozenset({"promql-experimental-functions"})
ALL = frozenset({"promql-experimental-functions", "promql-duration-expr"})


def lbl(name: str, **kv: str) -> Labels:
    return Labels.of({"__name__": name, **kv})


@pytest.fixture
def store() -> SampleStore:
    st = SampleStore(retention_seconds=None)
    for i in range(11):
        st.append(lbl("x", job="a"), i * 60 * S, float(i * 10))
    return st


def values(vec: Vector) -> dict[Labels, float]:
    return {s.labels: s.v for s in vec}


def test_config_defaults_to_3_and_takes_2_as_a_number():
    assert RulesConfig().promql_compat == "3" and RulesConfig().enable_features == []
    assert RulesConfig.model_validate({"promql_compat": 2}).promql_compat == "2"
    assert RulesConfig.model_validate({"enable_features": ["promql-duration-expr"]}).enable_features == [
        "promql-duration-expr"]
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"promql_compat": "4"})
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"enable_features": ["native-histograms"]})


def test_engine_rejects_unknown_compat_and_features(store):
    with pytest.raises(ValueError):
        Engine(store, compat="4")
    with pytest.raises(ValueError):
        Engine(store, features=frozenset({"nope"}))


def test_holt_winters_is_2_only_and_double_exponential_smoothing_experimental(store):
    q2 = Engine(store, compat="2").instant_query("holt_winters(x[10m], 0.5, 0.5)", 10 * 60 * S)
    with pytest.raises(QueryError, match="renamed it double_exponential_smoothing"):
        Engine(store).instant_query("holt_winters(x[10m], 0.5, 0.5)", 10 * 60 * S)
    with pytest.raises(QueryError, match="promql-experimental-functions"):
        Engine(store).instant_query("double_exponential_smoothing(x[10m], 0.5, 0.5)", 10 * 60 * S)
    with pytest.raises(QueryError, match="unknown function"):
        Engine(store, compat="2", features=EXPERIMENTAL).instant_query(
            "double_exponential_smoothing(x[10m], 0.5, 0.5)", 10 * 60 * S)
    # The same smoothing; Prometheus 3's window (0, 10m] has one sample fewer than 2.x's.
    q3 = Engine(store, features=EXPERIMENTAL).instant_query("double_exponential_smoothing(x[11m], 0.5, 0.5)",
                                                            10 * 60 * S)
    assert values(q3) == pytest.approx(values(q2)) and len(q3) == 1


@pytest.mark.parametrize("query", ['sort_by_label(x, "job")', "mad_over_time(x[5m])", "ts_of_max_over_time(x[5m])",
                                   "limitk(1, x)"])
def test_experimental_functions_need_the_feature(store, query):
    with pytest.raises(QueryError, match="is not enabled"):
        Engine(store).instant_query(query, 10 * 60 * S)


def test_ts_of_functions(store):
    eng = Engine(store, features=EXPERIMENTAL)
    t = 10 * 60 * S
    assert [s.v for s in eng.instant_query("ts_of_max_over_time(x[5m])", t)] == [600.0]
    assert [s.v for s in eng.instant_query("ts_of_min_over_time(x[5m])", t)] == [300.0 + 60]  # (5m, 10m]
    assert [s.v for s in eng.instant_query("ts_of_last_over_time(x[5m] offset 1m)", t)] == [540.0]


def test_sort_by_label_3_sorts_by_labels_then_label_sets_not_values():
    st = SampleStore(retention_seconds=None)
    for job, inst, v in [("b", "10", 1.0), ("a", "2", 5.0), ("a", "10", 3.0), ("b", "2", 0.0)]:
        st.append(lbl("y", job=job, instance=inst), 0, v)
    got = Engine(st, features=EXPERIMENTAL).instant_query('sort_by_label(y, "instance")', 10 * S)
    assert [(s.labels.get("instance"), s.labels.get("job")) for s in got] == [
        ("2", "a"), ("2", "b"), ("10", "a"), ("10", "b")]  # natural order; ties by the whole set
    got = Engine(st, features=EXPERIMENTAL).instant_query('sort_by_label_desc(y, "instance")', 10 * S)
    assert [(s.labels.get("instance"), s.labels.get("job")) for s in got] == [
        ("10", "b"), ("10", "a"), ("2", "b"), ("2", "a")]


def test_duration_expressions_behind_their_feature(store):
    t = 10 * 60 * S
    with pytest.raises(QueryError):
        Engine(store).instant_query("count_over_time(x[4m+1m])", t)
    eng = Engine(store, features=ALL)
    assert values(eng.instant_query("count_over_time(x[4m+1m])", t)) == values(
        eng.instant_query("count_over_time(x[5m])", t))
    assert values(eng.instant_query("x offset (2 * 60)", t)) == values(eng.instant_query("x offset 2m", t))


@pytest.mark.parametrize(("expr", "ms"), [("26m+4m", 1_800_000), ("1h/2", 1_800_000), ("1h30m % 1h", 1_800_000),
                                          ("60*30", 1_800_000), ("-5m+35m", 1_800_000), ("-2 ^ 2", -4000),
                                          ("(9m30s+30s)*3", 1_800_000), ("((((8 - 2) / 3) * 7s) % 4) + 8000ms",
                                                                        10_000)])
def test_duration_arithmetic(expr, ms):
    assert duration_ms(expr) == ms


def test_rewrite_durations_leaves_strings_and_plain_durations():
    assert rewrite_durations('x{a="[1+1]"}[5m] offset 1m') == 'x{a="[1+1]"}[5m] offset 1m'
    assert rewrite_durations("rate(x[5m])[10m+5m:1m]") == "rate(x[5m])[900000ms:1m]"
    assert rewrite_durations("x offset -(1m+1s)") == "x offset -61000ms"
    with pytest.raises(QueryError):
        rewrite_durations("x[1m/0]")


def test_regex_dot_matches_newline_only_in_3():
    st = SampleStore(retention_seconds=None)
    st.append(lbl("z", a="foo\nbar"), 0, 1)
    assert len(Engine(st).instant_query('z{a=~"foo.bar"}', S)) == 1
    assert len(Engine(st, compat="2").instant_query('z{a=~"foo.bar"}', S)) == 0
    assert len(Engine(st, compat="2").instant_query('z{a!~"foo.*"}', S)) == 1


def test_type_and_unit_labels_go_with_the_name():
    st = SampleStore(retention_seconds=None)
    st.append(Labels.of({"__name__": "c", "__type__": "counter", "__unit__": "seconds", "j": "a"}), 0, 1)
    got = Engine(st).instant_query("c * 2", S)
    assert [s.labels for s in got] == [Labels.of({"j": "a"})]


def test_histogram_fraction_over_classic_buckets():
    st = SampleStore(retention_seconds=None)
    for le, c in [("0", 0), ("2", 10), ("4", 20), ("6", 30), ("+Inf", 30)]:
        st.append(lbl("h_bucket", le=le), 0, c)
    got = Engine(st).instant_query("histogram_fraction(0, 3.5, h_bucket)", S)
    assert [s.v for s in got] == pytest.approx([17.5 / 30])
    assert bucket_fraction(1, 1, [(1.0, 1.0), (math.inf, 2.0)]) == 0
    assert math.isnan(bucket_fraction(0, 1, [(1.0, 1.0)]))


@pytest.mark.parametrize(("v", "text"), [(1, "1.0"), (0.25, "0.25"), (123456, "123456.0"), (1e6, "1e+06"),
                                         (1e-5, "1e-05"), (math.inf, "+Inf"), (-2.5, "-2.5"), (0, "0.0")])
def test_float_label_form(v, text):
    assert format_float_label(v) == text


def test_le_and_quantile_normalised_on_ingest():
    d = {"le": "1", "x": "1"}
    normalize_float_labels("h_bucket", d)
    assert d == {"le": "1.0", "x": "1"}
    d = {"le": "1"}
    normalize_float_labels("not_a_histogram", d)  # le only on *_bucket series
    assert d == {"le": "1"}
    d = {"quantile": "0.50"}
    normalize_float_labels("s", d)
    assert d == {"quantile": "0.5"}


GROUP = """
groups:
  - name: g
    labels: {team: api, severity: warning}
    rules:
      - alert: A
        expr: vector(1)
      - alert: B
        expr: vector(1)
        labels: {severity: critical}
      - record: r
        expr: vector(1)
"""


def test_group_labels_apply_to_every_rule_and_rule_labels_win():
    spec, errs = parse_rule_text(GROUP, "x.yaml")
    assert errs == []
    rules = {r.name: r.labels for r in spec.groups[0].rules}
    assert rules == {"A": {"team": "api", "severity": "warning"}, "B": {"team": "api", "severity": "critical"},
                     "r": {"team": "api", "severity": "warning"}}
    assert spec.groups[0].labels == {"team": "api", "severity": "warning"}


def test_group_label_names_are_checked():
    _, errs = parse_rule_text(GROUP.replace("team: api", "bad-name: api"), "x.yaml")
    assert any("invalid label name: bad-name" in str(e) for e in errs)


RULES = """
groups:
  - name: g
    rules:
      - record: r
        expr: {expr}
"""


@pytest.mark.parametrize(("expr", "features", "error"), [
    ("holt_winters(x[5m], 0.5, 0.5)", frozenset(), "renamed it double_exponential_smoothing"),
    ("double_exponential_smoothing(x[5m], 0.5, 0.5)", frozenset(), "promql-experimental-functions"),
    ("rate(x[4m+1m])", frozenset(), "promql-duration-expr"),
    ("rate(x[4m+1m])", ALL, None),
    ("double_exponential_smoothing(x[5m], 0.5, 0.5)", EXPERIMENTAL, None),
])
def test_rule_loading_follows_compat_and_features(tmp_path, store, expr, features, error):
    path = tmp_path / "r.yaml"
    path.write_text(RULES.format(expr=expr))
    mgr = RuleManager(store, Engine(store, features=features))
    _, errors = mgr.build([path])
    if error is None:
        assert errors == []
    else:
        assert len(errors) == 1 and error in errors[0] and "r.yaml:5:" in errors[0]


def test_limitk_and_limit_ratio():
    st = SampleStore(retention_seconds=None)
    for i in range(8):
        st.append(lbl("w", i=str(i), g=str(i % 2)), 0, float(i))
    eng = Engine(st, features=EXPERIMENTAL)
    assert len(eng.instant_query("limitk(3, w)", S)) == 3
    assert len(eng.instant_query("limitk by (g) (1, w)", S)) == 2
    assert eng.instant_query("limitk(0, w)", S) == Vector()
    half = {s.labels for s in eng.instant_query("limit_ratio(0.5, w)", S)}
    rest = {s.labels for s in eng.instant_query("limit_ratio(-0.5, w)", S)}
    assert half.isdisjoint(rest) and len(half | rest) == 8  # complements: every series once
    assert len(eng.instant_query("limit_ratio(1.5, w)", S)) == 8
    with pytest.raises(QueryError, match="NaN"):
        eng.instant_query("limit_ratio(NaN, w)", S)


def test_label_hash_is_prometheus_labels_hash():
    from monitor.promql.aggregations import label_hash
    import xxhash

    assert label_hash(Labels.of({"a": "b"})) == xxhash.xxh64_intdigest(b"a\xffb\xff")


def test_name_dropped_when_an_upper_case_label_sorts_before_it():
    """Regression: ``A`` sorts before ``__name__``; ``rate`` and ``* 2`` must still drop the name."""
    st = SampleStore(retention_seconds=None)
    st.append(Labels.of({"__name__": "u", "Host": "h"}), 0, 1)
    st.append(Labels.of({"__name__": "u", "Host": "h"}), 60 * S, 2)
    assert [s.labels for s in Engine(st).instant_query("u * 2", 60 * S)] == [Labels.of({"Host": "h"})]
    assert [s.labels for s in Engine(st).instant_query("rate(u[5m])", 60 * S)] == [Labels.of({"Host": "h"})]
