"""The alert state machine, stepped with a manual clock minute by minute (Prometheus rules/alerting_test.go)."""

from __future__ import annotations

import pytest

from monitor.errors import RuleError
from monitor.promql.value import Sample, Vector
from monitor.rules.alerting import ALERTS_FOR_STATE_METRIC, ALERTS_METRIC, AlertingRule
from model.labels import Labels

M = 60.0
API = Labels.of(__name__="up", job="api", instance="a:80")
DB = Labels.of(__name__="up", job="db", instance="b:80")


class Source:
    """A query function whose result the test sets minute by minute."""

    def __init__(self) -> None:
        self.result: dict[Labels, float] = {}
        self.calls: list[tuple[object, int]] = []

    def __call__(self, expr, t_ms):
        self.calls.append((expr, t_ms))
        return Vector(Sample(lbl, t_ms, v) for lbl, v in self.result.items())


def states(rule):
    return {a.labels.get("job"): a.state for a in rule.alerts()}


def rule(**kw):
    kw.setdefault("for_seconds", 5 * M)
    return AlertingRule("InstanceDown", "up == 0", labels={"severity": "critical"},
                        annotations={"summary": "{{ $labels.instance }} down ({{ $value }})"}, **kw)


def test_pending_then_firing_then_resolved_then_forgotten():
    r, q = rule(), Source()
    q.result = {API: 0.0}
    timeline = []
    for minute in range(0, 8):
        if minute == 7:
            q.result = {}
        r.eval(minute * M, q)
        timeline.append(states(r).get("api", "-"))
    assert timeline == ["pending"] * 5 + ["firing", "firing", "inactive"]
    (a,) = r.alerts()
    assert (a.active_at, a.fired_at, a.resolved_at) == (0.0, 5 * M, 7 * M)
    assert a.labels == Labels.of(alertname="InstanceDown", severity="critical", job="api", instance="a:80")
    assert a.annotations == {"summary": "a:80 down (0)"}
    # kept for the resolved retention (15 min), then dropped
    r.eval(7 * M + 15 * M, q)
    assert states(r) == {"api": "inactive"}
    r.eval(7 * M + 15 * M + 1, q)
    assert r.alerts() == []


def test_gone_while_pending_is_dropped_and_restarts_the_timer():
    r, q = rule(), Source()
    q.result = {API: 0.0}
    r.eval(0, q)
    r.eval(M, q)
    q.result = {}
    r.eval(2 * M, q)
    assert r.alerts() == []
    q.result = {API: 0.0}
    r.eval(3 * M, q)
    assert r.alerts()[0].active_at == 3 * M
    r.eval(7 * M, q)
    assert states(r) == {"api": "pending"}
    r.eval(8 * M, q)
    assert states(r) == {"api": "firing"}


def test_for_zero_fires_at_once():
    r, q = rule(for_seconds=0), Source()
    q.result = {API: 0.0}
    (a,) = r.eval(0, q)
    assert a.state == "firing" and a.fired_at == 0


def test_keep_firing_for_holds_a_firing_alert():
    r, q = rule(for_seconds=0, keep_firing_for_seconds=3 * M), Source()
    q.result = {API: 0.0}
    r.eval(0, q)
    q.result = {}
    seen = []
    for minute in range(1, 6):
        r.eval(minute * M, q)
        seen.append(states(r)["api"])
    # cleared at 1m: held while now - keep_firing_since < 3m (1m, 2m, 3m), resolved at 4m
    assert seen == ["firing", "firing", "firing", "inactive", "inactive"]
    assert r.alerts()[0].resolved_at == 4 * M


def test_keep_firing_for_resets_when_the_condition_returns():
    r, q = rule(for_seconds=0, keep_firing_for_seconds=2 * M), Source()
    q.result = {API: 0.0}
    r.eval(0, q)
    q.result = {}
    r.eval(M, q)
    assert r.alerts()[0].keep_firing_since == M
    q.result = {API: 0.0}
    r.eval(2 * M, q)
    assert r.alerts()[0].keep_firing_since is None and states(r) == {"api": "firing"}


def test_a_resolved_alert_that_returns_starts_pending_again():
    r, q = rule(for_seconds=M), Source()
    q.result = {API: 0.0}
    r.eval(0, q)
    r.eval(M, q)
    q.result = {}
    r.eval(2 * M, q)
    q.result = {API: 0.0}
    r.eval(3 * M, q)
    (a,) = r.alerts()
    assert (a.state, a.active_at, a.resolved_at) == ("pending", 3 * M, None)


