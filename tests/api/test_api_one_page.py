"""Exports that never double-page, the daemon's side: ``api.intake_drop_labels`` removes labels
before fingerprinting, an intake alert that one of the daemon's own rules also raises is warned
about, and ``promtool check metrics`` accepts ``/metrics`` (the daemon's own families and rule
metrics; no probe is configured here — the probe families pass it too: the demo's in the README,
the api probes' in ``tests/probes/test_probe_blackbox_compat.py``)."""

from __future__ import annotations

import asyncio
import logging
import shutil

import pytest

from tests.support.daemon_helpers import ADMIN_TOKEN, eventually, run_daemon, write_config

RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: SlaBreach
        expr: vector(1)
        labels: {severity: critical}
"""


def _config(tmp_path):
    (tmp_path / "r.yaml").write_text(RULES)
    return write_config(tmp_path, f"""
        rules:
          files: [r.yaml]
          evaluation_interval: 1s
        api:
          tokens: [{{name: prom, token: {ADMIN_TOKEN}, scopes: [read, ack, admin, intake]}}]
          intake_drop_labels: [prometheus_replica]
        receivers:
          - name: hook
            webhook_configs: [{{url: "http://127.0.0.1:9/hook"}}]
        alerting:
          route: {{receiver: hook, group_wait: 1h}}
        """)


async def _alerts(d):
    r = await d.get("/api/v2/alerts")
    return r.json() if r.status_code == 200 else None


async def test_dropped_labels_make_replicas_one_alert_and_a_rule_from_two_sources_is_warned(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="monitor.api")
    async with run_daemon(_config(tmp_path)) as d:
        await eventually(lambda: _alerts(d), what="the rule's own alert")
        for replica in ("a", "b"):
            r = await d.post("/api/v2/alerts", json=[{"labels": {"alertname": "DiskFull", "prometheus_replica": replica,
                                                                "severity": "warning"}}])
            assert r.status_code == 200, r.text
        for replica in ("a", "b"):  # and through the Alertmanager webhook intake
            r = await d.post("/api/v1/intake/alertmanager", json={"version": "4", "status": "firing", "alerts": [
                {"status": "firing", "labels": {"alertname": "DiskFull", "prometheus_replica": replica,
                                                "severity": "warning"}}]})
            assert r.status_code == 200, r.text
        alerts = await _alerts(d)
        disk = [a for a in alerts if a["labels"]["alertname"] == "DiskFull"]
        assert [a["labels"] for a in disk] == [{"alertname": "DiskFull", "severity": "warning"}]
        assert not [r for r in caplog.records if "two sources" in r.getMessage()]

        # Prometheus evaluating the daemon's own rule and sending it: warned once, with the rule
        for _ in range(3):
            r = await d.post("/api/v2/alerts", json=[{"labels": {"alertname": "SlaBreach", "severity": "critical",
                                                                "job": "codebook", "monitor": "prod"}}])
            assert r.status_code == 200
        warned = [r for r in caplog.records if "two sources" in r.getMessage()]
        assert len(warned) == 1 and warned[0].rule == "SlaBreach" and warned[0].source.startswith("api:prom@")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
async def test_promtool_check_metrics_accepts_the_exposition(tmp_path):
    async with run_daemon(_config(tmp_path)) as d:
        await eventually(lambda: _alerts(d), what="alerting running")
        text = await d.metrics()
        proc = await asyncio.create_subprocess_exec(
            "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(text.encode())
        assert proc.returncode == 0, (out + err).decode()[:3000]
