"""On-call schedules: rotations with a local wall-clock handoff, overrides, who is on call.

A schedule has ordered members, a start date, a rotation and an IANA time zone:

- ``weekly`` (default): the handoff is on ``handoff_weekday`` at ``handoff_time`` local time;
  ``daily``: every day at ``handoff_time``; ``custom``: every ``length`` — whole days rotate on
  local calendar days at ``handoff_time``, other lengths in elapsed time from the start.
- ``members[0]`` is on call from the start date at the handoff time until the first handoff
  after it (for a weekly rotation starting mid-week this first shift is short); each handoff
  passes to the next member, wrapping around. Before the start nobody is on call.
- Handoffs are computed on local calendar dates and converted to instants with ``zoneinfo``,
  so the handoff stays at the same local wall-clock time across DST changes (the UTC instant
  moves by an hour). A handoff time that does not exist on a spring-forward day (02:30 in
  Europe/Berlin) falls an hour later in local time (``fold=0``, PEP 495); an ambiguous one on
  the autumn day is the first occurrence.
- Restrictions (PagerDuty's schedule restrictions) limit when the rotation's member is on call
  to local time-of-day windows on some weekdays, each in a named zone (``08:30``-``17:30``
  Monday to Friday in Europe/Berlin): the rotation keeps turning on its handoffs, outside every
  window nobody is on call. A window is computed on its local date and converted with
  ``zoneinfo`` like a handoff, so it keeps its wall-clock times across DST (a window opening at a
  non-existent local time opens an hour later in local time).
- Overrides put someone else on call for ``[start, end)``; a later override in the list wins.
  Overrides apply inside and outside restriction windows.

Instants are aware datetimes (Unix seconds accepted: :func:`instant` converts them once, with
:func:`model.timestamps.to_datetime`); this is calendar code. No clock is read here.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from model.timestamps import from_datetime, to_datetime
from monitor.config.timeintervals import WEEKDAYS

__all__ = ["Override", "Restriction", "Schedule", "Shift", "who_is_on_call", "next_handoffs", "shifts",
           "overrides_from_rows",
           "OnCallLookup", "instant"]

_DAY = 86400.0


def instant(at: datetime | float) -> datetime:
    """Return ``at`` (Unix seconds or an aware datetime) as an aware UTC datetime, for calendar
    arithmetic.

    :raises ValueError: for a naive datetime (an instant needs a zone).
    """
    return to_datetime(from_datetime(at) if isinstance(at, datetime) else at)


@dataclass(frozen=True, slots=True)
class Override:
    """``person`` is on call from ``start`` (inclusive) to ``end`` (exclusive); aware datetimes."""

    start: datetime
    end: datetime
    person: str


@dataclass(frozen=True, slots=True)
class Restriction:
    """A window of local time on some weekdays in which a restricted rotation's member is on call.

    :ivar weekdays: Python weekdays (Monday = 0) a window may start on.
    :ivar start_minute: local minute of the day the window opens (0..1439).
    :ivar end_minute: local minute it closes (1..1440); ``<= start_minute``: on the next day.
    :ivar time_zone: IANA zone of the wall-clock times.
    """

    weekdays: frozenset[int]
    start_minute: int
    end_minute: int
    time_zone: str

    @classmethod
    def from_config(cls, cfg: Any, default_zone: str) -> "Restriction":
        """Build from a ``monitor.config.oncall.RestrictionConfig``."""
        start, end = cfg.minutes
        return cls(cfg.python_weekdays, start, end, cfg.time_zone or default_zone)

    def window(self, d: date) -> tuple[datetime, datetime]:
        """Return the window opening on local date ``d`` as aware UTC instants ``(start, end)``."""
        zone = ZoneInfo(self.time_zone)
        start = datetime.combine(d, time(self.start_minute // 60, self.start_minute % 60), tzinfo=zone)
        end_day = d if self.end_minute > self.start_minute else d + timedelta(days=1)
        end = datetime.combine(end_day, time(0), tzinfo=zone) + timedelta(minutes=self.end_minute)
        # minutes added to local midnight are wall-clock minutes (aware arithmetic is wall time)
        return start.astimezone(timezone.utc), end.replace(fold=0).astimezone(timezone.utc)

    def windows(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the windows that end after ``after``, in order, forever."""
        d = after.astimezone(ZoneInfo(self.time_zone)).date() - timedelta(days=1)
        while True:
            if d.weekday() in self.weekdays:
                w = self.window(d)
                if w[1] > after:
                    yield w
            d += timedelta(days=1)

    def contains(self, t: datetime) -> bool:
        """Whether instant ``t`` lies inside a window (start inclusive, end exclusive)."""
        d = t.astimezone(ZoneInfo(self.time_zone)).date()
        for day in (d - timedelta(days=1), d):
            if day.weekday() in self.weekdays:
                a, b = self.window(day)
                if a <= t < b:
                    return True
        return False


