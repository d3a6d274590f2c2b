"""Rule-file validation: every error at once, each with file:line:col, group and rule (fixtures/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.rules.rulefmt import load_rule_file, load_rule_files, parse_duration, parse_rule_text

FIX = Path(__file__).parent / "fixtures"


def errors_of(name: str, **kw) -> list[str]:
    _, errs = load_rule_file(FIX / name, **kw)
    return [str(e).replace(str(FIX) + "/", "") for e in errs]


def test_every_error_of_a_bad_file_with_its_position():
    assert errors_of("bad_rules.yaml") == [
        'bad_rules.yaml:3:15: group "api": interval: not a valid duration string: "5x"',
        'bad_rules.yaml:6:15: group "api", rule 1, "HighLatency": could not parse expression: '
        "parse error: unclosed left parenthesis",
        'bad_rules.yaml:10:9: group "api", rule 2, "job:x:rate5m": invalid field \'for\' in recording rule',
        'bad_rules.yaml:11:9: group "api", rule 2, "job:x:rate5m": invalid field \'annotations\' in recording rule',
        'bad_rules.yaml:12:9: group "api", rule 3, "NoSeverity": missing "severity" label '
        "(one of critical, warning, info, none)",
        'bad_rules.yaml:15:20: group "api", rule 3, "NoSeverity": annotation "summary": template: '
        '__alert_NoSeverity: function "nosuchfunc" not defined',
        'bad_rules.yaml:16:16: group "api", rule 4, "HighLatency": duplicate alert name "HighLatency" in group '
        "(first defined as rule 1)",
        'bad_rules.yaml:17:15: group "api", rule 4, "HighLatency": could not parse expression: parse error: '
        "unknown function with name 'nosuchfunction'",
        'bad_rules.yaml:18:38: group "api", rule 4, "HighLatency": invalid label name: bad-name',
        'bad_rules.yaml:19:9: group "api", rule 4, "HighLatency": field unknown_key not found in rule '
        "(allowed: record, alert, expr, for, keep_firing_for, labels, annotations)",
        'bad_rules.yaml:20:17: group "api", rule 5, "not a metric": invalid recording rule name: not a metric',
        'bad_rules.yaml:21:15: group "api", rule 5, "not a metric": expression must evaluate to an instant '
        "vector or scalar, got range vector",
        'bad_rules.yaml:24:28: group "api", rule 6, "WrongSeverity": label "severity" must be one of critical, '
        'warning, info, none, got "page"',
        'bad_rules.yaml:25:9: group "api", rule 7, "BothKinds": only one of \'record\' and \'alert\' must be set',
        "bad_rules.yaml:28:9: group \"api\", rule 8: one of 'record' or 'alert' must be set",
        'bad_rules.yaml:30:15: group "api", rule 9, "RangeVector": expression must evaluate to an instant '
        "vector or scalar, got range vector",
        'bad_rules.yaml:34:40: group "api", rule 10, "BadTemplate": label "team": template: __alert_BadTemplate: '
        "missing value for command",
        'bad_rules.yaml:35:11: groupname: "api" is repeated in the same file (first at line 2)',
        "bad_rules.yaml:37:5: groupname must not be empty",
    ]


def test_yaml_syntax_error_has_a_position():
    (err,) = errors_of("bad_syntax.yaml")
    assert err.startswith("bad_syntax.yaml:6:8: invalid YAML: ")


def test_severity_policy_can_be_turned_off_for_promtool_style_files():
    text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"
    assert [str(e) for e in parse_rule_text(text, "x.yaml")[1]] == [
        'x.yaml:4:9: group "g", rule 1, "A": missing "severity" label (one of critical, warning, info, none)']
    spec, errs = parse_rule_text(text, "x.yaml", require_severity=False)
    assert errs == [] and spec.groups[0].rules[0].name == "A"


def test_good_file_spec():
    spec, errs = load_rule_file(FIX / "good.yaml")
    assert errs == []
    ok, empty = spec.groups
    assert (ok.name, ok.interval_seconds, ok.limit, len(ok.rules)) == ("ok", 30.0, 10, 2)
    rec, alert = ok.rules
    assert (rec.kind, rec.name, rec.labels, rec.index) == ("record", "job:up:sum", {"source": "rules"}, 1)
    assert (alert.kind, alert.for_seconds, alert.keep_firing_for_seconds) == ("alert", 90.0, 120.0)
    assert (alert.line, alert.column, alert.index) == (9, 9, 2)
    assert (empty.name, empty.rules, empty.interval_seconds) == ("empty", [], None)


def test_unknown_top_level_key_and_wrong_shapes():
    text = "groupz: []\n"
    assert [str(e) for e in parse_rule_text(text, "f.yaml")[1]] == [
        "f.yaml:1:1: field groupz not found in rule file (allowed: groups)"]
    assert [str(e) for e in parse_rule_text("groups: {a: 1}\n", "f.yaml")[1]] == [
        "f.yaml:1:9: groups must be a sequence, got a mapping"]
    assert parse_rule_text("", "f.yaml") == parse_rule_text("groups:\n", "f.yaml")


def test_missing_file_is_an_error_and_many_files_report_everything():
    specs, errs = load_rule_files([FIX / "good.yaml", FIX / "nope.yaml", FIX / "bad_syntax.yaml"])
    assert len(specs) == 3 and len(errs) == 2
    assert "cannot read rule file" in str(errs[0])


@pytest.mark.parametrize("text, seconds", [("0", 0), ("30s", 30), ("1m30s", 90), ("2h", 7200), ("1d", 86400),
                                           ("1w", 604800), ("1y", 31536000), ("500ms", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5m", "5x", "m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="not a valid duration string"):
        parse_duration(text)
