"""Intake of Alertmanager v2 API bodies and webhook (v4) payloads."""

from __future__ import annotations

import pytest

from model.timestamps import parse_rfc3339
from monitor.alerting.intake import parse_v2_alerts, parse_webhook
from tests.support.alerting_helpers import unix

NOW = unix(2026, 11, 30, 10, 0)


def test_prometheus_style_body():
    body = [{
        "labels": {"alertname": "ApiDown", "severity": "critical", "empty": ""},
        "annotations": {"summary": "API down"},
        "startsAt": "2026-11-30T09:58:00.123456789Z",
        "endsAt": "2026-11-30T10:04:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }]
    res = parse_v2_alerts(body, NOW)
    assert res.ok
    (a,) = res.alerts
    assert a.labels.as_dict() == {"alertname": "ApiDown", "severity": "critical"}  # empty value dropped
    assert a.starts_at == unix(2026, 11, 30, 9, 58, 0, 123456)
    assert a.ends_at == unix(2026, 11, 30, 10, 4) and not a.timeout
    assert not a.resolved(NOW) and a.resolved(unix(2026, 11, 30, 10, 4))
    assert a.updated_at == NOW and a.generator_url.startswith("http://prometheus")


def test_missing_times_follow_alertmanager():
    res = parse_v2_alerts([
        {"labels": {"alertname": "A"}},
        {"labels": {"alertname": "B"}, "endsAt": "2026-11-30T09:00:00Z"},
        {"labels": {"alertname": "C"}, "startsAt": "0001-01-01T00:00:00Z"},
    ], NOW, resolve_timeout=300)
    a, b, c = res.alerts
    assert a.starts_at == NOW and a.ends_at == NOW + 300 and a.timeout
    assert b.starts_at == b.ends_at == unix(2026, 11, 30, 9) and b.resolved(NOW)
    assert c.starts_at == NOW


def test_validation_errors_name_index_and_field_and_keep_valid_ones():
    res = parse_v2_alerts([
        {"labels": {"alertname": "Good"}},
        {"annotations": {"summary": "no labels"}},
        {"labels": {"alertname": ""}},
        {"labels": {"bad-name": "x"}},
        {"labels": {"a": "b"}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T09:00:00Z"},
        {"labels": {"a": "b"}, "startsAt": "yesterday"},
        {"labels": {"a": 1}},
        {"labels": {"a": "b"}, "annotations": {"bad key": "x"}},
        "not an object",
    ], NOW)
    assert [a.name for a in res.alerts] == ["Good"]
    assert [str(e) for e in res.errors] == [
        "alerts[1].labels: at least one label pair required",
        "alerts[2].labels: at least one label pair required",
        'alerts[3].labels: invalid label name "bad-name"',
        "alerts[4].endsAt: start time must be before end time",
        'alerts[5].startsAt: invalid RFC 3339 time "yesterday"',
        "alerts[6].labels.a: expected a string value, got int",
        'alerts[7].annotations: invalid annotation name "bad key"',
        "alerts[8]: expected an object, got str",
    ]
    assert res.error_text().count("\n") == 7
    assert str(parse_v2_alerts({"labels": {}}, NOW).errors[0]) == "expected a list of alerts, got an object"


def test_webhook_v4_payload():
    payload = {
        "version": "4", "groupKey": '{}:{alertname="DatabaseDown"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "codebook", "groupLabels": {"alertname": "DatabaseDown"},
        "commonLabels": {"alertname": "DatabaseDown"}, "commonAnnotations": {}, "externalURL": "http://am:9093",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "DatabaseDown", "instance": "db1"},
             "annotations": {"summary": "down"}, "startsAt": "2026-11-30T09:50:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/graph", "fingerprint": "abc"},
            {"status": "resolved", "labels": {"alertname": "DatabaseDown", "instance": "db2"},
             "annotations": {}, "startsAt": "2026-11-30T09:00:00Z", "endsAt": "2026-11-30T09:30:00Z"},
            {"status": "weird", "labels": {"alertname": "X"}},
        ],
    }
    msg = parse_webhook(payload, NOW)
    assert (msg.receiver, msg.status, msg.group_labels) == ("codebook", "firing", {"alertname": "DatabaseDown"})
    firing, resolved = msg.result.alerts
    assert firing.ends_at is None and not firing.resolved(NOW)
    assert resolved.ends_at == unix(2026, 11, 30, 9, 30) and resolved.resolved(NOW)
    assert [str(e) for e in msg.result.errors] == ['alerts[2].status: expected "firing" or "resolved", got "weird"']
    with pytest.raises(ValueError, match="unsupported webhook version"):
        parse_webhook({"version": "3", "alerts": []}, NOW)


def test_parse_time():
    assert parse_rfc3339("2026-11-30T10:00:00+01:00") == unix(2026, 11, 30, 9)
    assert parse_rfc3339("") is None and parse_rfc3339(None) is None
    with pytest.raises(ValueError, match="no time zone"):
        parse_rfc3339("2026-11-30T10:00:00")


def test_dropped_labels_never_reach_the_alert_or_its_fingerprint():
    """``api.intake_drop_labels``: an HA pair's two copies of an alert are one alert (one fingerprint)."""
    from model.labels import Labels

    body = [{"labels": {"alertname": "DiskFull", "severity": "warning", "replica": r}} for r in ("a", "b")]
    body.append({"labels": {"replica": "a"}})  # nothing else: keeps its only label
    alerts = parse_v2_alerts(body, 100.0, drop=["replica", "absent"]).alerts
    one = Labels.of({"alertname": "DiskFull", "severity": "warning"})
    assert [a.labels for a in alerts[:2]] == [one, one]
    assert alerts[0].fingerprint == alerts[1].fingerprint == one.fingerprint()
    assert alerts[2].labels == Labels.of({"replica": "a"})

    hook = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "DiskFull", "severity": "warning", "replica": "b",
                                        "prometheus": "ha/prom-1"}}]}
    (alert,) = parse_webhook(hook, 100.0, drop=("replica", "prometheus")).result.alerts
    assert alert.labels == one and alert.fingerprint == one.fingerprint()
