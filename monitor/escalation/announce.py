"""Handoff announcements: which on-call changes are due to be announced (pure; no clock, no I/O).

A schedule with ``announce_receiver`` gets one Slack message each time the person on call
changes — a rotation handoff, or an override starting or ending:
"On call for primary now: Alice Martin (<@U01ALICE>), until Mon 2026-12-07 09:00 CET".

:func:`current_shift` finds the instant the current person came on call (the last change at or
before ``now``) and the next change; :func:`due_announcements` compares it with the last
announced state (``{schedule: {"at": unix seconds, "person": id}}``, kept by the caller in the
store's kv) and returns what to announce plus the new state. A change older than ``max_age``
(the daemon was down, or this is the first start mid-shift) is recorded without a message.
Each :class:`Announcement` carries its dedup key ``handoff:<schedule>:<handoff unix time>``;
``monitor.notify.handoff`` turns it into a message and an outbox row, so a handoff is never
announced twice, even across restarts and replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.escalation.schedule import Schedule, instant, next_handoffs, who_is_on_call

__all__ = ["Shift", "Announcement", "current_shift", "due_announcements", "DEFAULT_MAX_AGE"]

#: Seconds after a handoff during which it is still announced (later: recorded silently).
DEFAULT_MAX_AGE = 3600.0

_EPS = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Shift:
    """Who is on call, since when, until when.

    :ivar since: the instant ``person`` came on call (a handoff or an override edge), aware.
    :ivar until: the next change of who is on call, or ``None`` when none is known.
    """

    person: str | None
    since: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Announcement:
    """One handoff to announce to ``receiver``."""

    schedule: str
    receiver: str
    shift: Shift
    time_zone: str

    @property
    def key(self) -> str:
        """The dedup key ``handoff:<schedule>:<handoff unix time>``."""
        return f"handoff:{self.schedule}:{int(self.shift.since.timestamp())}"


def _changes_at(schedule: Schedule, t: datetime) -> bool:
    return who_is_on_call(schedule, t - _EPS) != who_is_on_call(schedule, t)


def _last_change(schedule: Schedule, now: datetime) -> datetime | None:
    """Return the latest instant ``<= now`` at which who is on call changed, or ``None``.

    Candidates are override edges, the start and rotation boundaries (walked backwards; with
    more than one member a boundary not covered by an override always changes the person, so
    the walk is short).
    """
    edges = {e for o in schedule.overrides for e in (o.start, o.end) if e <= now}
    if schedule.start_at <= now:
        edges.add(schedule.start_at)
    ordered = sorted(edges, reverse=True)
    rotating = len(schedule.members) > 1 and schedule.start_at <= now
    k = schedule.last_k(now) if rotating else None
    first_k = schedule.first_k()
    while ordered or (k is not None and k >= first_k):
        b = schedule.handoff_at(k) if k is not None and k >= first_k else None
        if b is not None and (not ordered or b >= ordered[0]):
            k -= 1  # type: ignore[operator]
            if ordered and ordered[0] == b:
                ordered.pop(0)
            if b > now:
                continue
        else:
            b = ordered.pop(0)
        if _changes_at(schedule, b):
            return b
    return None


def current_shift(schedule: Schedule, now: datetime | float) -> Shift | None:
    """Return the current shift of ``schedule`` at ``now``, or ``None`` before anyone was on call."""
    t = instant(now)
    since = _last_change(schedule, t)
    if since is None:
        return None
    nxt = next_handoffs(schedule, t, 1)
    return Shift(who_is_on_call(schedule, t), since.astimezone(schedule.zone),
                 nxt[0][0].astimezone(schedule.zone) if nxt else None)


def due_announcements(schedules: Mapping[str, Schedule], receivers: Mapping[str, str],
                      last: Mapping[str, Any] | None, now: datetime | float, *,
                      max_age: float = DEFAULT_MAX_AGE) -> tuple[list[Announcement], dict[str, Any]]:
    """Return ``(announcements due, new announced state)``.

    :param schedules: every schedule by name.
    :param receivers: ``{schedule name: announce receiver}`` (schedules without one are skipped).
    :param last: the state returned last time (``{schedule: {"at", "person"}}``), or ``None``.
    :param now: the current instant.
    :param max_age: seconds after a change during which it is still announced.
    :return: the announcements (schedule order) and the state to store; a change to nobody on
        call is recorded, not announced.
    """
    t = instant(now)
    state: dict[str, Any] = {name: dict(v) for name, v in (last or {}).items()
                             if name in receivers and isinstance(v, Mapping)}
    out: list[Announcement] = []
    for name in sorted(receivers):
        schedule = schedules.get(name)
        if schedule is None:
            continue
        shift = current_shift(schedule, t)
        if shift is None:
            continue
        at = int(shift.since.timestamp())
        prev = state.get(name) or {}
        if prev.get("at") == at and prev.get("person") == shift.person:
            continue
        state[name] = {"at": at, "person": shift.person}
        if shift.person is None or (t - shift.since).total_seconds() > max_age:
            continue
        out.append(Announcement(name, receivers[name], shift, schedule.time_zone))
    return out, state

