"""Inhibition (inhibit/inhibit.go), silences (silence/silence.go) and time intervals (timeinterval.go)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from tests.support.alerting_helpers import load_alerting, unix
from pydantic import ValidationError

from model.alert import Alert
from monitor.alerting.inhibit import InhibitRule, Inhibitor
from monitor.alerting.maintenance import MaintenanceWindows, TimeIntervals
from model.matchers import parse_matchers
from monitor.alerting.silence import Silence, SilenceError, Silences, matcher_from_api
from model.labels import Labels

T0 = unix(2026, 11, 30, 10, 0)


def alert(**labels: str) -> Alert:
    return Alert.firing(labels, starts_at=T0)


# --- inhibition ----------------------------------------------------------------------------------


def rule(src: str, tgt: str, *equal: str) -> InhibitRule:
    return InhibitRule(tuple(parse_matchers(src)), tuple(parse_matchers(tgt)), equal)


def test_inhibit_requires_equal_labels():
    inh = Inhibitor([rule('severity="critical"', 'severity="warning"', "service")])
    crit = alert(alertname="A", severity="critical", service="api")
    assert inh.mutes(Labels.of(alertname="B", severity="warning", service="api"), [crit], T0) == [crit.fingerprint]
    assert inh.mutes(Labels.of(alertname="B", severity="warning", service="db"), [crit], T0) == []
    # A label missing on both sides counts as equal.
    crit_nosvc = alert(alertname="A", severity="critical")
    assert inh.mutes(Labels.of(alertname="B", severity="warning"), [crit_nosvc], T0) == [crit_nosvc.fingerprint]
    assert inh.mutes(Labels.of(alertname="B", severity="warning", service="api"), [crit_nosvc], T0) == []


def test_resolved_source_does_not_inhibit():
    inh = Inhibitor([rule('severity="critical"', 'severity="warning"')])
    crit = alert(alertname="A", severity="critical").resolve(T0 + 60)
    warn = Labels.of(alertname="B", severity="warning")
    assert inh.mutes(warn, [crit], T0) != []  # not yet resolved at T0
    assert inh.mutes(warn, [crit], T0 + 60) == []


def test_alert_matching_both_sides_does_not_inhibit_itself():
    inh = Inhibitor([rule('alertname="Flappy"', 'alertname="Flappy"', "instance")])
    a = alert(alertname="Flappy", instance="1")
    assert inh.mutes(a.labels, [a], T0) == []
    # Two-sided: sources that also match the target side are excluded entirely
    # (inhibit.go hasEqual excludeTwoSidedMatch), so a sibling does not inhibit either.
    b = alert(alertname="Flappy", instance="1", extra="x")
    assert inh.mutes(a.labels, [a, b], T0) == []


def test_shipped_inhibit_rules(shipped):
    inh = Inhibitor.from_config(shipped.inhibit_rules)
    db_down = alert(alertname="DatabaseDown", severity="critical", service="database")
    follower = Labels.of(alertname="ApiErrors", severity="critical", service="api", depends_on="database")
    assert inh.mutes(follower, [db_down], T0) == [db_down.fingerprint]
    crit = alert(alertname="LatencyCritical", severity="critical", service="api", family="latency")
    same = Labels.of(alertname="LatencyHigh", severity="warning", service="api", family="latency")
    other = Labels.of(alertname="ErrorsHigh", severity="warning", service="api", family="errors")
    assert inh.mutes(same, [crit], T0) == [crit.fingerprint]
    assert inh.mutes(other, [crit], T0) == []
    assert inh.mutes(crit.labels, [crit], T0) == []


def test_legacy_inhibit_maps():
    cfg = load_alerting("""
inhibit_rules:
  - {source_match: {severity: critical}, target_match_re: {severity: "warn.*"}, equal: [service]}
