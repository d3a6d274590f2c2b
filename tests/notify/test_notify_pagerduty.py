"""PagerDuty Events API v2 against a local Events API server."""

from __future__ import annotations

import pytest

from monitor.config.receivers import PagerDutyConfig
from monitor.errors import NotifyError
from monitor.notify.base import Message
from monitor.notify.pagerduty import PagerDutyNotifier, build_event
from monitor.notify.templates import Templates
from tests.notify.notify_kit import (ChannelCase, assert_golden, assert_no_secret, firing_message, resolved_message,
                                     run_kit)
from tests.support.notify_servers import FakeHTTP, Reply, echo, pagerduty_api

ROUTING_KEY = "R0UT1NGKEYs3cr3t0000000000000000"
PERSON_KEY = "P3RS0NKEYs3cr3t11111111111111111"


def make(url: str, timeout: float = 5.0) -> PagerDutyNotifier:
    return PagerDutyNotifier(PagerDutyConfig(routing_key=ROUTING_KEY, url=url, timeout=timeout))


def conf() -> PagerDutyConfig:
    return PagerDutyConfig(routing_key=ROUTING_KEY)


async def test_conformance_kit():
    case = ChannelCase("pagerduty", make, "/v2/enqueue", pagerduty_api, [ROUTING_KEY], ok_statuses=(202,))
    await run_kit(case, firing_message())


def test_golden_events():
    t = Templates()
    assert_golden("pagerduty_trigger", build_event(firing_message(), conf(), t, ROUTING_KEY))
    assert_golden("pagerduty_resolve", build_event(resolved_message(), conf(), t, ROUTING_KEY))


def test_event_fields():
    t = Templates()
    one = Message.build("firing", "ops", firing_message().alerts[:1], ack_url="http://x/ack")
    ev = build_event(one, conf(), t, ROUTING_KEY)
    assert ev["dedup_key"] == "3f2a9c0e11d4b7a1"  # the alert fingerprint
    assert ev["payload"]["severity"] == "critical" and ev["payload"]["source"] == "api-1:8000"
    assert ev["payload"]["timestamp"] == "2026-11-29T14:00:00Z"
    assert {"href": "http://x/ack", "text": "Acknowledge"} in ev["links"]
    ack = build_event(Message.build("acknowledged", "ops", one.alerts), conf(), t, ROUTING_KEY)
    assert ack == {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "3f2a9c0e11d4b7a1"}
    odd = Message.build("firing", "ops", [{"labels": {"alertname": "X", "severity": "page-me"},
                                           "annotations": {"summary": "s" * 5000}}])
    ev = build_event(odd, conf(), t, ROUTING_KEY)
    assert ev["payload"]["severity"] == "error"  # the config default for unknown severities
    assert len(ev["payload"]["summary"]) <= 1024


async def test_trigger_ack_resolve_reach_the_server():
    async with FakeHTTP(pagerduty_api) as srv:
        n = make(srv.url)
        one = firing_message().alerts[:1]
        for kind in ("firing", "acknowledged", "resolved"):
            res = await n.notify(Message.build(kind, "ops", one))
            assert res.meta == {"status": 202, "dedup_key": "3f2a9c0e11d4b7a1"}
        assert [r.data["event_action"] for r in srv.on("/v2/enqueue")] == ["trigger", "acknowledge", "resolve"]
        assert {r.data["dedup_key"] for r in srv.on("/v2/enqueue")} == {"3f2a9c0e11d4b7a1"}
        await n.aclose()


async def test_escalation_uses_the_person_routing_key_and_hides_it():
    async with FakeHTTP(pagerduty_api) as srv:
        n = make(srv.url)
        msg = Message.build("escalation", "ops", firing_message().alerts[:1], recipient=PERSON_KEY,
                            title="Escalated to secondary on-call")
        await n.notify(msg)
        assert srv.on("/v2/enqueue")[0].data["routing_key"] == PERSON_KEY
        srv.script("/v2/enqueue", echo(400))
        with pytest.raises(NotifyError) as info:
            await n.notify(msg)
        assert not info.value.retryable
        assert_no_secret(str(info.value), [ROUTING_KEY, PERSON_KEY])
        assert PERSON_KEY in n.secrets()
        await n.aclose()


async def test_invalid_event_is_permanent():
    async with FakeHTTP(pagerduty_api) as srv:
        srv.script("/v2/enqueue", Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                                              "errors": ["'payload.summary' is missing or blank"]}))
        n = make(srv.url)
        with pytest.raises(NotifyError) as info:
            await n.notify(firing_message())
        assert not info.value.retryable and "invalid event" in str(info.value)
        await n.aclose()
