"""The On-call and Incidents pages' pure parts: the calendar's days in the viewer's zone (business hours,
a daylight-saving change, overrides), the viewer's zone, times and durations as shown."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from monitor.api.console.incident_pages import duration_text
from monitor.api.console.oncall_pages import CALENDAR_WEEKS, _calendar, format_time, viewer_zone
from monitor.escalation.schedule import Override, Schedule, instant
from tests.support.alerting_helpers import load_alerting, utc

ALERTING = """
people: {alice: {}, bob: {}, carol: {}}
schedules:
  primary:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [alice, bob]
  office:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [carol]
    rotation:
      restrictions: [{weekdays: ["monday:friday"], start_time: "09:00", end_time: "17:00"}]
"""
BERLIN = ZoneInfo("Europe/Berlin")


def _schedules() -> dict[str, Schedule]:
    cfg = load_alerting(ALERTING)
    return {n: Schedule.from_config(n, c) for n, c in cfg.schedules.items()}


def _days(weeks: list[list[dict]]) -> list[dict]:
    return [d for w in weeks for d in w]


def test_calendar_weeks_start_on_monday_in_the_viewers_zone_across_a_dst_change():
    # Wednesday 25 March 2026; Berlin moves to summer time on Sunday 29 March (a 23-hour day)
    now = utc(2026, 3, 25, 12).timestamp()
    weeks = _calendar(_schedules()["primary"], BERLIN, now)
    days = _days(weeks)
    assert len(weeks) == CALENDAR_WEEKS and all(len(w) == 7 for w in weeks)
    assert days[0]["date"].isoformat() == "2026-03-23" and days[0]["date"].weekday() == 0
    assert [d["today"] for d in days].index(True) == 2
    sunday = next(d for d in days if d["date"].isoformat() == "2026-03-29")
    assert sunday["shifts"] == [{"person": sunday["shifts"][0]["person"], "source": "rotation", "hours": ""}]
    # the weekly handoff (Monday 09:00 Berlin) splits Mondays in two, in local hours
    monday = next(d for d in days if d["date"].isoformat() == "2026-03-30")
    assert [c["hours"] for c in monday["shifts"]] == ["00:00–09:00", "09:00–24:00"]
    assert monday["shifts"][0]["person"] != monday["shifts"][1]["person"]


def test_calendar_shows_business_hours_in_the_viewers_zone_and_weekends_empty():
    now = utc(2026, 3, 11, 12).timestamp()
    days = _days(_calendar(_schedules()["office"], ZoneInfo("America/New_York"), now))
    weekday = next(d for d in days if d["date"].isoformat() == "2026-03-10")  # New York already on summer time
    assert weekday["shifts"] == [{"person": "carol", "source": "rotation", "hours": "04:00–12:00"}]
    assert next(d for d in days if d["date"].isoformat() == "2026-03-14")["shifts"] == []  # Saturday


def test_calendar_marks_overrides():
    now = utc(2026, 3, 11, 12).timestamp()
    s = _schedules()["primary"].with_overrides([Override(instant(utc(2026, 3, 12, 8)), instant(utc(2026, 3, 12, 20)),
                                                          "carol")])
    day = next(d for d in _days(_calendar(s, ZoneInfo("UTC"), now)) if d["date"].isoformat() == "2026-03-12")
    assert [(c["source"], c["hours"]) for c in day["shifts"]] == [
        ("rotation", "00:00–08:00"), ("override", "08:00–20:00"), ("rotation", "20:00–24:00")]
    assert day["shifts"][1]["person"] == "carol"


def test_viewer_zone_from_parameter_then_cookie_then_utc():
    def req(query: dict[str, str], cookies: dict[str, str]) -> SimpleNamespace:
        return SimpleNamespace(query_params=query, cookies=cookies)
    assert viewer_zone(req({"tz": "Asia/Tokyo"}, {"cbm_tz": "Europe/Paris"})) == (ZoneInfo("Asia/Tokyo"), True)
    assert viewer_zone(req({"tz": "America"}, {"cbm_tz": "Europe/Paris"})) == (ZoneInfo("Europe/Paris"), False)
    assert viewer_zone(req({}, {"cbm_tz": "Europe%2FParis"})) == (ZoneInfo("Europe/Paris"), False)
    assert viewer_zone(req({}, {"cbm_tz": "../../etc/passwd"})) == (ZoneInfo("UTC"), False)
    assert viewer_zone(req({}, {})) == (ZoneInfo("UTC"), False)


def test_times_and_durations_as_shown():
    assert format_time("2026-12-05T09:00:00+09:00") == "Sat 05 Dec 09:00"
    assert format_time(datetime(2026, 12, 7, 18, 30, tzinfo=BERLIN)) == "Mon 07 Dec 18:30"
    assert format_time(None) == ""
    assert [duration_text(s) for s in (None, 42, 900, 3600 * 4 + 300, 86400 * 3 + 7200)] == [
        "–", "42s", "15m", "4h 05m", "3d 2h"]