""")
    inh = Inhibitor.from_config(cfg.inhibit_rules)
    crit = alert(severity="critical", service="x")
    assert inh.mutes(Labels.of(severity="warning", service="x"), [crit], T0) == [crit.fingerprint]


# --- silences ------------------------------------------------------------------------------------


def test_silence_lifecycle_and_matching():
    s = Silence.create("s1", '{alertname="Down", instance=~"a|b"}', T0 + 3600,
                       T0 + 10800, "alice", "deploy")
    assert s.state(T0) == "pending"
    assert s.state(T0 + 3600) == "active"
    assert s.state(T0 + 10800) == "expired"  # end exclusive
    mid = T0 + 7200
    assert s.mutes({"alertname": "Down", "instance": "a"}, mid)
    assert not s.mutes({"alertname": "Down", "instance": "c"}, mid)
    assert not s.mutes({"alertname": "Down", "instance": "a"}, T0)
    # Expire an active silence: ends now.
    e = s.expire(mid)
    assert e.ends_at == mid and e.state(mid) == "expired"
    with pytest.raises(SilenceError, match="already expired"):
        e.expire(mid + 60)
    # Expire a pending one: both times now.
    p = s.expire(T0)
    assert p.starts_at == p.ends_at == T0


@pytest.mark.parametrize("matchers, start, end, message", [
    ("", 0, 60, "at least one matcher required"),
    ('a=~".*"', 0, 60, "must not match the empty string"),
    ('a="", b!="x"', 0, 60, "must not match the empty string"),
    ('a="x"', 60, 60, "end time must be after start time"),
    ('a="x"', 60, 0, "end time must be after start time"),
    ('a=~"("', 0, 60, "invalid matchers"),
])
def test_silence_validation(matchers, start, end, message):
    with pytest.raises(SilenceError, match=message):
        Silence.create("x", matchers, start, end, "bob")


def test_silences_collection_and_api_shape():
    sils = Silences()
    sils.set(Silence.create("s1", 'service="api"', T0, T0 + 3600, "alice"))
    sils.set(Silence.create("s2", 'severity="warning"', T0, T0 + 7200, "bob"))
    lbl = Labels.of(service="api", severity="warning")
    assert sils.mutes(lbl, T0) == ["s1", "s2"]
    sils.expire("s1", T0 + 300)
    assert sils.mutes(lbl, T0 + 360) == ["s2"]
    assert [s.id for s in sils.list(T0 + 360, "active")] == ["s2"]
    api = sils.get("s2").to_api(T0)
    assert api["matchers"] == [{"name": "severity", "value": "warning", "isRegex": False, "isEqual": True}]
    assert api["status"] == {"state": "active"} and api["endsAt"] == "2026-11-30T12:00:00.000Z"
    assert [matcher_from_api(m) for m in api["matchers"]] == list(sils.get("s2").matchers)
    assert str(matcher_from_api({"name": "a", "value": "b.*", "isRegex": True, "isEqual": False})) == 'a!~"b.*"'
    assert sils.gc(T0 + 172800, retention=3600) == ["s1", "s2"]


# --- time intervals ------------------------------------------------------------------------------

INTERVALS = """
time_intervals:
  - name: first-saturday-night
    time_intervals:
      - {weekdays: [saturday], days_of_month: ["1:7"], times: [{start_time: "02:00", end_time: "06:00"}]}
  - name: berlin-office
    time_intervals:
      - {weekdays: ["monday:friday"], times: [{start_time: "09:00", end_time: "17:00"}], location: Europe/Berlin}
  - name: month-end
    time_intervals:
      - {days_of_month: ["-3:-1"]}
  - name: last-day
    time_intervals:
      - {days_of_month: [-1]}
  - name: day-31
    time_intervals:
      - {days_of_month: ["31"]}
  - name: q1-2027
    time_intervals:
      - {months: ["january:march"], years: ["2027"]}
  - name: late
    time_intervals:
      - {times: [{start_time: "22:00", end_time: "24:00"}]}
