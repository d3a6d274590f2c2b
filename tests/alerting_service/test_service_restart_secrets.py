"""Restart over SQLite and PostgreSQL, PagerDuty down then back, and no secret in any log line or message."""

from __future__ import annotations

import logging

import httpx

from monitor.escalation.schedule import OnCallLookup
from tests.alerting_service.conftest import (API_TOKEN, PAGER_KEY, PD_KEYS, SECRETS, T0, Clock, Harness,
                                             firing_rule_alert, make_config)
from tests.support.notify_servers import Reply, echo

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}


async def test_restart_resumes_deadlines_on_both_backends(servers, state_cfg):
    h = Harness(make_config(servers.slack.url, servers.pd.url, servers.smtp.smarthost, state_cfg), Clock(T0), servers)
    try:
        lookup = OnCallLookup.from_config(h.config.alerting)
        primary, secondary = lookup("schedule:primary", T0), lookup("schedule:secondary", T0)
        svc = await h.new_service()
        alert = firing_rule_alert(LABELS, T0 - 60)
        await svc.ingest([alert])
        # killed before the outbox ran: the rows are in the store
        svc = await h.new_service()
        await h.deliver()
        assert len(h.pd_triggers(PD_KEYS[primary])) == 1
        assert len(h.slack_posts("#incidents")) == 1
        # acknowledged, then restarted: the acknowledgement holds across the restart
        await svc.acknowledge(alert.fingerprint, "alice", "api:test", now=T0 + 600)
        svc = await h.new_service()
        assert svc.escalation.get(alert.fingerprint).state.status == "acknowledged"
        await h.at(T0 + 900)
        assert h.pd_triggers(PD_KEYS[secondary]) == []
        # unacknowledged, restarted mid-walk: continues at the persisted deadline, once
        await svc.unacknowledge(alert.fingerprint, "alice", "api:test", now=T0 + 1000)
        svc = await h.new_service()
        await svc.ingest([alert], now=T0 + 1000)
        await h.at(T0 + 1000)
        assert len(h.pd_triggers(PD_KEYS[primary])) == 2      # walk 2 starts at the primary again
        await h.at(T0 + 1899)
        assert h.pd_triggers(PD_KEYS[secondary]) == []
        svc = await h.new_service()
        await h.at(T0 + 1900)
        assert len(h.pd_triggers(PD_KEYS[secondary])) == 1
        await h.at(T0 + 1901)
        assert len(h.pd_triggers(PD_KEYS[secondary])) == 1
        assert len(h.pd_triggers(PAGER_KEY)) == 1
        assert len(h.slack_posts("#incidents")) == 1
    finally:
        await h.close()


async def test_pagerduty_down_for_ten_minutes_then_back(harness):
    svc = await harness.new_service()
    primary = OnCallLookup.from_config(harness.config.alerting)("schedule:primary", T0)
    harness.servers.pd.script("/v2/enqueue", *[Reply(503, {"status": "unavailable"})] * 40)
    await svc.ingest([firing_rule_alert(LABELS, T0 - 60)])
    t = T0
    while t < T0 + 600:
        await harness.at(t)
        t += 30
    assert harness.pd_triggers(PD_KEYS[primary])  # tried, failed (503)
    rows = await harness.store.list_outbox("pending")
    assert rows and all("503" in (r["last_error"] or "") for r in rows)
    harness.servers.pd._script.clear()
    before = len(harness.servers.pd.requests)
    await harness.at(T0 + 900)  # back: the pending pages go out (and the secondary's)
    ok = [r for r in harness.servers.pd.requests[before:]]
    keys = {r.data["routing_key"] for r in ok}
    assert PD_KEYS[primary] in keys and PAGER_KEY in keys
    assert await harness.store.list_outbox("pending") == []


async def test_no_secret_in_any_log_line_or_message(harness, api, caplog):
    """Our own records carry no secret at all; every line the daemon's handler writes (at DEBUG,
    third-party libraries included) is redacted."""
    import io

    from monitor.config.secrets import secret_values
    from monitor.logging import setup_logging

    out = io.StringIO()
    old_level = logging.getLogger().level
    handler = setup_logging("DEBUG", stream=out, secrets=secret_values(harness.config))
    caplog.set_level(logging.DEBUG)
    svc = harness.service
    harness.servers.pd.script("/v2/enqueue", echo(400))  # an error echoing the request (routing key)
    harness.servers.slack.script("/api/chat.postMessage", echo(500))
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    await harness.at(T0 + 900)
    async with httpx.AsyncClient(base_url=api.url) as c:
        await c.post(f"/api/v1/alerts/{alert.fingerprint}/ack", headers={"Authorization": "Bearer " + API_TOKEN[:-1]})
        await c.post("/api/v1/slack/actions", content=b"payload=x",
                     headers={"X-Slack-Request-Timestamp": str(int(harness.clock())), "X-Slack-Signature": "v0=00"})
        await c.post(f"/api/v1/alerts/{alert.fingerprint}/ack", headers={"Authorization": "Bearer " + API_TOKEN})
    await harness.at(T0 + 1000)
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(old_level)
    ours = [r for r in caplog.records if r.name.startswith("monitor")]
    assert ours and any("escalation started" in r.getMessage() for r in ours)
    assert any("401" in r.getMessage() or "rejected" in r.getMessage() for r in ours)
    for rec in ours:
        line = rec.getMessage() + " " + repr(rec.__dict__)
        for secret in SECRETS:
            assert secret not in line, (secret[:6], rec.getMessage())
    lines = out.getvalue().splitlines()
    assert len(lines) > 50
    for line in lines:
        for secret in SECRETS:
            assert secret not in line, (secret[:6], line[:200])
    # stored errors are redacted too
    for row in await harness.store.list_outbox():
        for secret in SECRETS:
            assert secret not in (row["last_error"] or "")
    # messages: Slack and email bodies carry no key, token or signing secret (signed links only)
    bodies = [r.body.decode(errors="replace") for r in harness.servers.slack.requests]
    bodies += [m[2].decode(errors="replace") for m in harness.servers.smtp.handler.messages]
    assert bodies
    for body in bodies:
        for secret in SECRETS:
            assert secret not in body
    # PagerDuty events carry only their own routing key
    for r in harness.servers.pd.requests:
        others = [s for s in SECRETS if s != r.data.get("routing_key")]
        assert not any(s in r.body.decode() for s in others)
