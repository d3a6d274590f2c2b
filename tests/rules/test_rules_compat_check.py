"""``check`` warns about rules whose meaning differs between Prometheus 2 and 3, and rejects
the ones the configured ``promql_compat``/``enable_features`` do not allow."""

from __future__ import annotations

from monitor.cli import main

CONFIG = """\
rules:
  files: ["rules/*.yaml"]
  evaluation_interval: 1m
{extra}"""

RULES = """\
groups:
  - name: g
    rules:
      - record: a
        expr: rate(x[1m])
      - record: b
        expr: max_over_time(x[5m:5m])
      - record: c
        expr: sum(rate(h_bucket{le="1"}[5m]))
      - record: d
        expr: rate(x[5m]) + sum(h_bucket{le="1.0"}) + max_over_time(x[10m:1m])
"""


def _write(tmp_path, rules: str, extra: str = "") -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(rules)
    (tmp_path / "monitor.yaml").write_text(CONFIG.format(extra=extra))


def test_check_warns_about_meaning_changes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, RULES)
    assert main(["check", "--config", "monitor.yaml"]) == 0  # warnings do not fail the check
    # (a config with rules only also gets the "nothing to monitor" warning: not what this test is about)
    err = [line for line in capsys.readouterr().err.splitlines() if "nothing to monitor" not in line]
    assert err == [
        'warning: rules/r.yaml:4:9: group "g", rule 1, "a": rate() over [1m], no longer than the evaluation '
        "interval 1m: Prometheus 3's left-open window holds one sample fewer (the result can be empty)",
        'warning: rules/r.yaml:6:9: group "g", rule 2, "b": subquery [5m:5m] no longer than its step: '
        "Prometheus 3 evaluates it at one point fewer",
        'warning: rules/r.yaml:8:9: group "g", rule 3, "c": le="1" never matches in Prometheus 3, which stores '
        'le="1.0"',
    ]


def test_check_rejects_what_the_compat_level_does_not_have(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, RULES.replace("rate(x[1m])", "holt_winters(x[10m], 0.5, 0.5)"))
    assert main(["check", "--config", "monitor.yaml"]) == 1
    err = capsys.readouterr().err
    assert "renamed it double_exponential_smoothing" in err and "holt_winters is removed in Prometheus 3" in err


def test_check_accepts_holt_winters_under_compat_2_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, RULES.replace("rate(x[1m])", "holt_winters(x[10m], 0.5, 0.5)"), '  promql_compat: "2"\n')
    assert main(["check", "--config", "monitor.yaml"]) == 0
    assert "warning: " in capsys.readouterr().err


def test_duration_expressions_need_the_feature(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, RULES.replace("rate(x[1m])", "rate(x[4m+1m])"))
    assert main(["check", "--config", "monitor.yaml"]) == 1
    assert "promql-duration-expr" in capsys.readouterr().err
    (tmp_path / "monitor.yaml").write_text(CONFIG.format(extra="  enable_features: [promql-duration-expr]\n"))
    assert main(["check", "--config", "monitor.yaml"]) == 0