"""


@pytest.fixture
def ti() -> TimeIntervals:
    return TimeIntervals.from_config(load_alerting(INTERVALS).time_intervals)


@pytest.mark.parametrize("when, inside", [
    (unix(2026, 11, 7, 2, 0), True),      # first Saturday of November 2026, start inclusive
    (unix(2026, 11, 7, 5, 59), True),
    (unix(2026, 11, 7, 6, 0), False),     # end exclusive
    (unix(2026, 11, 7, 1, 59), False),
    (unix(2026, 11, 14, 3, 0), False),    # second Saturday
    (unix(2026, 11, 6, 3, 0), False),     # a Friday in the first week
    (unix(2026, 8, 1, 3, 0), True),       # Saturday the 1st
    (unix(2026, 2, 7, 3, 0), True),       # Saturday the 7th
    (unix(2026, 2, 8, 3, 0), False),
])
def test_first_saturday_window(ti, when, inside):
    assert ti.contains("first-saturday-night", when) is inside


def test_location_follows_dst(ti):
    # 09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert ti.contains("berlin-office", unix(2026, 3, 27, 8, 0))       # Friday, CET
    assert not ti.contains("berlin-office", unix(2026, 3, 27, 7, 59))
    assert ti.contains("berlin-office", unix(2026, 3, 30, 7, 0))       # Monday after the change, CEST
    assert not ti.contains("berlin-office", unix(2026, 3, 30, 6, 59))
    assert ti.contains("berlin-office", unix(2026, 3, 30, 14, 59))
    assert not ti.contains("berlin-office", unix(2026, 3, 30, 15, 0))  # 17:00 CEST
    assert not ti.contains("berlin-office", unix(2026, 3, 28, 10, 0))  # Saturday
    berlin = ZoneInfo("Europe/Berlin")
    assert ti.contains("berlin-office", datetime(2026, 10, 26, 9, 0, tzinfo=berlin).timestamp())  # after autumn DST


def test_days_of_month_negative_and_clamped(ti):
    assert ti.contains("month-end", unix(2026, 2, 26, 12)) and not ti.contains("month-end", unix(2026, 2, 25, 12))
    assert ti.contains("month-end", unix(2026, 12, 29, 12)) and not ti.contains("month-end", unix(2026, 12, 28, 12))
    assert ti.contains("last-day", unix(2028, 2, 29, 0)) and not ti.contains("last-day", unix(2028, 2, 28, 0))
    assert not ti.contains("day-31", unix(2026, 11, 30, 0))  # impossible in a 30-day month
    assert ti.contains("day-31", unix(2026, 12, 31, 0))


def test_months_years_and_24h_end(ti):
    assert ti.contains("q1-2027", unix(2027, 2, 1)) and not ti.contains("q1-2027", unix(2026, 2, 1))
    assert not ti.contains("q1-2027", unix(2027, 4, 1))
    assert ti.contains("late", unix(2026, 1, 1, 23, 59)) and not ti.contains("late", unix(2026, 1, 1, 21, 59))
    assert ti.active(["late", "nope", "q1-2027"], unix(2027, 1, 1, 22, 30)) == ["late", "q1-2027"]


@pytest.mark.parametrize("period, message", [
    ('{weekdays: ["friday:monday"]}', "start day cannot be after end day"),
    ('{weekdays: [someday]}', "not a valid weekday"),
    ('{days_of_month: ["0"]}', "not a valid day of the month"),
    ('{days_of_month: ["32"]}', "not a valid day of the month"),
    ('{days_of_month: ["-3:5"]}', "mixes positive and negative"),
    ('{days_of_month: ["7:1"]}', "start day cannot be after end day"),
    ('{months: ["smarch"]}', "not a valid month"),
    ('{months: ["13"]}', "not a valid month"),
    ('{years: ["2027:2026"]}', "start year cannot be after end year"),
    ('{times: [{start_time: "06:00", end_time: "02:00"}]}', "start time cannot be equal or greater than end time"),
    ('{times: [{start_time: "24:00", end_time: "24:00"}]}', "invalid time of day"),
    ('{times: [{start_time: "9:00", end_time: "10:00"}]}', "invalid time of day"),
    ('{location: Mars/Olympus}', 'unknown time zone "Mars/Olympus"'),
])
def test_time_interval_validation(period, message):
    with pytest.raises(ValidationError, match=message):
        load_alerting(f"time_intervals: [{{name: x, time_intervals: [{period}]}}]")


def test_maintenance_window_matchers():
    cfg = load_alerting(INTERVALS + """
maintenance_windows:
  - {name: db-upgrade, time_intervals: [first-saturday-night], matchers: ['service=~"db|api"']}
""")
    mw = MaintenanceWindows.from_config(cfg)
    during = unix(2026, 11, 7, 3, 0)
    assert mw.mutes(Labels.of(service="db"), during) == ["db-upgrade"]
    assert mw.mutes(Labels.of(service="web"), during) == []
    assert mw.mutes(Labels.of(service="db"), unix(2026, 11, 7, 7, 0)) == []
    assert [w.name for w in mw.active(during)] == ["db-upgrade"]
