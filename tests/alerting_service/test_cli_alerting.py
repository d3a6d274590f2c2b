"""``codebook-monitor routes test``, ``oncall`` and ``simulate`` read the config and print."""

from __future__ import annotations

import yaml

from monitor.cli import main
from tests.alerting_service.conftest import PD_KEYS, SHIPPED


def _config(tmp_path):
    data = yaml.safe_load(SHIPPED.read_text())
    for pid, key in PD_KEYS.items():
        data["alerting"]["people"][pid]["pagerduty_routing_key"] = key
    slack = {"token": "xoxb-test-slack-bot-token-4242"}
    data["receivers"] = [  # each with an integration, so simulate shows every step triggered
        {"name": "pager", "pagerduty_configs": [{"routing_key": "pagerroutingkey0000000000000001"}]},
        {"name": "slack-incidents", "slack_configs": [dict(slack, channel="#incidents")]},
        {"name": "slack-alerts", "slack_configs": [dict(slack, channel="#alerts")]},
        {"name": "email", "email_configs": [{"to": "ops@example.com", "from": "monitor@example.com",
                                             "smarthost": "127.0.0.1:25"}]}]
    data["state"] = {"path": str(tmp_path / "state.db")}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_routes_test_prints_receivers(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["routes", "test", "severity=critical", "service=api", "--config", cfg]) == 0
    assert capsys.readouterr().out.split() == ["pager", "slack-incidents"]
    assert main(["routes", "test", "severity=warning,service=api", "--config", cfg]) == 0
    assert capsys.readouterr().out.split() == ["slack-alerts", "email"]
    assert main(["routes", "test", "severity=info", "--config", cfg]) == 0
    assert capsys.readouterr().out.split() == ["slack-alerts"]
    assert main(["routes", "test", "severity~bad", "--config", cfg]) == 2


def test_oncall_and_simulate(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["oncall", "--at", "2026-11-30T10:00:00Z", "-n", "2", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "primary (Europe/Berlin, weekly, handoff monday 09:00): on call now: carol (Carol Diaz)" in out
    assert "2026-12-07 09:00 CET (08:00 UTC) -> alice (Alice Martin)" in out
    assert main(["simulate", "--labels", "severity=critical,service=api", "--at", "2026-11-30T10:00:00Z",
                 "--config", cfg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("P0: acknowledge within 15m, resolve within 4h")
    assert "10:15:00 UTC  L2  alice (Alice Martin)" in lines[2]
    assert "SLA breached" in lines[-1]
    assert not [ln for ln in lines if "failed" in ln]
