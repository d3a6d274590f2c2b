"""The alert pipeline assembled for a leader: build it from config, reload it, hand out its ports.

The back half's composition root (DESIGN.md: "the composition root assembles the pipeline"):
:class:`LeaderPipeline` builds every part from a validated ``Config`` and wires them so that no
stage imports a later one::

    AlertPipeline (monitor.alerting.pipeline)  intake -> provider (durable) -> Dispatcher
        |  per group flush: mute stages -> notification log (dedup)      [monitor.alerting]
        v
    receiver_stages (monitor.notify.receiver_stages)
        message -> transition number (nflog) -> OutboxStage (row per integration) -> count
    EscalationRunner (monitor.escalation.runner)  walks for firing, unmuted alerts
        notices -> EscalationNotices (monitor.notify.notices) -> OutboxStage
    Acknowledgements / SilenceAdmin / AlertViews (monitor.alerting)   people and the API
        acknowledge / resolve updates -> AlertUpdates (monitor.notify.notices) -> OutboxStage
    OutboxWorker (monitor.notify.outbox): sends with retry, marks sent

:meth:`LeaderPipeline.ports` hands the API its narrow interfaces
(:class:`~monitor.alerting.ports.AlertingPorts`); :func:`start_pipeline` is what leadership
(:mod:`monitor.daemon.leadership`) calls on taking over, :func:`reconfigure` on reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.alerting.acks import Acknowledgements
from monitor.alerting.metrics import AlertMetrics
from monitor.alerting.pipeline import AlertPipeline
from monitor.alerting.ports import AlertingPorts
from monitor.alerting.provider import AlertProvider
from monitor.alerting.route import Route, build_route
from monitor.alerting.silence import Silences
from monitor.alerting.silence_admin import SilenceAdmin
from monitor.alerting.views import AlertViews
from monitor.escalation.metrics import EscalationMetrics
from monitor.escalation.incidents import IncidentTracker
from monitor.escalation.runner import EscalationRunner
from monitor.notify.base import Integration
from monitor.notify.handoff import announce_handoffs
from monitor.notify.maintenance_notices import send_maintenance_notices
from monitor.notify.status_notices import send_status_notices
from monitor.notify.status_webhook import with_status_webhooks
from monitor.notify.links import LinkBuilder
from monitor.notify.notices import AlertUpdates, EscalationNotices
from monitor.notify.outbox import NotifyMetrics, OutboxWorker
from monitor.notify.outbox_stage import OutboxStage
from monitor.notify.receiver_stages import receiver_stages
from monitor.notify.registry import build_integrations

__all__ = ["LeaderPipeline", "PipelineMetrics", "start_pipeline", "reconfigure",
           "close_integrations", "TICK_INTERVAL", "OUTBOX_INTERVAL", "ANNOUNCE_INTERVAL"]

log = logging.getLogger("monitor.daemon")

#: Seconds between pipeline ticks (dispatcher timers, escalation deadlines).
TICK_INTERVAL = 1.0
#: Seconds between outbox runs.
OUTBOX_INTERVAL = 1.0
#: Seconds between checks for on-call handoffs to announce.
ANNOUNCE_INTERVAL = 30.0


@dataclass(frozen=True)
class PipelineMetrics:
    """The alert and escalation metrics, registered once per registry (a process may lead several terms)."""

    alerts: AlertMetrics
    escalation: EscalationMetrics

    @classmethod
    def register(cls, registry: CollectorRegistry) -> "PipelineMetrics":
        """Register both metric blocks on ``registry``."""
        return cls(AlertMetrics(registry), EscalationMetrics(registry))


def _templates_dir(config: Any) -> str | None:
    """``notify.templates_dir``, resolved against the config file's folder."""
    value = config.notify.templates_dir
    return str(config.config_dir / value) if value else None


def _route(config: Any) -> Route | None:
    return build_route(config.alerting.route) if config.alerting.route is not None else None


