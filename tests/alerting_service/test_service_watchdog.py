"""The Watchdog never pages a person: with examples/monitor.yaml it goes to the dead-man's switch
receiver only, every repeat interval, also during the maintenance window, and starts no escalation;
with the shipped routing a ``severity="none"`` alert escalates to nobody either."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.config.loader import load_config
from monitor.daemon.leader_pipeline import LeaderPipeline, PipelineMetrics
from monitor.escalation.policy import EscalationPolicy
from monitor.notify.outbox import NotifyMetrics, OutboxWorker
from monitor.notify.registry import build_integrations
from monitor.store import open_store
from tests.alerting_service.conftest import PAGER_KEY, PD_KEYS, T0, Clock, Service, firing_rule_alert
from tests.support.notify_servers import FakeHTTP, Recorded, Reply, pagerduty_api, slack_api

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitor.yaml"
SLACK_TOKEN = "xoxb-demo-0000000000-codebookmonitor"  # the example's default
#: What rules/watchdog.yaml produces under the example's external labels.
WATCHDOG = {"alertname": "Watchdog", "severity": "none", "monitor": "codebook-demo"}
#: The first Saturday of December 2026, 03:00 UTC: inside the example's monthly maintenance window.
MAINTENANCE = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc).timestamp()


def sinks(req: Recorded) -> Reply:
    """The demo's stand-ins on one server: Slack Web API, PagerDuty Events v2, webhooks."""
    if req.path.startswith("/api/"):
        return slack_api(SLACK_TOKEN)(req)
    if req.path == "/v2/enqueue":
        return pagerduty_api(req)
    return Reply(200, {})


async def run_minutes(svc, worker, clock, alert, start: float, minutes: int) -> None:
    """The rule re-sends the firing Watchdog every minute; the service ticks and the outbox sends."""
    for minute in range(minutes + 1):
        clock.t = start + 60 * minute
        await svc.ingest([alert], source="rules")
        await svc.tick()
        await worker.run_once(clock.t)


async def test_example_config_sends_the_watchdog_to_the_dead_mans_switch_only(tmp_path):
    async with FakeHTTP(sinks) as srv:
        config = load_config(EXAMPLE, env={"DEMO_SINKS_URL": srv.url, "MONITOR_STATE_DIR": str(tmp_path)})
        assert config.alerting.escalation.chain, "the example escalates: the test must prove it does not here"
        clock = Clock(T0)
        store = await open_store(config.state, clock=clock)
        integrations = build_integrations(config.receivers, clock=clock)
        registry = CollectorRegistry()
        svc = Service(LeaderPipeline(config, store, integrations, clock=clock,
                                     metrics=PipelineMetrics.register(registry)))
        worker = OutboxWorker(store, integrations, clock=clock, rng=lambda: 0.0, metrics=NotifyMetrics(registry))
        try:
            await svc.start()
            alert = firing_rule_alert(WATCHDOG, T0)
            # Two hours: far past the example's P2 deadlines (ack 5m, resolve 30m) and its whole chain.
            await run_minutes(svc, worker, clock, alert, T0, 120)
            paths = [r.path for r in srv.requests]
            assert set(paths) == {"/webhook/deadman"}, paths
            assert 20 <= len(paths) <= 26  # at once, then every repeat_interval (5m)
            body = srv.on("/webhook/deadman")[0].data
            assert body["status"] == "firing" and body["commonLabels"]["alertname"] == "Watchdog"

            # The monthly maintenance window mutes everything but the Watchdog.
            sent = len(paths)
            await run_minutes(svc, worker, clock, alert, MAINTENANCE, 30)
            assert {r.path for r in srv.requests} == {"/webhook/deadman"}
            assert len(srv.requests) > sent

            assert await store.list_escalations() == []
            events = [e["event"] for e in await svc.timeline(alert.fingerprint)]
            assert not [e for e in events if "escalation" in e or "triggered" in e or "sla" in e], events
        finally:
            for items in integrations.values():
                for i in items:
                    await i.notifier.aclose()
            await store.close()


async def test_shipped_routing_escalates_a_severity_none_alert_to_nobody(harness):
    svc = await harness.new_service()
    alert = firing_rule_alert({"alertname": "Watchdog", "severity": "none"}, T0)
    await svc.ingest([alert], source="rules")
    await harness.deliver()
    for minutes in (15, 30, 45, 60, 4 * 60, 3 * 24 * 60 + 1):  # every step, every deadline of P0..P2
        await harness.at(T0 + 60 * minutes)
        await svc.ingest([alert], source="rules")
        await harness.deliver()
    assert harness.pd_events() == []
    for key in (PAGER_KEY, *PD_KEYS.values()):
        assert harness.pd_triggers(key) == []
    assert [p["channel"] for p in harness.slack_posts()] and all(
        p["channel"] == "#alerts" for p in harness.slack_posts())  # the root route's channel, no DM
    assert harness.servers.smtp.handler.messages == []
    assert await harness.store.list_escalations() == []


def test_the_policy_never_escalates_severity_none():
    policy = EscalationPolicy.from_config(load_config(EXAMPLE, env={}).alerting.escalation)
    assert not policy.escalates({"alertname": "Watchdog", "severity": "none"})
    for severity in ("critical", "warning", "info", ""):
        assert policy.escalates({"alertname": "X", "severity": severity})
