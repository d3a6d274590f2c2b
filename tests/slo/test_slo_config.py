"""SLOs in the config: ``slos:`` and ``slo_files:`` (ours, Sloth prometheus/v1, OpenSLO v1), errors
with file:line:col and key path, and the generated rules loaded like a rule file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config.loader import load_config
from monitor.daemon.wiring import SLO_RULES_NAME, rule_sources
from monitor.errors import ConfigErrors
from monitor.rules.rulefmt import RuleText, load_rule_files

SLOTH = """\
version: "prometheus/v1"
service: "myservice"
labels:
  owner: "myteam"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for HTTP request responses."
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels:
        category: "availability"
      annotations:
        summary: "High error rate on 'myservice' requests responses"
      page_alert:
        labels:
          severity: pageteam
          routing_key: myteam
      ticket_alert:
        disable: true
"""

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-availability
  labels: {team: search}
spec:
  service: search
  indicatorRef: search-good
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: good
      target: 0.995
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: search-good
spec:
  ratioMetric:
    counter: true
    good:
      metricSource: {type: Prometheus, spec: {query: 'http_requests_total{job="search",code!~"5.."}'}}
    total:
      metricSource: {type: Prometheus, spec: {query: 'http_requests_total{job="search"}'}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: db-up
spec:
  service: database
  indicator:
    metadata: {name: db}
    spec:
      thresholdMetric:
        metricSource: {type: Prometheus, spec: {query: 'probe_success{kind="database"}'}}
  timeWindow:
    - {duration: 1M, isRolling: false}
  budgetingMethod: Timeslices
  objectives:
    - {target: 0.999, op: gte, value: 1}
"""

