"""Routing tree and matcher parsing: Alertmanager dispatch/route.go and pkg/labels/parse.go semantics."""

from __future__ import annotations

import pytest

from model.matchers import format_matchers, parse_matcher, parse_matchers
from monitor.alerting.route import DEFAULT_ROUTE_OPTS, build_route, parse_label_args, routes_test
from model.labels import Labels
from model.matchers import Matcher
from tests.support.alerting_helpers import load_alerting

# The tree of Alertmanager's dispatch/route_test.go (TestRouteMatch), in our YAML.
AM_TREE = """
route:
  receiver: notify-def
  routes:
    - match: {owner: team-A}
      receiver: notify-A
      routes:
        - match: {env: testing}
          receiver: notify-testing
          group_by: ["..."]
        - match: {env: production}
          receiver: notify-productionA
          group_wait: 1m
          continue: true
        - match_re: {env: "produ.*", job: ".*"}
          receiver: notify-productionB
          group_wait: 30s
          group_interval: 5m
          repeat_interval: 1h
          group_by: [job]
    - match_re: {owner: "team-(B|C)"}
      group_by: [foo, bar]
      group_wait: 2m
      receiver: notify-BC
    - match: {group_by: role}
      group_by: [role]
      routes:
        - match: {env: testing}
          receiver: notify-testing
          routes:
            - match: {wait: long}
              group_wait: 2m
"""


@pytest.fixture
def tree():
    return build_route(load_alerting(AM_TREE).route)


def _summary(tree, **labels):
    return [(m.receiver, m.group_by, m.group_wait, m.group_interval, m.repeat_interval)
            for m in tree.routes_for(Labels.of(labels))]


def test_route_match_cases_from_alertmanager_route_test(tree):
    d = DEFAULT_ROUTE_OPTS
    assert _summary(tree, owner="team-A") == [("notify-A", (), d.group_wait, d.group_interval, d.repeat_interval)]
    assert _summary(tree, owner="team-A", env="unset") == [("notify-A", (), 30.0, 300.0, 14400.0)]
    assert _summary(tree, owner="team-C") == [("notify-BC", ("foo", "bar"), 120.0, 300.0, 14400.0)]
    assert _summary(tree, owner="team-A", env="testing") == [("notify-testing", ("...",), 30.0, 300.0, 14400.0)]
    # continue: true on productionA lets productionB match too.
    assert _summary(tree, owner="team-A", env="production") == [
        ("notify-productionA", (), 60.0, 300.0, 14400.0),
        ("notify-productionB", ("job",), 30.0, 300.0, 3600.0),
    ]
    # Receiver and group_by are inherited down two levels; group_wait set on the leaf.
    assert _summary(tree, group_by="role") == [("notify-def", ("role",), 30.0, 300.0, 14400.0)]
    assert _summary(tree, group_by="role", env="testing") == [("notify-testing", ("role",), 30.0, 300.0, 14400.0)]
    assert _summary(tree, group_by="role", env="testing", wait="long") == [
        ("notify-testing", ("role",), 120.0, 300.0, 14400.0)]


def test_no_child_matches_returns_the_node_itself(tree):
    assert [m.receiver for m in tree.routes_for({"owner": "nobody"})] == ["notify-def"]


def test_first_match_without_continue_stops_siblings():
    root = build_route(load_alerting("""
route:
  receiver: default
  routes:
    - {matchers: ['severity="critical"'], receiver: a}
    - {matchers: ['severity=~"crit.*"'], receiver: b}
""").route)
    assert [m.receiver for m in root.routes_for({"severity": "critical"})] == ["a"]


def test_route_keys_are_unique_and_stable(tree):
    keys = [r.key for r in tree.walk()]
    assert len(keys) == len(set(keys))
    assert keys[0] == "{}"
    assert keys[1] == '{}/{owner="team-A"}/0'
    again = build_route(load_alerting(AM_TREE).route)
    assert keys == [r.key for r in again.walk()]


