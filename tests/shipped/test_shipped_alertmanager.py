"""alertmanager/ and `codebook-monitor export alertmanager` (STYLE guideline 15).

The generated configuration round-trips, names every receiver, leaks no secret, equals the
shipped alertmanager/alertmanager.yml for the shipped routing, routes like our own routing tree
(`amtool config routes test`), and `amtool check-config` accepts both; the templates render.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.alerting.route import build_route
from monitor.export.alertmanager import WEBHOOK_PLACEHOLDER, alertmanager_config
from monitor.export.document import render
from tests.shipped.shipped_helpers import FAKE_ENV, ROOT, require_tool, shipped_config

SHIPPED_AM = ROOT / "alertmanager" / "alertmanager.yml"
TEMPLATES = ROOT / "alertmanager" / "templates"
#: Label sets whose routing the tests compare between amtool and our routing tree.
LABEL_SETS = [
    {"alertname": "HighErrorRate", "severity": "critical", "service": "api"},
    {"alertname": "ElevatedErrorRate", "severity": "warning", "service": "api"},
    {"alertname": "Info", "severity": "info"},
    {"alertname": "NoSeverity"},
    {"alertname": "DatabaseDown", "severity": "critical", "depends_on": "database"},
]


@pytest.fixture(scope="module")
def config():
    return shipped_config()


@pytest.fixture(scope="module")
def export(config):
    return alertmanager_config(config)


def _routes(route: dict):
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def _write_generated(tmp_path: Path, text: str) -> Path:
    """Write a generated config beside a copy of the templates (as it would be deployed)."""
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return path


def test_export_round_trips_and_names_every_receiver(config, export):
    text = render(export, title="Alertmanager configuration", source="monitor.yaml")
    assert yaml.safe_load(text) == export.data
    names = [r["name"] for r in export.data["receivers"]]
    assert names == [r.name for r in config.receivers] == ["pager", "slack-incidents", "slack-alerts", "email"]
    used = {r["receiver"] for r in _routes(export.data["route"])}
    assert used <= set(names)
    assert set(names) <= used | {export.data["route"]["receiver"]}


def test_export_writes_no_secret(export):
    text = render(export, title="Alertmanager configuration")
    for value in FAKE_ENV.values():
        assert value not in text
    assert set(export.secret_files) == {
        "/etc/alertmanager/secrets/pager-pagerduty-0-routing-key",
        "/etc/alertmanager/secrets/slack-incidents-slack-0-token",
        "/etc/alertmanager/secrets/slack-alerts-slack-0-token",
        "/etc/alertmanager/secrets/email-email-0-password",
    }
    for path in export.secret_files:
        assert path in text


def test_export_equals_the_shipped_alertmanager_yml(export):
    """alertmanager/alertmanager.yml is the export of the shipped routing (comments aside)."""
    assert yaml.safe_load(SHIPPED_AM.read_text()) == export.data


def test_shipped_routing_as_alertmanager_sees_it(export):
    data = export.data
    critical = [r for r in data["route"]["routes"] if r.get("matchers") == ['severity="critical"']]
    warning = [r for r in data["route"]["routes"] if r.get("matchers") == ['severity="warning"']]
    assert [r["receiver"] for r in critical] == ["pager", "slack-incidents"]
    assert [r["receiver"] for r in warning] == ["slack-alerts", "email"]
    assert data["inhibit_rules"][0] == {"source_matchers": ['severity="critical"'],
                                        "target_matchers": ['severity="warning"'], "equal": ["family", "service"]}
    (interval,) = data["time_intervals"]
    assert interval["time_intervals"] == [{"times": [{"start_time": "02:00", "end_time": "06:00"}],
                                           "weekdays": ["saturday"], "days_of_month": ["1:7"],
                                           "location": "UTC"}]
    for route in data["route"]["routes"]:
        assert route["mute_time_intervals"] == ["first-saturday-night"]
    assert "mute_time_intervals" not in data["route"]


def test_secrets_inline_and_webhook_and_window_with_matchers():
    cfg = shipped_config(
        receivers=yaml.safe_load((ROOT / "tests/shipped/shipped_receivers.yaml").read_text())["receivers"] + [
            {"name": "hook", "webhook_configs": [{"url": "https://hooks.example.com/x?token=${SLACK_BOT_TOKEN}",
                                                  "hmac_secret": "${SMTP_PASSWORD}", "max_alerts": 5}]}])
    plain = alertmanager_config(cfg)
    (hook,) = [r for r in plain.data["receivers"] if r["name"] == "hook"]
    assert hook["webhook_configs"][0]["url"] == WEBHOOK_PLACEHOLDER.format(receiver="hook")
    assert any("HMAC" in w for w in plain.warnings)
    inline = alertmanager_config(cfg, inline_secrets=True)
    text = render(inline, title="t")
    assert FAKE_ENV["PD_ROUTING_KEY"] in text and FAKE_ENV["SLACK_BOT_TOKEN"] in text
    assert not inline.secret_files

    data = yaml.safe_load((ROOT / "tests/alerting/shipped_alerting.yaml").read_text())["alerting"]
    data["maintenance_windows"][0]["matchers"] = ['service="api"']
    narrowed = alertmanager_config(shipped_config(alerting=data))
    assert any("maintenance window" in w for w in narrowed.warnings)
    assert all("mute_time_intervals" not in r for r in _routes(narrowed.data["route"]))


# --- with amtool ------------------------------------------------------------------------------------


def _amtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("amtool"), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_amtool_accepts_the_shipped_config():
    r = _amtool("check-config", str(SHIPPED_AM))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 receivers" in r.stdout and "2 inhibit rules" in r.stdout and "1 templates" in r.stdout


@pytest.mark.parametrize("inline", [False, True], ids=["file-secrets", "inline-secrets"])
def test_amtool_accepts_the_generated_config(tmp_path, export, inline):
    exp = alertmanager_config(shipped_config(), inline_secrets=True) if inline else export
    path = _write_generated(tmp_path, render(exp, title="Alertmanager configuration"))
    r = _amtool("check-config", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


def test_amtool_accepts_the_cli_output(tmp_path):
    """`codebook-monitor export alertmanager -o FILE` on a monitor.yaml with the shipped routing."""
    from monitor.cli import main

    cfg = yaml.safe_load((ROOT / "examples/monitor.yaml").read_text())
    cfg.update(yaml.safe_load((ROOT / "tests/alerting/shipped_alerting.yaml").read_text()))
    cfg.update(yaml.safe_load((ROOT / "tests/shipped/shipped_receivers.yaml").read_text()))
    text = yaml.safe_dump(cfg, sort_keys=False)
    # the secrets' ${VAR} get fake defaults; rule files stay where they are
    for name in FAKE_ENV:
        text = text.replace(f"${{{name}}}", f"${{{name}:-{FAKE_ENV[name]}}}")
    text = text.replace("\n- slos.yaml\n", f"\n- {ROOT / 'examples' / 'slos.yaml'}\n")  # slo_files
    (tmp_path / "monitor.yaml").write_text(text.replace("../rules/", str(ROOT / "rules") + "/"))
    out = tmp_path / "am" / "alertmanager.yml"
    out.parent.mkdir()
    shutil.copytree(TEMPLATES, out.parent / "templates")
    assert main(["export", "alertmanager", "--config", str(tmp_path / "monitor.yaml"), "-o", str(out)]) == 0
    assert "receiver: pager" in out.read_text()
    r = _amtool("check-config", str(out))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("labels", LABEL_SETS, ids=[ls["alertname"] for ls in LABEL_SETS])
def test_amtool_routes_like_our_routing_tree(tmp_path, config, export, labels):
    ours = [m.receiver for m in build_route(config.alerting.route).routes_for(labels)]
    args = [f"{k}={v}" for k, v in labels.items()]
    for path in (SHIPPED_AM, _write_generated(tmp_path, render(export, title="t"))):
        r = _amtool("config", "routes", "test", f"--config.file={path}", *args)
        assert r.returncode == 0, r.stdout + r.stderr
        theirs = r.stdout.strip().split(",")
        assert theirs == ours, f"{path.name}: amtool {theirs} vs ours {ours} for {labels}"


def test_templates_render_with_amtool(tmp_path):
    data = {
        "receiver": "pager", "status": "firing", "externalURL": "http://alertmanager:9093",
        "groupLabels": {"alertname": "HighErrorRate", "service": "api"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
        "commonAnnotations": {"summary": "API error rate is 6% (over 5% for 5 minutes)"},
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
            "annotations": {"summary": "API error rate is 6% (over 5% for 5 minutes)",
                            "description": "6% of Codebook API requests have failed.",
                            "runbook_url": "https://example.com/README.md#runbook-higherrorrate"},
            "startsAt": "2026-03-07T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "0123456789abcdef"}],
    }
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    glob = str(TEMPLATES / "*.tmpl")
    rendered = {}
    for name in ("codebook.slack.title", "codebook.slack.text", "codebook.pagerduty.description",
                 "codebook.email.subject", "codebook.email.html"):
        r = _amtool("template", "render", f"--template.glob={glob}",
                    f'--template.text={{{{ template "{name}" . }}}}', f"--template.data={data_file}")
        assert r.returncode == 0, r.stdout + r.stderr
        rendered[name] = r.stdout
    assert rendered["codebook.slack.title"].strip() == "[FIRING:1] CRITICAL HighErrorRate (api)"
    assert "API error rate is 6%" in rendered["codebook.slack.text"]
    assert "Runbook: https://example.com/README.md#runbook-higherrorrate" in rendered["codebook.slack.text"]
    assert rendered["codebook.pagerduty.description"].startswith("[FIRING:1] CRITICAL HighErrorRate (api): API")
    assert '<a href="https://example.com/README.md#runbook-higherrorrate">Runbook</a>' in \
        rendered["codebook.email.html"]
