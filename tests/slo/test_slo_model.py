"""The SLO model and the rule generator: tiers and factors, Sloth names, expressions, the guard."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from model.labels import Labels
from monitor.promql.engine import Engine
from monitor.rules.rulefmt import parse_rule_text
from monitor.slo.generate import alert_name, generate_groups, rule_file_text, windows_of
from monitor.slo.model import SLO
from monitor.tsdb import SampleStore
from monitor.tsdb.retention import DEFAULT_RETENTION_RULES, RetentionRule

RATIO = {"ratio": {"error_query": 'sum(rate(http_requests_total{status=~"5.."}[{{.window}}]))',
                   "total_query": "sum(rate(http_requests_total[{{ .window }}]))"}}


def _slo(**kw) -> SLO:
    return SLO.model_validate({"service": "api", "name": "availability", "objective": 99.9, "sli": RATIO, **kw})


def test_workbook_factors_for_30_days():
    slo = _slo()
    assert [(t.name, t.factor(slo.period_seconds), t.long, t.short_window, t.severity)
            for t in slo.alerting.tiers] == [
        ("page-fast", 14.4, 3600, 300, "critical"), ("page-slow", 6.0, 21600, 1800, "critical"),
        ("ticket-fast", 3.0, 86400, 7200, "warning"), ("ticket-slow", 1.0, 259200, 21600, "warning")]


@pytest.mark.parametrize("period,factors", [
    ("28d", [13.44, 5.6, 2.8, 0.9333]),
    ("7d", [3.36, 1.4, 0.7, 0.2333]),
    ("calendar_month", [14.4, 6.0, 3.0, 1.0]),
])
def test_factors_follow_budget_fraction_period_and_long_window(period, factors):
    slo = _slo(period=period)
    assert [t.factor(slo.period_seconds) for t in slo.alerting.tiers] == factors


def test_explicit_burn_rate_and_default_short_window():
    slo = _slo(alerting={"tiers": [{"name": "fast", "long": "2h", "burn_rate": 10, "severity": "critical"}]})
    tier = slo.alerting.tiers[0]
    assert tier.factor(slo.period_seconds) == 10 and tier.short_window == 600
    assert windows_of(slo) == [300, 600, 7200]


def test_defaults_id_alert_name_and_min_events():
    slo = _slo()
    assert slo.id == "api-availability" and slo.alerting.name == "ApiAvailabilityBudgetBurn"
    assert slo.min_events == 50 and slo.error_budget == 0.001
    probe = SLO.model_validate({"service": "db", "name": "up", "objective": 99.5,
                                "sli": {"probe": {"selector": '{kind="database"}'}}})
    assert probe.min_events == 3


@pytest.mark.parametrize("change,message", [
    ({"objective": 100}, "less than 100"),
    ({"period": "2d"}, "'30d', '28d', '7d' or 'calendar_month'"),
    ({"sli": {}}, "exactly one of ratio, latency, probe"),
    ({"sli": {"ratio": {"error_query": "sum(rate(x[5m]))", "total_query": "sum(rate(x[{{.window}}]))"}}},
     "{{.window}} placeholder"),
    ({"sli": {"ratio": {"error_query": "sum(rate(x[{{.window}}])", "total_query": "sum(rate(x[{{.window}}]))"}}},
     "could not parse expression"),
    ({"labels": {"tier": "x"}}, 'label "tier" is set by the generated rules'),
    ({"alerting": {"tiers": [{"name": "a", "long": "1h", "severity": "critical"}]}},
     "one of budget_fraction and burn_rate is required"),
    ({"alerting": {"tiers": [{"name": "a", "long": "1h", "short": "2h", "burn_rate": 2, "severity": "critical"}]}},
     "must be shorter than long window"),
])
def test_invalid_slos_are_rejected_with_a_reason(change, message):
    with pytest.raises(ValidationError) as exc:
        _slo(**change)
    assert message in str(exc.value)


def _rules(slo: SLO) -> list[dict]:
    (group,) = generate_groups([slo])
    return group["rules"]


def test_sloth_compatible_recording_rules():
    rules = _rules(_slo(labels={"team": "backend"}))
    records = [r["record"] for r in rules if "record" in r]
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{w}" in records
    for name in ("slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days", "slo:current_burn_rate:ratio",
                 "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio", "slo:info",
                 "sloth_slo_info"):
        assert name in records
    first = rules[0]
    assert first["labels"] == {"sloth_id": "api-availability", "sloth_service": "api", "sloth_slo": "availability",
                               "team": "backend", "sloth_window": "5m"}
    assert "[5m]" in first["expr"] and "{{" not in first["expr"]


def test_period_sli_is_traffic_weighted():
    period = next(r for r in _rules(_slo()) if r.get("record") == "slo:sli_error:ratio_rate30d")
    assert period["expr"].startswith("sum_over_time(slo:sli_error_events:count5m{")
    assert "sum_over_time(slo:sli_events:count5m{" in period["expr"]


def test_long_windows_read_the_recorded_5m_counts_not_days_of_raw_samples():
    rules = {r["record"]: r["expr"] for r in _rules(_slo()) if "record" in r}
    assert "http_requests_total" in rules["slo:sli_error:ratio_rate1h"]
    for w in ("2h", "6h", "1d", "3d"):
        assert "http_requests_total" not in rules[f"slo:sli_error:ratio_rate{w}"]
        assert rules[f"slo:sli_error:ratio_rate{w}"].startswith("sum_over_time(slo:sli_error_events:count5m{")
        # the events recorded in the window (disjoint 5-minute spans), not an average scaled up
        assert rules[f"slo:sli_events:count{w}"].startswith("sum_over_time(slo:sli_events:count5m{")
        assert rules[f"slo:sli_events:count{w}"].endswith(f"[{w}:5m])")
    # recorded before any rule reads it
    names = [r.get("record") for r in _rules(_slo())]
    assert names.index("slo:sli_error_events:count5m") < names.index("slo:sli_error:ratio_rate2h")


# The count is as of the last 5-minute step (10d here, 7 s before the query): 165 s of a 180 s history.
@pytest.mark.parametrize(("history_s", "expected"), [(180, 165 * 10), (2 * 86400, 86400 * 10)])
def test_long_window_event_counts_are_the_events_recorded(history_s, expected):
    # Regression: count1d was avg_over_time(count5m[1d]) * 288, so a store 3 minutes old counted
    # a day of events and the minimum-events guard let ticket tiers fire on a fresh start.
    # 10 events/s, recorded every 15 s into the store's default slo:* retention (1 m resolution).
    slo = _slo()
    rules = {r["record"]: r for r in _rules(slo) if "record" in r}
    store = SampleStore(retention_seconds=None, retention_rules=[
        RetentionRule.parse(sel, retention, resolution) for sel, retention, resolution in DEFAULT_RETENTION_RULES])
    labels = Labels.of(__name__="slo:sli_events:count5m", **rules["slo:sli_events:count5m"]["labels"])
    end_ms = 10 * 86400_000 + 7_000  # not on a 5-minute step
    start_ms = end_ms - history_s * 1000
    for t in range(start_ms, end_ms + 1, 15_000):
        store.append(labels, t, 10.0 * min(300.0, (t - start_ms) / 1000))
    engine = Engine(store)
    (sample,) = engine.instant_query(rules["slo:sli_events:count1d"]["expr"], end_ms)
    assert sample.v == pytest.approx(expected, rel=0.01)


def test_one_alert_per_tier_with_tier_label_guard_and_inhibition():
    slo = _slo()
    alerts = [r for r in _rules(slo) if "alert" in r]
    assert [a["alert"] for a in alerts] == [alert_name(slo, t) for t in slo.alerting.tiers] == [
        "ApiAvailabilityBudgetBurnPageFast", "ApiAvailabilityBudgetBurnPageSlow",
        "ApiAvailabilityBudgetBurnTicketFast", "ApiAvailabilityBudgetBurnTicketSlow"]
    assert [(a["labels"]["tier"], a["labels"]["severity"]) for a in alerts] == [
        ("page-fast", "critical"), ("page-slow", "critical"), ("ticket-fast", "warning"), ("ticket-slow", "warning")]
    fast = alerts[0]["expr"]
    assert "/ 0.001 > 14.4" in fast and "slo:sli_events:count1h" in fast and ">= 50" in fast
    assert "unless" not in fast
    # each slower tier is suppressed while any faster tier's condition holds
    assert alerts[3]["expr"].count("unless on(sloth_id)") == 1
    assert all(f"> {f}" in alerts[3]["expr"] for f in ("14.4", "6", "3", "1"))
    assert "Budget left" in alerts[0]["annotations"]["description"]


def test_latency_and_probe_expressions():
    lat = SLO.model_validate({"service": "api", "name": "latency", "objective": 99, "sli": {
        "latency": {"metric": "http_request_duration_seconds", "threshold": "5s", "selector": '{job="api"}'}}})
    expr = _rules(lat)[0]["expr"]
    assert 'http_request_duration_seconds_bucket{job="api", le="5.0"}[5m]' in expr
    assert 'http_request_duration_seconds_count{job="api"}[5m]' in expr
    probe = SLO.model_validate({"service": "db", "name": "up", "objective": 99.9,
                                "sli": {"probe": {"selector": '{kind="database"}'}}})
    rules = _rules(probe)
    assert 'sum(sum_over_time(probe_success{kind="database"}[5m]))' in rules[0]["expr"]
    assert rules[1]["expr"] == 'sum(count_over_time(probe_success{kind="database"}[5m]))'


def test_generated_file_passes_our_rule_validation():
    slos = [_slo(), SLO.model_validate({"service": "db", "name": "up", "objective": 99.5,
                                        "sli": {"probe": {"query": 'up{job="db"} == bool 1'}}})]
    text = rule_file_text(slos)
    spec, errors = parse_rule_text(text, "<slos>")
    assert errors == []
    assert [g.name for g in spec.groups] == ["slo-api-availability", "slo-db-up"]
    assert yaml.safe_load(text)["groups"][1]["rules"][0]["expr"].count("[5m:]") == 2


def test_group_interval_per_slo_or_for_all():
    groups = generate_groups([_slo(interval="30s"), _slo(name="other")], interval=60)
    assert [g.get("interval") for g in groups] == ["30s", "1m"]
    assert "interval" not in generate_groups([_slo()])[0]


def test_oncall_sli_is_a_ratio_over_the_oncall_counters_guarded_on_the_long_window_only():
    slo = SLO.model_validate({"service": "oncall", "name": "resolve-p1", "objective": 90,
                              "sli": {"oncall": {"priority": "P1", "measure": "resolve",
                                                 "selector": '{instance="m:9115"}'}}})
    assert slo.sli.kind == "oncall" and slo.events_min == 3
    ratio = slo.sli.as_ratio()
    assert ratio is not None and ratio.error_query == (
        'sum(rate(monitor_oncall_resolutions_total{priority="P1", instance="m:9115", within_sla="false"}'
        '[{{.window}}])) or vector(0)')
    assert ratio.total_query == ('sum(rate(monitor_oncall_resolutions_total{priority="P1", instance="m:9115"}'
                                 '[{{.window}}]))')
    (group,) = generate_groups([slo])
    info = next(r for r in group["rules"] if r.get("record") == "slo:info")
    assert (info["labels"]["slo_sli_kind"], info["labels"]["oncall_priority"], info["labels"]["oncall_measure"]) == (
        "oncall", "P1", "resolve")
    fast = next(r for r in group["rules"] if r.get("alert") == "OncallResolveP1BudgetBurnPageFast")
    cond = fast["expr"]
    assert "slo:sli_events:count1h" in cond and "slo:sli_events:count5m" not in cond  # no short-window guard
    with pytest.raises(ValidationError, match="exactly one of ratio, latency, probe, oncall"):
        SLO.model_validate({"service": "a", "name": "b", "objective": 90, "sli": {}})