def test_alerts_are_keyed_per_series_and_value_and_annotations_refresh():
    r, q = rule(for_seconds=M), Source()
    q.result = {API: 0.0, DB: 0.0}
    r.eval(0, q)
    q.result = {API: 0.5, DB: 0.0}
    r.eval(M, q)
    by = {a.labels.get("job"): a for a in r.alerts()}
    assert by["api"].value == 0.5 and by["api"].annotations["summary"] == "a:80 down (0.5)"
    assert by["api"].active_at == 0 and by["api"].fingerprint != by["db"].fingerprint
    assert r.state() == "firing"


def test_alerts_and_alerts_for_state_samples():
    r, q = rule(for_seconds=M), Source()
    q.result = {API: 0.0}
    r.eval(30.5, q)
    assert sorted(r.samples) == sorted([
        (Labels.of(__name__=ALERTS_METRIC, alertname="InstanceDown", alertstate="pending", severity="critical",
                   job="api", instance="a:80"), 1.0),
        (Labels.of(__name__=ALERTS_FOR_STATE_METRIC, alertname="InstanceDown", severity="critical",
                   job="api", instance="a:80"), 30.0),
    ])
    r.eval(90.5, q)
    assert any(lbl.get("alertstate") == "firing" for lbl, _ in r.samples)
    q.result = {}
    r.eval(150.5, q)
    assert r.samples == []  # resolved alerts write no ALERTS sample


def test_templated_labels_and_duplicate_label_sets():
    r = AlertingRule("X", "up", labels={"severity": "warning", "team": "{{ $labels.job }}-team"})
    q = Source()
    q.result = {API: 1.0}
    (a,) = r.eval(0, q)
    assert a.labels.get("team") == "api-team"
    # two series that differ only in a label the rule overwrites collide
    r2 = AlertingRule("X", "up", labels={"job": "same"})
    q.result = {API.merge({"instance": "z"}): 1.0, DB.merge({"instance": "z"}): 1.0}
    with pytest.raises(RuleError, match="same labelset after applying alert labels"):
        r2.eval(0, q)


def test_limit_exceeded_clears_alerts():
    r, q = rule(limit=1), Source()
    q.result = {API: 0.0, DB: 0.0}
    with pytest.raises(RuleError, match="exceeded limit of 1 with 2 alerts"):
        r.eval(0, q)
    assert r.alerts() == []


def test_query_failure_is_a_rule_error_and_uses_ms_timestamps():
    def broken(expr, t_ms):
        raise ValueError("boom")

    with pytest.raises(RuleError, match="boom"):
        rule().eval(1.5, broken)
    q = Source()
    rule().eval(1.5, q)
    assert q.calls == [("up == 0", 1500)]


API_ALERT = {"alertname": "InstanceDown", "severity": "critical", "job": "api", "instance": "a:80"}
API_FP = Labels.of(API_ALERT).fingerprint()


def row(**kw):
    return {"fingerprint": API_FP, "labels": dict(API_ALERT), "fired_at": None, "state": "pending", **kw}


def test_restore_keeps_the_time_spent_pending_and_shifts_active_at_by_the_downtime():
    r, q = rule(), Source()  # for: 5m, shorter than the grace period: restored all the same
    # pending since -4m, last seen active at -1m, restarted at 0: 1 minute of downtime
    assert r.restore([row(active_at=-4 * M, seen_at=-M)], 0.0) == 1
    (a,) = r.alerts()
    assert (a.state, a.active_at) == ("pending", -3 * M)
    q.result = {API: 0.0}
    r.eval(M, q)
    assert r.alerts()[0].state == "pending"
    r.eval(2 * M, q)  # 3m pending before the outage + 2m after it: fires, the timer was not reset
    assert (r.alerts()[0].state, r.alerts()[0].fired_at) == ("firing", 2 * M)


def test_restore_gives_a_long_for_at_least_the_grace_period():
    r = rule(for_seconds=20 * M)
    # 15 of 20 minutes done at the crash, 1 minute down: 10 minutes (the grace period) left
    r.restore([row(active_at=-16 * M, seen_at=-M)], 0.0, for_grace_period=10 * M)
    assert r.alerts()[0].active_at == 10 * M - 20 * M
    r2 = rule(for_seconds=20 * M)
    # 2 of 20 minutes done, 1 minute down: shifted by the downtime (18 minutes left)
    r2.restore([row(active_at=-3 * M, seen_at=-M)], 0.0, for_grace_period=10 * M)
    assert r2.alerts()[0].active_at == -2 * M


