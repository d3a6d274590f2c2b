"""The Watchdog never pages a person: with the shipped routing a ``severity="none"`` alert
escalates to nobody."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path


from monitor.config.loader import load_config
from monitor.escalation.policy import EscalationPolicy
from tests.alerting_service.conftest import PAGER_KEY, PD_KEYS, T0, firing_rule_alert
from tests.support.notify_servers import Recorded, Reply, pagerduty_api, slack_api

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