class LeaderPipeline:
    """The alert pipeline of one leadership term, built from ``config`` (see the module docstring).

    :param config: the whole validated ``Config``.
    :param store: the opened state store.
    :param integrations: ``{receiver: [Integration, ...]}`` (``build_integrations``).
    :param clock: Unix-seconds clock (tests inject a manual one).
    :param metrics: the registered metrics, or ``None`` (none recorded).

    Example::

        leader = LeaderPipeline(config, store, build_integrations(config.receivers))
        await leader.start()            # restore silences, escalations, firing alerts
        ports = leader.ports()          # for the API
        await leader.tick()             # every second (the safety poll)
        await leader.run(stop)          # a task: flushes each group when it is due
    """

    def __init__(self, config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]], *,
                 clock: Callable[[], float] = time.time, metrics: PipelineMetrics | None = None,
                 logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.log = logger or logging.getLogger("monitor.alerting")
        self.silences = Silences()
        self.outbox = OutboxStage(store, integrations)
        route, links = _route(config), LinkBuilder.from_config(config, clock)
        self.escalation = EscalationRunner(config.alerting, store, self._notices(route, links),
                                           metrics=metrics.escalation if metrics else None, logger=self.log)
        self.pipeline = AlertPipeline(AlertProvider(store), self.escalation, self.silences, clock=clock,
                                      metrics=metrics.alerts if metrics else None, logger=self.log)
        self.acks = Acknowledgements(store, self.pipeline, self.escalation, AlertUpdates(self.outbox, links, route),
                                     clock=clock, acks_counter=metrics.escalation.acks if metrics else None,
                                     logger=self.log)
        self.silence_admin = SilenceAdmin(store, self.silences, self.pipeline, clock=clock, logger=self.log)
        self.views = AlertViews(store, self.pipeline, self.escalation, clock=clock)
        self.route: Route | None = None
        self.incidents = IncidentTracker(store, lambda: self.escalation.policy, lambda: self.route,
                                         self._acked, logger=self.log)
        self.configure(config, integrations)

    def _notices(self, route: Route | None, links: LinkBuilder) -> EscalationNotices:
        return EscalationNotices(self.outbox, links, route, clock=self.clock, logger=self.log)

    def configure(self, config: Any, integrations: Mapping[str, Sequence[Integration]]) -> None:
        """Swap route, inhibition, maintenance windows, receivers, links and policy (config reload).

        Groups re-form under the new route (the notification numbering keeps unchanged groups
        from sending again); running escalations keep their frozen snapshots.
        """
        self.config = config
        self.integrations = integrations
        self.outbox.integrations = integrations
        route, links = _route(config), LinkBuilder.from_config(config, self.clock)
        self.route = route
        self.escalation.configure(config.alerting, self._notices(route, links))
        self.acks.updates = AlertUpdates(self.outbox, links, route)
        # The pipeline's own TransitionLog: one write-through cache of the nflog records.
        stages = receiver_stages(self.pipeline.transitions, self.outbox, links, self.escalation.policy,
                                 self.metrics.alerts.enqueued if self.metrics else None)
        self.pipeline.configure(config.alerting, route=route, deliver=stages, external_url=config.server.external_url,
                                send_resolved=lambda r: any(i.send_resolved for i in integrations.get(r, ())))

    async def start(self, now: float | None = None) -> None:
        """Restore silences, escalations and firing alerts from the store (restart recovery)."""
        now = self.clock() if now is None else now
        async with self.pipeline.lock:
            silences = await self.silence_admin.restore(now)
            escalations = await self.escalation.load()
            alerts = await self.pipeline.restore(now)
        self.log.info("alerting state restored", extra={"alerts": len(alerts), "escalations": escalations,
                                                        "silences": silences})

    async def tick(self, now: float | None = None) -> None:
        """Advance the pipeline's timers (see :meth:`AlertPipeline.tick`); re-read the on-call
        overrides made through the API every few seconds first; bring the incidents up to date
        after (:class:`~monitor.escalation.incidents.IncidentTracker`)."""
        now = self.clock() if now is None else now
        await self.escalation.refresh_overrides(now)
        await self.pipeline.tick(now)
        await self.incidents.sync(now, self.pipeline.marked(now))

    def _acked(self) -> dict[str, tuple[float, str]]:
        """Return ``{fingerprint: (acked_at, acked_by)}`` of the acknowledged escalation walks."""
        return {fp: (e.state.acked_at, e.state.acked_by or "") for fp, e in self.escalation.escalations.items()
                if e.state.acked_at is not None}

    async def run(self, stop: Any) -> None:
        """Flush each group the moment it is due until ``stop`` (an ``asyncio.Event``) is set
        (see :meth:`AlertPipeline.run`; :meth:`tick` stays the safety poll)."""
        await self.pipeline.run(stop)

    async def announce(self, now: float) -> list:
        """Enqueue due on-call handoff announcements (:func:`monitor.notify.handoff.announce_handoffs`)
        and maintenance notices (:func:`monitor.notify.maintenance_notices.send_maintenance_notices`,
        then to status-page subscribers: :func:`monitor.notify.status_notices.send_status_notices`);
        return the handoff announcements."""
        try:
            return await announce_handoffs(self.config, self.store, self.integrations, now,
                                           running=self.escalation.lookup.schedules)
        finally:  # a failing announcement must not hold back a notice, nor the reverse
            try:
                await send_maintenance_notices(self.config, self.store, self.integrations, now)
            finally:
                await send_status_notices(self.config, self.store, self.integrations, now)

    def ports(self) -> AlertingPorts:
        """Return the narrow interfaces the API uses."""
        return AlertingPorts(intake=self.pipeline, views=self.views, acks=self.acks, silences=self.silence_admin,
                             clock=self.clock)