@dataclass(frozen=True, slots=True)
class Shift:
    """``person`` is on call from ``start`` to ``end`` (aware datetimes, end exclusive).

    :ivar source: ``rotation`` or ``override``.
    """

    start: datetime
    end: datetime
    person: str
    source: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """A resolved on-call schedule (see the module docstring).

    :ivar handoff_weekday: Python weekday (Monday = 0), used by ``weekly``.
    :ivar period_days: rotation length in local days (7 weekly, 1 daily), or ``None`` when the
        rotation is by elapsed ``length_seconds``.
    """

    name: str
    time_zone: str
    members: tuple[str, ...]
    start: date
    handoff: time = time(9, 0)
    rotation: str = "weekly"
    handoff_weekday: int = 0
    period_days: int | None = 7
    length_seconds: float | None = None
    overrides: tuple[Override, ...] = ()
    restrictions: tuple[Restriction, ...] = ()

    @classmethod
    def from_config(cls, name: str, cfg: Any) -> "Schedule":
        """Build from a ``monitor.config.oncall.ScheduleConfig``."""
        rot = cfg.rotation
        period: int | None
        length: float | None = None
        if rot.type == "weekly":
            period = 7
        elif rot.type == "daily":
            period = 1
        elif rot.length % _DAY == 0:
            period = int(rot.length // _DAY)
        else:
            period, length = None, float(rot.length)
        go_weekday = WEEKDAYS[rot.handoff_weekday]  # Sunday = 0
        return cls(name, cfg.time_zone, tuple(cfg.members), cfg.start, rot.handoff, rot.type,
                   (go_weekday - 1) % 7, period, length,
                   tuple(Override(instant(o.start), instant(o.end), o.person) for o in cfg.overrides),
                   tuple(Restriction.from_config(r, cfg.time_zone) for r in rot.restrictions))

    def with_overrides(self, extra: Iterable[Override]) -> "Schedule":
        """Return a copy with ``extra`` overrides after the configured ones (so they win overlaps)."""
        more = tuple(extra)
        if not more:
            return self
        return Schedule(self.name, self.time_zone, self.members, self.start, self.handoff, self.rotation,
                        self.handoff_weekday, self.period_days, self.length_seconds, self.overrides + more,
                        self.restrictions)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.time_zone)

    def _local(self, d: date) -> datetime:
        return datetime.combine(d, self.handoff, tzinfo=self.zone)

    @property
    def start_at(self) -> datetime:
        """The instant the first shift starts (start date at the handoff time, local)."""
        return self._local(self.start)

    def _anchor(self) -> date:
        """Return the date of rotation handoff number 0 (it may coincide with the start)."""
        if self.rotation == "weekly":
            return self.start + timedelta(days=(self.handoff_weekday - self.start.weekday()) % 7)
        return self.start

    def handoff_at(self, k: int) -> datetime:
        """Return the instant of rotation boundary ``k`` (``k = 0`` is the anchor, maybe the start itself)."""
        if self.period_days is None:
            return self.start_at + timedelta(seconds=k * self.length_seconds)  # type: ignore[operator]
        return self._local(self._anchor() + timedelta(days=k * self.period_days))

    def first_k(self) -> int:
        """Return the number of the first handoff at or after the start (0 or 1)."""
        return 0 if self.handoff_at(0) > self.start_at else 1

    def last_k(self, t: datetime) -> int:
        """Return the largest ``k`` with ``handoff_at(k) <= t`` (may be below ``first_k``)."""
        if self.period_days is None:
            return math.floor((t - self.start_at).total_seconds() / self.length_seconds)  # type: ignore[operator]
        days = (t.astimezone(self.zone).date() - self._anchor()).days
        k = days // self.period_days
        while self.handoff_at(k + 1) <= t:
            k += 1
        while self.handoff_at(k) > t:
            k -= 1
        return k

    def rotation_member(self, at: datetime | float) -> str | None:
        """Who the rotation puts on call at ``at`` (overrides ignored); ``None`` before the start
        and outside every restriction window."""
        t = instant(at)
        if t < self.start_at or not self.members:
            return None
        if self.restrictions and not any(r.contains(t) for r in self.restrictions):
            return None
        first = self.first_k()
        n = max(self.last_k(t) - first + 1, 0)
        return self.members[n % len(self.members)]

    def override_at(self, at: datetime | float) -> Override | None:
        """Return the override in effect at ``at`` (the last listed wins), or ``None``."""
        t = instant(at)
        for o in reversed(self.overrides):
            if o.start <= t < o.end:
                return o
        return None

    def rotation_handoffs(self, after: datetime | float) -> Iterator[datetime]:
        """Yield rotation boundaries strictly after ``after``, in order, forever."""
        t = max(instant(after), self.start_at)
        k = max(self.last_k(t) + 1, self.first_k())
        while True:
            h = self.handoff_at(k)
            if h > instant(after):
                yield h
            k += 1


def who_is_on_call(schedule: Schedule, at: datetime | float) -> str | None:
    """Return the person id on call at ``at`` (an override first, then the rotation), or ``None``."""
    o = schedule.override_at(at)
    if o is not None:
        return o.person
    return schedule.rotation_member(at)


