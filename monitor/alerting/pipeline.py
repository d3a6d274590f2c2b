"""The alert pipeline at run time: alerts in, durable first, aggregation groups, receiver stages, escalation.

Stage order (Alertmanager ``dispatch/dispatch.go`` and ``notify/notify.go``, made durable):

1. **intake** — rule alerts and intake alerts become :class:`~model.alert.Alert`
   (:mod:`monitor.alerting.intake`) and are written to the state store before anything acts on
   them (:mod:`monitor.alerting.provider`);
2. **dispatcher** — aggregation groups and their timers (:mod:`monitor.alerting.dispatch`); at
   a group's flush the **mute stages** (maintenance windows, inhibition, silences:
   :mod:`monitor.alerting.mute`), the route's time intervals and the in-memory **notification
   log** (:mod:`monitor.alerting.nflog`) decide what the receiver is told;
3. **receiver stages** — each notification goes through the injected :class:`~monitor.alerting.stage.Stage`
   (built by the composition root: message -> persisted transition number -> one outbox row per
   integration, ``monitor.notify``); the outbox worker sends with retry;
4. **escalation** — firing, unmuted alerts start an escalation walk; due steps run; muted ones
   are held (the injected :class:`Escalations`, ``monitor.escalation.runner``); its notices go
   through the outbox too.

:meth:`AlertPipeline.ingest` runs 1-3 for new alerts, in chunks of :data:`INGEST_CHUNK` that
release the lock between them, then 4 once for the whole batch; :meth:`AlertPipeline.run` flushes
each group the moment it is due (it sleeps until the dispatcher's next due time, and is woken when
an ingest changes it); :meth:`AlertPipeline.tick` (every second, the safety poll) resolves the
alerts whose ``endsAt`` passed without a refresh (intake alerts after ``resolve_timeout``, rule
alerts after their validity, ``monitor.rules.group.RuleGroup.valid_until``: Alertmanager's
``Alert.Resolved``), flushes due groups and runs 4 for every alert. All hold
:attr:`AlertPipeline.lock`, which acknowledgements and silence changes share. The notifications
of one flush are written in batches of :data:`DELIVER_BATCH`, each one store transaction
(transition numbers, outbox rows, notification-log entries: all or none).

All times are Unix seconds; methods take ``now`` (default: the injected clock).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from model.alert import Alert
from model.labels import Labels
from monitor.alerting.dispatch import Dispatcher, Notification
from monitor.alerting.episodes import HandResolved
from monitor.alerting.inhibit import Inhibitor
from monitor.alerting.intake import from_rule_alert
from monitor.alerting.maintenance import MaintenanceWindows, TimeIntervals
from monitor.alerting.metrics import AlertMetrics
from monitor.alerting.mute import MuteStages
from monitor.alerting.nflog import TransitionLog
from monitor.alerting.provider import AlertProvider, source_identity
from monitor.alerting.route import Route, receivers_for
from monitor.alerting.silence import Silences
from monitor.alerting.stage import Context, Stage
from monitor.store.batching import transaction_of

__all__ = ["AlertPipeline", "Escalations", "ESCALATION_RETENTION", "INGEST_CHUNK"]

#: The most alerts taken per chunk of an intake batch: each chunk is one store transaction under
#: :attr:`AlertPipeline.lock`, which is released between chunks (acknowledgements wait at most
#: one chunk).
INGEST_CHUNK = 200
#: The first chunk's size; later ones are sized from the time per alert so far.
INGEST_FIRST_CHUNK = 20
#: The least alerts per chunk (each chunk also re-marks every held alert).
INGEST_MIN_CHUNK = 20
#: Seconds a chunk aims to hold the lock.
INGEST_SLICE = 0.03
#: The most notifications written in one store transaction (the lock is released between batches
#: of a timer flush).
DELIVER_BATCH = 100
#: Seconds :meth:`AlertPipeline.run` sleeps at most between looks at the dispatcher (the safety
#: poll; wake-ups come from ingests and due times).
TIMER_SAFETY = 1.0

#: Seconds a resolved alert (and its escalation) is remembered, so a by-hand resolved alert
#: does not page again.
ESCALATION_RETENTION = 7 * 86400.0


class Escalations(Protocol):
    """What the pipeline asks of the escalation stage (``monitor.escalation.runner.EscalationRunner``)."""

    async def resolve(self, fingerprint: str, now: float, by: str, alert: Alert | None) -> Any:
        """End the alert's walk, if one runs."""
        ...

    async def advance(self, now: float, marked: Sequence[Alert], held: Mapping[str, Alert],
                      only: set[str] | None = None, waiting: set[str] | None = None) -> None:
        """Start walks for firing unmuted alerts (of ``only``, not ``waiting`` for their group's
        first notification), hold muted ones, step due ones."""
        ...

    async def prune(self, now: float, retention: float) -> None:
        """Forget walks resolved more than ``retention`` seconds ago."""
        ...