def test_time_intervals_are_not_inherited():
    root = build_route(load_alerting("""
route:
  receiver: default
  routes:
    - matchers: ['team="db"']
      mute_time_intervals: [nights]
      routes:
        - {matchers: ['severity="critical"']}
""").route)
    (db,) = root.routes
    (leaf,) = db.routes
    assert db.opts.mute_time_intervals == ("nights",)
    assert leaf.opts.mute_time_intervals == ()
    assert leaf.opts.receiver == "default"


def test_shipped_routes(shipped):
    root = build_route(shipped.route)
    assert routes_test(root, ["severity=critical", "alertname=ApiDown"]) == "pager\nslack-incidents"
    assert routes_test(root, ["severity=warning"]) == "slack-alerts\nemail"
    assert routes_test(root, ["severity=info"]) == "slack-alerts"
    assert routes_test(root, ["severity=critical,service=api"]).splitlines() == ["pager", "slack-incidents"]
    verbose = routes_test(root, {"severity": "critical"}, verbose=True).splitlines()
    assert verbose[0].startswith("pager\troute={}/{severity=\"critical\"}/0 group_by=[alertname, service]")
    assert "group_wait=10s" in verbose[0] and "repeat_interval=3600s" in verbose[0]
    assert root.receivers() == ["slack-alerts", "pager", "slack-incidents", "email"]


@pytest.mark.parametrize("text, expected", [
    ('severity="critical"', Matcher("severity", "=", "critical")),
    ("severity=critical", Matcher("severity", "=", "critical")),
    ('  env != "prod" ', Matcher("env", "!=", "prod")),
    ('service=~"api|db"', Matcher("service", "=~", "api|db")),
    ("service!~api.*", Matcher("service", "!~", "api.*")),
    ('msg="say \\"hi\\""', Matcher("msg", "=", 'say "hi"')),
    ('path="C:\\\\dir"', Matcher("path", "=", "C:\\dir")),
    ('multi="a\\nb"', Matcher("multi", "=", "a\nb")),
    ('empty=""', Matcher("empty", "=", "")),
    ("empty=", Matcher("empty", "=", "")),
    ('comma="a,b"', Matcher("comma", "=", "a,b")),
])
def test_parse_matcher(text, expected):
    assert parse_matcher(text) == expected


@pytest.mark.parametrize("text, message", [
    ("no operator", "bad matcher format"),
    ('1abc="x"', "bad matcher format"),
    ('a="unterminated', "unescaped double quote"),
    ('a="x"y"', "unescaped double quote"),
    ('a=~"("', "invalid regex"),
])
def test_parse_matcher_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_matcher(text)


def test_parse_matchers_lists():
    assert parse_matchers('{a="b", c=~"d|e"}') == [Matcher("a", "=", "b"), Matcher("c", "=~", "d|e")]
    assert parse_matchers('a="x,y",b!=z,') == [Matcher("a", "=", "x,y"), Matcher("b", "!=", "z")]
    assert parse_matchers("{}") == [] and parse_matchers("") == []
    with pytest.raises(ValueError):
        parse_matchers('{a="b"')
    with pytest.raises(ValueError):
        parse_matchers('a="b",,c="d"')
    ms = parse_matchers('{a="b", c=~"d|e", q="say \\"x\\""}')
    assert parse_matchers(format_matchers(ms)) == ms


def test_regex_matchers_are_anchored():
    m = parse_matcher('service=~"api"')
    assert m.matches("api") and not m.matches("api-gw")
    assert parse_matcher('missing=""').matches("")  # an absent label has the value ""


def test_parse_label_args():
    assert parse_label_args(["severity=critical", 'service="api"']) == Labels.of(severity="critical", service="api")
    assert parse_label_args(["a=1,b=2"]) == Labels.of(a="1", b="2")
    with pytest.raises(ValueError, match="expected label=value"):
        parse_label_args(["severity!=critical"])
    with pytest.raises(ValueError, match="expected label=value"):
        parse_label_args(["nonsense"])
