"""The escalation stage at run time: one persisted walk per alert; its notices handed to the outbox.

:class:`EscalationRunner` keeps one ``(snapshot, state)`` per alert fingerprint, in memory and in
the state store (``save_escalation``). It is the escalation stage of the alert pipeline
(``monitor.alerting.pipeline``): at each ingest and tick the pipeline hands it the alerts it
holds, marked by the mute stages — a firing, unmuted alert starts a walk (the policy frozen into
a snapshot, :mod:`monitor.escalation.policy`), a muted one is held, a due step runs
(:mod:`monitor.escalation.engine`) — and people's acknowledgements move it
(``monitor.alerting.acks``).

Every engine action becomes notices (:mod:`monitor.escalation.notices`: a person's contact on a
channel, a title) handed to the injected :class:`~monitor.escalation.notices.NoticeSink` — the
outbox. The runner never writes the outbox itself and never asks for alert data: the alert a
notice speaks of comes in as an argument.

Order of effects (DESIGN.md "Durable state"): notices to the outbox first, then the timeline,
then the new state — a crash in between replays the step after a restart, and the outbox key
(``<action dedup key>:<channel>``) makes the replay a no-op, so nothing pages twice.

Each step writes ``triggered`` or ``failed: <code>`` (``no_one_on_call``, ``no_contact``,
``no_integration``) to the alert timeline (Grafana OnCall
``escalation_snapshot/snapshot_classes/escalation_policy_snapshot.py``; STYLE guideline 14).
Times are Unix seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.alert import ACTIVE, Alert
from model.labels import Labels
from monitor.alerting.mute import muted_firing
from monitor.escalation import engine, oncall_sli
from monitor.escalation.engine import EscalationState, StepResult, TimelineEntry
from monitor.escalation.metrics import EscalationMetrics
from monitor.escalation.notices import MESSAGE_KIND, Contacts, NoticeSink
from monitor.escalation.policy import EscalationPolicy, EscalationSnapshot, snapshot
from monitor.errors import StoreError
from monitor.escalation.schedule import OnCallLookup, Override, overrides_from_rows
from monitor.store.batching import transaction_of

__all__ = ["EscalationRunner", "Escalation", "START_BATCH"]

#: The most walks started in one store transaction; the event loop gets a turn between batches
#: (an intake of 1,000 critical alerts starts 1,000 walks: timeline, state and notices of each).
START_BATCH = 100
#: Seconds between reads of the overrides made through the API (a leader sees one made on any
#: replica within this long).
OVERRIDE_REFRESH = 15.0


@dataclass
class Escalation:
    """One alert's escalation: the frozen snapshot and the walk state."""

    snap: EscalationSnapshot
    state: EscalationState

    @property
    def deadline(self) -> float | None:
        """When :func:`engine.step` should next run (Unix seconds), or ``None``."""
        if self.state.resolved_at is not None:
            return None
        times = [t for t in (self.state.next_at, self.state.ack_expires_at) if t is not None]
        if not self.state.sla_breached or self.state.resolve_sli is None:
            times.append(self.snap.resolve_deadline)
        if self.state.ack_sli is None:  # the on-call SLI counts a miss the moment it passes
            times.append(self.snap.ack_deadline)
        return min(times, default=None)


