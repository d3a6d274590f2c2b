"""``codebook-monitor check`` reports every error in one round, and paths follow the config file.

Issue 16: an unknown receiver, an unknown person and a bad ``interval: 15 s`` used to come out in
three rounds (the cross-references were only checked once every section was valid, the rule files
only once the config was); a ``ca_file`` that does not exist was accepted; ``state.path`` and
``ca_file`` were relative to the working directory, not to the config file as rule files are.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config.loader import InvalidConfig, check_config_file, load_config

REAL_PROBES = True  # the tls probe's real settings (tests/config/conftest.py)

BAD = """\
probes:
  - name: api
    kind: api
    url: http://127.0.0.1:8000
    interval: 15 s
  - name: cert
    kind: tls
    host: 127.0.0.1
    port: 8443
    ca_file: certs/missing.pem
scrape:
  - name: backend
    url: http://127.0.0.1:8000/metrics
    interval: 5s
    timeout: 10s
heartbeat:
  url: http://127.0.0.1:1/ping
  interval: 5s
  timeout: 10s
receivers:
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:1/x"}]
alerting:
  route:
    receiver: nope
  people:
    alice: {name: Alice}
  schedules:
    primary:
      time_zone: UTC
      rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"}
      start: 2026-01-05
      members: [alice, zed]
rules:
  files: [rules/*.yaml]
"""

BAD_RULES = """\
groups:
  - name: api
    rules:
      - alert: A
        expr: sum(rate(x[5m])
        labels: {severity: warning}
"""

EXPECTED = [
    'monitor.yaml:5:5: probes[0].interval: expected a duration such as 30s, got "15 s"',
    'monitor.yaml:10:5: probes[1].ca_file: cannot read ca_file "certs/missing.pem": no such file '
    "(resolved against the config file's directory: {dir}/certs/missing.pem)",
    "monitor.yaml:15:5: scrape[0].timeout: timeout 10s must not exceed interval 5s",
    "monitor.yaml:19:3: heartbeat.timeout: timeout 10s must not exceed interval 5s",
    'monitor.yaml:25:5: alerting.route.receiver: undefined receiver "nope" used in route',
    'monitor.yaml:33:24: alerting.schedules.primary.members[1]: undefined person "zed" in schedule "primary"',
]


def _write(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "api.yaml").write_text(BAD_RULES)
    path = tmp_path / "monitor.yaml"
    path.write_text(BAD)
    return path


def test_check_config_file_reports_every_stage_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path)
    assert check_config_file("monitor.yaml") == [e.format(dir=tmp_path) for e in EXPECTED]


def test_check_command_adds_the_rule_files_of_an_invalid_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path)
    assert main(["check", "--config", "monitor.yaml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:6] == [e.format(dir=tmp_path) for e in EXPECTED]
    assert err[6].startswith('rules/api.yaml:5:15: group "api", rule 1, "A": could not parse expression')
    assert err[7:] == ["7 error(s)"]


def test_invalid_config_carries_its_rule_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path)
    with pytest.raises(InvalidConfig) as exc:
        load_config("monitor.yaml")
    assert exc.value.rule_files == [Path("rules/api.yaml")]


def test_cross_reference_errors_are_not_repeated_when_they_are_the_only_errors(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("alerting:\n  route:\n    receiver: nope\n")
    assert check_config_file(path) == [
        f'{path}:3:5: alerting.route.receiver: undefined receiver "nope" used in route']


CERT_CONFIG = """\
probes:
  - name: cert
    kind: tls
    host: 127.0.0.1
    ca_file: certs/ca.pem
state:
  path: state/monitor-state.db
"""


def test_state_path_and_ca_file_are_relative_to_the_config_file(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    (conf_dir / "certs").mkdir(parents=True)
    (conf_dir / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (conf_dir / "monitor.yaml").write_text(CERT_CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../conf/monitor.yaml")
    assert config.probes[0].ca_file == str(conf_dir / "certs" / "ca.pem")
    assert config.state.path == str(conf_dir / "state" / "monitor-state.db")
    assert check_config_file("../conf/monitor.yaml") == []


def test_a_missing_ca_file_fails_check_but_not_the_daemons_load(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(textwrap.dedent(CERT_CONFIG))
    assert check_config_file(path) == [
        f'{path}:5:5: probes[0].ca_file: cannot read ca_file "certs/ca.pem": no such file '
        f"(resolved against the config file's directory: {tmp_path}/certs/ca.pem)"]
    # The daemon starts: its TLS probe fails with the reason until the file appears.
    assert load_config(path).probes[0].ca_file == str(tmp_path / "certs" / "ca.pem")
