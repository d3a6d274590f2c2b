"""What-if views for the CLI: the escalation timeline if nobody acknowledges, and who is on call.

- ``codebook-monitor simulate --labels severity=critical,service=api --at TIME`` ->
  :func:`simulate` + :func:`format_timeline`: who is notified when, through which channel.
- ``codebook-monitor oncall`` -> :func:`oncall_report`: who is on call now in each schedule
  and the next N handoffs.

Both run the daemon's own parts over a manual clock — policy, schedules, the escalation runner,
the maintenance-window mute stage and the integration choice — so simulation and daemon cannot
disagree; nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from model.alert import Alert
from model.duration import format_duration
from model.labels import Labels
from monitor.alerting.maintenance import MaintenanceWindows
from monitor.alerting.mute import MuteStages
from monitor.alerting.route import Route, build_route, parse_label_args, receivers_for
from monitor.config.receivers import CHANNEL_FIELDS
from monitor.escalation.notices import Notice, pick_integration
from monitor.escalation.policy import EscalationPolicy, snapshot
from monitor.escalation.runner import EscalationRunner
from monitor.escalation.schedule import (
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


#: The longest a simulation waits for a maintenance window to end before the walk starts (seconds).
MAX_MUTED = 7 * 86400.0
_QUIET = logging.getLogger("monitor.escalation.simulate")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class _Timeline:
    """The simulation's state store: keeps the timeline the runner writes (nothing else persists)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str, dict[str, Any]]] = []

    async def append_timeline(self, fingerprint: str, at: float, event: str, detail: Any = None) -> int:
        self.rows.append((at, event, dict(detail or {})))
        return len(self.rows)

    async def save_escalation(self, fingerprint: str, snapshot: Any, state: Any, now: float) -> None:
        return None


class _WouldSend:
    """The simulation's notice sink: ``no_integration`` exactly when the daemon's sink would say so
    (:func:`~monitor.escalation.notices.pick_integration` over the configured receivers)."""

    def __init__(self, receivers: Iterable[Any] | None, route: Route | None) -> None:
        self.route = route
        self.kinds = None if receivers is None else {
            r.name: [kind for kind, field in CHANNEL_FIELDS.items() for _ in getattr(r, field)] for r in receivers}

    async def __call__(self, notice: Notice, now: float) -> str:
        if self.kinds is None:
            return ""
        routed = receivers_for(self.route, notice.snap.labels)
        return "" if pick_integration(notice.integration, routed, self.kinds, str) is not None else "no_integration"


