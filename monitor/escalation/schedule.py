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
- Overrides put someone else on call for ``[start, end)``; a later override in the list wins.

Instants are aware datetimes (Unix seconds accepted: :func:`instant` converts them once, with
:func:`model.timestamps.to_datetime`); this is calendar code. No clock is read here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from model.timestamps import from_datetime, to_datetime
from monitor.config.timeintervals import WEEKDAYS

__all__ = ["Override", "Schedule", "who_is_on_call", "next_handoffs", "OnCallLookup", "instant"]

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

    @classmethod
    def from_config(cls, name: str, cfg: Any) -> "Schedule":
        """Build from a ``monitor.config.alerting.ScheduleConfig``."""
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
                   tuple(Override(instant(o.start), instant(o.end), o.person) for o in cfg.overrides))

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
        """Who the rotation puts on call at ``at`` (overrides ignored); ``None`` before the start."""
        t = instant(at)
        if t < self.start_at or not self.members:
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


def next_handoffs(schedule: Schedule, at: datetime | float, n: int) -> list[tuple[datetime, str | None]]:
    """Return the next ``n`` changes of who is on call after ``at``: ``[(instant, person)]``.

    Rotation boundaries and override starts/ends are all considered; a boundary that does not
    change the person (a one-member rotation) is not a handoff. ``person`` is ``None`` when
    nobody is on call after the change.
    """
    t = instant(at)
    current = who_is_on_call(schedule, t)
    edges = sorted({e for o in schedule.overrides for e in (o.start, o.end) if e > t})
    if t < schedule.start_at:
        edges = sorted(set(edges) | {schedule.start_at})
    rot = schedule.rotation_handoffs(t)
    next_rot = next(rot) if len(schedule.members) > 1 else None
    out: list[tuple[datetime, str | None]] = []
    budget = 10 * n + 2 * len(edges) + 10
    while len(out) < n and budget > 0 and (edges or next_rot is not None):
        budget -= 1
        if next_rot is not None and (not edges or next_rot <= edges[0]):
            b = next_rot
            next_rot = next(rot)
            if edges and edges[0] == b:
                edges.pop(0)
        else:
            b = edges.pop(0)
        person = who_is_on_call(schedule, b)
        if person != current:
            out.append((b.astimezone(schedule.zone), person))
            current = person
    return out


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
    def from_config(cls, alerting: Any) -> "OnCallLookup":
        """Build from an ``AlertingConfig`` (its ``schedules`` and ``people``)."""
        return cls({name: Schedule.from_config(name, s) for name, s in alerting.schedules.items()},
                   alerting.people)

    def __call__(self, target: str, at: datetime | float) -> str | None:
        """Return who ``target`` (``person:<id>`` or ``schedule:<name>``) means at ``at``, or ``None``."""
        kind, _, name = target.partition(":")
        if kind == "person":
            return name if name in self.people else None
        if kind == "schedule" and name in self.schedules:
            return who_is_on_call(self.schedules[name], at)
        return None
