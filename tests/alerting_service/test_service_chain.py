"""The whole chain with an injected clock: rule alert -> routing -> outbox -> local Slack / PagerDuty,
and the escalation primary -> secondary -> manager -> CTO when nobody acknowledges."""

from __future__ import annotations

from monitor.escalation.schedule import OnCallLookup
from tests.alerting_service.conftest import PAGER_KEY, PD_KEYS, T0, firing_rule_alert, resolved_rule_alert

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}


def oncall(config, t):
    lookup = OnCallLookup.from_config(config.alerting)
    return lookup("schedule:primary", t), lookup("schedule:secondary", t)


async def test_firing_pages_primary_and_posts_to_channel_then_escalates(harness):
    svc = await harness.new_service()
    primary, secondary = oncall(harness.config, T0)
    assert primary != secondary
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert], source="rules")
    await harness.deliver()

    # channel message (with buttons) + pager receiver trigger + the primary's page and DM
    incidents = harness.slack_posts("#incidents")
    assert len(incidents) == 1
    assert "ApiDown" in incidents[0]["text"]
    assert len(harness.pd_triggers(PAGER_KEY)) == 1
    assert len(harness.pd_triggers(PD_KEYS[primary])) == 1
    people = harness.config.alerting.people
    assert len(harness.slack_posts("D" + people[primary].slack_user_id)) == 1
    assert harness.pd_triggers(PD_KEYS[secondary]) == []

    # nobody acknowledges: the secondary at +15 min, the manager at +30, the CTO at +45
    await harness.at(T0 + 899)
    assert harness.pd_triggers(PD_KEYS[secondary]) == []
    await harness.at(T0 + 900)
    assert len(harness.pd_triggers(PD_KEYS[secondary])) == 1
    await harness.at(T0 + 1800)
    assert len(harness.pd_triggers(PD_KEYS["em"])) == 1
    assert len(harness.servers.smtp.handler.messages) == 1  # the manager's email
    await harness.at(T0 + 2700)
    assert len(harness.pd_triggers(PD_KEYS["cto"])) == 1

    # the rule re-sends the firing alert every evaluation: nothing is sent twice
    for t in (T0 + 2715, T0 + 2730):
        harness.clock.t = t
        await svc.ingest([alert])
        await harness.deliver()
    for key in (PAGER_KEY, *(PD_KEYS[p] for p in (primary, secondary, "em", "cto"))):
        assert len(harness.pd_triggers(key)) == 1, key
    assert len(harness.slack_posts("#incidents")) == 1

    timeline = await svc.timeline(alert.fingerprint)
    events = [(e["event"], (e["detail"] or {}).get("level")) for e in timeline]
    assert [e for e in events if e[0] == "triggered"] == [("triggered", 0), ("triggered", 1),
                                                         ("triggered", 2), ("triggered", 3)]

    # resolution by the rule: resolved notices to everyone paged, the channel message updated
    harness.clock.t = T0 + 3000
    await svc.ingest([resolved_rule_alert(alert, T0 + 3000)])
    await harness.at(T0 + 3000)
    for p in (primary, secondary, "em", "cto"):
        resolves = [e for e in harness.pd_events() if e["routing_key"] == PD_KEYS[p] and e["event_action"] == "resolve"]
        assert len(resolves) == 1, p
    assert any(e["routing_key"] == PAGER_KEY and e["event_action"] == "resolve" for e in harness.pd_events())
    assert any(u["channel"] == "CINCIDENTS" for u in harness.slack_updates())
    assert svc.escalation.get(alert.fingerprint).state.status == "resolved"

    # metrics
    reg = harness.registry
    assert reg.get_sample_value("monitor_escalation_steps_total", {"level": "4", "outcome": "triggered"}) == 1
    assert reg.get_sample_value("monitor_notifications_total",
                                {"receiver": "pager", "integration": "pagerduty[0]", "outcome": "sent"}) >= 2


async def test_restart_mid_escalation_loses_nothing_and_sends_nothing_twice(harness):
    svc = await harness.new_service()
    primary, secondary = oncall(harness.config, T0)
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    await harness.at(T0 + 900)                     # secondary paged
    assert len(harness.pd_triggers(PD_KEYS[secondary])) == 1

    # the manager's step is due and decided, but the daemon dies before the outbox sends it
    harness.clock.t = T0 + 1800
    await svc.tick()
    # kill: a new store connection, service and worker over the same database
    svc = await harness.new_service()
    await svc.ingest([alert])                      # the rule manager re-sends the firing alert
    await harness.at(T0 + 1801)
    assert len(harness.pd_triggers(PD_KEYS["em"])) == 1
    await harness.at(T0 + 2700)
    assert len(harness.pd_triggers(PD_KEYS["cto"])) == 1
    for key in (PAGER_KEY, PD_KEYS[primary], PD_KEYS[secondary], PD_KEYS["em"], PD_KEYS["cto"]):
        assert len(harness.pd_triggers(key)) == 1, key
    assert len(harness.slack_posts("#incidents")) == 1