class EscalationRunner:
    """Run and persist escalation walks; hand their notices to the outbox.

    :param alerting: the ``AlertingConfig`` (policy, schedules, people).
    :param store: the state store (escalations, timeline).
    :param deliver: where notices go (the outbox).
    :param metrics: :class:`~monitor.escalation.metrics.EscalationMetrics` or ``None``.

    Usage (the alert pipeline and acknowledgements do this)::

        runner = EscalationRunner(cfg.alerting, store, notices)
        await runner.load()                                  # after a restart
        await runner.advance(now, marked_alerts, held)       # each ingest and tick
        await runner.acknowledge(fingerprint, now, "alice", "api:10.0.0.5")
    """

    def __init__(self, alerting: Any, store: Any, deliver: NoticeSink, *, metrics: EscalationMetrics | None = None,
                 logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.log = logger or logging.getLogger("monitor.escalation")
        self.escalations: dict[str, Escalation] = {}
        #: Counts of pruned escalations in the on-call SLI counters (:mod:`monitor.escalation.oncall_sli`).
        self._pruned: Counter[oncall_sli.Key] = Counter()
        self._held: set[str] = set()
        self._stored: dict[str, tuple[Override, ...]] = {}
        self._overrides_due = float("-inf")
        self.configure(alerting, deliver)

    def configure(self, alerting: Any, deliver: NoticeSink) -> None:
        """Swap policy, schedules, people and the notice sink (reload). Running escalations keep
        their frozen snapshots; only on-call lookups and contacts use the new config."""
        self.policy = EscalationPolicy.from_config(alerting.escalation)
        self._alerting = alerting
        self.lookup = OnCallLookup.from_config(alerting, self._stored)
        self.contacts = Contacts(alerting.people)
        self.deliver = deliver

    async def refresh_overrides(self, now: float, every: float = OVERRIDE_REFRESH) -> None:
        """Re-read the overrides made through the API (``monitor.store.overrides``) when ``every``
        seconds have passed since the last read, so the on-call lookup sees them; a store without
        them, or failing, keeps the last ones (logged)."""
        if now < self._overrides_due or not hasattr(self.store, "list_overrides"):
            return
        self._overrides_due = now + every
        try:
            rows = await self.store.list_overrides(ending_after=now)
        except StoreError as exc:
            self.log.warning("on-call overrides not refreshed", extra={"error": str(exc)})
            return
        stored = overrides_from_rows(rows)
        if stored != self._stored:
            self._stored = stored
            self.lookup = OnCallLookup.from_config(self._alerting, stored)

    @property
    def enabled(self) -> bool:
        """Whether an escalation chain is configured."""
        return bool(self.policy.chain)

    # -- state ----------------------------------------------------------------------------------

    async def load(self) -> int:
        """Reload every stored escalation (restart recovery); return how many."""
        self.escalations.clear()
        for row in await self.store.list_escalations():
            try:
                esc = Escalation(EscalationSnapshot.from_dict(row["snapshot"]),
                                 EscalationState.from_dict(row["state"]))
            except (KeyError, TypeError, ValueError) as exc:
                self.log.error("unreadable stored escalation skipped",
                               extra={"alert": row.get("fingerprint"), "error": str(exc)})
                continue
            self.escalations[esc.snap.fingerprint] = esc
        self._pruned = oncall_sli.decode(await self.store.kv_get(oncall_sli.PRUNED_KEY))
        if self.metrics is not None:
            totals = Counter(self._pruned)
            for esc in self.escalations.values():
                totals.update(oncall_sli.counts(esc.snap, esc.state))
            self.metrics.oncall.reset(totals)
        self._gauge()
        return len(self.escalations)

    def get(self, fingerprint: str) -> Escalation | None:
        """Return the escalation of an alert, or ``None``."""
        return self.escalations.get(fingerprint)

    def status(self, fingerprint: str) -> dict[str, Any]:
        """Return the escalation status of an alert, as the API shows it: ``{"fingerprint", "status"}``
        (``no_escalation`` when none), plus ``priority``, ``level``, ``acked_by``, ``acked_at``,
        ``ack_expires_at``, ``resolved_at``, ``resolved_by``, ``next_deadline`` when one runs."""
        esc = self.escalations.get(fingerprint)
        out: dict[str, Any] = {"fingerprint": fingerprint, "status": "no_escalation"}
        if esc is not None:
            s = esc.state
            out.update(status=s.status, priority=esc.snap.priority, level=s.level, acked_by=s.acked_by,
                       acked_at=s.acked_at, ack_expires_at=s.ack_expires_at, resolved_at=s.resolved_at,
                       resolved_by=s.resolved_by, next_deadline=esc.deadline)
        return out

    def next_deadline(self) -> float | None:
        """Return the earliest deadline of any escalation (Unix seconds), or ``None``."""
        return min((d for e in self.escalations.values() if (d := e.deadline) is not None), default=None)

    def needs_start(self, fingerprint: str, starts_at: float) -> bool:
        """Whether an alert firing since ``starts_at`` should start a (new) escalation.

        Not when one runs, nor when the last one was resolved after the alert started (an alert
        resolved by hand keeps firing in the rule engine: it must not page again).
        """
        if not self.enabled:
            return False
        esc = self.escalations.get(fingerprint)
        if esc is None:
            return True
        resolved = esc.state.resolved_at
        return resolved is not None and starts_at > resolved

    async def _apply(self, esc: Escalation, res: StepResult, now: float, alert: Alert | None,
                     new: bool = False) -> None:
        """Notices to the outbox, then timeline, then state (see the module docstring).

        The state saved carries the on-call SLI markers decided at ``now``
        (:func:`~monitor.escalation.oncall_sli.judge`); the counters count them once that write
        is committed (``new``: the escalation's first write, which counts its page).
        """
        fp = esc.snap.fingerprint
        before = [] if new else oncall_sli.counts(esc.snap, esc.state)
        state = oncall_sli.judge(esc.snap, res.state, now)
        failures: list[TimelineEntry] = []
        for action in res.actions:
            kind, title = MESSAGE_KIND[action.kind], self.contacts.title(esc.snap, action)
            for ch in action.channels:
                code = await self._notify(esc.snap, kind, action.person, ch, now, f"{action.dedup_key}:{ch}",
                                          title, alert)
                if code:
                    failures.append(TimelineEntry(now, f"failed: {code}", action.level, action.person, ch))
        for entry in list(res.timeline) + failures:
            await self.store.append_timeline(fp, entry.at, entry.event, {
                "level": entry.level, "person": entry.person, "detail": entry.detail})
            self._count(esc.snap, entry)
        esc.state = state
        await self.store.save_escalation(fp, esc.snap.to_dict(), esc.state.to_dict(), now)
        self._gauge()
        if self.metrics is not None:
            added = Counter(oncall_sli.counts(esc.snap, state))
            added.subtract(before)
            keys = list(added.elements())
            if keys:
                oncall = self.metrics.oncall
                after_commit = getattr(self.store, "after_commit", None)
                if after_commit is None:  # a store without batches: the write above is committed
                    oncall.add(keys)
                else:
                    after_commit(lambda: oncall.add(keys))

    async def _notify(self, snap: EscalationSnapshot, kind: str, person: str, channel: str, now: float,
                      transition: str, title: str, alert: Alert | None) -> str:
        """Hand one notice to the outbox; return ``""`` or a failure code (``no_contact``, ``no_integration``)."""
        notice = self.contacts.notice(snap, kind, person, channel, transition, title, alert)
        if notice is None:
            self.log.warning("escalation contact missing", extra={"alert": snap.fingerprint, "person": person,
                                                                  "channel": channel})
            return "no_contact"
        return await self.deliver(notice, now)

    def _count(self, snap: EscalationSnapshot, entry: TimelineEntry) -> None:
        if self.metrics is None:
            return
        if entry.event == "triggered" and entry.level is not None:
            self.metrics.steps.labels(str(entry.level + 1), "triggered").inc()
        elif entry.event.startswith("failed") and entry.level is not None:
            self.metrics.steps.labels(str(entry.level + 1), "failed").inc()
        elif entry.event == "sla_breached":
            self.metrics.sla_breaches.labels(snap.priority).inc()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.active.set(sum(1 for e in self.escalations.values() if e.state.resolved_at is None))

    # -- the pipeline's stage -------------------------------------------------------------------

    async def advance(self, now: float, marked: Sequence[Alert], held: Mapping[str, Alert],
                      only: set[str] | None = None, waiting: set[str] | None = None) -> None:
        """Start walks for the firing, unmuted alerts that need one (of ``only``, when given),
        then step the due walks (:meth:`step_due`).

        :param marked: every alert held, with its mute markers at ``now``.
        :param held: the latest version of each alert, by fingerprint (what notices show).
        :param waiting: alerts whose group's first notification is not due yet (``group_wait``):
            their walk starts at a later call, with the mutes that apply then.
        """
        if self.enabled:
            due = [a for a in marked
                   if (only is None or a.fingerprint in only) and not (waiting and a.fingerprint in waiting)
                   and not a.resolved(now) and a.state == ACTIVE
                   and self.policy.escalates(a.labels)  # severity "none" (the Watchdog) pages no one
                   and self.needs_start(a.fingerprint, a.starts_at)]
            for i in range(0, len(due), START_BATCH):
                if i:
                    await asyncio.sleep(0)  # probes, rules and /health run between batches
                await self._start_batch(due[i:i + START_BATCH], now, held)
        await self.step_due(now, muted_firing(marked, now), held)

    async def _start_batch(self, alerts: Sequence[Alert], now: float, held: Mapping[str, Alert]) -> None:
        """Start the walks of ``alerts`` with their writes in one store transaction (all or none:
        after a failure none of them is started in memory either, so the next call starts them
        again)."""
        started: list[str] = []
        try:
            async with transaction_of(self.store):
                for a in alerts:
                    started.append(a.fingerprint)
                    await self.start(a.labels, now, held.get(a.fingerprint))
        except BaseException:
            for fp in started:
                self.escalations.pop(fp, None)
            self._gauge()
            raise

    async def start(self, labels: Mapping[str, str] | Labels, now: float, alert: Alert | None = None) -> Escalation:
        """Freeze the policy for an alert with ``labels`` and run its first step."""
        snap = snapshot(self.policy, dict(labels), now)
        esc = Escalation(snap, EscalationState(snap.fingerprint))
        self.escalations[snap.fingerprint] = esc
        await self.store.append_timeline(snap.fingerprint, now, "escalation started",
                                         {"priority": snap.priority, "ack_deadline": snap.ack_deadline,
                                          "resolve_deadline": snap.resolve_deadline})
        await self._apply(esc, engine.start(snap, now, self.lookup), now, alert, new=True)
        self.log.info("escalation started", extra={"alert": snap.fingerprint, "alertname": snap.alertname,
                                                   "priority": snap.priority})
        return esc

    async def step_due(self, now: float, suppressed: set[str] | None = None,
                       held: Mapping[str, Alert] | None = None) -> int:
        """Run every escalation whose deadline is due; return how many were stepped.

        :param suppressed: fingerprints of alerts now silenced, inhibited or in a maintenance
            window: their escalations are held (no step runs). When one is released after a
            step fell due during the hold, the walk restarts from the first step (the primary is
            notified again) rather than catching up every missed level at once.
        :param held: the latest version of each alert (what notices show).
        """
        suppressed = suppressed or set()
        held = held or {}
        n = 0
        for fp, esc in list(self.escalations.items()):
            if esc.state.resolved_at is not None:
                self._held.discard(fp)
                continue
            if fp in suppressed:
                if fp not in self._held:
                    self._held.add(fp)
                    await self.store.append_timeline(fp, now, "paused", {"detail": "alert muted"})
                continue
            if fp in self._held:
                self._held.discard(fp)
                await self.store.append_timeline(fp, now, "resumed", {"detail": "alert no longer muted"})
                nxt = esc.state.next_at
                if nxt is not None and nxt < now and esc.state.acked_at is None:
                    await self._apply(esc, engine.unacknowledge(esc.snap, esc.state, now, self.lookup,
                                                                "unmuted"), now, held.get(fp))
                    n += 1
                    continue
            d = esc.deadline
            if d is not None and d <= now:
                await self._apply(esc, engine.step(esc.snap, esc.state, now, self.lookup), now, held.get(fp))
                n += 1
        return n

    # -- people ---------------------------------------------------------------------------------

    async def acknowledge(self, fingerprint: str, now: float, by: str, source: str,
                          comment: str = "") -> Escalation | None:
        """Stop the walk (``ack_timeout`` re-triggers it); ``None`` when the alert has no escalation.

        The first acknowledgement of a walk is observed in the time-to-acknowledge histogram.
        """
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        first = esc.state.acked_at is None
        await self._apply(esc, engine.acknowledge(esc.snap, esc.state, now, by, comment), now, None)
        if self.metrics is not None and first:
            self.metrics.mtta.labels(esc.snap.priority).observe(max(0.0, now - esc.snap.started_at))
        return esc

    async def unacknowledge(self, fingerprint: str, now: float, by: str, alert: Alert | None = None
                            ) -> Escalation | None:
        """Restart the walk from the first step at once."""
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        await self._apply(esc, engine.unacknowledge(esc.snap, esc.state, now, self.lookup, by), now, alert)
        return esc

    async def escalate_now(self, fingerprint: str, now: float, by: str, alert: Alert | None = None,
                           comment: str = "") -> Escalation | None:
        """Run the walk's next level at once (:func:`monitor.escalation.engine.escalate_now`);
        ``None`` when the alert has no escalation."""
        esc = self.escalations.get(fingerprint)
        if esc is None:
            return None
        await self._apply(esc, engine.escalate_now(esc.snap, esc.state, now, self.lookup, by, comment), now, alert)
        return esc

    async def resolve(self, fingerprint: str, now: float, by: str, alert: Alert | None = None,
                      comment: str = "") -> Escalation | None:
        """End the walk and send a resolved notice to everyone notified; ``comment`` goes on the timeline."""
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        await self._apply(esc, engine.resolve(esc.snap, esc.state, now, by, comment), now, alert)
        return esc

    async def notify_notified(self, fingerprint: str, kind: str, now: float, transition: str,
                              alert: Alert | None = None, channels: Iterable[str] = ("page", "slack_dm")) -> None:
        """Send ``kind`` (``acknowledged``) to everyone notified so far, on ``channels`` they had."""
        esc = self.escalations.get(fingerprint)
        if esc is None:
            return
        seen: set[tuple[str, str]] = set()
        for n in esc.state.notified:
            for ch in n.channels:
                if ch not in channels or (n.person, ch) in seen:
                    continue
                seen.add((n.person, ch))
                await self._notify(esc.snap, kind, n.person, ch, now, f"{transition}:{n.person}:{ch}", "", alert)

    async def prune(self, now: float, retention: float) -> None:
        """Forget escalations resolved more than ``retention`` seconds ago (store and memory).

        Their on-call SLI counts move to the pruned totals (kv :data:`~monitor.escalation.oncall_sli.PRUNED_KEY`)
        in the same transaction, so the counters rebuilt after a restart do not go down.
        """
        old = [(fp, esc) for fp, esc in self.escalations.items()
               if esc.state.resolved_at is not None and esc.state.resolved_at < now - retention]
        if not old:
            return
        pruned = Counter(self._pruned)
        for _, esc in old:
            pruned.update(oncall_sli.counts(esc.snap, esc.state))
        async with transaction_of(self.store):
            for fp, _ in old:
                await self.store.delete_escalation(fp)
            await self.store.kv_set(oncall_sli.PRUNED_KEY, oncall_sli.encode(pruned), now)
        self._pruned = pruned
        for fp, _ in old:
            del self.escalations[fp]
