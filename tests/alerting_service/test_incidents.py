"""Incidents: opened by the leader when critical alerts of a group fire, acknowledged with the page,
resolved when all their alerts resolve, kept with their timeline; notes and public updates over
real HTTP; MTTA/MTTR per priority against the SLA. Real SQLite and PostgreSQL stores, the shipped routing tree."""

from __future__ import annotations

import pytest

from monitor.api.statuspage.data import public_title
from monitor.escalation.incidents import incident_stats
from monitor.escalation.policy import EscalationPolicy
from tests.alerting_service.conftest import T0, Clock, Harness, firing_rule_alert, make_config, resolved_rule_alert
from tests.alerting_service.scoped_api import auth

API_DOWN = {"alertname": "ApiDown", "severity": "critical", "service": "api", "instance": "a"}
API_DOWN_B = {**API_DOWN, "instance": "b"}
DB_SLOW = {"alertname": "DbSlow", "severity": "warning", "service": "db"}


@pytest.fixture
async def both(servers, state_cfg):
    """A harness on SQLite or PostgreSQL (``state_cfg``), its service started."""
    h = Harness(make_config(servers.slack.url, servers.pd.url, servers.smtp.smarthost, state_cfg), Clock(T0), servers)
    await h.new_service()
    yield h
    await h.close()


async def test_a_group_of_critical_alerts_is_one_incident_kept_after_they_resolve(both):
    harness = both
    svc, store = harness.service, harness.store
    a, b = firing_rule_alert(API_DOWN, T0 - 60), firing_rule_alert(API_DOWN_B, T0 - 30)
    warn = firing_rule_alert(DB_SLOW, T0 - 60)
    await svc.ingest([a, warn], source="rules")
    await harness.at(T0)
    opened = await store.list_incidents()
    assert len(opened) == 1  # the warning opens none
    inc = opened[0]
    assert (inc["status"], inc["priority"], inc["title"], inc["components"]) == ("open", "P0", "API is down", ["api"])
    assert inc["alerts"] == [a.fingerprint]

    await svc.ingest([b], source="rules")  # same group (alertname, service): joins it
    await harness.at(T0 + 10)
    assert len(await store.list_incidents()) == 1
    assert (await store.get_incident(inc["id"]))["alerts"] == [a.fingerprint, b.fingerprint]

    await svc.acknowledge(a.fingerprint, "alice", "api:127.0.0.1")
    await harness.at(T0 + 20)
    acked = await store.get_incident(inc["id"])
    assert acked["acknowledged_by"] == "alice" and acked["acknowledged_at"] is not None

    await svc.ingest([resolved_rule_alert(a, T0 + 600)], source="rules")
    await harness.at(T0 + 601)
    assert (await store.get_incident(inc["id"]))["status"] == "open"  # b still fires
    await svc.ingest([resolved_rule_alert(b, T0 + 900)], source="rules")
    await harness.at(T0 + 901)
    done = await store.get_incident(inc["id"])
    assert (done["status"], done["resolved_at"], done["public_status"]) == ("resolved", T0 + 901, "resolved")
    kinds = [e["kind"] for e in await store.list_incident_events(inc["id"])]
    assert kinds == ["opened", "alert_added", "acknowledged", "resolved"]

    # a restart keeps it; the group firing again opens a new incident
    svc = await harness.new_service()
    await svc.ingest([firing_rule_alert(API_DOWN, T0 + 2000)], source="rules")
    await harness.at(T0 + 2001)
    assert [i["status"] for i in await harness.store.list_incidents()] == ["open", "resolved"]


