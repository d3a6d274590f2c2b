"""Rotation restrictions (business hours in a named zone) across DST, shifts, stored overrides merged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from monitor.escalation.schedule import (
    OnCallLookup, Override, Schedule, next_handoffs, overrides_from_rows, shifts, who_is_on_call,
)
from tests.support.alerting_helpers import load_alerting, utc

SEC = timedelta(seconds=1)

BUSINESS = """
people: {alice: {}, bob: {}, carol: {}}
schedules:
  office:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [alice, bob]
    rotation:
      type: weekly
      restrictions:
        - {weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}
"""


def office(text: str = BUSINESS) -> Schedule:
    cfg = load_alerting(text)
    return Schedule.from_config("office", cfg.schedules["office"])


@pytest.mark.parametrize("day", [
    # Europe/Berlin goes to summer time on Sunday 2026-03-29 and back on Sunday 2026-10-25.
    (2026, 3, 27), (2026, 3, 30),   # Friday in CET (+1), Monday in CEST (+2)
    (2026, 10, 23), (2026, 10, 26),  # Friday in CEST, Monday in CET
])
def test_business_hours_keep_local_wall_clock_across_dst(day):
    s = office()
    local_open = utc(*day).replace(tzinfo=s.zone).replace(hour=8, minute=30)
    local_close = local_open.replace(hour=17, minute=30)
    assert who_is_on_call(s, local_open - SEC) is None
    assert who_is_on_call(s, local_open) is not None
    assert who_is_on_call(s, local_close - SEC) is not None
    assert who_is_on_call(s, local_close) is None
    # covered from open to close without a gap (on Mondays the 09:00 handoff cuts it in two)
    got = shifts(s, local_open - timedelta(hours=1), local_close + timedelta(hours=1))
    assert got[0].start == local_open and got[-1].end == local_close
    assert all(a.end == b.start for a, b in zip(got, got[1:]))


def test_utc_instant_of_the_window_moves_by_an_hour_with_dst():
    s = office()
    friday = shifts(s, utc(2026, 3, 27), utc(2026, 3, 28))
    monday = shifts(s, utc(2026, 3, 30), utc(2026, 3, 31))
    assert (friday[0].start, friday[0].end) == (utc(2026, 3, 27, 7, 30), utc(2026, 3, 27, 16, 30))
    assert (monday[0].start, monday[-1].end) == (utc(2026, 3, 30, 6, 30), utc(2026, 3, 30, 15, 30))


def test_weekend_and_nights_have_nobody_and_the_rotation_keeps_turning():
    s = office()
    assert who_is_on_call(s, utc(2026, 1, 10, 12)) is None  # Saturday noon
    assert who_is_on_call(s, utc(2026, 1, 7, 2)) is None  # Wednesday 03:00 local
    # weekly handoff Monday 09:00 local: alice the first week, bob the second, even though
    # Monday's window opens at 08:30 (the first half hour is still the previous member's)
    assert who_is_on_call(s, utc(2026, 1, 9, 12)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 7, 45)) == "alice"
    assert who_is_on_call(s, utc(2026, 1, 12, 8, 0)) == "bob"
    week = shifts(s, utc(2026, 1, 12), utc(2026, 1, 19))
    assert [(x.person, x.start.astimezone(s.zone).strftime("%a %H:%M"), x.end.astimezone(s.zone).strftime("%H:%M"))
            for x in week] == [("alice", "Mon 08:30", "09:00"), ("bob", "Mon 09:00", "17:30"),
                               ("bob", "Tue 08:30", "17:30"), ("bob", "Wed 08:30", "17:30"),
                               ("bob", "Thu 08:30", "17:30"), ("bob", "Fri 08:30", "17:30")]


def test_next_handoffs_include_window_edges():
    s = office()
    got = next_handoffs(s, utc(2026, 1, 9, 12), 3)  # Friday 13:00 local, alice on call
    assert got == [(utc(2026, 1, 9, 16, 30), None), (utc(2026, 1, 12, 7, 30), "alice"),
                   (utc(2026, 1, 12, 8, 0), "bob")]


def test_night_window_crosses_midnight_and_the_spring_gap():
    s = office(BUSINESS.replace('{weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}',
                                '{start_time: "22:00", end_time: "06:00", time_zone: America/New_York}'))
    # the night of Saturday 2026-03-07 to Sunday 03-08 in New York loses an hour (02:00 -> 03:00)
    night = shifts(s, utc(2026, 3, 7, 12), utc(2026, 3, 8, 15))
    assert [(x.start, x.end) for x in night] == [(utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 10, 0))]  # 7 h, EST->EDT
    assert who_is_on_call(s, utc(2026, 3, 8, 9, 59)) is not None
    assert who_is_on_call(s, utc(2026, 3, 8, 10, 0)) is None


def test_overrides_apply_outside_restrictions_and_stored_ones_win():
    s = office()
    saturday = Override(utc(2026, 1, 10, 8), utc(2026, 1, 10, 20), "carol")
    merged = s.with_overrides([saturday])
    assert who_is_on_call(merged, utc(2026, 1, 10, 12)) == "carol"
    assert [x.source for x in shifts(merged, utc(2026, 1, 10), utc(2026, 1, 11))] == ["override"]
    rows = [{"schedule": "office", "person": "bob", "starts_at": utc(2026, 1, 10, 10).timestamp(),
             "ends_at": utc(2026, 1, 10, 11).timestamp()}]
    lookup = OnCallLookup.from_config(load_alerting(BUSINESS), overrides_from_rows(rows))
    assert lookup("schedule:office", utc(2026, 1, 10, 10, 30)) == "bob"
    assert lookup("schedule:office", utc(2026, 1, 10, 12)) is None


def test_shifts_cut_at_the_window_and_merge_adjacent_pieces():
    s = office(BUSINESS.replace('{weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}',
                                '{start_time: "00:00", end_time: "24:00"}'))
    got = shifts(s, utc(2026, 1, 6), utc(2026, 1, 20))
    assert [(x.person, x.start, x.end) for x in got] == [
        ("alice", utc(2026, 1, 6), utc(2026, 1, 12, 8)), ("bob", utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)),
        ("alice", utc(2026, 1, 19, 8), utc(2026, 1, 20))]


@pytest.mark.parametrize("restriction, message", [
    ('{weekdays: [funday], start_time: "08:30", end_time: "17:30"}', "not a valid weekday"),
    ('{start_time: "24:00", end_time: "17:30"}', "invalid time of day"),
    ('{start_time: "08:30", end_time: "17:30", time_zone: Mars/Olympus}', "Mars/Olympus"),
    ('{start_time: "08:30"}', "end_time"),
])
def test_bad_restrictions_are_config_errors(restriction, message):
    with pytest.raises(ValidationError, match=message):
        office(BUSINESS.replace('{weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}', restriction))
