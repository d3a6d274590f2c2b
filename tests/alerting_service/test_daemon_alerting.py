"""The real daemon (``serve()``): a rule fires, the primary is paged on a local PagerDuty server and
the channel gets a Slack message; unacknowledged, the next person is paged after the deadline;
``codebook-monitor ack`` stops the escalation; metrics show it. Real clock, short deadlines."""

from __future__ import annotations

import asyncio

from monitor.cli import main
from tests.alerting_service.conftest import SLACK_TOKEN
from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config

TOKEN = "ck_live_daemon_test_token_000111"

RULES = """\
groups:
  - name: demo
    interval: 1s
    rules:
      - alert: BackendDown
        expr: vector(1)
        labels:
          severity: critical
          service: api
        annotations:
          summary: backend is down
          description: the sample backend answers 503
          runbook_url: https://runbooks.example/backend
"""


async def test_daemon_pages_escalates_and_cli_ack_stops_it(tmp_path, servers, monkeypatch):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    cfg = write_config(tmp_path, f"""
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        api:
          tokens: [{{name: oncall-bot, token: {TOKEN}}}]
        receivers:
          - name: pager
            pagerduty_configs: [{{routing_key: pagerroutingkey000000000000000099, url: "{servers.pd.url}"}}]
          - name: slack
            slack_configs: [{{channel: "#incidents", token: {SLACK_TOKEN}, api_url: "{servers.slack.url}/api/"}}]
        alerting:
          route:
            receiver: slack
            group_wait: 0s
            group_by: [alertname]
            routes:
              - matchers: ['severity="critical"']
                receiver: pager
                continue: true
              - matchers: ['severity="critical"']
                receiver: slack
          people:
            alice: {{name: Alice, pagerduty_routing_key: pdkeyalicedaemon0000000000000001}}
            bob: {{name: Bob, pagerduty_routing_key: pdkeybobdaemon000000000000000002}}
            em: {{name: Erin, pagerduty_routing_key: pdkeyerindaemon00000000000000003}}
          escalation:
            priorities:
              P0: {{ack: 2s, resolve: 1h}}
              P1: {{ack: 1h, resolve: 24h}}
              P2: {{ack: 4h, resolve: 3d}}
            chain:
              - {{target: "person:alice", channels: [page], wait: 2s}}
              - {{target: "person:bob", channels: [page], wait: 10m}}
              - {{target: "person:em", channels: [page]}}
        """)
    monkeypatch.setenv("MONITOR_API_TOKEN", TOKEN)

    def triggers(key):
        return [r.data for r in servers.pd.on("/v2/enqueue")
                if r.data.get("routing_key") == key and r.data.get("event_action") == "trigger"]

    async with run_daemon(cfg) as d:
        await eventually(lambda: _true(triggers("pdkeyalicedaemon0000000000000001")), what="primary paged")
        await eventually(lambda: _true([r for r in servers.slack.on("/api/chat.postMessage")]),
                         what="channel message")
        await eventually(lambda: _true(triggers("pdkeybobdaemon000000000000000002")), timeout=15,
                         what="secondary paged after the 2s deadline")
        r = await d.get("/api/v2/alerts")
        [alert] = r.json()
        fp = alert["fingerprint"]
        assert alert["escalation"]["status"] == "escalating"
        rc = await asyncio.to_thread(main, ["ack", fp, "--url", d.url])
        assert rc == 0
        r = await d.get("/api/v2/alerts")
        assert r.json()[0]["escalation"]["status"] == "acknowledged"
        await eventually(lambda: _true([e for e in (r.data for r in servers.pd.on("/v2/enqueue"))
                                        if e.get("event_action") == "acknowledge"]), what="PagerDuty acknowledge")
        text = await d.metrics()
        assert metric_values(text, "monitor_escalation_steps_total", level="2", outcome="triggered") == [1.0]
        assert metric_values(text, "monitor_acknowledgements_total", source="cli") == [1.0]
        assert metric_values(text, "monitor_notifications_total", receiver="pager", outcome="sent")
        timeline = (await d.get(f"/api/v1/alerts/{fp}/timeline",
                                headers={"Authorization": f"Bearer {TOKEN}"})).json()["data"]
        assert [e["event"] for e in timeline if e["event"] in ("triggered", "acknowledged")] == [
            "triggered", "triggered", "acknowledged"]
    assert triggers("pdkeyerindaemon00000000000000003") == []


async def _true(value):
    return value
