"""Time intervals and maintenance windows.

Time intervals use Alertmanager's ``time_interval`` format and semantics
(``timeinterval/timeinterval.go``): a named interval is a list of periods; a period matches when
*every* field it sets matches (an unset field matches everything); the interval matches when
*any* of its periods does. Fields:

- ``times``: ``[{start_time: "02:00", end_time: "06:00"}]``, minutes of the local day, the end
  exclusive; ``"24:00"`` is allowed as an end.
- ``weekdays``: ``saturday``, ``monday:friday`` (inclusive; Sunday is day 0, so
  ``saturday:sunday`` is invalid, as in Alertmanager — write ``[saturday, sunday]``).
- ``days_of_month``: ``1``, ``"1:7"``, ``-1`` (the last day), ``"-3:-1"``; negative values count
  from the end of the month; ranges reaching past the month's end are clamped.
- ``months``: ``january``, ``"1:3"``, ``"april:june"``.  ``years``: ``2026``, ``"2026:2027"``.
- ``location``: an IANA zone (``Europe/Berlin``); the instant is converted there first, so
  wall-clock windows follow DST. Default UTC.

The guide's monthly maintenance window, the first Saturday of the month 02:00–06:00 UTC, is
``{weekdays: [saturday], days_of_month: ["1:7"], times: [{start_time: "02:00", end_time: "06:00"}]}``.

Instants are Unix seconds; :func:`period_contains` alone turns one into a local calendar date.

A *maintenance window* (our addition) names time intervals and label matchers; while one of its
intervals is active it mutes matching alerts (they stay visible, marked ``muted_by``).

The parse helpers here are used by ``monitor.config.alerting`` to validate at load; this module
imports nothing from the config layer (the evaluators take the parsed config objects duck-typed).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from model.labels import Labels
from model.matchers import Matcher
from model.timestamps import to_datetime

__all__ = [
    "WEEKDAYS", "MONTHS", "parse_time_of_day", "parse_weekday_range", "parse_day_of_month_range",
    "parse_month_range", "parse_year_range", "parse_location", "period_contains", "TimeIntervals",
    "MaintenanceWindow", "MaintenanceWindows",
]

#: Weekday names -> Go's ``time.Weekday`` numbers (Sunday = 0), as timeinterval.go uses.
WEEKDAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}

_TIME_RE = re.compile(r"^(([01][0-9]|2[0-3]):([0-5][0-9])|24:00)$")


def parse_time_of_day(text: str, *, end: bool = False) -> int:
    """Parse ``HH:MM`` into minutes since local midnight (``"24:00"`` only as an end -> 1440).

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
    """Parse ``january``, ``3`` or ``"april:june"`` into inclusive month numbers (1..12)."""
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
    """Parse ``2026`` or ``"2026:2027"`` into an inclusive year range."""
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
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone "{name}"') from None
    return name


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class Period(Protocol):
    """One parsed period (``monitor.config.alerting.TimePeriodConfig``): inclusive (begin, end) ranges.

    ``time_ranges`` holds ``(start_minute, end_minute)`` pairs, the end exclusive.
    """

    time_ranges: Sequence[tuple[int, int]]
    weekday_ranges: Sequence[tuple[int, int]]
    day_ranges: Sequence[tuple[int, int]]
    month_ranges: Sequence[tuple[int, int]]
    year_ranges: Sequence[tuple[int, int]]
    location: str


def period_contains(period: Period, at: float) -> bool:
    """Return whether the instant ``at`` lies in ``period`` (timeinterval.go ``ContainsTime``).

    :param at: Unix seconds (converted to the period's local calendar here, and only here).
    """
    t = to_datetime(at).astimezone(_zone(period.location or "UTC"))
    if period.time_ranges:
        minute = t.hour * 60 + t.minute
        if not any(start <= minute < end for start, end in period.time_ranges):
            return False
    if period.day_ranges:
        dim = calendar.monthrange(t.year, t.month)[1]
        ok = False
        for begin, end in period.day_ranges:
            b = dim + begin + 1 if begin < 0 else begin
            e = dim + end + 1 if end < 0 else end
            if b > dim:  # e.g. day 31 in a 30-day month: impossible range, skipped
                continue
            b, e = max(b, 1), min(e, dim)
            if b <= t.day <= e:
                ok = True
                break
        if not ok:
            return False
    if period.month_ranges and not any(b <= t.month <= e for b, e in period.month_ranges):
        return False
    if period.weekday_ranges:
        wd = t.isoweekday() % 7  # Go: Sunday = 0
        if not any(b <= wd <= e for b, e in period.weekday_ranges):
            return False
    if period.year_ranges and not any(b <= t.year <= e for b, e in period.year_ranges):
        return False
    return True


class TimeIntervals:
    """Named time intervals, evaluated at an injected instant.

    :param intervals: ``{name: [period, ...]}`` (the parsed ``time_intervals`` config).

    >>> ti = TimeIntervals({})
    >>> ti.active(["nope"], 0)
    []
    """

    def __init__(self, intervals: Mapping[str, Sequence[Period]]) -> None:
        self._intervals = dict(intervals)

    @classmethod
    def from_config(cls, time_intervals: Iterable[Any]) -> "TimeIntervals":
        """Build from ``AlertingConfig.time_intervals`` (objects with ``name`` and ``time_intervals``)."""
        return cls({ti.name: list(ti.time_intervals) for ti in time_intervals})

    def names(self) -> list[str]:
        """Return the interval names."""
        return list(self._intervals)

    def contains(self, name: str, at: float) -> bool:
        """Return whether interval ``name`` contains ``at`` (an unknown name contains nothing)."""
        return any(period_contains(p, at) for p in self._intervals.get(name, ()))

    def active(self, names: Iterable[str], at: float) -> list[str]:
        """Return those of ``names`` whose interval contains ``at``, in the given order."""
        return [n for n in names if self.contains(n, at)]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A maintenance window: while any of its time intervals is active, matching alerts are muted.

    :ivar name: the window's name (what ``muted_by`` shows).
    :ivar time_intervals: names of time intervals.
    :ivar matchers: all must match for an alert to be muted; empty mutes every alert.
    """

    name: str
    time_intervals: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()


class MaintenanceWindows:
    """The maintenance-window muter: ``mutes(labels, now) -> [window names]``."""

    def __init__(self, windows: Iterable[MaintenanceWindow], intervals: TimeIntervals) -> None:
        self.windows = list(windows)
        self.intervals = intervals

    @classmethod
    def from_config(cls, alerting: Any) -> "MaintenanceWindows":
        """Build from an ``AlertingConfig`` (its ``maintenance_windows`` and ``time_intervals``)."""
        windows = [MaintenanceWindow(w.name, tuple(w.time_intervals), tuple(w.parsed_matchers()))
                   for w in alerting.maintenance_windows]
        return cls(windows, TimeIntervals.from_config(alerting.time_intervals))

    def active(self, now: float) -> list[MaintenanceWindow]:
        """Return the windows in effect at ``now``."""
        return [w for w in self.windows if self.intervals.active(w.time_intervals, now)]

    def mutes(self, labels: Labels, now: float) -> list[str]:
        """Return the names of the active windows that mute ``labels`` (empty: not muted)."""
        return [w.name for w in self.active(now) if all(m.matches(labels.get(m.name)) for m in w.matchers)]
