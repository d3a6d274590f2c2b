"""Intake from a real Prometheus / Alertmanager: ``POST /api/v2/alerts`` and the webhook endpoint;
alerts go through the same routing and escalation; the v2 view shows them with markers."""

from __future__ import annotations

import httpx

from monitor.escalation.schedule import OnCallLookup
from tests.alerting_service.conftest import INTAKE_TOKEN, PAGER_KEY, PD_KEYS, T0

INTAKE = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def _fp():
    from model.labels import Labels

    return Labels.of({"alertname": "DatabaseDown", "severity": "critical", "service": "db"}).fingerprint()


def _v2(alertname: str, severity: str = "critical", **extra):
    item = {"labels": {"alertname": alertname, "severity": severity, "service": "db"},
            "annotations": {"summary": f"{alertname} fired"}, "startsAt": "2026-11-30T09:58:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up"}
    item.update(extra)
    return item


async def test_v2_intake_routes_pages_and_resolves_after_timeout(harness, api):
    primary = OnCallLookup.from_config(harness.config.alerting)("schedule:primary", T0)
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE) as c:
        r = await c.post("/api/v2/alerts", json=[_v2("DatabaseDown")])
        assert r.status_code == 200
        await harness.deliver()
        assert len(harness.pd_triggers(PAGER_KEY)) == 1
        assert len(harness.pd_triggers(PD_KEYS[primary])) == 1
        [shown] = (await c.get("/api/v2/alerts")).json()
        assert shown["labels"]["alertname"] == "DatabaseDown"
        assert shown["generatorURL"] == "http://prometheus:9090/graph?g0.expr=up"
        assert {x["name"] for x in shown["receivers"]} == {"pager", "slack-incidents"}
        assert shown["escalation"]["status"] == "escalating"

        # Prometheus re-sends every evaluation: nothing new
        harness.clock.t = T0 + 60
        assert (await c.post("/api/v2/alerts", json=[_v2("DatabaseDown")])).status_code == 200
        await harness.deliver()
        assert len(harness.pd_triggers(PD_KEYS[primary])) == 1

        # invalid items: 400 naming them, valid ones still taken
        r = await c.post("/api/v2/alerts", json=[{"labels": {}}, _v2("Other", severity="warning")])
        assert r.status_code == 400 and "alerts[0].labels" in r.text
        assert len((await c.get("/api/v2/alerts")).json()) == 2
        assert (await c.post("/api/v2/alerts", content=b"{not json")).status_code == 400

    # no refresh for resolve_timeout (5m): resolved by timeout, escalation ends
    fp = shown["fingerprint"]
    await harness.at(T0 + 60 + 301)
    assert harness.service.escalation.get(fp).state.status == "resolved"
    assert harness.service.escalation.get(fp).state.resolved_by == "timeout"
    row = await harness.store.get_alert(fp)
    assert row["state"] == "resolved"


async def test_alertmanager_webhook_intake(harness, api):
    payload = {"version": "4", "status": "firing", "receiver": "codebook", "groupKey": "{}:{}",
               "groupLabels": {}, "commonLabels": {}, "externalURL": "http://am:9093",
               "alerts": [dict(_v2("DatabaseDown"), status="firing")]}
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE) as c:
        r = await c.post("/api/v1/intake/alertmanager", json=payload)
        assert r.status_code == 200 and r.json()["data"]["alerts"] == 1
        assert (await c.post("/api/v1/intake/alertmanager", json=dict(payload, version="3"))).status_code == 400
    await harness.deliver()
    assert len(harness.pd_triggers(PAGER_KEY)) == 1
    resolved = dict(payload, status="resolved",
                    alerts=[dict(_v2("DatabaseDown"), status="resolved", endsAt="2026-11-30T10:00:30Z")])
    harness.clock.t = T0 + 30
    async with httpx.AsyncClient(base_url=api.url, headers=INTAKE) as c:
        assert (await c.post("/api/v1/intake/alertmanager", json=resolved)).status_code == 200
    await harness.at(T0 + 31)
    assert harness.service.escalation.get(_fp()).state.resolved_by == "webhook"
    assert not any(e["event_action"] == "resolve" and e["routing_key"] == PAGER_KEY for e in harness.pd_events())
    await harness.at(T0 + 301)  # the group's next flush (group_interval 5m) carries the resolved alert
    assert any(e["event_action"] == "resolve" and e["routing_key"] == PAGER_KEY for e in harness.pd_events())