def test_restored_firing_alert_stays_firing_with_its_fired_at():
    r, q = rule(), Source()
    r.restore([row(active_at=-10 * M, fired_at=-5 * M, state="firing", seen_at=-M,
                   annotations={"summary": "a:80 down (0)"})], 0.0)
    (b,) = r.alerts()
    assert (b.state, b.active_at, b.fired_at) == ("firing", -10 * M, -5 * M)
    assert b.annotations == {"summary": "a:80 down (0)"}
    q.result = {API: 0.0}
    (b,) = r.eval(0, q)
    assert (b.state, b.fired_at) == ("firing", -5 * M)
    # Returned, yet still held until the rule manager sees enough input data (issue 16 A): the
    # next evaluation, on a window still short of samples, must not resolve it.
    assert list(r.held) == [b.fingerprint]
    q.result = {}
    (b,) = r.eval(15, q)
    assert (b.state, b.fired_at) == ("firing", -5 * M)
    r.release()
    (b,) = r.eval(30, q)
    assert b.state == "inactive"


def test_state_older_than_the_outage_tolerance_is_not_restored():
    r = rule()
    assert r.restore([row(active_at=-2 * 3600.0, seen_at=-3601.0)], 0.0, outage_tolerance=3600.0) == 0
    assert r.alerts() == []
    assert r.restore([row(active_at=-2 * 3600.0, seen_at=-3599.0, state="firing")], 0.0,
                     outage_tolerance=3600.0) == 1


def test_rows_that_do_not_match_their_labels_are_ignored():
    r = rule()
    assert r.restore([{"fingerprint": "0" * 16, "labels": API_ALERT, "active_at": 0, "state": "firing"}], 0.0) == 0


def test_restored_alerts_are_held_until_released_then_resolved_or_dropped():
    r, q = rule(), Source()
    r.restore([row(active_at=-10 * M, fired_at=-5 * M, state="firing", seen_at=-1.0)], 0.0)
    # Evaluations with no data (the expression returns nothing): neither resolved nor dropped.
    for t in (0.0, 15.0, 30.0):
        (a,) = r.eval(t, q)
        assert a.state == "firing"
    assert {lbl.get("__name__") for lbl, _ in r.samples} == {ALERTS_METRIC, ALERTS_FOR_STATE_METRIC}
    r.release_ready({"up": [(DB, 1)]})  # data of another instance: still held
    assert r.eval(45.0, q)[0].state == "firing"
    r.release_ready({"up": [(API, 1)]})
    (a,) = r.eval(60.0, q)
    assert (a.state, a.resolved_at) == ("inactive", 60.0)

    p = rule()
    p.restore([row(active_at=-M, seen_at=-1.0)], 0.0)
    assert p.eval(0.0, q)[0].state == "pending"
    p.release()
    assert p.eval(15.0, q) == []
    q.result = {API: 0.0}
    assert p.eval(30.0, q)[0].active_at == 30.0


def test_to_api_shape():
    r, q = rule(for_seconds=0), Source()
    q.result = {API: 0.0}
    r.eval(1.5, q)
    api = r.to_api()
    assert (api["type"], api["name"], api["query"], api["state"], api["duration"]) == \
        ("alerting", "InstanceDown", "up == 0", "firing", 0.0)
    assert api["alerts"] == [{"labels": {"alertname": "InstanceDown", "instance": "a:80", "job": "api",
                                         "severity": "critical"},
                              "annotations": {"summary": "a:80 down (0)"}, "state": "firing",
                              "activeAt": "1970-01-01T00:00:01.500Z", "value": "0e+00"}]


def test_recording_rule_sets_name_and_labels_and_rejects_collisions():
    from monitor.rules.recording import RecordingRule

    q = Source()
    q.result = {API: 2.0, DB: 3.0}
    r = RecordingRule("job:up:max", "max by (job) (up)", labels={"team": "core"})
    assert sorted(r.eval(0, q)) == [
        (Labels.of(__name__="job:up:max", job="api", instance="a:80", team="core"), 2.0),
        (Labels.of(__name__="job:up:max", job="db", instance="b:80", team="core"), 3.0),
    ]
    with pytest.raises(RuleError, match="same labelset after applying rule labels"):
        RecordingRule("x", "up", labels={"job": "j", "instance": "i"}).eval(0, q)
    with pytest.raises(RuleError, match="exceeded limit of 1 with 2 series"):
        RecordingRule("x", "up", limit=1).eval(0, q)
