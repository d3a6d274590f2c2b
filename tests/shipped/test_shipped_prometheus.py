"""`codebook-monitor export prometheus` (STYLE guideline 15).

The generated prometheus.yml scrapes this daemon (honor_labels) and the backend's targets (with
their limits), loads the shipped rule files and — only with `--evaluator prometheus` — sends
alerts to this daemon's Alertmanager v2 intake with the intake token, so one evaluator pages;
`promtool check config` accepts both. promtool's own PromQL parser also accepts every dashboard
query.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.export.document import render
from monitor.export.prometheus import prometheus_config
from tests.shipped.shipped_helpers import ROOT, require_tool, shipped_config, substitute_grafana_variables

RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_scrapes_daemon_and_backend_loads_rules_and_the_daemon_pages():
    cfg = shipped_config()
    export = prometheus_config(cfg, slo_rules_file="/etc/prometheus/codebook-slos.rules.yaml")
    data = export.data
    assert data["global"]["evaluation_interval"] == "5s"  # rules.evaluation_interval
    assert data["global"]["scrape_interval"] == "5s"  # the shortest scrape interval
    assert data["global"]["external_labels"] == {"monitor": "codebook-demo"}
    daemon, backend = data["scrape_configs"]
    assert daemon["job_name"] == "codebook-monitor"
    assert daemon["static_configs"] == [{"targets": ["127.0.0.1:9115"]}]
    assert daemon["metrics_path"] == "/metrics"
    assert daemon["honor_labels"] is True  # monitor_scrapes_total{job="codebook-backend"} keeps its job
    # Prometheus writes its own ALERTS for the same rules: the daemon's copies are dropped
    assert daemon["metric_relabel_configs"][0]["regex"] == "ALERTS|ALERTS_FOR_STATE"
    assert backend == {"job_name": "codebook-backend", "scheme": "http", "metrics_path": "/metrics",
                       "scrape_interval": "5s", "scrape_timeout": "4s",
                       "sample_limit": 50000, "label_limit": 64, "label_name_length_limit": 256,
                       "label_value_length_limit": 4096, "body_size_limit": "16MiB",
                       "static_configs": [{"targets": ["127.0.0.1:8000"]}]}
    assert data["rule_files"] == [*(str(Path(p).absolute()) for p in cfg.resolved_rule_files()),
                                  "/etc/prometheus/codebook-slos.rules.yaml"]
    assert {str(p) for p in RULE_FILES} <= set(data["rule_files"])
    # the default evaluator is the daemon: Prometheus loads the rules but sends its alerts nowhere
    assert "alerting" not in data and export.warnings == []


def test_prometheus_as_the_evaluator_sends_to_the_daemon_with_the_intake_token():
    cfg = shipped_config(api={"tokens": [{"name": "prom", "token": "ck_prometheus_intake_0123456789",
                                          "scopes": ["intake"]}]})
    export = prometheus_config(cfg, evaluator="prometheus", secrets_dir="/run/secrets")
    assert export.data["alerting"]["alertmanagers"] == [
        {"api_version": "v2", "scheme": "http", "static_configs": [{"targets": ["127.0.0.1:9115"]}],
         "authorization": {"type": "Bearer", "credentials_file": "/run/secrets/codebook-monitor-intake"}}]
    assert export.secret_files == {
        "/run/secrets/codebook-monitor-intake": "a token of api.tokens with the intake scope (prom)"}
    assert "ck_prometheus_intake" not in render(export, title="t")
    assert any("remove rules.files" in w for w in export.warnings)
    with pytest.raises(ValueError, match="evaluator"):
        prometheus_config(cfg, evaluator="both")


def test_a_read_token_is_sent_when_reads_need_one():
    cfg = shipped_config(api={"read_requires_token": True, "intake_open": True,
                              "tokens": [{"name": "grafana", "token": "ck_grafana_read_0123456789",
                                          "scopes": ["read"]}]})
    export = prometheus_config(cfg, evaluator="prometheus")
    daemon = export.data["scrape_configs"][0]
    assert daemon["authorization"] == {"type": "Bearer",
                                       "credentials_file": "/etc/prometheus/secrets/codebook-monitor-read"}
    assert "authorization" not in export.data["alerting"]["alertmanagers"][0]  # api.intake_open


def test_external_url_gives_scheme_host_and_path_prefix():
    cfg = shipped_config(server={"host": "0.0.0.0", "port": 9115,
                                 "external_url": "https://monitor.example.com/codebook"},
                         scrape=[{"name": "api", "url": "https://api.example.com:8443/internal/metrics?x=1",
                                  "interval": "30s", "timeout": "10s", "labels": {"env": "prod"},
                                  "honor_labels": True}])
    data = prometheus_config(cfg, evaluator="prometheus").data
    daemon, api = data["scrape_configs"]
    assert (daemon["scheme"], daemon["metrics_path"], daemon["static_configs"]) == (
        "https", "/codebook/metrics", [{"targets": ["monitor.example.com:443"]}])
    assert data["alerting"]["alertmanagers"][0]["path_prefix"] == "/codebook"
    assert api["static_configs"] == [{"targets": ["api.example.com:8443"], "labels": {"env": "prod"}}]
    assert (api["metrics_path"], api["params"], api["honor_labels"]) == ("/internal/metrics", {"x": ["1"]}, True)
    assert data["global"]["scrape_interval"] == "30s" and data["global"]["scrape_timeout"] == "10s"


def test_render_round_trips():
    export = prometheus_config(shipped_config())
    assert yaml.safe_load(render(export, title="Prometheus configuration")) == export.data


@pytest.mark.parametrize("evaluator", ["daemon", "prometheus"])
def test_promtool_accepts_the_generated_config(tmp_path, evaluator):
    """Written where it would live: rule-file paths relative to it; promtool also checks the rules."""
    from monitor.cli import main

    out = tmp_path / "prometheus" / "prometheus.yml"
    out.parent.mkdir()
    assert main(["export", "prometheus", "--config", str(ROOT / "examples" / "monitor.yaml"), "-o", str(out),
                 "--evaluator", evaluator, "--secrets-dir", str(tmp_path)]) == 0
    (tmp_path / "codebook-monitor-intake").write_text("token")
    data = yaml.safe_load(out.read_text())
    assert all(not Path(p).is_absolute() for p in data["rule_files"])
    assert {p.resolve() for p in RULE_FILES} <= {(out.parent / p).resolve() for p in data["rule_files"]}
    r = _promtool("check", "config", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(data['rule_files'])} rule files found" in r.stdout
    # the SLOs' generated rules are written beside it and loaded (regression: they were left out)
    assert "codebook-slos.rules.yaml" in data["rule_files"]
    slo_rules = (out.parent / "codebook-slos.rules.yaml").read_text()
    assert slo_rules == (ROOT / "examples" / "slos.rules.yaml").read_text()


def test_promtool_accepts_a_config_with_path_prefix(tmp_path):
    cfg = shipped_config(server={"host": "0.0.0.0", "port": 9115, "external_url": "https://m.example.com/cb"})
    path = tmp_path / "prometheus.yml"
    path.write_text(render(prometheus_config(cfg, relative_to=tmp_path, evaluator="prometheus",
                                             secrets_dir=str(tmp_path)), title="t"))
    (tmp_path / "codebook-monitor-intake").write_text("token")
    r = _promtool("check", "config", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_parses_every_dashboard_query(tmp_path):
    """Prometheus's own parser agrees with ours: each panel query as a recording rule."""
    rules = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        d = json.loads(path.read_text())
        panels = [q for p in d["panels"] for q in [p, *p.get("panels", [])]]
        for p in panels:
            for t in p.get("targets", []):
                rules.append({"record": f"dashboard:{path.stem}:{p['id']}{t['refId'].lower()}",
                              "expr": substitute_grafana_variables(t["expr"])})
    assert len(rules) > 50
    f = tmp_path / "dashboard_queries.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = _promtool("check", "rules", str(f))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("kind", ["alertmanager", "prometheus"])
