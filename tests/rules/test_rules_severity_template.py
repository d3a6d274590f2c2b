"""A rule's ``severity`` label may be a template: accepted at load when the template parses, checked
by the severity policy after expansion at each evaluation (monitor/rules/rulefmt.py, alerting.py).
An alert whose expanded severity is outside the policy is kept and paged as critical, with the
expanded text in the ``invalid_severity`` annotation, logged once per value and counted."""

from __future__ import annotations

import logging
from pathlib import Path

from monitor.daemon.collectors import RuleCollector
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import parse_rule_text
from model.labels import Labels
from monitor.tsdb.store import SampleStore

T0 = 1_700_000_000.0

RULES = """
groups:
  - name: svc
    interval: 1m
    rules:
      - alert: QueueDeep
        expr: queue_depth > 0
        labels:
          severity: '{{ if gt $value 10.0 }}critical{{ else }}warning{{ end }}'
      - alert: Typo
        expr: queue_depth > 0
        labels:
          severity: '{{ if gt $value 10.0 }}critcal{{ else }}warning{{ end }}'
"""


def test_a_templated_severity_loads_and_a_literal_one_is_still_checked():
    spec, errs = parse_rule_text(RULES, "svc.yaml")
    assert errs == [] and len(spec.groups[0].rules) == 2
    literal = RULES.replace("'{{ if gt $value 10.0 }}critcal{{ else }}warning{{ end }}'", "critcal")
    assert [str(e) for e in parse_rule_text(literal, "svc.yaml")[1]] == [
        'svc.yaml:13:21: group "svc", rule 2, "Typo": label "severity" must be one of critical, warning, '
        'info, none, got "critcal"']
    broken = RULES.replace("{{ else }}warning{{ end }}'\n      - alert: Typo",
                           "{{ else }}warning'\n      - alert: Typo")
    [err] = parse_rule_text(broken, "svc.yaml")[1]
    assert 'rule 1, "QueueDeep": label "severity": ' in str(err)


def _manager(tmp_path: Path) -> tuple[SampleStore, RuleManager]:
    store = SampleStore(retention_seconds=None)
    mgr = RuleManager(store, Engine(store))
    p = tmp_path / "svc.yaml"
    p.write_text(RULES)
    assert mgr.load([str(p)]) == []
    return store, mgr


def _feed(store: SampleStore, t: float, value: float) -> None:
    store.append(Labels.of(__name__="queue_depth", job="api"), int(t * 1000), value)


def test_severity_is_checked_after_expansion_at_each_evaluation(tmp_path, caplog):
    store, mgr = _manager(tmp_path)
    (group,) = mgr.groups()
    queue, typo = group.rules
    _feed(store, T0, 3)
    with caplog.at_level(logging.WARNING):
        group.eval(T0)
    [a] = queue.alerts()
    assert a.labels.get("severity") == "warning" and "invalid_severity" not in a.annotations
    [b] = typo.alerts()
    assert b.labels.get("severity") == "warning"  # the template's good branch: nothing to report
    assert typo.invalid_severity_total == 0 and not caplog.records

    _feed(store, T0 + 60, 30)
    with caplog.at_level(logging.WARNING):
        group.eval(T0 + 60)
        group.eval(T0 + 90)
    crit = [x for x in queue.alerts() if x.labels.get("severity") == "critical"]
    assert len(crit) == 1 and "invalid_severity" not in crit[0].annotations
    # the typo: kept, paged as critical, the expanded text beside; counted each time, logged once
    bad = [x for x in typo.alerts() if x.annotations.get("invalid_severity") == "critcal"]
    assert len(bad) == 1 and bad[0].labels.get("severity") == "critical"
    assert typo.invalid_severity_total == 2
    [rec] = [r for r in caplog.records if "severity policy" in r.getMessage()]
    assert (rec.rule, rec.severity, rec.group) == ("Typo", "critcal", "svc")
    fams = {f.name: f for f in RuleCollector(mgr).collect()}
    [s] = fams["monitor_rule_invalid_severity"].samples
    assert s.name == "monitor_rule_invalid_severity_total" and s.value == 2.0


def test_without_the_policy_an_expanded_severity_is_left_as_is(tmp_path):
    store = SampleStore(retention_seconds=None)
    mgr = RuleManager(store, Engine(store), require_severity=False)
    p = tmp_path / "svc.yaml"
    p.write_text(RULES)
    assert mgr.load([str(p)]) == []
    _feed(store, T0, 30)
    (group,) = mgr.groups()
    group.eval(T0)
    [b] = group.rules[1].alerts()
    assert b.labels.get("severity") == "critcal" and "invalid_severity" not in b.annotations
