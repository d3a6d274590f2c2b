"""Alerts the daemon raises from its own rules look as Prometheus would send them to an
Alertmanager (``cmd/prometheus/main.go`` ``sendAlerts``, ``notifier/notifier.go``): ``startsAt`` is
when the alert fired (after ``for``), not when it became pending, and the configured
``rules.external_labels`` are added (a rule's own label of the same name wins)."""

from __future__ import annotations

from model.timestamps import parse_rfc3339
from tests.support.daemon_helpers import eventually, run_daemon, write_config

RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: Fires
        expr: vector(1)
        for: 2s
        labels: {severity: warning}
      - alert: OwnsRegion
        expr: vector(1)
        labels: {severity: warning, region: us1}
"""


async def test_rule_alerts_carry_fired_at_and_external_labels(tmp_path):
    (tmp_path / "r.yaml").write_text(RULES)
    cfg = write_config(tmp_path, """
        rules:
          files: [r.yaml]
          evaluation_interval: 1s
          external_labels: {cluster: eu1, region: eu}
        receivers:
          - name: hook
            webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
        alerting:
          route: {receiver: hook, group_wait: 1h}
        """)
    async with run_daemon(cfg) as d:
        async def both():
            r = await d.get("/api/v2/alerts")
            alerts = r.json() if r.status_code == 200 else []
            return {a["labels"]["alertname"]: a for a in alerts} if len(alerts) == 2 else None
        alerts = await eventually(both, what="both alerts firing")
        fires, owns = alerts["Fires"], alerts["OwnsRegion"]
        assert fires["labels"] == {"alertname": "Fires", "severity": "warning", "cluster": "eu1", "region": "eu"}
        assert owns["labels"]["region"] == "us1" and owns["labels"]["cluster"] == "eu1"
        [rule] = [a for a in (await d.get("/api/v1/alerts")).json()["data"]["alerts"]
                  if a["labels"]["alertname"] == "Fires"]
        pending_since = parse_rfc3339(rule["activeAt"])
        assert parse_rfc3339(fires["startsAt"]) - pending_since >= 2.0  # fired after `for: 2s`
