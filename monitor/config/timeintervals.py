"""Alertmanager time-interval syntax: parsing of weekdays, days of month, months, years, times of day and zones.

Pure functions from config text to numbers, used to validate ``time_intervals`` and on-call
rotations at load; the runtime evaluator (``monitor.alerting.maintenance.period_contains``)
reads the parsed numbers. Syntax and messages follow Alertmanager ``timeinterval/timeinterval.go``:

- ``times``: ``{start_time: "02:00", end_time: "06:00"}`` -> minutes since local midnight,
  the end exclusive; ``"24:00"`` only as an end (1440).
- ``weekdays``: ``saturday``, ``monday:friday`` -> inclusive Go weekday numbers, Sunday = 0
  (so ``saturday:sunday`` is invalid, as in Alertmanager).
- ``days_of_month``: ``1``, ``"1:7"``, ``-1``, ``"-3:-1"`` -> inclusive pair; negative counts from
  the month's end.
- ``months``: ``january``, ``3``, ``"april:june"`` -> inclusive 1..12.
- ``years``: ``2026``, ``"2026:2027"`` -> inclusive pair.
- ``location``: an IANA zone name (``Europe/Berlin``), checked and returned unchanged.

Every parser raises :class:`ValueError` with the message the config error shows.
This module imports nothing of ours.
"""

from __future__ import annotations

import calendar
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "WEEKDAYS", "MONTHS", "parse_time_of_day", "parse_weekday_range", "parse_day_of_month_range",
    "parse_month_range", "parse_year_range", "parse_location", "zone",
]

#: Weekday names -> Go's ``time.Weekday`` numbers (Sunday = 0), as timeinterval.go uses.
WEEKDAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
#: Lower-case English month names -> 1..12.
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}

_TIME_RE = re.compile(r"^(([01][0-9]|2[0-3]):([0-5][0-9])|24:00)$")


def parse_time_of_day(text: str, *, end: bool = False) -> int:
    """Parse ``HH:MM`` into minutes since local midnight (``"24:00"`` only as an end -> 1440).

    :param end: whether ``text`` is the (exclusive) end of a range, where ``24:00`` is allowed.
    :return: minutes, 0..1439 (1440 for ``24:00``).
    :raises ValueError: ``invalid time of day: <text>``.
    """
    s = str(text).strip()
    if not _TIME_RE.match(s) or (s == "24:00" and not end):
        raise ValueError(f"invalid time of day: {text}")
    h, m = s.split(":")
    return int(h) * 60 + int(m)


def _split_range(text: Any) -> tuple[str, str]:
    s = str(text).strip().lower()
    if ":" in s:
        a, _, b = s.partition(":")
        return a.strip(), b.strip()
    return s, s


def parse_weekday_range(text: str) -> tuple[int, int]:
    """Parse ``saturday`` or ``monday:friday`` into inclusive Go weekday numbers (Sunday 0).

    :raises ValueError: on an unknown day or a range whose start is after its end.
    """
    a, b = _split_range(text)
    for d in (a, b):
        if d not in WEEKDAYS:
            raise ValueError(f"{d!r} is not a valid weekday")
    begin, end = WEEKDAYS[a], WEEKDAYS[b]
    if begin > end:
        raise ValueError(f"start day cannot be after end day: {text} (Sunday is the first day of the week)")
    return begin, end


def parse_day_of_month_range(text: str | int) -> tuple[int, int]:
    """Parse ``7``, ``"1:7"``, ``-1`` or ``"-7:-1"`` into an inclusive (begin, end) pair.

    Both ends must be in 1..31 or -31..-1 and of the same sign; begin <= end.

    :raises ValueError: when a day is 0, out of range, of mixed sign, or the range is reversed.
    """
    a, b = _split_range(text)
    try:
        begin, end = int(a), int(b)
    except ValueError:
        raise ValueError(f"invalid day of month: {text}") from None
    for d in (begin, end):
        if d == 0 or not -31 <= d <= 31:
            raise ValueError(f"{d} is not a valid day of the month: out of range")
    if (begin < 0) != (end < 0):
        raise ValueError(f"days of month range mixes positive and negative days: {text}")
    if begin > end:
        raise ValueError(f"start day cannot be after end day: {text}")
    return begin, end


def parse_month_range(text: str | int) -> tuple[int, int]:
    """Parse ``january``, ``3`` or ``"april:june"`` into inclusive month numbers (1..12).

    :raises ValueError: on an unknown month or a reversed range.
    """
    a, b = _split_range(text)
    nums = []
    for m in (a, b):
        if m in MONTHS:
            nums.append(MONTHS[m])
        elif m.isdigit() and 1 <= int(m) <= 12:
            nums.append(int(m))
        else:
            raise ValueError(f"{m!r} is not a valid month")
    if nums[0] > nums[1]:
        raise ValueError(f"start month cannot be after end month: {text}")
    return nums[0], nums[1]


def parse_year_range(text: str | int) -> tuple[int, int]:
    """Parse ``2026`` or ``"2026:2027"`` into an inclusive year range.

    :raises ValueError: on a non-numeric year or a reversed range.
    """
    a, b = _split_range(text)
    if not (a.isdigit() and b.isdigit()):
        raise ValueError(f"invalid year: {text}")
    begin, end = int(a), int(b)
    if begin > end:
        raise ValueError(f"start year cannot be after end year: {text}")
    return begin, end


def parse_location(name: str) -> str:
    """Check an IANA time zone name (``Europe/Berlin``); return it unchanged.

    :raises ValueError: ``unknown time zone "<name>"``.
    """
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone "{name}"') from None
    return name


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """Return the :class:`~zoneinfo.ZoneInfo` named ``name`` (cached).

    :raises ZoneInfoNotFoundError: for an unknown name; ``ValueError`` for a malformed one.
    """
    return ZoneInfo(name)