async def start_pipeline(config: Any, store: Any, metrics: PipelineMetrics | None,
                         notify_metrics: NotifyMetrics) -> tuple[LeaderPipeline, OutboxWorker]:
    """Build integrations, the :class:`LeaderPipeline` (restored from the store) and the outbox worker."""
    integrations = with_status_webhooks(
        build_integrations(config.receivers, templates_dir=_templates_dir(config), clock=time.time), config)
    leader = LeaderPipeline(config, store, integrations, clock=time.time, metrics=metrics,
                            logger=logging.getLogger("monitor.alerting"))
    await leader.start()
    worker = OutboxWorker(store, integrations, metrics=notify_metrics)
    released = await worker.recover_claims()  # a dead leader's leases must not hold its rows
    if released:
        log.info("outbox claims of an earlier leader released", extra={"rows": released})
    leader.outbox.on_write = worker.wake  # event-driven delivery; the poll is the retry fallback
    log.info("alerting started", extra={"receivers": len(integrations),
                                        "integrations": sum(len(v) for v in integrations.values())})
    return leader, worker


def reconfigure(leader: LeaderPipeline, worker: OutboxWorker | None, config: Any,
                notify_metrics: NotifyMetrics) -> Mapping[str, Sequence[Integration]]:
    """Rebuild integrations from ``config.receivers`` and swap the config into the running pipeline
    and worker; return the old integrations (the caller closes them)."""
    old = leader.integrations
    integrations = with_status_webhooks(
        build_integrations(config.receivers, templates_dir=_templates_dir(config), clock=time.time), config)
    leader.configure(config, integrations)
    if worker is not None:
        worker.integrations = integrations
        notify_metrics.init_labels(integrations)
    return old


async def close_integrations(integrations: Mapping[str, Sequence[Integration]]) -> None:
    """Close every notifier's network resources (errors logged, not raised)."""
    for items in integrations.values():
        for integ in items:
            try:
                await integ.notifier.aclose()
            except Exception as exc:  # noqa: BLE001 - closing must not fail shutdown
                log.warning("closing integration failed", extra={"integration": integ.name, "error": str(exc)})

