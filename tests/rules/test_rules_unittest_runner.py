"""The promtool `test rules` runner: series notation, alert and expression checks, failure output."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import pytest

from monitor.rules.unittest import expand_values, format_duration, parse_series, run_test_files
from model.labels import Labels
from monitor.tsdb.series import is_stale


@pytest.mark.parametrize("text, want", [
    ("1 2 3", [1, 2, 3]),
    ("-2+4x3", [-2, 2, 6, 10]),
    ("1-2x4", [1, -1, -3, -5, -7]),
    ("1x4", [1, 1, 1, 1, 1]),
    ("1 _x3 5", [1, None, None, None, 5]),
    ("_ 0+0.5x2", [None, 0, 0.5, 1.0]),
    ("1e3 +Inf -Inf", [1000, math.inf, -math.inf]),
])
def test_expand_values(text, want):
    assert expand_values(text) == want


def test_expand_values_stale_and_errors():
    v = expand_values("1 stale")
    assert v[0] == 1 and is_stale(v[1])
    with pytest.raises(ValueError, match="invalid value 'x3'"):
        expand_values("x3")


def test_parse_series_and_format_duration():
    assert parse_series('up{job="a", instance=\'b:1\'}') == Labels.of(__name__="up", job="a", instance="b:1")
    assert parse_series('{a="x\\"y"}') == Labels.of(a='x"y')
    assert [format_duration(s) for s in (0, 60, 3900, 90061, 0.5)] == ["0s", "1m", "1h5m", "1d1h1m1s", "500ms"]


RULES = """
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.instance }} down"
"""

TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: down
    interval: 1m
    external_labels: {env: test}
    input_series:
      - series: 'up{job="prometheus", instance="localhost:9090"}'
        values: '0x14'
      - series: 'up{job="node", instance="localhost:9100"}'
        values: '1x6 0x8'
    alert_rule_test:
      - eval_time: 4m
        alertname: InstanceDown
        exp_alerts: []
      - eval_time: 10m
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {severity: page, instance: "localhost:9090", job: prometheus}
            exp_annotations: {summary: "localhost:9090 down"}
    promql_expr_test:
      - expr: job:up:sum
        eval_time: 4m
        exp_samples:
          - {labels: 'job:up:sum{job="prometheus"}', value: 0}
          - {labels: 'job:up:sum{job="node"}', value: 1}
      - expr: scalar(vector(2))
        eval_time: 0m
        exp_samples: [{labels: '{}', value: 2}]
"""


def run(tmp_path: Path, tests: str, rules: str = RULES) -> tuple[int, str]:
    (tmp_path / "rules.yaml").write_text(rules)
    (tmp_path / "t.yaml").write_text(tests)
    out = io.StringIO()
    code = run_test_files([tmp_path / "t.yaml"], out)
    return code, out.getvalue().replace(str(tmp_path) + "/", "")


def test_passing_file(tmp_path):
    assert run(tmp_path, TESTS) == (0, "Unit Testing:  t.yaml\n  SUCCESS\n\n")


def test_failures_print_expected_and_got_like_promtool(tmp_path):
    bad = TESTS.replace("eval_time: 4m\n        alertname", "eval_time: 6m\n        alertname") \
        .replace("value: 2}]", "value: 3}]")
    code, out = run(tmp_path, bad)
    assert code == 1
    assert out == textwrap.dedent('''\
        Unit Testing:  t.yaml
          FAILED:
            name: down,
            alertname: InstanceDown, time: 6m, 
                exp:[], 
                got:[
                    0:
                      Labels:{alertname="InstanceDown", instance="localhost:9090", job="prometheus", severity="page"}
                      Annotations:{summary="localhost:9090 down"}
                    ]
            expr: "scalar(vector(2))", time: 0s,
                exp: {} 3E+00
                got: {} 2E+00

        ''')  # noqa: W291 (promtool's output has trailing blanks)


def test_pending_alerts_are_not_reported(tmp_path):
    # node goes down at 7m: pending at 10m, so only prometheus is expected (as in promtool)
    assert run(tmp_path, TESTS)[0] == 0


def test_rule_evaluation_errors_stop_the_group(tmp_path):
    rules = RULES + """      - record: dup
        expr: up
        labels: {job: same, instance: same}
"""
    code, out = run(tmp_path, TESTS, rules)
    assert code == 1
    assert ("    rule: dup, time: 0s, err: vector contains metrics with the same labelset after applying rule labels"
            in out)


def test_invalid_rule_file_is_reported(tmp_path):
    code, out = run(tmp_path, TESTS, RULES.replace("up == 0", "up ==="))
    assert code == 1 and 'rules.yaml:8:15: group "g", rule 2, "InstanceDown": could not parse expression' in out


def test_missing_alertname_and_bad_yaml(tmp_path):
    code, out = run(tmp_path, TESTS.replace("alertname: InstanceDown\n        exp_alerts: []", "exp_alerts: []"))
    assert code == 1 and "misses required attribute alertname at eval_time 4m" in out
    code, out = run(tmp_path, "tests: [")
    assert code == 1 and "FAILED" in out
