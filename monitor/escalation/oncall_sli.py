"""On-call response counters: pages, acknowledgements and resolutions within the priority's SLA.

The events behind the ``oncall`` SLI kind (:class:`monitor.slo.model.OncallSLI`), exported by the
leader from the escalation records:

* ``monitor_oncall_pages_total{priority}``: escalations started (one per page);
* ``monitor_oncall_acks_total{priority, within_sla}``: pages that needed an acknowledgement,
  counted once each: ``within_sla="true"`` when acknowledged at or before the ack deadline
  (``started_at + ack``: P0 15 min, P1 1 h, P2 4 h as shipped), ``"false"`` at the moment the ack
  deadline passes unacknowledged (a never-acknowledged page counts against the SLO at once, not
  when someone finally acts). A page resolved (by the rule or by hand) before its ack deadline
  without an acknowledgement needed none: it is not counted;
* ``monitor_oncall_resolutions_total{priority, within_sla}``: every page, counted once: ``"true"``
  when resolved at or before the resolve deadline (P0 4 h, P1 24 h, P2 3 d), ``"false"`` the
  moment that deadline passes unresolved.

Durability (DESIGN.md "Durable state"): what a page has been counted as is a marker in its
persisted :class:`~monitor.escalation.engine.EscalationState` (``ack_sli``, ``resolve_sli``),
written with the transition that set it; the in-memory totals grow only once that write is
committed. At start (and when a replica takes the leadership) the totals are rebuilt from the
store: the markers of every stored escalation plus the counts of escalations already pruned
(kept under the kv key :data:`PRUNED_KEY`, written in the prune's transaction). So a restart —
even after ``kill -9`` — resumes each counter at exactly its last durable value: a rate over the
restart sees neither a reset nor a page counted twice. Only the leader's runner counts; the
collector of a replica that is not leading exports nothing.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from monitor.escalation.engine import EscalationState
from monitor.escalation.policy import EscalationSnapshot

__all__ = ["PAGES", "ACKS", "RESOLUTIONS", "PRUNED_KEY", "SKIP", "Key", "judge", "counts", "OncallCounters",
           "encode", "decode", "PRIORITIES"]

PAGES = "monitor_oncall_pages"
ACKS = "monitor_oncall_acks"
RESOLUTIONS = "monitor_oncall_resolutions"
#: kv key of the counts of pruned escalations (``{"<metric>|<priority>|<within_sla>": n}``).
PRUNED_KEY = "oncall_sli:pruned"
#: Marker of a page that needed no acknowledgement (resolved before its ack deadline, unacked).
SKIP = "skip"
#: Priorities exported at 0 before their first page (a series born at 1 would lose that increase
#: in ``rate()``); others appear with their first page.
PRIORITIES = ("P0", "P1", "P2")

#: ``(metric, priority, within_sla)``; ``within_sla`` is ``""`` for pages.
Key = tuple[str, str, str]


def _flag(ok: bool) -> str:
    return "true" if ok else "false"


def judge(snap: EscalationSnapshot, state: EscalationState, now: float) -> EscalationState:
    """Return ``state`` with its ``ack_sli`` / ``resolve_sli`` markers set where they are decided at ``now``.

    A marker once set never changes. ``ack_sli``: ``"true"`` / ``"false"`` when acknowledged (at
    or before ``snap.ack_deadline`` or after), ``"false"`` once ``now`` reaches the ack deadline
    unacknowledged, :data:`SKIP` when resolved before it unacknowledged. ``resolve_sli``:
    ``"true"`` / ``"false"`` when resolved (at or before ``snap.resolve_deadline`` or after),
    ``"false"`` once ``now`` reaches the resolve deadline unresolved. Times are Unix seconds.
    """
    ack, res = state.ack_sli, state.resolve_sli
    if ack is None:
        if state.acked_at is not None:
            ack = _flag(state.acked_at <= snap.ack_deadline)
        elif state.resolved_at is not None and state.resolved_at < snap.ack_deadline:
            ack = SKIP
        elif state.resolved_at is not None or now >= snap.ack_deadline:
            ack = "false"
    if res is None:
        if state.resolved_at is not None:
            res = _flag(state.resolved_at <= snap.resolve_deadline)
        elif now >= snap.resolve_deadline:
            res = "false"
    if ack == state.ack_sli and res == state.resolve_sli:
        return state
    return replace(state, ack_sli=ack, resolve_sli=res)


def counts(snap: EscalationSnapshot, state: EscalationState) -> list[Key]:
    """Return the counter keys a stored escalation contributes (its page and its markers)."""
    out: list[Key] = [(PAGES, snap.priority, "")]
    if state.ack_sli in ("true", "false"):
        out.append((ACKS, snap.priority, state.ack_sli))
    if state.resolve_sli in ("true", "false"):
        out.append((RESOLUTIONS, snap.priority, state.resolve_sli))
    return out


def encode(totals: Mapping[Key, int]) -> dict[str, int]:
    """Return ``totals`` as a JSON-ready dict (``"<metric>|<priority>|<within_sla>": n``)."""
    return {"|".join(k): v for k, v in sorted(totals.items())}


def decode(data: Any) -> Tally[Key]:
    """Rebuild :func:`encode` output; entries that do not parse are skipped (``None`` -> empty)."""
    out: Tally[Key] = Tally()
    for text, value in (data or {}).items():
        parts = str(text).split("|")
        if len(parts) == 3 and parts[0] in (PAGES, ACKS, RESOLUTIONS):
            try:
                out[(parts[0], parts[1], parts[2])] += int(float(value))
            except (TypeError, ValueError):
                continue
    return out


class OncallCounters(Collector):
    """The three counters as one collector over totals the runner sets and adds to.

    Registered once per registry (a process may lead several terms); :meth:`reset` replaces the
    totals (rebuilt from the store when a term starts), :meth:`clear` empties them (stepping
    down), :meth:`add` counts committed transitions.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.totals: Tally[Key] = Tally()
        self.active = False
        if registry is not None:
            registry.register(self)

    def reset(self, totals: Mapping[Key, int]) -> None:
        """Export exactly ``totals`` from now on (leading)."""
        self.totals = Tally(totals)
        self.active = True

    def clear(self) -> None:
        """Export nothing (not leading)."""
        self.totals = Tally()
        self.active = False

    def add(self, keys: Iterable[Key]) -> None:
        """Count one event per key."""
        for k in keys:
            self.totals[k] += 1

    def describe(self) -> list[Any]:
        """Return no description: the families depend on the totals (as for any custom collector)."""
        return []

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield the three families; P0, P1 and P2 always, at 0 before their first page."""
        if not self.active:
            return
        prios = sorted(set(PRIORITIES) | {k[1] for k in self.totals})
        pages = CounterMetricFamily(PAGES, "Pages (escalations started), by priority.", labels=["priority"])
        acks = CounterMetricFamily(ACKS, "Pages that needed an acknowledgement, by priority and whether it came "
                                         "within the priority's ack SLA (false: late, or the deadline passed).",
                                   labels=["priority", "within_sla"])
        res = CounterMetricFamily(RESOLUTIONS, "Pages by priority and whether they were resolved within the "
                                               "priority's resolve SLA (false: late, or the deadline passed).",
                                  labels=["priority", "within_sla"])
        for p in prios:
            pages.add_metric([p], self.totals[(PAGES, p, "")])
            for flag in ("true", "false"):
                acks.add_metric([p, flag], self.totals[(ACKS, p, flag)])
                res.add_metric([p, flag], self.totals[(RESOLUTIONS, p, flag)])
        yield pages
        yield acks
        yield res
