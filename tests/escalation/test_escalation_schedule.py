"""On-call schedules: weekly handoffs at local wall-clock time across DST, overrides, next handoffs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from monitor.escalation.schedule import OnCallLookup, Override, Schedule, next_handoffs, who_is_on_call
from tests.support.alerting_helpers import load_alerting, utc

SEC = timedelta(seconds=1)


def weekly(tz: str, start: date, members=("alice", "bob", "carol"), weekday=0, at=time(9, 0), overrides=()):
    return Schedule("primary", tz, tuple(members), start, at, "weekly", weekday, 7, None, tuple(overrides))


@pytest.mark.parametrize("tz, before, after", [
    # Europe/Berlin: DST from Sunday 2026-03-29, back on Sunday 2026-10-25.
    ("Europe/Berlin", utc(2026, 3, 23, 8, 0), utc(2026, 3, 30, 7, 0)),    # 09:00 CET -> 09:00 CEST
    ("Europe/Berlin", utc(2026, 10, 19, 7, 0), utc(2026, 10, 26, 8, 0)),  # 09:00 CEST -> 09:00 CET
    # America/New_York: DST from Sunday 2026-03-08, back on Sunday 2026-11-01.
    ("America/New_York", utc(2026, 3, 2, 14, 0), utc(2026, 3, 9, 13, 0)),
    ("America/New_York", utc(2026, 10, 26, 13, 0), utc(2026, 11, 2, 14, 0)),
])
def test_weekly_handoff_keeps_local_time_across_dst(tz, before, after):
    s = weekly(tz, date(2026, 1, 5))
    # The handoff before the change and the one after it both happen at 09:00 local.
    for h in (before, after):
        assert h.astimezone(s.zone).strftime("%a %H:%M") == "Mon 09:00"
        assert who_is_on_call(s, h - SEC) != who_is_on_call(s, h)
    # Exactly one week of on-call in local terms, 7 days +- 1 h in absolute terms.
    assert abs((after - before) - timedelta(days=7)) == timedelta(hours=1)
    # No handoff at the old UTC time.
    shifted = before + timedelta(days=7)
    assert who_is_on_call(s, shifted - SEC) == who_is_on_call(s, shifted + SEC) or shifted == after
    hs = next_handoffs(s, before - timedelta(hours=1), 2)
    assert [h.astimezone(timezone.utc) for h, _ in hs] == [before, after]


def test_rotation_order_start_and_wrap():
    s = weekly("Europe/Berlin", date(2026, 1, 5))  # a Monday
    assert who_is_on_call(s, utc(2026, 1, 5, 7, 59)) is None  # before the first shift (09:00 CET)
    assert who_is_on_call(s, utc(2026, 1, 5, 8, 0)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 7, 59)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 8, 0)) == "bob"
    assert who_is_on_call(s, utc(2026, 1, 19, 8, 0)) == "carol"
    assert who_is_on_call(s, utc(2026, 1, 26, 8, 0)) == "alice"
    # 12 weeks later (past the March DST change) it is alice again.
    assert who_is_on_call(s, utc(2026, 3, 30, 7, 0)) == "alice"
    assert who_is_on_call(s, utc(2026, 3, 30, 6, 59)) == "carol"


def test_midweek_start_gives_a_short_first_shift():
    s = weekly("UTC", date(2026, 1, 7))  # a Wednesday; handoffs on Mondays 09:00
    assert who_is_on_call(s, utc(2026, 1, 7, 9)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 8, 59)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 9)) == "bob"
    assert next_handoffs(s, utc(2026, 1, 1), 2) == [(utc(2026, 1, 7, 9), "alice"), (utc(2026, 1, 12, 9), "bob")]


def test_overrides_take_precedence_and_later_wins():
    o1 = Override(utc(2026, 2, 3, 0), utc(2026, 2, 5, 0), "dave")
    o2 = Override(utc(2026, 2, 4, 0), utc(2026, 2, 4, 12), "erin")
    s = weekly("UTC", date(2026, 1, 5), overrides=(o1, o2))
    assert who_is_on_call(s, utc(2026, 2, 2, 23, 59)) == "bob"
    assert who_is_on_call(s, utc(2026, 2, 3, 0)) == "dave"
    assert who_is_on_call(s, utc(2026, 2, 4, 6)) == "erin"
    assert who_is_on_call(s, utc(2026, 2, 4, 12)) == "dave"
    assert who_is_on_call(s, utc(2026, 2, 5, 0)) == "bob"  # end exclusive
    assert next_handoffs(s, utc(2026, 2, 2, 12), 5) == [
        (utc(2026, 2, 3, 0), "dave"), (utc(2026, 2, 4, 0), "erin"), (utc(2026, 2, 4, 12), "dave"),
        (utc(2026, 2, 5, 0), "bob"), (utc(2026, 2, 9, 9), "carol")]


def test_daily_and_custom_rotations_from_config():
    cfg = load_alerting("""