def overrides_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Override, ...]]:
    """Group stored override rows (``monitor.store.overrides``) by schedule, in row order."""
    out: dict[str, list[Override]] = {}
    for r in rows:
        out.setdefault(r["schedule"], []).append(
            Override(instant(float(r["starts_at"])), instant(float(r["ends_at"])), r["person"]))
    return {k: tuple(v) for k, v in out.items()}


def _edges(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Yield every instant after ``after`` at which who is on call may change, in order, once each.

    Rotation boundaries, restriction windows' opening and closing, the start, and override edges.
    Infinite when the rotation has more than one member or restrictions exist.
    """
    sources: list[Iterator[datetime]] = [iter(sorted({e for o in schedule.overrides for e in (o.start, o.end)
                                                      if e > after}))]
    if after < schedule.start_at:
        sources.append(iter([schedule.start_at]))
    if len(schedule.members) > 1:
        sources.append(schedule.rotation_handoffs(after))
    for r in schedule.restrictions:
        sources.append(e for w in r.windows(after) for e in w if e > after)
    last: datetime | None = None
    for e in heapq.merge(*sources):
        if e != last:
            yield e
            last = e


def next_handoffs(schedule: Schedule, at: datetime | float, n: int) -> list[tuple[datetime, str | None]]:
    """Return the next ``n`` changes of who is on call after ``at``: ``[(instant, person)]``.

    Rotation boundaries, restriction windows and override starts/ends are all considered; a
    boundary that does not change the person (a one-member rotation) is not a handoff. ``person``
    is ``None`` when nobody is on call after the change (outside restrictions, before the start).
    Instants are in the schedule's zone.
    """
    t = instant(at)
    current = who_is_on_call(schedule, t)
    out: list[tuple[datetime, str | None]] = []
    budget = 10 * n + 2 * len(schedule.overrides) + 10
    for b in _edges(schedule, t):
        if len(out) >= n or budget <= 0:
            break
        budget -= 1
        person = who_is_on_call(schedule, b)
        if person != current:
            out.append((b.astimezone(schedule.zone), person))
            current = person
    return out


def shifts(schedule: Schedule, start: datetime | float, end: datetime | float, *,
           limit: int = 5000) -> list[Shift]:
    """Return who is on call between ``start`` and ``end``: consecutive :class:`Shift` items.

    A shift is cut at ``start`` and ``end``; gaps (nobody on call) are left out; adjacent pieces
    of the same person and source are one shift. Instants are aware UTC datetimes.

    :param limit: the most shifts returned (a calendar of weeks has a few dozen).
    """
    a, b = instant(start), instant(end)  # UTC
    out: list[Shift] = []
    cur_at = a
    cur = _who(schedule, a)
    edges = _edges(schedule, a)
    while cur_at < b and len(out) < limit:
        nxt = next(edges, None)
        stop = b if nxt is None or nxt > b else nxt.astimezone(timezone.utc)
        if cur is not None:
            if out and out[-1].end == cur_at and (out[-1].person, out[-1].source) == cur:
                out[-1] = Shift(out[-1].start, stop, cur[0], cur[1])
            else:
                out.append(Shift(cur_at, stop, cur[0], cur[1]))
        cur_at = stop
        cur = _who(schedule, stop) if stop < b else None
    return out


def _who(schedule: Schedule, t: datetime) -> tuple[str, str] | None:
    o = schedule.override_at(t)
    if o is not None:
        return o.person, "override"
    person = schedule.rotation_member(t)
    return None if person is None else (person, "rotation")


class OnCallLookup:
    """Resolve an escalation target at an instant: ``lookup("schedule:primary", at) -> person | None``.

    ``person:<id>`` resolves to the id when that person exists; ``schedule:<name>`` to whoever
    is on call then. Unknown names resolve to ``None`` (the engine records
    ``failed: no_one_on_call``).
    """

    def __init__(self, schedules: Mapping[str, Schedule], people: Mapping[str, Any]) -> None:
        self.schedules = dict(schedules)
        self.people = dict(people)

    @classmethod
    def from_config(cls, alerting: Any, stored: Mapping[str, tuple[Override, ...]] | None = None) -> "OnCallLookup":
        """Build from an ``AlertingConfig`` (its ``schedules`` and ``people``).

        :param stored: overrides made through the API, by schedule (:func:`overrides_from_rows`),
            merged after the configured ones.
        """
        stored = stored or {}
        return cls({name: Schedule.from_config(name, s).with_overrides(stored.get(name, ()))
                    for name, s in alerting.schedules.items()}, alerting.people)

    def __call__(self, target: str, at: datetime | float) -> str | None:
        """Return who ``target`` (``person:<id>`` or ``schedule:<name>``) means at ``at``, or ``None``."""
        kind, _, name = target.partition(":")
        if kind == "person":
            return name if name in self.people else None
        if kind == "schedule" and name in self.schedules:
            return who_is_on_call(self.schedules[name], at)
        return None
