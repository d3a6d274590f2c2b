"""The escalation walk: pure transitions over a snapshot and a plain state.

After Grafana OnCall's escalation snapshot (``escalation_snapshot/snapshot_classes``), STYLE
guideline 14. The caller (:class:`monitor.escalation.runner.EscalationRunner`) persists
:class:`EscalationState` and the :class:`~monitor.escalation.policy.EscalationSnapshot`, calls
:func:`step` at ``StepResult.next_deadline``, hands the returned actions to the outbox and
writes the timeline entries *before* the new state, and calls :func:`acknowledge`,
:func:`unacknowledge` and :func:`resolve` when people or rules act. Every function returns a new state; nothing is
mutated, nothing reads the clock. Times are Unix seconds (floats).

The walk:

- :func:`start` begins at level 0, due now. At each due step the target is looked up
  (``oncall_lookup(target, at) -> person | None``): someone found -> a ``notify`` action and a
  ``triggered`` timeline entry, and the next level is due ``wait`` seconds later (with P0:
  primary at 0, secondary at 15 min, manager at 30, CTO at 45); nobody -> ``failed:
  no_one_on_call`` and the next level runs at once. After the last level the walk stops.
- :func:`acknowledge` stops the walk. If ``ack_timeout`` > 0 the acknowledgement expires after
  it and the walk restarts from level 0 (``ack_expired``), as Grafana OnCall's unacknowledge
  timeout. :func:`unacknowledge` restarts it from level 0 at once.
- At ``resolve_deadline``, if still unresolved (acknowledged or not), the level after the
  highest one reached is notified once with reason ``SLA breached`` (``sla_breach`` action).
- :func:`resolve` (by the rule or by hand) ends it and returns a ``resolved_notice`` for every
  person notified, through the channels they were notified on.

Actions carry a ``dedup_key`` (``<fingerprint>@<escalation start ms>:<walk>:<level>:<kind>``) so
that the outbox never sends one step twice, even when a restarted daemon replays a step from the
persisted state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from model.duration import format_duration
from monitor.escalation.policy import EscalationSnapshot

__all__ = [
    "escalate_now",
    "EscalationState", "Action", "TimelineEntry", "StepResult", "OnCallLookupFn", "start", "step",
    "acknowledge", "unacknowledge", "resolve", "NOTIFY", "SLA_BREACH", "RESOLVED_NOTICE",
]

NOTIFY = "notify"
SLA_BREACH = "sla_breach"
RESOLVED_NOTICE = "resolved_notice"

#: ``(target, at) -> person id | None``; see ``monitor.escalation.schedule.OnCallLookup``.
OnCallLookupFn = Callable[[str, float], "str | None"]


@dataclass(frozen=True, slots=True)
class Action:
    """Something to send: ``kind`` is ``notify`` | ``sla_breach`` | ``resolved_notice``.

    :ivar at: Unix seconds the action was decided.
    :ivar level: chain level (0 = first step).
    :ivar person: person id.
    :ivar channels: ``page`` / ``slack_dm`` / ``email``.
    :ivar reason: one line for the message, e.g. ``not acknowledged within 15m``.
    :ivar dedup_key: unique per alert, walk, level and kind (outbox dedup).
    """

    kind: str
    at: float
    level: int
    person: str
    channels: tuple[str, ...]
    reason: str
    dedup_key: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the alert's escalation timeline.

    :ivar event: ``triggered``, ``failed: no_one_on_call``, ``acknowledged``, ``ack_expired``,
        ``unacknowledged``, ``escalated`` (by hand), ``sla_breached``, ``resolved``.
    :ivar level: chain level, or ``None`` for events not tied to a step.
    """

    at: float
    event: str
    level: int | None = None
    person: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notified:
    """Someone who was notified (for the resolved notices)."""

    person: str
    level: int
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EscalationState:
    """The mutable part of an escalation, as a value the caller persists (``to_dict``/``from_dict``).

    :ivar level: the next chain level to run in the current walk.
    :ivar next_at: when it is due (Unix seconds); ``None`` when the walk is stopped.
    :ivar walk: walk number, incremented at each restart (ack expiry, unack).
    :ivar reached: highest level notified in any walk (-1: none).
    :ivar ack_expires_at: when the current acknowledgement expires, or ``None``.
    :ivar sla_breached: the resolve-SLA notice was sent.
    :ivar notified: everyone notified so far.
    :ivar ack_sli: what the page counted as in the on-call acknowledgement SLI (``"true"``,
        ``"false"``, ``"skip"``; ``None``: not decided yet). Set by the runner
        (:func:`monitor.escalation.oncall_sli.judge`); the engine carries it along.
    :ivar resolve_sli: the same for the resolution SLI (``"true"``, ``"false"``, ``None``).
    """

    fingerprint: str
    level: int = 0
    next_at: float | None = None
    walk: int = 0
    reached: int = -1
    acked_at: float | None = None
    acked_by: str | None = None
    ack_expires_at: float | None = None
    sla_breached: bool = False
    resolved_at: float | None = None
    resolved_by: str | None = None
    notified: tuple[Notified, ...] = ()
    ack_sli: str | None = None
    resolve_sli: str | None = None

    @property
    def status(self) -> str:
        """``escalating`` | ``acknowledged`` | ``exhausted`` (chain done, unacknowledged) | ``resolved``."""
        if self.resolved_at is not None:
            return "resolved"
        if self.acked_at is not None:
            return "acknowledged"
        return "escalating" if self.next_at is not None else "exhausted"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the fields in order; ``notified`` as a list of dicts), built
        field by field (``dataclasses.asdict`` deep-copies recursively: written at every step)."""
        d = {name: getattr(self, name) for name in _STATE_FIELDS}
        d["notified"] = [{"person": n.person, "level": n.level, "channels": list(n.channels)} for n in self.notified]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EscalationState":
        """Rebuild from :meth:`to_dict` output."""
        d = dict(d)
        d["notified"] = tuple(Notified(n["person"], int(n["level"]), tuple(n["channels"])) for n in d["notified"])
        return cls(**d)


_STATE_FIELDS = tuple(f.name for f in fields(EscalationState))


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of a transition: the new state, what to send, what to record, when to call again."""

    state: EscalationState
    actions: tuple[Action, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    next_deadline: float | None = None


@dataclass(slots=True)
class _Acc:
    state: EscalationState
    actions: list[Action] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    def result(self, snap: EscalationSnapshot) -> StepResult:
        return StepResult(self.state, tuple(self.actions), tuple(self.timeline), _next_deadline(snap, self.state))


def _key(snap: EscalationSnapshot, rest: str) -> str:
    """``<fingerprint>@<start ms>:<rest>``: unique per escalation (a re-fire starts a new one)."""
    return f"{snap.fingerprint}@{int(snap.started_at * 1000)}:{rest}"


def _next_deadline(snap: EscalationSnapshot, s: EscalationState) -> float | None:
    if s.resolved_at is not None:
        return None
    times = [t for t in (s.next_at, s.ack_expires_at) if t is not None]
    if not s.sla_breached:
        times.append(snap.resolve_deadline)
    return min(times, default=None)


def start(snap: EscalationSnapshot, now: float, oncall_lookup: OnCallLookupFn | None = None) -> StepResult:
    """Begin escalating: level 0 is due at ``now``; with a lookup, run it at once."""
    state = EscalationState(snap.fingerprint, level=0, next_at=float(now))
    if oncall_lookup is None:
        return StepResult(state, next_deadline=_next_deadline(snap, state))
    return step(snap, state, now, oncall_lookup)


def step(snap: EscalationSnapshot, state: EscalationState, now: float,
         oncall_lookup: OnCallLookupFn) -> StepResult:
    """Run everything due at or before ``now``, in time order, and return the new state.

    Due items are: the current walk's next level, the expiry of an acknowledgement, the resolve
    SLA. Calling late catches up (each due item runs once); calling early does nothing.
    """
    t = float(now)
    acc = _Acc(state)
    for _ in range(4 * len(snap.steps) + 8):  # bounded: each iteration consumes one due item
        s = acc.state
        if s.resolved_at is not None:
            break
        candidates = [(s.next_at, 0), (s.ack_expires_at, 1), (None if s.sla_breached else snap.resolve_deadline, 2)]
        due = [(at, kind) for at, kind in candidates if at is not None and at <= t]
        if not due:
            break
        at, kind = min(due)
        if kind == 0:
            _run_level(snap, acc, at, t, oncall_lookup)
        elif kind == 1:
            acc.timeline.append(TimelineEntry(t, "ack_expired", None, s.acked_by,
                                              f"acknowledgement expired after {format_duration(snap.ack_timeout)}"))
            acc.state = replace(s, acked_at=None, acked_by=None, ack_expires_at=None, level=0, next_at=at,
                                walk=s.walk + 1)
        else:
            _sla_breach(snap, acc, t, oncall_lookup)
    return acc.result(snap)


def _run_level(snap: EscalationSnapshot, acc: _Acc, due: float, t: float, lookup: OnCallLookupFn) -> None:
    s = acc.state
    level = s.level
    if level >= len(snap.steps):
        acc.state = replace(s, next_at=None)
        return
    st = snap.steps[level]
    nxt = level + 1
    person = lookup(st.target, due)
    if person is None:
        acc.timeline.append(TimelineEntry(t, "failed: no_one_on_call", level, None, st.target))
        acc.state = replace(s, level=nxt, next_at=due if nxt < len(snap.steps) else None)
        return
    if level == 0:
        reason = f"{snap.priority} alert firing"
    else:
        waited = sum(x.wait for x in snap.steps[:level])
        reason = f"not acknowledged within {format_duration(waited)}"
    acc.actions.append(Action(NOTIFY, t, level, person, st.channels, reason,
                              _key(snap, f"{s.walk}:{level}:{NOTIFY}")))
    acc.timeline.append(TimelineEntry(t, "triggered", level, person, f"{st.target} via {', '.join(st.channels)}"))
    acc.state = replace(s, level=nxt, next_at=due + st.wait if nxt < len(snap.steps) else None,
                        reached=max(s.reached, level), notified=s.notified + (Notified(person, level, st.channels),))


def _sla_breach(snap: EscalationSnapshot, acc: _Acc, t: float, lookup: OnCallLookupFn) -> None:
    s = acc.state
    acc.state = s = replace(s, sla_breached=True)
    if not snap.steps:
        acc.timeline.append(TimelineEntry(t, "sla_breached", None, None, "no escalation chain"))
        return
    reason = f"SLA breached: {snap.priority} not resolved within {format_duration(snap.resolve_seconds)}"
    for level in range(min(s.reached + 1, len(snap.steps) - 1), len(snap.steps)):
        st = snap.steps[level]
        person = lookup(st.target, snap.resolve_deadline)
        if person is None:
            acc.timeline.append(TimelineEntry(t, "failed: no_one_on_call", level, None, st.target))
            continue
        acc.actions.append(Action(SLA_BREACH, t, level, person, st.channels, reason,
                                  _key(snap, f"sla:{level}:{SLA_BREACH}")))
        acc.timeline.append(TimelineEntry(t, "sla_breached", level, person, reason))
        acc.state = replace(s, reached=max(s.reached, level),
                            notified=s.notified + (Notified(person, level, st.channels),))
        return


def acknowledge(snap: EscalationSnapshot, state: EscalationState, now: float,
                by: str = "", comment: str = "") -> StepResult:
    """Acknowledge: stop the walk; the acknowledgement expires after ``ack_timeout`` (if > 0).

    ``comment`` (the person's words) goes on the timeline entry.

    Acknowledging a resolved escalation changes nothing.
    """
    t = float(now)
    if state.resolved_at is not None:
        return StepResult(state)
    expires = t + snap.ack_timeout if snap.ack_timeout > 0 else None
    new = replace(state, acked_at=t, acked_by=by or None, ack_expires_at=expires, next_at=None)
    entry = TimelineEntry(t, "acknowledged", None, by or None, comment)
    return StepResult(new, (), (entry,), _next_deadline(snap, new))


def unacknowledge(snap: EscalationSnapshot, state: EscalationState, now: float,
                  oncall_lookup: OnCallLookupFn, by: str = "") -> StepResult:
    """Withdraw an acknowledgement: restart the walk from level 0 at once (the primary is notified)."""
    t = float(now)
    if state.resolved_at is not None:
        return StepResult(state)
    new = replace(state, acked_at=None, acked_by=None, ack_expires_at=None, level=0, next_at=t, walk=state.walk + 1)
    res = step(snap, new, t, oncall_lookup)
    entry = TimelineEntry(t, "unacknowledged", None, by or None, "")
    return replace(res, timeline=(entry,) + res.timeline)


def escalate_now(snap: EscalationSnapshot, state: EscalationState, now: float,
                 oncall_lookup: OnCallLookupFn, by: str = "", comment: str = "") -> StepResult:
    """Run the walk's next level at once, before its deadline (someone asks for help now).

    An acknowledged walk is un-acknowledged and goes on from the level it had reached (not from
    the primary, as :func:`unacknowledge` does); the levels after it keep their waits, counted
    from now. A walk whose chain is done (``exhausted``) or that is resolved changes nothing but
    the timeline entry (``escalated``, with ``by`` and ``comment``), which is written either way.
    """
    t = float(now)
    entry = TimelineEntry(t, "escalated", None, by or None, comment or "escalated by hand")
    if state.resolved_at is not None:
        return StepResult(state, (), (entry,), None)
    if state.level >= len(snap.steps):
        done = "the chain is done: nobody left to escalate to"
        return StepResult(state, (), (replace(entry, detail=f"{comment} ({done})" if comment else done),),
                          _next_deadline(snap, state))
    new = replace(state, acked_at=None, acked_by=None, ack_expires_at=None, next_at=t)
    res = step(snap, new, t, oncall_lookup)
    return replace(res, timeline=(entry,) + res.timeline)


def resolve(snap: EscalationSnapshot, state: EscalationState, now: float, by: str = "rule",
            comment: str = "") -> StepResult:
    """End the escalation; return a ``resolved_notice`` for each person notified (once each).

    ``comment`` (the words of whoever resolved it by hand) goes on the ``resolved`` timeline entry.

    Each person gets the union of the channels they were notified on, at the highest level
    they were notified at. Resolving twice changes nothing.
    """
    t = float(now)
    if state.resolved_at is not None:
        return StepResult(state)
    people: dict[str, Notified] = {}
    for n in state.notified:
        prev = people.get(n.person)
        if prev is None:
            people[n.person] = n
        else:
            channels = prev.channels + tuple(c for c in n.channels if c not in prev.channels)
            people[n.person] = Notified(n.person, max(prev.level, n.level), channels)
    actions = tuple(Action(RESOLVED_NOTICE, t, n.level, n.person, n.channels, f"resolved by {by}",
                           _key(snap, f"resolved:{n.person}:{RESOLVED_NOTICE}"))
                    for n in people.values())
    new = replace(state, resolved_at=t, resolved_by=by, next_at=None, ack_expires_at=None)
    return StepResult(new, actions, (TimelineEntry(t, "resolved", None, by, comment),), None)