people: {a: {}, b: {}}
schedules:
  daily: {time_zone: America/New_York, start: 2026-10-30, members: [a, b], rotation: {type: daily, handoff_time: "01:30"}}
  three-day: {time_zone: Europe/Berlin, start: 2026-03-27, members: [a, b], rotation: {type: custom, length: 3d}}
  twelve-h: {start: 2026-01-01, members: [a, b], rotation: {type: custom, length: 12h, handoff_time: "08:00"}}
  overridden:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [a]
    overrides: [{start: "2026-02-01T10:00:00", end: "2026-02-01T12:00:00", person: b}]
""")  # noqa: E501 (YAML data)
    s = {n: Schedule.from_config(n, c) for n, c in cfg.schedules.items()}
    # 01:30 on 2026-11-01 in New York happens twice; the handoff is the first (EDT, 05:30 UTC).
    d = s["daily"]
    assert who_is_on_call(d, utc(2026, 11, 1, 5, 29)) == "b" and who_is_on_call(d, utc(2026, 11, 1, 5, 30)) == "a"
    assert who_is_on_call(d, utc(2026, 11, 2, 6, 30)) == "b"  # 01:30 EST
    # Three calendar days in Berlin across the spring change: 09:00 local each time.
    t = s["three-day"]
    assert who_is_on_call(t, utc(2026, 3, 30, 6, 59)) == "a" and who_is_on_call(t, utc(2026, 3, 30, 7, 0)) == "b"
    # Elapsed-time rotation.
    h = s["twelve-h"]
    assert who_is_on_call(h, utc(2026, 1, 1, 19, 59)) == "a" and who_is_on_call(h, utc(2026, 1, 1, 20)) == "b"
    assert who_is_on_call(h, utc(2026, 1, 2, 8)) == "a"
    # Naive override times are in the schedule's zone (10:00 CET = 09:00 UTC).
    o = s["overridden"]
    assert who_is_on_call(o, utc(2026, 2, 1, 9, 0)) == "b" and who_is_on_call(o, utc(2026, 2, 1, 8, 59)) == "a"
    # One member: only the override makes handoffs.
    assert next_handoffs(o, utc(2026, 1, 20), 3) == [
        (datetime(2026, 2, 1, 9, tzinfo=timezone.utc), "b"), (datetime(2026, 2, 1, 11, tzinfo=timezone.utc), "a")]


def test_nonexistent_handoff_time_on_spring_forward_day():
    s = Schedule("x", "Europe/Berlin", ("a", "b"), date(2026, 3, 22), time(2, 30), "weekly", 6, 7)  # Sundays 02:30
    # 2026-03-29 02:30 does not exist in Berlin; the handoff is at 03:30 CEST (01:30 UTC).
    assert who_is_on_call(s, utc(2026, 3, 29, 1, 29)) == "a"
    assert who_is_on_call(s, utc(2026, 3, 29, 1, 30)) == "b"
    assert who_is_on_call(s, utc(2026, 4, 5, 0, 30)) == "a"  # 02:30 CEST


def test_oncall_lookup(shipped):
    lookup = OnCallLookup.from_config(shipped)
    t = utc(2026, 3, 30, 8, 0)
    assert (lookup("schedule:primary", t), lookup("schedule:secondary", t)) == ("alice", "bob")
    assert lookup("person:em", t) == "em"
    assert lookup("person:nobody", t) is None and lookup("schedule:none", t) is None
    assert lookup("schedule:primary", utc(2025, 1, 1)) is None