INLINE = """\
slos:
  - service: api
    name: availability
    objective: 99.9
    labels: {team: backend}
    sli:
      ratio:
        error_query: sum(rate(http_requests_total{status=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Paths inside the working directory print relative (``sloth.yaml:7:5: ...``).
    monkeypatch.chdir(tmp_path)


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return Path("monitor.yaml")


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        load_config(path)
    return [str(e) for e in exc.value.errors]


def test_inline_sloth_and_openslo_load_into_one_list(tmp_path):
    cfg = load_config(_write(tmp_path, {"monitor.yaml": INLINE + "slo_files: [slos/*.yaml]\n",
                                        "slos/a_sloth.yaml": SLOTH, "slos/b_openslo.yaml": OPENSLO}))
    slos = cfg.all_slos()
    assert [(s.id, s.period, s.objective, s.sli.kind) for s in slos] == [
        ("api-availability", "30d", 99.9, "ratio"),
        ("myservice-requests-availability", "30d", 99.9, "ratio"),
        ("search-search-availability", "28d", 99.5, "ratio"),
        ("database-db-up", "calendar_month", 99.9, "probe"),
    ]
    sloth = slos[1]
    assert sloth.labels == {"owner": "myteam"} and sloth.alerting.name == "MyServiceHighErrorRate"
    # page tiers only (ticket_alert disabled); a non-standard Sloth severity is kept as a label
    assert [(t.name, t.severity, t.labels) for t in sloth.alerting.tiers] == [
        ("page-fast", "critical", {"routing_key": "myteam", "sloth_severity_label": "pageteam"}),
        ("page-slow", "critical", {"routing_key": "myteam", "sloth_severity_label": "pageteam"})]
    search = slos[2].sli.ratio
    assert search is not None
    assert search.total_query == 'sum(rate(http_requests_total{job="search"}[{{.window}}]))'
    assert search.error_query.startswith("(sum(rate(http_requests_total{job=\"search\"}[{{.window}}]))) - (")
    assert slos[3].sli.probe is not None and slos[3].sli.probe.query == '(probe_success{kind="database"}) >= bool 1'
    assert slos[1].source.endswith("a_sloth.yaml")


def test_generated_rules_are_loaded_like_a_rule_file(tmp_path):
    cfg = load_config(_write(tmp_path, {"monitor.yaml": INLINE}))
    sources = rule_sources(cfg)
    assert isinstance(sources[-1], RuleText) and sources[-1].path == SLO_RULES_NAME
    specs, errors = load_rule_files(sources)
    assert errors == []
    assert [g.name for g in specs[-1].groups] == ["slo-api-availability"]


def test_no_slos_no_generated_rules(tmp_path):
    cfg = load_config(_write(tmp_path, {"monitor.yaml": "log: {level: INFO}\n"}))
    assert rule_sources(cfg) == []


def test_inline_errors_name_line_column_and_key_path(tmp_path):
    bad = INLINE.replace("objective: 99.9", "objective: 100").replace("[{{.window}}]))\n", "[5m]))\n", 1)
    assert _errors(_write(tmp_path, {"monitor.yaml": bad})) == [
        "monitor.yaml:4:5: slos[0].objective: must be less than 100.0, got \"100\"",
        "monitor.yaml:8:9: slos[0].sli.ratio.error_query: the query must use the {{.window}} placeholder in its "
        "range, e.g. [{{.window}}]",
    ]


def test_duplicate_slo_ids_across_files(tmp_path):
    ours = "slos:\n" + INLINE.split("slos:\n", 1)[1]
    path = _write(tmp_path, {"monitor.yaml": INLINE + "slo_files: [more.yaml]\n", "more.yaml": ours})
    assert _errors(path) == ['more.yaml:3:5: slos[0].name: duplicate SLO "api-availability" (service-name; '
                             'also in monitor.yaml)']


def test_sloth_file_errors_point_into_the_sloth_file(tmp_path):
    bad = SLOTH.replace("objective: 99.9", "objective: 101").replace("    description:", "    descripton:")
    path = _write(tmp_path, {"monitor.yaml": "slo_files: [sloth.yaml]\n", "sloth.yaml": bad})
    errors = _errors(path)
    assert any(e.startswith("sloth.yaml:7:5: slos[0].objective: must be less than 100.0") for e in errors), errors
    assert any(e.startswith('sloth.yaml:8:5: slos[0].descripton: unknown key "descripton"') for e in errors), errors


def test_sloth_raw_sli_is_refused_with_the_reason(tmp_path):
    bad = SLOTH.replace("      events:\n", "      raw:\n        error_ratio_query: x\n      eventz:\n")
    path = _write(tmp_path, {"monitor.yaml": "slo_files: [sloth.yaml]\n", "sloth.yaml": bad})
    (err,) = _errors(path)
    assert err.startswith("sloth.yaml:10:7: slos[0].sli.raw: sli.raw is not supported")


def test_openslo_errors_name_the_document(tmp_path):
    bad = OPENSLO.replace("type: Prometheus, spec: {query: 'probe", "type: Datadog, spec: {query: 'probe")
    bad = bad.replace("duration: 28d", "duration: 3d")
    path = _write(tmp_path, {"monitor.yaml": "slo_files: [o.yaml]\n", "o.yaml": bad})
    assert _errors(path) == [
        'o.yaml:10:7: [0].spec.timeWindow[0]: supported windows: rolling 30d, 28d (4w), 7d (1w), or 1M calendar '
        '(isRolling: false); got "3d"',
        'o.yaml:39:24: [2].spec.indicator.spec.thresholdMetric.metricSource.type: only metricSource.type '
        'Prometheus is supported, got "Datadog"',
    ]


def test_unrecognised_slo_file(tmp_path):
    path = _write(tmp_path, {"monitor.yaml": "slo_files: [x.yaml]\n", "x.yaml": "groups: []\n"})
    (err,) = _errors(path)
    assert err.startswith("x.yaml:1:1: not an SLO file")


def test_slo_file_errors_are_reported_with_the_config_errors(tmp_path):
    # Regression: SLO-file errors appeared only once monitor.yaml itself was valid.
    bad = SLOTH.replace("objective: 99.9", "objective: 101")
    path = _write(tmp_path, {"monitor.yaml": "log: {level: LOUD}\nslo_files: [sloth.yaml]\n", "sloth.yaml": bad})
    errors = _errors(path)
    assert errors[0].startswith("monitor.yaml:1:"), errors
    assert any(e.startswith("sloth.yaml:7:5: slos[0].objective: must be less than 100.0") for e in errors), errors


def test_oncall_sli_errors_name_line_column_and_key_path(tmp_path):
    text = textwrap.dedent("""\
        slos:
          - service: oncall
            name: ack-p0
            objective: 95
            sli:
              oncall: {priority: P0, measure: acknowledged}
        """)
    errors = _errors(_write(tmp_path, {"monitor.yaml": text}))
    assert len(errors) == 1 and errors[0].startswith("monitor.yaml:6:") and \
        "slos[0].sli.oncall.measure: " in errors[0] and "'ack' or 'resolve'" in errors[0], errors
