"""What the on-call engineer does and writes is kept and shown (issue 16): comments of acknowledgements
and resolves on the timeline (API and CLI, with or without escalation); an unacknowledge takes the
[ACK] off the Slack channel message; repeated acknowledgements send nothing again; an alert resolved
by hand stays resolved until its episode ends, then fires anew. Real local Slack / PagerDuty servers,
a real HTTP API server, the real CLI."""

from __future__ import annotations

import asyncio

import httpx

from monitor.cli import main
from tests.alerting_service.conftest import API_TOKEN, PAGER_KEY, T0, firing_rule_alert, resolved_rule_alert

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def _fire(harness, labels=LABELS):
    alert = firing_rule_alert(labels, T0 - 60)
    harness.clock.t = T0
    await harness.service.ingest([alert])
    await harness.at(T0 + 15)  # past the pager route's group_wait (10s): the first notifications are out
    return alert


def _pd(harness, action: str, key: str = PAGER_KEY):
    return [e for e in harness.pd_events() if e["event_action"] == action and e["routing_key"] == key]


async def test_ack_and_resolve_comments_are_on_the_timeline_api_and_cli(harness, api, monkeypatch, capsys):
    alert = await _fire(harness)
    fp = alert.fingerprint
    quiet = firing_rule_alert({"alertname": "NoWalk", "severity": "none", "service": "api"}, T0 - 60)
    await harness.service.ingest([quiet])
    assert harness.service.escalation.get(quiet.fingerprint) is None  # severity none: no escalation
    async with httpx.AsyncClient(base_url=api.url, headers=AUTH) as c:
        assert (await c.post(f"/api/v1/alerts/{fp}/ack", json={"comment": "looking at the pool"})).status_code == 200
        harness.clock.advance(60)
        r = await c.post(f"/api/v1/alerts/{fp}/resolve", json={"comment": "restarted pgbouncer"})
        assert r.status_code == 200
        r = await c.post(f"/api/v1/alerts/{quiet.fingerprint}/ack", json={"comment": "known, ticket OPS-12"})
        assert r.status_code == 200
        timeline = (await c.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
        quiet_timeline = (await c.get(f"/api/v1/alerts/{quiet.fingerprint}/timeline")).json()["data"]
    by_event = {e["event"]: e["detail"] for e in timeline}
    assert by_event["acknowledged"]["detail"] == "looking at the pool"
    assert by_event["acknowledged"]["person"] == "alice"
    assert by_event["resolved"]["detail"] == "restarted pgbouncer" and by_event["resolved"]["person"] == "alice"
    [entry] = [e for e in quiet_timeline if e["event"] == "acknowledged"]
    assert entry["detail"]["detail"] == "known, ticket OPS-12" and entry["detail"]["person"] == "alice"

    monkeypatch.setenv("MONITOR_API_TOKEN", API_TOKEN)
    rc = await asyncio.to_thread(main, ["timeline", fp, "--url", api.url])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert any("acknowledged" in ln and "alice" in ln and "looking at the pool" in ln for ln in lines), out
    assert any("resolved" in ln and "alice" in ln and "restarted pgbouncer" in ln for ln in lines), out
    rc = await asyncio.to_thread(main, ["timeline", "0000000000000000", "--url", api.url])
    assert rc == 1 and "404" in capsys.readouterr().err


async def test_unack_updates_the_channel_message_back_to_firing(harness, api):
    alert = await _fire(harness)
    fp = alert.fingerprint
    [post] = harness.slack_posts("#incidents")
    assert post["text"].startswith("[FIRING:1]")
    async with httpx.AsyncClient(base_url=api.url, headers=AUTH) as c:
        await c.post(f"/api/v1/alerts/{fp}/ack")
        await harness.deliver()
        acked = [u for u in harness.slack_updates() if u["channel"] == "CINCIDENTS"]
        assert acked[-1]["text"].startswith("[ACK]")
        harness.clock.advance(30)
        await c.post(f"/api/v1/alerts/{fp}/unack")
    await harness.deliver()
    updates = [u for u in harness.slack_updates() if u["channel"] == "CINCIDENTS"]
    assert len(updates) == 2
    last = updates[-1]
    assert not last["text"].startswith("[ACK]") and last["text"].startswith("[FIRING:1]")
    assert last["ts"] == acked[-1]["ts"]  # the same message, updated in place
    buttons = [e["action_id"] for b in last["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["ack", "resolve"]
    assert len(harness.slack_posts("#incidents")) == 1  # no new channel message


async def test_repeated_acks_do_not_resend_the_pagerduty_acknowledge(harness, api):
    alert = await _fire(harness)
    fp = alert.fingerprint
    async with httpx.AsyncClient(base_url=api.url, headers=AUTH) as c:
        await c.post(f"/api/v1/alerts/{fp}/ack", json={"comment": "mine"})
        await harness.deliver()
        first = len(harness.pd_events())
        slack_updates = len(harness.slack_updates())
        assert len(_pd(harness, "acknowledge")) == 1
        for i in range(3):
            harness.clock.advance(10)
            r = await c.post(f"/api/v1/alerts/{fp}/ack", json={"comment": f"still mine {i}"})
            assert r.status_code == 200 and r.json()["data"]["status"] == "acknowledged"
            await harness.deliver()
        timeline = (await c.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
    assert len(harness.pd_events()) == first and len(harness.slack_updates()) == slack_updates
    assert [e["detail"]["detail"] for e in timeline if e["event"] == "acknowledged"] == [
        "mine", "still mine 0", "still mine 1", "still mine 2"]
    # after an unacknowledge, a new acknowledgement is sent again
    await harness.service.unacknowledge(fp, "alice", "api:127.0.0.1", now=harness.clock.advance(10))
    await harness.service.acknowledge(fp, "alice", "api:127.0.0.1", now=harness.clock.advance(10))
    await harness.deliver()
    assert len(_pd(harness, "acknowledge")) == 2


async def test_hand_resolved_alert_stays_resolved_while_the_outage_goes_on(harness, api):
    """Resolved by hand while the rule still fires: not listed as firing, not re-sent at the
    repeat_interval, no second resolved message when the condition clears (nor after a restart);
    the next episode fires anew."""
    alert = await _fire(harness)
    fp = alert.fingerprint
    async with httpx.AsyncClient(base_url=api.url, headers=AUTH) as c:
        harness.clock.t = T0 + 20
        assert (await c.post(f"/api/v1/alerts/{fp}/resolve", json={"comment": "fixed"})).status_code == 200
        await harness.deliver()
        # the rule goes on firing for two hours (the pager route's repeat_interval is 1h)
        for t in range(30, 7200, 60):
            await harness.service.ingest([alert], now=T0 + t)
            await harness.at(T0 + t)
            if t == 90:
                assert fp not in {a["fingerprint"] for a in (await c.get("/api/v2/alerts")).json()}
        assert fp not in {a["fingerprint"] for a in (await c.get("/api/v2/alerts")).json()}
    assert len(_pd(harness, "trigger")) == 1 and len(_pd(harness, "resolve")) == 1
    resolved_updates = [u for u in harness.slack_updates() if u["channel"] == "CINCIDENTS"]
    assert len(resolved_updates) == 1 and resolved_updates[0]["text"].startswith("[RESOLVED]")
    assert harness.service.escalation.get(fp).state.resolved_by == "alice"

    # a restart keeps it resolved; then the condition clears: nothing more is sent
    await harness.new_service()
    await harness.service.ingest([alert], now=T0 + 7200)
    await harness.at(T0 + 7260)
    await harness.service.ingest([resolved_rule_alert(alert, T0 + 7300)], now=T0 + 7300)
    for t in range(7300, 9000, 60):
        await harness.at(T0 + t)
    assert len(_pd(harness, "trigger")) == 1 and len(_pd(harness, "resolve")) == 1
    assert len([u for u in harness.slack_updates() if u["channel"] == "CINCIDENTS"]) == 1
    assert len(harness.slack_posts("#incidents")) == 1

    # a new episode fires and escalates anew
    again = firing_rule_alert(LABELS, T0 + 9000)
    await harness.service.ingest([again], now=T0 + 9060)
    await harness.at(T0 + 9080)
    assert len(_pd(harness, "trigger")) == 2
    assert len(harness.slack_posts("#incidents")) == 2
    assert fp in {a["fingerprint"] for a in harness.service.alerts_api(T0 + 9080)}
    assert harness.service.escalation.get(fp).state.status == "escalating"


def test_timeline_lines_print_instants_as_rfc3339_not_epochs():
    from monitor.alerting.views import format_timeline

    line = format_timeline([{"time": "2026-11-30T10:00:00.000Z", "event": "escalation started",
                             "detail": {"level": 0, "ack_deadline": 1796433947.4312243, "channel": "sms"}}])
    assert "ack_deadline=2026-12-05T" in line and "1796433947" not in line
    assert "channel=sms" in line
