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

The syntax itself is parsed by :mod:`monitor.config.timeintervals` (the config layer validates
with it at load); this module evaluates the parsed periods at an instant.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.config.timeintervals import (
    MONTHS, WEEKDAYS, parse_day_of_month_range, parse_location, parse_month_range, parse_time_of_day,
    parse_weekday_range, parse_year_range,
)
from monitor.config.timeintervals import zone as _zone
from model.labels import Labels
from model.matchers import Matcher
from model.timestamps import to_datetime

__all__ = [
    "WEEKDAYS", "MONTHS", "parse_time_of_day", "parse_weekday_range", "parse_day_of_month_range",
    "parse_month_range", "parse_year_range", "parse_location", "period_contains", "TimeIntervals",
    "MaintenanceWindow", "MaintenanceWindows",
]

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
