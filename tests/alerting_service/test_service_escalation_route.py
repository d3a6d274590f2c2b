"""Escalation follows the route (issue 9, item 6): the first page waits for the group's
``group_wait``, and a silence that applies when it is due stops it."""

from __future__ import annotations

from model.alert import Alert
from tests.alerting_service.conftest import PAGER_KEY, PD_KEYS, T0

CRIT = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}


def fresh(t: float) -> Alert:
    return Alert(CRIT, {"summary": "API is down", "description": "503"}, t, t + 300, timeout=True)


def pages(h) -> list:
    return [e for e in h.pd_events() if e["routing_key"] in PD_KEYS.values() and e["event_action"] == "trigger"]


async def test_first_page_waits_for_group_wait(harness):
    h = harness
    svc = await h.new_service()
    await svc.ingest([fresh(T0)], now=T0, source="api:prom")
    await h.at(T0 + 0.6)
    assert pages(h) == [] and h.pd_triggers(PAGER_KEY) == []
    await h.at(T0 + 9)
    assert pages(h) == []
    await h.at(T0 + 10)                        # the pager route's group_wait is 10 s
    assert len(pages(h)) == 1 and len(h.pd_triggers(PAGER_KEY)) == 1


async def test_silence_created_before_group_wait_stops_the_page(harness):
    h = harness
    svc = await h.new_service()
    await svc.ingest([fresh(T0)], now=T0, source="api:prom")
    await svc.create_silence('{service="api"}', T0, T0 + 3600, "alice", "deploy", now=T0 + 0.1)
    for dt in (0.6, 10, 11, 60, 120):
        await h.at(T0 + dt)
    assert pages(h) == [] and h.pd_triggers(PAGER_KEY) == []
    assert h.slack_posts("#incidents") == []