def test_cli_writes_to_stdout(kind, capsys):
    from monitor.cli import main

    assert main(["export", kind, "--config", str(ROOT / "examples" / "monitor.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {kind.title()} configuration, generated by `codebook-monitor export`")
    yaml.safe_load(out)


def test_without_output_the_slo_rules_need_slo_rules_or_a_warning_says_so(tmp_path, capsys):
    from monitor.cli import main

    cfg = str(ROOT / "examples" / "monitor.yaml")
    assert main(["export", "prometheus", "--config", cfg]) == 0
    captured = capsys.readouterr()
    assert "11 SLO(s) whose rules are not in rule_files" in captured.err
    assert "slos.rules" not in captured.out
    slo_rules = tmp_path / "slos.rules.yaml"
    assert main(["export", "prometheus", "--config", cfg, "--slo-rules", str(slo_rules)]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["rule_files"][-1] == str(slo_rules)
    assert slo_rules.read_text() == (ROOT / "examples" / "slos.rules.yaml").read_text()


def test_cli_reports_a_bad_config(tmp_path, capsys):
    from monitor.cli import main

    bad = tmp_path / "monitor.yaml"
    bad.write_text("server:\n  port: not-a-port\n")
    assert main(["export", "prometheus", "--config", str(bad)]) == 1
    assert "server.port" in capsys.readouterr().err
