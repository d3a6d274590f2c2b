"""What-if views for the CLI: the escalation timeline if nobody acknowledges, and who is on call.

- ``codebook-monitor simulate --labels severity=critical,service=api --at TIME`` ->
  :func:`simulate` + :func:`format_timeline`: who is notified when, through which channel.
- ``codebook-monitor oncall`` -> :func:`oncall_report`: who is on call now in each schedule
  and the next N handoffs.

Both run the real policy, schedules and engine over a manual clock; nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from model.duration import format_duration
from model.labels import Labels
from monitor.alerting.route import parse_label_args
from monitor.escalation.engine import Action, start, step
from monitor.escalation.policy import EscalationPolicy, snapshot
from monitor.escalation.schedule import (
    OnCallLookup,
    Schedule,
    instant,
    next_handoffs,
    who_is_on_call,
)

__all__ = ["TimelineRow", "simulate", "format_timeline", "oncall_report"]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One line of a simulated timeline.

    :ivar at: when (aware UTC).
    :ivar level: chain level (0 = first step), ``None`` for notes not tied to a step.
    :ivar person: who is notified, ``None`` when nobody could be.
    :ivar channels: through which channels.
    :ivar note: ``triggered (schedule:primary)``, ``failed: no_one_on_call (schedule:secondary)``,
        ``SLA breached: ...``.
    """

    at: datetime
    level: int | None
    person: str | None
    channels: tuple[str, ...]
    note: str


def _labels(labels: Labels | Mapping[str, str] | str | Iterable[str]) -> Labels:
    if isinstance(labels, Labels):
        return labels
    if isinstance(labels, Mapping):
        return Labels.of(labels)
    if isinstance(labels, str):
        return parse_label_args([labels])
    return parse_label_args(labels)


def simulate(config: Any, labels: Labels | Mapping[str, str] | str | Iterable[str], at: datetime | float,
             horizon: float | None = None) -> list[TimelineRow]:
    """Return who would be notified when, if nobody acknowledges an alert with ``labels`` firing at ``at``.

    :param config: an ``AlertingConfig`` (escalation, schedules, people).
    :param labels: a label set, a mapping, ``"severity=critical,service=api"`` or CLI words.
    :param at: when the alert starts escalating.
    :param horizon: seconds to simulate; default the priority's resolve deadline (so the SLA
        breach shows).
    """
    lset = _labels(labels)
    policy = EscalationPolicy.from_config(config.escalation)
    lookup = OnCallLookup.from_config(config)
    snap = snapshot(policy, lset, instant(at).timestamp())
    end = snap.started_at + (horizon if horizon is not None else snap.resolve_seconds)
    res = start(snap, snap.started_at, lookup)
    rows: list[TimelineRow] = []
    actions: dict[tuple[float, int | None, str | None], Action] = {}
    while True:
        for a in res.actions:
            actions[(a.at, a.level, a.person)] = a
        for e in res.timeline:
            done = actions.get((e.at, e.level, e.person))
            channels = done.channels if done is not None else ()
            if e.event == "triggered":
                note = f"triggered ({snap.steps[e.level].target})"  # type: ignore[index]
            elif e.event.startswith("failed"):
                note = f"{e.event} ({e.detail})"
            else:
                note = e.detail or e.event
            rows.append(TimelineRow(instant(e.at), e.level, e.person, channels, note))
        nxt = res.next_deadline
        if nxt is None or nxt > end:
            break
        res = step(snap, res.state, nxt, lookup)
    return rows


def format_timeline(rows: list[TimelineRow], config: Any | None = None, *, labels: Any = None,
                    at: datetime | float | None = None) -> str:
    """Format simulated rows as a table; with ``config``, ``labels`` and ``at`` a header too.

    Times are UTC; a person is shown with their name when ``config`` is given.
    """
    lines = []
    if config is not None and labels is not None and at is not None:
        policy = EscalationPolicy.from_config(config.escalation)
        snap = snapshot(policy, _labels(labels), instant(at).timestamp())
        lines.append(f"{snap.priority}: acknowledge within {format_duration(snap.ack_seconds)}, "
                     f"resolve within {format_duration(snap.resolve_seconds)} "
                     f"(alert {_labels(labels)!s})")
    people = getattr(config, "people", {}) if config is not None else {}
    for r in rows:
        who = r.person or "-"
        if r.person and r.person in people and people[r.person].name:
            who = f"{r.person} ({people[r.person].name})"
        level = f"L{r.level + 1}" if r.level is not None else "  "
        lines.append(f"{r.at:%Y-%m-%d %H:%M:%S} UTC  {level:<3} {who:<28} {', '.join(r.channels) or '-':<22} {r.note}")
    if not rows:
        lines.append("nobody would be notified (empty escalation chain)")
    return "\n".join(lines)


def oncall_report(config: Any, at: datetime | float, n: int = 5) -> str:
    """Return who is on call at ``at`` in each schedule and the next ``n`` handoffs, as text."""
    t = instant(at)
    people = config.people
    lines: list[str] = []

    def who(p: str | None) -> str:
        if p is None:
            return "nobody"
        name = people[p].name if p in people and people[p].name else ""
        return f"{p} ({name})" if name else p

    if not config.schedules:
        return "no schedules configured"
    for name, cfg in config.schedules.items():
        s = Schedule.from_config(name, cfg)
        rot = cfg.rotation
        when = f"{rot.handoff_weekday} {rot.handoff_time}" if rot.type == "weekly" else rot.handoff_time
        lines.append(f"{name} ({s.time_zone}, {rot.type}, handoff {when}): on call now: {who(who_is_on_call(s, t))}")
        for h_at, person in next_handoffs(s, t, n):
            lines.append(f"  {h_at:%Y-%m-%d %H:%M %Z} ({instant(h_at):%H:%M} UTC) -> {who(person)}")
    return "\n".join(lines)