async def test_silenced_alert_is_visible_marked_and_does_not_page(harness):
    svc = await harness.new_service()
    sid = await svc.create_silence('{service="api"}', T0 - 10, T0 + 3600, "alice", "deploy",
                                   actor="alice", source="test")
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    assert harness.pd_events() == [] and harness.slack_posts() == []
    [shown] = svc.alerts_api()
    assert shown["status"] == {"state": "suppressed", "silencedBy": [sid], "inhibitedBy": [], "mutedBy": []}
    assert harness.registry.get_sample_value("monitor_alerts_silenced") == 1

    # expiring the silence lets the alert through on the next tick
    await svc.expire_silence(sid, "alice", "test", now=T0 + 60)
    await harness.at(T0 + 61)
    primary, _ = oncall(harness.config, T0)
    assert len(harness.pd_triggers(PD_KEYS[primary])) == 1
    audit = await harness.store.list_audit()
    assert {a["action"] for a in audit} >= {"silence.create", "silence.expire"}


async def test_warning_is_inhibited_by_critical_of_same_family(harness):
    svc = await harness.new_service()
    crit = firing_rule_alert(LABELS, T0 - 60)
    warn = firing_rule_alert(dict(LABELS, alertname="ApiSlow", severity="warning"), T0 - 60)
    await svc.ingest([crit, warn])
    await harness.deliver()
    shown = {a["labels"]["alertname"]: a["status"] for a in svc.alerts_api()}
    assert shown["ApiSlow"]["inhibitedBy"] == [crit.fingerprint]
    assert shown["ApiDown"]["state"] == "active"
    assert harness.slack_posts("#alerts") == []
    assert harness.registry.get_sample_value("monitor_alerts_inhibited") == 1


async def test_silence_mid_escalation_holds_it_and_release_restarts_at_primary(harness):
    svc = await harness.new_service()
    primary, secondary = oncall(harness.config, T0)
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    assert len(harness.pd_triggers(PD_KEYS[primary])) == 1
    harness.clock.t = T0 + 300
    sid = await svc.create_silence('{alertname="ApiDown"}', T0 + 300, T0 + 7200, "bob", "working on it")
    for t in (T0 + 900, T0 + 1800, T0 + 2700):
        await harness.at(t)
    assert harness.pd_triggers(PD_KEYS[secondary]) == [] and harness.pd_triggers(PD_KEYS["em"]) == []
    await svc.expire_silence(sid, "bob", now=T0 + 3000)
    await harness.at(T0 + 3000)
    assert len(harness.pd_triggers(PD_KEYS[primary])) == 2       # restarted at the primary
    assert harness.pd_triggers(PD_KEYS[secondary]) == []
    await harness.at(T0 + 3900)
    assert len(harness.pd_triggers(PD_KEYS[secondary])) == 1
    events = [e["event"] for e in await svc.timeline(alert.fingerprint)]
    assert "paused" in events and "resumed" in events


async def test_slack_429_is_retried_after_retry_after(harness):
    from tests.support.notify_servers import Reply

    svc = await harness.new_service()
    harness.servers.slack.script("/api/chat.postMessage",
                                 Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
    await svc.ingest([firing_rule_alert(LABELS, T0 - 60)])
    stats = await harness.deliver()
    assert stats.retried >= 1
    posts = len(harness.slack_posts("#incidents"))
    assert posts == 1                                     # the rate-limited attempt
    await harness.at(T0 + 29)
    assert len(harness.slack_posts("#incidents")) == posts
    await harness.at(T0 + 31)
    assert len(harness.slack_posts("#incidents")) == 2
    assert await harness.store.list_outbox("pending") == []


async def test_reload_swaps_route_and_keeps_alerts(harness):
    from monitor.notify.registry import build_integrations

    svc = await harness.new_service()
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    cfg = harness.config.model_copy(deep=True)
    cfg.alerting.route.routes = cfg.alerting.route.routes[1:]  # no more pager route
    integrations = build_integrations(cfg.receivers, clock=harness.clock)
    svc.configure(cfg, integrations)
    harness.worker.integrations = integrations
    assert svc.receivers_for(alert.labels) == ["slack-incidents"]
    assert [a["fingerprint"] for a in svc.alerts_api()] == [alert.fingerprint]
    await harness.at(T0 + 10)
    assert len(harness.slack_posts("#incidents")) == 1   # unchanged group: not sent again
    for items in integrations.values():
        for i in items:
            await i.notifier.aclose()


async def test_acknowledged_but_unresolved_breaches_sla_once(harness):
    svc = await harness.new_service()
    primary, secondary = oncall(harness.config, T0)
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    await svc.acknowledge(alert.fingerprint, "carol", "api:test", now=T0 + 120)
    await harness.at(T0 + 4 * 3600 - 1)
    assert harness.pd_triggers(PD_KEYS[secondary]) == []
    await harness.at(T0 + 4 * 3600)                  # P0 resolve SLA (4h) passed: the next level, once
    assert len(harness.pd_triggers(PD_KEYS[secondary])) == 1
    await harness.at(T0 + 4 * 3600 + 60)
    assert len(harness.pd_triggers(PD_KEYS[secondary])) == 1
    assert harness.registry.get_sample_value("monitor_sla_breaches_total", {"priority": "P0"}) == 1
    assert harness.registry.get_sample_value("monitor_time_to_acknowledge_seconds_sum", {"priority": "P0"}) == 120