async def test_notes_and_public_updates_over_http(scoped, harness):
    a = firing_rule_alert(API_DOWN, T0 - 60)
    await harness.service.ingest([a], source="rules")
    await harness.at(T0)
    [inc] = await harness.store.list_incidents()
    c, url = scoped.client, f"/api/v1/incidents/{inc['id']}"

    r = await c.post(f"{url}/notes", json={"text": "restarting the API pods"}, headers=auth("oncall"))
    assert r.status_code == 201, r.text
    assert (await c.post(f"{url}/notes", json={"text": "x"}, headers=auth("reader"))).status_code == 403
    r = await c.post(f"{url}/updates", json={"text": "We are investigating errors on the API.",
                                             "status": "identified"}, headers=auth("oncall"))
    assert r.status_code == 201 and r.json()["public_status"] == "identified"
    bad = await c.post(f"{url}/updates", json={"text": "x", "status": "panicking"}, headers=auth("oncall"))
    assert bad.status_code == 400
    assert (await c.post(f"{url}/notes", json={"text": "  "}, headers=auth("oncall"))).status_code == 400
    assert (await c.post("/api/v1/incidents/999/notes", json={"text": "x"},
                         headers=auth("oncall"))).status_code == 404

    assert (await c.get(url)).status_code == 401  # internal notes: always behind a token
    got = (await c.get(url, headers=auth("reader"))).json()
    assert got["public_status"] == "identified"
    assert [(e["kind"], e["public"]) for e in got["timeline"]] == [("opened", False), ("note", False),
                                                                   ("update", True)]
    public = await harness.store.list_incident_events(inc["id"], public_only=True)
    assert [e["text"] for e in public] == ["We are investigating errors on the API."]
    audit = await harness.store.list_audit(target=f"incident:{inc['id']}")
    assert [x["action"] for x in audit] == ["incident.update", "incident.note"]

    listed = (await c.get("/api/v1/incidents", params={"status": "open"})).json()["incidents"]
    assert [i["id"] for i in listed] == [inc["id"]]
    s = (await c.get("/api/v1/incidents/stats", params={"days": 7})).json()
    assert s["priorities"]["P0"]["count"] == 1 and s["priorities"]["P0"]["open"] == 1


async def test_a_public_update_can_set_the_public_title(scoped, harness):
    await harness.service.ingest([firing_rule_alert(API_DOWN, T0 - 60)], source="rules")
    await harness.at(T0)
    [inc] = await harness.store.list_incidents()
    c, url = scoped.client, f"/api/v1/incidents/{inc['id']}"
    r = await c.post(f"{url}/updates", json={"text": "Some searches fail; we are on it.",
                                             "title": "  Search errors  "}, headers=auth("oncall"))
    assert r.status_code == 201 and r.json()["public_title"] == "Search errors", r.text
    for bad, where in [({"title": ""}, "updates"), ({"title": 7}, "updates"), ({"title": "x" * 201}, "updates"),
                       ({"title": "Search errors"}, "notes")]:
        r = await c.post(f"{url}/{where}", json={"text": "x", **bad}, headers=auth("oncall"))
        assert r.status_code == 400 and r.json()["error"].startswith("title: "), (bad, r.text)
    public = await harness.store.list_incident_events(inc["id"], public_only=True)
    assert [(e["text"], e["detail"]) for e in public] == [
        ("Some searches fail; we are on it.", {"status": inc["public_status"], "title": "Search errors"})]
    assert public_title(inc["components"], public, outage=False) == "Search errors"


def test_mtta_mttr_per_priority_against_the_sla(harness):
    policy = EscalationPolicy.from_config(harness.config.alerting.escalation)
    rows = [
        {"priority": "P0", "status": "resolved", "opened_at": 0.0, "acknowledged_at": 300.0, "resolved_at": 3600.0},
        {"priority": "P0", "status": "resolved", "opened_at": 0.0, "acknowledged_at": 1200.0,
         "resolved_at": 5 * 3600.0},  # ack after 20 min (SLA 15), resolved after 5 h (SLA 4 h)
        {"priority": "P0", "status": "open", "opened_at": 0.0, "acknowledged_at": None, "resolved_at": None},
        {"priority": "P2", "status": "resolved", "opened_at": 0.0, "acknowledged_at": 60.0, "resolved_at": 120.0},
    ]
    got = incident_stats(rows, policy, now=1000.0)
    p0 = got["P0"]
    assert (p0["count"], p0["open"], p0["mtta_seconds"], p0["mttr_seconds"]) == (3, 1, 750.0, (3600.0 + 18000.0) / 2)
    assert (p0["ack_sla_seconds"], p0["resolve_sla_seconds"]) == (900.0, 14400.0)
    assert (p0["ack_breaches"], p0["resolve_breaches"]) == (2, 1)  # the open one is past 15 min unacknowledged
    assert got["P1"]["count"] == 0 and got["P1"]["mtta_seconds"] is None
    assert got["P2"]["mttr_seconds"] == 120.0