class AlertPipeline:
    """Run alerts through the pipeline (see the module docstring).

    :param provider: the held, durable alerts.
    :param escalations: the escalation stage.
    :param silences: the silences the mute stages read (changed by the silence admin).
    :param clock: Unix-seconds clock (tests inject a manual one).
    :param metrics: :class:`AlertMetrics`, or ``None``.

    Configure it before use (:meth:`configure`; the composition root does)::

        pipeline = AlertPipeline(AlertProvider(store), runner, silences, clock=clock)
        pipeline.configure(cfg.alerting, route=route, deliver=stages, external_url=url,
                           send_resolved=lambda receiver: True)
        await pipeline.ingest(rule_alerts, source="rules")
        await pipeline.tick()                # every second
    """

    def __init__(self, provider: AlertProvider, escalations: Escalations, silences: Silences, *,
                 clock: Callable[[], float] = time.time, metrics: AlertMetrics | None = None,
                 logger: logging.Logger | Any | None = None) -> None:
        self.provider = provider
        self.escalations = escalations
        self.silences = silences
        self.clock = clock
        self.metrics = metrics
        self.log = logger or logging.getLogger("monitor.alerting")
        #: The persisted notification log (entries written after each notification's rows).
        self.transitions = TransitionLog(provider.store)
        #: Alerts resolved by hand while their episode goes on (:mod:`monitor.alerting.episodes`).
        self.hand_resolved = HandResolved(provider.store)
        self.lock = asyncio.Lock()
        self._changed = asyncio.Event()  # set when the dispatcher's next due time may have moved
        self.route: Route | None = None
        self.dispatcher: Dispatcher | None = None
        self.deliver: Stage | None = None
        self.external_url = ""
        #: Seconds after which an intake alert without ``endsAt`` resolves (``resolve_timeout``).
        self.resolve_timeout = 300.0

    def configure(self, alerting: Any, *, route: Route | None, deliver: Stage, external_url: str,
                  send_resolved: Callable[[str], bool]) -> None:
        """Swap route, inhibition, maintenance windows and receiver stages (config reload).

        The dispatcher is rebuilt and its alerts carried over, so groups re-form under the new
        route; the persisted notification numbering keeps unchanged groups from sending again.

        :param alerting: the ``AlertingConfig``. :param send_resolved: ``receiver -> bool``.
        """
        self.resolve_timeout = float(alerting.resolve_timeout)
        self.external_url = external_url
        self.deliver = deliver
        self.route = route
        mutes = MuteStages(Inhibitor.from_config(alerting.inhibit_rules), self.silences,
                           MaintenanceWindows.from_config(alerting))
        intervals = TimeIntervals.from_config(alerting.time_intervals)
        old = self.dispatcher
        self.dispatcher = Dispatcher(route, mutes=mutes, time_intervals=intervals,
                                     send_resolved=send_resolved) if route is not None else None
        if old is not None and self.dispatcher is not None:
            now = self.clock()
            self.dispatcher.put(old.alerts(now), now)  # carry alerts over (markers are recomputed)
        self._changed.set()

    def receivers_for(self, labels: Labels | Mapping[str, str]) -> list[str]:
        """Return the receivers an alert with ``labels`` routes to, in route order."""
        return receivers_for(self.route, labels)

    async def restore(self, now: float) -> list[Alert]:
        """Hold the store's firing (and recently resolved) alerts again, seed the notification log
        and group them (restart recovery; under :attr:`lock`)."""
        await self.hand_resolved.load()
        alerts = await self.provider.restore(now, resolved_since=now - ESCALATION_RETENTION)
        if self.dispatcher is not None:
            self.dispatcher.restore(await self.transitions.entries())
            self.dispatcher.put(alerts, now)
            self._changed.set()
        return alerts

    # -- the flow -------------------------------------------------------------------------------

    async def ingest(self, alerts: Iterable[Any], now: float | None = None, source: str = "rules") -> int:
        """Take firing and resolved alerts (rule alerts or :class:`Alert`) and act on them.

        A big batch is taken in chunks of at most :data:`INGEST_CHUNK` alerts, sized to hold the
        lock about :data:`INGEST_SLICE` seconds: each chunk is written in one store transaction
        and held under :attr:`lock`, which is released (and the event loop given a turn) between
        chunks, so acknowledgements and ticks are served while an intake of thousands of alerts
        goes on (issue 9). Each chunk is put into its groups, which are held back
        (:meth:`Dispatcher.hold`) until the whole batch is in; then the due groups are flushed (a
        storm of old alerts is one notification per group, not one per chunk),
        :data:`DELIVER_BATCH` groups per lock hold and transaction. The escalation
        stage and the gauges see the batch once (the mute markers of the held alerts are computed
        once per batch), and :meth:`run` is woken for the new groups' timers. A batch of at most
        :data:`INGEST_FIRST_CHUNK` alerts (a rule evaluation, one Prometheus send) is persisted,
        routed and its notifications written in one transaction.

        An intake source may resolve only the alerts it raised: an alert held firing that was
        raised by another source (another token, another client, or the rules) is not resolved
        (nor shortened) by it; the update is dropped, logged and counted
        (``monitor_alerts_resolve_refused_total``).

        :param source: ``rules``, or ``api:<token>@<client>`` / ``webhook:<token>@<client>``
            (``api:<client>`` without a token) for the intake (metrics label, audit, ownership).
        :return: the number of alerts taken (pending rule alerts and refused updates are skipped).
        """
        now = self.clock() if now is None else now
        converted: list[Alert] = []
        for a in alerts:
            if not isinstance(a, Alert):
                a = from_rule_alert(a, f"{self.external_url}/api/v1/alerts")
                if a is None:
                    continue
            converted.append(a)
        if not converted:
            return 0
        kind = source.split(":", 1)[0]
        who = source_identity(source)
        if self.metrics is not None:
            self.metrics.received.labels(kind).inc(len(converted))
        taken: list[Alert] = []
        one_chunk = len(converted) <= INGEST_FIRST_CHUNK  # routed with its chunk: one transaction
        held = self.dispatcher  # a bigger batch: its groups held back until it is all in
        hold = held.hold() if held is not None and not one_chunk else None
        try:
            start, size = 0, INGEST_FIRST_CHUNK
            while start < len(converted):
                if start:
                    await asyncio.sleep(0)  # let acknowledgements and ticks take the lock
                began = time.perf_counter()
                async with self.lock:
                    chunk = self._owned(converted[start:start + size], now, kind, who, source)
                    if chunk:
                        await self._take(chunk, now, kind, hold=hold if self.dispatcher is held else None)
                    taken.extend(chunk)
                start += size
                # Size the next chunk to hold the lock about INGEST_SLICE seconds.
                per_alert = max(time.perf_counter() - began, 1e-6) / size
                size = max(INGEST_MIN_CHUNK, min(INGEST_CHUNK, int(INGEST_SLICE / per_alert)))
        finally:
            if hold is not None and held is not None:
                held.release(hold)  # (no await since the last chunk: nothing flushed it meanwhile)
        if not taken:
            return 0
        if hold is not None:
            await self.flush_due(now)  # the whole batch's due groups, a slice per lock hold
        self._changed.set()  # new groups: their first flush may be sooner than run() sleeps
        await asyncio.sleep(0)
        async with self.lock:
            marked = self.marked(now)
            await self.escalations.advance(now, marked, self.provider.current, {a.fingerprint for a in taken},
                                           waiting=self._waiting(now))
            self.refresh_gauges(now, marked)
        return len(taken)

    def _owned(self, alerts: list[Alert], now: float, kind: str, who: str, source: str) -> list[Alert]:
        """Drop the updates ``who`` may not make; record ``who`` as the raiser of the rest. Under :attr:`lock`."""
        kept = []
        for a in alerts:
            held = self.provider.get(a.fingerprint)
            owner = self.provider.source_of(a.fingerprint)
            held_firing = held is not None and not held.resolved(now)
            if held_firing and owner and owner != who:
                assert held is not None
                ends_sooner = a.ends_at is not None and (held.ends_at is None or a.ends_at < held.ends_at)
                if kind != "rules" and (a.resolved(now) or ends_sooner):
                    # A resolve is worth a warning; an earlier endsAt is what a second Prometheus
                    # of an HA pair sends every evaluation (the raiser keeps the alert alive).
                    self.log.log(logging.WARNING if a.resolved(now) else logging.DEBUG,
                                 "resolve of an alert raised by another source ignored",
                                 extra={"alert": a.fingerprint, "source": source, "raised_by": owner})
                    if self.metrics is not None:
                        self.metrics.resolve_refused.labels(kind).inc()
                    continue
            elif not held_firing or not owner:
                self.provider.set_source(a.fingerprint, who)
            kept.append(a)
        return kept

    async def _take(self, chunk: list[Alert], now: float, kind: str, *, hold: set[str] | None) -> None:
        """Persist, hold and group one chunk of alerts (durable first), and write the notifications
        of the groups due now; with a dispatcher ``hold``, the chunk's groups wait for the batch's
        release instead (:meth:`Dispatcher.hold`). Under :attr:`lock`.

        One store transaction: the alert rows, the escalation ends of resolved alerts, and the
        notifications of the groups due now (rows never without the alerts' rows).
        """
        told: set[str] = set()
        try:
            async with transaction_of(self.provider.store):
                if self.hand_resolved.resolved_at:
                    chunk, told = await self.hand_resolved.apply(chunk, now)
                await self.provider.persist_many(chunk, now)  # durable first
                for a in chunk:
                    self.provider.put(a)
                    if a.resolved(now):
                        await self.escalations.resolve(a.fingerprint, now, kind, a)
                if self.dispatcher is not None:
                    # a hand-resolved episode's receivers were told: its groups do not hear of it again
                    self.dispatcher.put([a for a in chunk if a.fingerprint not in told], now, hold=hold)
                    if hold is None:
                        await self._deliver(self.dispatcher.flush(now), now)
        except BaseException:
            self.provider.unwritten(a.fingerprint for a in chunk)  # rolled back: written again next time
            raise

    async def run(self, stop: asyncio.Event, safety: float = TIMER_SAFETY) -> None:
        """Flush each aggregation group the moment it is due, until ``stop`` is set.

        Sleeps until the dispatcher's next due time (at most ``safety`` seconds), or until an
        ingest, a restore or a reload may have moved it; a failed flush is logged and retried
        after ``safety`` seconds (its alerts stay held). Escalation deadlines and intake timeouts
        stay with :meth:`tick`.
        """
        while not stop.is_set():
            self._changed.clear()
            wake = self.dispatcher.next_wakeup() if self.dispatcher is not None else None
            delay = safety if wake is None else min(max(wake - self.clock(), 0.0), safety)
            if delay > 0:
                await _first(self._changed.wait(), stop.wait(), timeout=delay)
                continue
            try:
                await self.flush_due()
            except Exception as exc:  # noqa: BLE001 - keep the loop alive; the alerts are held and persisted
                self.log.error("group flush failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                await _first(stop.wait(), timeout=safety)

    async def flush_due(self, now: float | None = None) -> int:
        """Flush the groups due at ``now`` and write their notifications; return how many.

        :data:`DELIVER_BATCH` groups at a time, each slice under :attr:`lock` and its
        notifications in one transaction; the lock is released between slices so
        acknowledgements are not held by a big flush.
        """
        total = 0
        t = now
        while self.dispatcher is not None:
            async with self.lock:
                if self.dispatcher is None:
                    break
                t = self.clock() if t is None else t
                wake = self.dispatcher.next_wakeup()
                if wake is None or wake > t:
                    break
                pending = self.dispatcher.flush(t, limit=DELIVER_BATCH)
                await self._deliver(pending, t)
            total += len(pending)
            await asyncio.sleep(0)  # acknowledgements take the lock between slices
        return total

    async def tick(self, now: float | None = None) -> None:
        """Advance timers: resolve the alerts whose ``endsAt`` passed (an intake alert's resolve
        timeout, a rule alert not re-sent within its validity: ``by`` ``timeout`` on the
        escalation timeline), flush due groups, step escalations."""
        now = self.clock() if now is None else now
        await self.flush_due(now)
        async with self.lock:
            for fp, a in self.provider.items():
                if not a.resolved(now):
                    continue
                # Stored firing, now past its endsAt: nobody resolved it, it was not refreshed
                # in time (an intake alert's resolve timeout, or a rule alert's validity).
                expired = self.provider.persisted_status(fp) != "resolved"
                if expired:
                    await self.provider.persist(a, now)
                    if not a.timeout:
                        self.log.info("alert resolved: its endsAt passed without a refresh",
                                      extra={"alert": fp, "alertname": a.name,
                                             "raised_by": self.provider.source_of(fp) or "unknown"})
                await self.escalations.resolve(fp, now, "timeout" if a.timeout or expired else "rule", a)
                if a.ends_at is not None and a.ends_at < now - ESCALATION_RETENTION:
                    self.provider.forget(fp)
            marked = self.marked(now)
            await self.escalations.advance(now, marked, self.provider.current, waiting=self._waiting(now))
            await self.escalations.prune(now, ESCALATION_RETENTION)
            self.refresh_gauges(now, marked)

    def _waiting(self, now: float) -> set[str]:
        return self.dispatcher.waiting(now) if self.dispatcher is not None else set()

    async def _deliver(self, notifications: list[Notification], now: float) -> None:
        """Run the receiver stages for ``notifications`` in batches of :data:`DELIVER_BATCH`, each
        one store transaction. Under :attr:`lock`."""
        if self.deliver is None:
            raise RuntimeError("AlertPipeline.configure() was not called")
        for i in range(0, len(notifications), DELIVER_BATCH):
            try:
                async with transaction_of(self.provider.store), self.transitions.batch():
                    for n in notifications[i:i + DELIVER_BATCH]:
                        await self.deliver(Context.of(n, now), n.alerts)
                        # After its rows (in the same transaction; without one, a crash before
                        # this replays the flush into the same rows).
                        await self.transitions.record(n.group_key, (a.fingerprint for a in n.firing),
                                                      (a.fingerprint for a in n.resolved), n.at)
            except BaseException:
                self.transitions.forget()  # the rolled-back numbers must be read again
                raise

    # -- what people change ---------------------------------------------------------------------

    async def resolve_by_hand(self, fingerprint: str, now: float) -> None:
        """Resolve a held alert by hand: it stays resolved until its episode ends
        (:mod:`monitor.alerting.episodes`), held and stored resolved. Its receivers were told
        (``monitor.alerting.acks``), so its groups drop it and log it as resolved: no flush
        announces it again, firing or resolved. Call under :attr:`lock`."""
        await self.hand_resolved.mark(fingerprint, now)
        held = self.provider.get(fingerprint)
        if held is not None and not held.resolved(now):
            resolved = held.resolve(now)
            await self.provider.persist(resolved, now)
            self.provider.put(resolved)
        if self.dispatcher is not None:
            for key, entry in self.dispatcher.forget_resolved(fingerprint).items():
                await self.transitions.record(key, entry.firing, entry.resolved, entry.at)

    # -- views ----------------------------------------------------------------------------------

    def marked(self, now: float) -> list[Alert]:
        """Every alert held, with its mute markers at ``now`` (muted ones included), sorted by labels."""
        if self.dispatcher is not None:
            return self.dispatcher.alerts(now)
        return sorted(self.provider.current.values(), key=lambda a: a.labels)

    def refresh_gauges(self, now: float, marked: list[Alert] | None = None) -> None:
        """Set the alert gauges from the alerts held at ``now``."""
        if self.metrics is None:
            return
        held = self.marked(now) if marked is None else marked
        self.metrics.observe(a for a in held if not a.resolved(now))



async def _first(*waits: Awaitable[Any], timeout: float) -> None:
    """Wait until the first of ``waits`` completes, or ``timeout`` seconds; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
