"""The ``alerting.time_intervals`` config: Alertmanager time-interval syntax, its parsers and models.

A named interval is a list of periods (:class:`TimeIntervalConfig`); a period
(:class:`TimePeriodConfig`) matches when every field it sets matches; the interval matches when
any of its periods does. Everything is parsed at load into numbers (inclusive ``(begin, end)``
pairs, minutes of the day), which the runtime evaluator
(``monitor.alerting.maintenance.period_contains``) reads without parsing again. The pure parsers
are also used by on-call rotations (``handoff_time``, ``handoff_weekday``, ``time_zone``).
Syntax and messages follow Alertmanager ``timeinterval/timeinterval.go``:

- ``times``: ``{start_time: "02:00", end_time: "06:00"}`` -> minutes since local midnight,
  the end exclusive; ``"24:00"`` only as an end (1440).
- ``weekdays``: ``saturday``, ``monday:friday`` -> inclusive Go weekday numbers, Sunday = 0
  (so ``saturday:sunday`` is invalid, as in Alertmanager).
- ``days_of_month``: ``1``, ``"1:7"``, ``-1``, ``"-3:-1"`` -> inclusive pair; negative counts from
  the month's end.
- ``months``: ``january``, ``3``, ``"april:june"`` -> inclusive 1..12.
- ``years``: ``2026``, ``"2026:2027"`` -> inclusive pair.
- ``location``: an IANA zone name (``Europe/Berlin``), checked and returned unchanged.

Example, the first Saturday of the month 02:00-06:00 UTC::

    time_intervals:
      - name: monthly-maintenance
        time_intervals:
          - {weekdays: [saturday], days_of_month: ["1:7"], times: [{start_time: "02:00", end_time: "06:00"}]}

Every parser raises :class:`ValueError` with the message the config error shows.
This module imports only :mod:`monitor.config.validation`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from monitor.config.validation import Section

__all__ = [
    "WEEKDAYS", "MONTHS", "parse_time_of_day", "parse_weekday_range", "parse_day_of_month_range",
    "parse_month_range", "parse_year_range", "parse_location", "zone",
    "TimeRangeConfig", "TimePeriodConfig", "TimeIntervalConfig",
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


def parse_weekday_range(text: str | int) -> tuple[int, int]:
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


# --- models ------------------------------------------------------------------------------------


def _checked_by(parse: Callable[[Any], object]) -> Callable[[str | int], str | int]:
    """Return a validator that checks a ``str | int`` item with ``parse`` and keeps it as written."""
    def check(v: str | int) -> str | int:
        parse(v)
        return v
    return check


#: List items checked at load, kept as written (errors located at the item: ``weekdays[1]``).
WeekdayItem = Annotated[str | int, AfterValidator(_checked_by(parse_weekday_range))]
DayOfMonthItem = Annotated[str | int, AfterValidator(_checked_by(parse_day_of_month_range))]
MonthItem = Annotated[str | int, AfterValidator(_checked_by(parse_month_range))]
YearItem = Annotated[str | int, AfterValidator(_checked_by(parse_year_range))]


class TimeRangeConfig(Section):
    """``{start_time: "02:00", end_time: "06:00"}``: local minutes of the day, end exclusive.

    ``end_time`` may be ``"24:00"``; ``start_time`` must be before ``end_time``.
    """

    start_time: str
    end_time: str
    _range: tuple[int, int] = PrivateAttr(default=(0, 0))

    @model_validator(mode="after")
    def _parse(self) -> "TimeRangeConfig":
        start = parse_time_of_day(self.start_time)
        end = parse_time_of_day(self.end_time, end=True)
        if start >= end:
            raise ValueError("start time cannot be equal or greater than end time")
        self._range = (start, end)
        return self

    @property
    def minute_range(self) -> tuple[int, int]:
        """``(start_minute, end_minute)`` of the local day, end exclusive."""
        return self._range


class TimePeriodConfig(Section):
    """One period of a time interval (Alertmanager ``timeinterval.TimeInterval``).

    Fields are ANDed; an empty field matches everything. The raw items stay as written (for
    export); the parsed ranges are read through the properties.

    :ivar times: :class:`TimeRangeConfig` items (any matches).
    :ivar weekdays: ``saturday``, ``monday:friday``.
    :ivar days_of_month: ``1``, ``"1:7"``, ``-1``, ``"-3:-1"``.
    :ivar months: ``january``, ``"1:3"``, ``"april:june"``.
    :ivar years: ``2026``, ``"2026:2027"``.
    :ivar location: IANA zone the instant is converted to first (default ``UTC``).
    """

    times: list[TimeRangeConfig] = Field(default_factory=list)
    weekdays: list[WeekdayItem] = Field(default_factory=list)
    days_of_month: list[DayOfMonthItem] = Field(default_factory=list)
    months: list[MonthItem] = Field(default_factory=list)
    years: list[YearItem] = Field(default_factory=list)
    location: str = "UTC"

    _weekdays: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _days: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _months: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _years: list[tuple[int, int]] = PrivateAttr(default_factory=list)

    @field_validator("location")
    @classmethod
    def _check_location(cls, v: str) -> str:
        return parse_location(v)

    @model_validator(mode="after")
    def _parse(self) -> "TimePeriodConfig":
        self._weekdays = [parse_weekday_range(x) for x in self.weekdays]
        self._days = [parse_day_of_month_range(x) for x in self.days_of_month]
        self._months = [parse_month_range(x) for x in self.months]
        self._years = [parse_year_range(x) for x in self.years]
        return self

    @property
    def time_ranges(self) -> list[tuple[int, int]]:
        """``(start_minute, end_minute)`` pairs, end exclusive."""
        return [t.minute_range for t in self.times]

    @property
    def weekday_ranges(self) -> list[tuple[int, int]]:
        """Inclusive weekday ranges, Sunday = 0."""
        return self._weekdays

    @property
    def day_ranges(self) -> list[tuple[int, int]]:
        """Inclusive day-of-month ranges (negative counts from the month's end)."""
        return self._days

    @property
    def month_ranges(self) -> list[tuple[int, int]]:
        """Inclusive month ranges (1..12)."""
        return self._months

    @property
    def year_ranges(self) -> list[tuple[int, int]]:
        """Inclusive year ranges."""
        return self._years


class TimeIntervalConfig(Section):
    """A named time interval: ``{name, time_intervals: [period, ...]}`` (any period matches).

    Names are unique within ``alerting.time_intervals`` (checked by
    :func:`monitor.config.routing.validate_routing_refs`); routes and maintenance windows refer
    to them by name.
    """

    name: str = Field(min_length=1)
    time_intervals: list[TimePeriodConfig] = Field(default_factory=list)