def _mute_changes(mutes: MuteStages, alert: Alert, start: float,
                  until: float) -> Iterator[tuple[float, tuple[str, ...]]]:
    """Yield ``(time, windows muting the alert)`` at each minute boundary in ``(start, until]`` where
    the maintenance windows muting the alert change (windows are minute-granular)."""
    last = mutes.mark(alert, [], start).muted_by
    t = (start // 60 + 1) * 60
    while t <= until:
        now = mutes.mark(alert, [], t).muted_by
        if now != last:
            yield t, now
            last = now
        t += 60


async def _walk(config: Any, lset: Labels, t0: float, horizon: float | None,
                receivers: Iterable[Any] | None) -> tuple[list[tuple[float, str, dict[str, Any]]], Any]:
    """Drive the daemon's own escalation runner and mute stage over a manual clock; return the
    timeline entries it wrote and the walk (``None`` when none started)."""
    route = build_route(config.route) if config.route is not None else None
    store = _Timeline()
    runner = EscalationRunner(config, store, _WouldSend(receivers, route), logger=_QUIET)
    mutes = MuteStages(maintenance=MaintenanceWindows.from_config(config))
    alert = Alert.firing(lset, starts_at=t0)
    fp = alert.fingerprint
    muted = mutes.mark(alert, [], t0).muted_by
    if muted:
        store.rows.append((t0, "muted", {"detail": f"muted by maintenance window {', '.join(muted)}: "
                                                   "nothing is sent, escalation waits"}))
    changes = _mute_changes(mutes, alert, t0, t0 + 2 * MAX_MUTED) if config.maintenance_windows else iter(())
    change = next(changes, None)
    if not runner.enabled or not runner.policy.escalates(lset):
        return store.rows, None
    t, end = t0, t0 + MAX_MUTED  # until the walk starts (a window may hold it)
    paused_at: float | None = None
    while True:
        marked = mutes.mark(alert, [], t)
        seen = len(store.rows)
        await runner.advance(t, [marked], {fp: alert})
        for i in range(seen, len(store.rows)):
            if store.rows[i][1] == "paused":
                store.rows[i] = (t, "paused", {"detail": f"paused: muted by maintenance window "
                                                         f"{', '.join(marked.muted_by)}"})
        esc = runner.get(fp)
        if esc is not None and t == esc.snap.started_at:
            end = t + (horizon if horizon is not None else esc.snap.resolve_seconds)
        if esc is not None and marked.muted_by and paused_at is None:
            paused_at = t
        elif not marked.muted_by and paused_at is not None:
            end += t - paused_at  # the walk was held: its horizon moves with it
            paused_at = None
        while change is not None and change[0] <= t:
            change = next(changes, None)
        # a deadline already passed is one the mute holds: the next thing is the window's end
        due = [d for d in (runner.next_deadline(), change[0] if change is not None else None)
               if d is not None and d > t]
        if not due or (min(due) > end and paused_at is None):
            return store.rows, runner.get(fp)
        t = min(due)


def simulate(config: Any, labels: Labels | Mapping[str, str] | str | Iterable[str], at: datetime | float,
             horizon: float | None = None, *, receivers: Iterable[Any] | None = None) -> list[TimelineRow]:
    """Return who would be notified when, if nobody acknowledges an alert with ``labels`` firing at ``at``.

    The daemon's own parts decide: its escalation runner (:class:`~monitor.escalation.runner.EscalationRunner`)
    walks the chain, the maintenance-window mute stage holds it (an alert firing inside a window
    notifies no one and starts escalating when the window ends; a window opening mid-walk pauses
    it), and the integration each notice would go through is chosen by
    :func:`~monitor.escalation.notices.pick_integration` — a step on a channel no receiver can
    deliver shows ``failed: no_integration``, as the daemon logs it.

    :param config: an ``AlertingConfig`` (escalation, schedules, people, route, maintenance windows).
    :param labels: a label set, a mapping, ``"severity=critical,service=api"`` or CLI words.
    :param at: when the alert fires.
    :param horizon: seconds to simulate after the walk starts; default the priority's resolve
        deadline (so the SLA breach shows).
    :param receivers: the ``receivers:`` section; ``None`` assumes every channel has an integration.
    :raises RuntimeError: called from a running event loop (run it in a thread there).
    """
    lset = _labels(labels)
    t0 = instant(at).timestamp()
    entries, esc = asyncio.run(_walk(config, lset, t0, horizon, receivers))
    rows: list[TimelineRow] = []
    for t, event, d in entries:
        level, person = d.get("level"), d.get("person")
        step = esc.snap.steps[level] if esc is not None and level is not None else None
        if event == "escalation started":
            if t > t0:
                rows.append(TimelineRow(instant(t), None, None, (), "escalation starts (no longer muted)"))
            continue
        failed = {f.get("detail") for tf, ev, f in entries if tf == t and ev.startswith("failed")
                  and f.get("level") == level and f.get("person") == person}
        channels = tuple(c for c in step.channels if c not in failed) if step is not None else ()
        if event == "triggered" and step is not None:
            rows.append(TimelineRow(instant(t), level, person, channels, f"triggered ({step.target})"))
        elif event.startswith("failed"):
            detail = d.get("detail") or ""
            channels = (detail,) if person is not None and detail else ()
            rows.append(TimelineRow(instant(t), level, person, channels, f"{event} ({detail})"))
        elif event == "sla_breached":
            rows.append(TimelineRow(instant(t), level, person, channels, d.get("detail") or event))
        elif event in ("paused", "resumed", "muted"):
            rows.append(TimelineRow(instant(t), None, None, (), d.get("detail") or event))
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

