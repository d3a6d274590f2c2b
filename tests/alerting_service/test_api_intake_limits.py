"""Limits of the alert intake (``POST /api/v2/alerts`` and the webhook endpoint) on the real
HTTP server: body size (413), alerts per request (413), label/annotation lengths (400 naming the
field), and an object body reported without a bogus ``alerts[-1]`` index."""

from __future__ import annotations

import json

import httpx

from monitor.alerting.intake import MAX_ALERTS, MAX_VALUE_LENGTH, IntakeTooLarge, parse_v2_alerts, parse_webhook
from monitor.api.bodies import MAX_BODY_BYTES
from tests.alerting_service.conftest import INTAKE_TOKEN

INTAKE = {"Authorization": f"Bearer {INTAKE_TOKEN}"}

NOW = 1_700_000_000.0


def _alert(i: int = 0, **labels: str) -> dict:
    return {"labels": {"alertname": f"Limit{i}", "severity": "warning", **labels}}


def _webhook(alerts: list) -> dict:
    return {"version": "4", "status": "firing", "receiver": "r", "groupKey": "{}:{}", "alerts": alerts}


async def test_body_over_4_mib_is_413(harness, api):
    big = "x" * (MAX_BODY_BYTES + 1)
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE, timeout=60) as c:
        for path in ("/api/v2/alerts", "/api/v1/intake/alertmanager"):
            r = await c.post(path, content=big.encode(), headers={"content-type": "application/json"})
            assert r.status_code == 413, (path, r.text)
            assert "larger than" in r.json()["error"]

        # without Content-Length (chunked): the bytes read are counted
        async def chunks():
            for _ in range(5):
                yield b" " * (1024 * 1024)

        r = await c.post("/api/v2/alerts", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert (await c.get("/api/v2/alerts")).json() == []


async def test_too_many_alerts_is_413_and_none_is_taken(harness, api):
    items = [_alert(i) for i in range(MAX_ALERTS + 1)]
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE, timeout=60) as c:
        r = await c.post("/api/v2/alerts", json=items)
        assert r.status_code == 413
        assert f"limit is {MAX_ALERTS}" in r.json()["error"]
        r = await c.post("/api/v1/intake/alertmanager", json=_webhook(items))
        assert r.status_code == 413
        assert (await c.get("/api/v2/alerts")).json() == []


async def test_long_label_and_annotation_values_are_400_naming_the_field(harness, api):
    long = "v" * (MAX_VALUE_LENGTH + 1)
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE, timeout=60) as c:
        r = await c.post("/api/v2/alerts", json=[_alert(0), _alert(1, name=long)])
        assert r.status_code == 400
        assert r.json()["error"].startswith("alerts[1].labels.name: label value of")
        shown = (await c.get("/api/v2/alerts")).json()
        assert [a["labels"]["alertname"] for a in shown] == ["Limit0"]  # the valid one is kept

        item = _alert(2)
        item["annotations"] = {"description": long}
        r = await c.post("/api/v2/alerts", json=[item])
        assert r.status_code == 400
        assert r.json()["error"].startswith("alerts[0].annotations.description: annotation value of")

        item = _alert(3)
        item["labels"]["n" * (MAX_VALUE_LENGTH + 1)] = "x"
        r = await c.post("/api/v2/alerts", json=[item])
        assert r.status_code == 400
        assert r.json()["error"].startswith("alerts[0].labels: label name of")

        r = await c.post("/api/v1/intake/alertmanager", json=_webhook([_alert(4, name=long)]))
        assert r.status_code == 400
        assert r.json()["error"].startswith("alerts[0].labels.name: label value of")

        # exactly at the limit is fine
        r = await c.post("/api/v2/alerts", json=[_alert(5, name="v" * MAX_VALUE_LENGTH)])
        assert r.status_code == 200


async def test_object_body_is_reported_without_an_index(harness, api):
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE) as c:
        r = await c.post("/api/v2/alerts", json={"labels": {"alertname": "X"}})
        assert r.status_code == 400
        assert r.json()["error"] == "expected a list of alerts, got an object"
        r = await c.post("/api/v1/intake/alertmanager", content=json.dumps({"version": "4"}))
        assert r.status_code == 400
        assert r.json()["error"] == "alerts: expected a list of alerts, got null"


def test_parsers_enforce_the_alert_count():
    items = [_alert(i) for i in range(MAX_ALERTS + 1)]
    for parse in (lambda: parse_v2_alerts(items, NOW), lambda: parse_webhook(_webhook(items), NOW)):
        try:
            parse()
        except IntakeTooLarge as e:
            assert str(MAX_ALERTS) in str(e)
        else:
            raise AssertionError("no IntakeTooLarge")
    assert len(parse_v2_alerts(items[:MAX_ALERTS], NOW).alerts) == MAX_ALERTS
