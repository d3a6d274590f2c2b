"""The alerting config section: parsing, defaults, and cross-reference checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.alerting.route import build_route
from monitor.config.alerting import AlertingConfig, validate_alerting_refs
from tests.support.alerting_helpers import RECEIVERS, load_alerting


def test_shipped_section_is_valid(shipped):
    assert validate_alerting_refs(shipped, RECEIVERS) == []
    assert shipped.escalation.priorities["P0"].ack == 900 and shipped.escalation.priorities["P2"].resolve == 3 * 86400
    assert shipped.people["alice"].pagerduty_routing_key.get_secret_value() == "${PD_KEY_ALICE}"
    assert "PD_KEY" not in repr(shipped.people["alice"])


def test_empty_section_has_the_design_defaults():
    cfg = AlertingConfig()
    assert cfg.route is None and cfg.escalation.chain == []
    prios = {k: (p.ack, p.resolve) for k, p in cfg.escalation.priorities.items()}
    assert prios == {"P0": (900, 14400), "P1": (3600, 86400), "P2": (14400, 259200)}
    assert cfg.escalation.severity_priority == {"critical": "P0", "warning": "P2", "info": "P2"}
    assert cfg.resolve_timeout == 300


def test_cross_references_are_all_reported_with_paths():
    cfg = load_alerting("""
route:
  routes:
    - {matchers: ['a="b"'], receiver: ops, mute_time_intervals: [nights]}
    - routes:
        - {receiver: pager, active_time_intervals: [weekends]}
time_intervals:
  - {name: dup}
  - {name: dup}
maintenance_windows:
  - {name: m, time_intervals: [missing]}
people: {alice: {slack_user_id: U1, pagerduty_routing_key: k}}
schedules:
  primary: {start: 2026-01-05, members: [alice, zoe], overrides: [{start: 2026-02-01T00:00:00, end: 2026-02-02T00:00:00, person: yann}], announce_receiver: nowhere}
escalation:
  chain: [{target: "schedule:secondary"}, {target: "person:cto"}, {target: "schedule:primary"}]
""")  # noqa: E501 (YAML data)
    errs = validate_alerting_refs(cfg, RECEIVERS)
    assert errs == [
        ("alerting.time_intervals[1].name", 'time interval "dup" is defined twice'),
        ("alerting.route.receiver", "root route must specify a default receiver"),
        ("alerting.route.routes[0].receiver", 'undefined receiver "ops" used in route.routes[0]'),
        ("alerting.route.routes[0].mute_time_intervals[0]", 'undefined time interval "nights" used in route.routes[0]'),
        ("alerting.route.routes[1].routes[0].active_time_intervals[0]",
         'undefined time interval "weekends" used in route.routes[1].routes[0]'),
        ("alerting.maintenance_windows[0].time_intervals[0]",
         'undefined time interval "missing" used in maintenance_windows[0]'),
        ("alerting.schedules.primary.members[1]", 'undefined person "zoe" in schedule "primary"'),
        ("alerting.schedules.primary.overrides[0].person", 'undefined person "yann" in schedule "primary"'),
        ("alerting.schedules.primary.announce_receiver", 'undefined receiver "nowhere" used in schedule "primary"'),
        ("alerting.escalation.chain[0].target", 'undefined schedule "secondary"'),
        ("alerting.escalation.chain[1].target", 'undefined person "cto"'),
    ]


def test_contact_data_for_each_channel_is_required():
    cfg = load_alerting("""
people: {alice: {slack_user_id: U1}, bob: {email: b@example.com}, em: {}}
schedules: {primary: {start: 2026-01-05, members: [alice, bob]}}
escalation:
  priorities: {P0: {ack: 15m, resolve: 4h}, P2: {ack: 4h, resolve: 3d, channels: [email]}}
  chain: [{target: "schedule:primary", channels: [slack_dm]}, {target: "person:em", channels: [page]}]
""")
    assert validate_alerting_refs(cfg, RECEIVERS) == [
        ("alerting.escalation.chain[0].channels", 'person "alice" has no email for channel "email"'),
        ("alerting.escalation.chain[0].channels", 'person "bob" has no slack_user_id for channel "slack_dm"'),
        ("alerting.escalation.chain[1].channels", 'person "em" has no pagerduty_routing_key for channel "page"'),
        ("alerting.escalation.chain[1].channels", 'person "em" has no email for channel "email"'),
    ]


def test_root_route_restrictions():
    cfg = load_alerting("route: {receiver: pager, matchers: ['a=\"b\"'], mute_time_intervals: [x]}\n"
                        "time_intervals: [{name: x}]")
    assert validate_alerting_refs(cfg, RECEIVERS, prefix="") == [
        ("route.matchers", "root route must not have any matchers"),
        ("route.mute_time_intervals", "root route must not have any mute time intervals"),
    ]


@pytest.mark.parametrize("snippet, loc, message", [
    ("route: {receiver: r, matchers: ['a~b']}", ("route", "matchers", 0), "bad matcher format"),
    ("route: {receiver: r, group_by: ['...', 'a']}", ("route", "group_by"), "wildcard group_by"),
    ("route: {receiver: r, group_by: [a, a]}", ("route", "group_by"), "duplicated label"),
    ("route: {receiver: r, group_wait: soon}", ("route", "group_wait"), "expected a duration"),
    ("route: {receiver: r, group_interval: 0s}", ("route", "group_interval"), "greater than 0"),
    ("route: {receiver: r, bogus: 1}", ("route", "bogus"), "Extra inputs are not permitted"),
    ("route: {receiver: r, match_re: {a: '('}}", ("route", "match_re"), "invalid regex"),
    ("inhibit_rules: [{equal: [bad-name]}]", ("inhibit_rules", 0, "equal"), "invalid label name"),
    ("escalation: {severity_priority: {critical: P9}}", ("escalation",), 'undefined priority "P9"'),
    ("escalation: {chain: [{target: team:x}]}", ("escalation", "chain", 0, "target"), "String should match"),
    ("escalation: {chain: [{target: 'person:a', channels: [fax]}]}",
     ("escalation", "chain", 0, "channels", 0), "Input should be"),
    ("schedules: {p: {start: 2026-01-01, members: []}}", ("schedules", "p", "members"), "at least 1 item"),
    ("schedules: {p: {start: 2026-01-01, members: [a], time_zone: Nowhere/City}}",
     ("schedules", "p", "time_zone"), "unknown time zone"),
    ("schedules: {p: {start: 2026-01-01, members: [a], rotation: {type: custom}}}",
     ("schedules", "p", "rotation"), "needs a length"),
    ("schedules: {p: {start: 2026-01-01, members: [a], rotation: {handoff_time: '25:00'}}}",
     ("schedules", "p", "rotation", "handoff_time"), "invalid time of day"),
    ("schedules: {p: {start: 2026-01-01, members: [a], overrides: "
     "[{start: 2026-02-02T00:00:00, end: 2026-02-01T00:00:00, person: a}]}}",
     ("schedules", "p"), "end must be after start"),
])
def test_invalid_snippets_name_the_key_path(snippet, loc, message):
    with pytest.raises(ValidationError) as exc:
        load_alerting(snippet)
    (err,) = exc.value.errors()
    assert err["loc"][:len(loc)] == loc
    assert message in err["msg"]


def test_continue_is_spelled_as_in_alertmanager():
    cfg = load_alerting("route: {receiver: r, routes: [{receiver: a, continue: true}]}")
    assert cfg.route.routes[0].continue_ is True
    assert build_route(cfg.route).routes[0].continue_ is True
