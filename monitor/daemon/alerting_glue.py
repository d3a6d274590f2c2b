"""Daemon glue for alerting: build integrations, the alert service and the outbox worker; reload
them; announce on-call handoffs.

Kept out of :mod:`monitor.daemon.wiring` so the composition root stays short. The leader
(:mod:`monitor.daemon.leadership`) calls :func:`start_alerting` once it holds the leadership,
runs ``outbox.run(stop, OUTBOX_INTERVAL)`` as a task, ``alerting.tick()`` every
:data:`TICK_INTERVAL` seconds and :func:`announce_handoffs` every :data:`ANNOUNCE_INTERVAL`
seconds; the daemon calls :func:`swap_config` on reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.alerting.service import AlertService
from monitor.escalation.announce import DEFAULT_MAX_AGE, Announcement, due_announcements, handoff_message
from monitor.escalation.schedule import Schedule
from monitor.notify.base import Integration
from monitor.notify.outbox import NotifyMetrics, OutboxWorker
from monitor.notify.pipeline import OutboxStage
from monitor.notify.registry import build_integrations

log = logging.getLogger("monitor.daemon")

#: Seconds between alerting ticks (dispatcher timers, escalation deadlines).
TICK_INTERVAL = 1.0
#: Seconds between outbox runs.
OUTBOX_INTERVAL = 1.0
#: Seconds between checks for on-call handoffs to announce.
ANNOUNCE_INTERVAL = 30.0
#: The store kv key holding the last announced shift per schedule
#: (``{schedule: {"at": handoff unix seconds, "person": id}}``).
ANNOUNCED_KEY = "oncall:announced"


def notify_metrics(registry: CollectorRegistry) -> NotifyMetrics:
    """Register the notification metrics (``monitor_notifications_total``, ``monitor_outbox_depth``)."""
    return NotifyMetrics(registry)


def _templates_dir(config: Any) -> str | None:
    """``notify.templates_dir``, resolved against the config file's folder."""
    value = config.notify.templates_dir
    return str(config.config_dir / value) if value else None


async def start_alerting(config: Any, store: Any, registry: CollectorRegistry,
                         metrics: NotifyMetrics, *, previous: AlertService | None = None,
                         ) -> tuple[dict[str, list[Integration]], AlertService, OutboxWorker]:
    """Build integrations, the :class:`AlertService` (restored from the store) and the outbox worker.

    :param previous: the service of an earlier leadership term of this process: its metrics
        (already registered on ``registry``) are taken over instead of registered again.
    """
    integrations = build_integrations(config.receivers, templates_dir=_templates_dir(config), clock=time.time)
    service = AlertService(config, store, integrations, clock=time.time,
                           registry=registry if previous is None else None,
                           logger=logging.getLogger("monitor.alerting"))
    if previous is not None:
        service.metrics, service.esc_metrics = previous.metrics, previous.esc_metrics
        service.escalation.metrics = previous.esc_metrics
    await service.start()
    worker = OutboxWorker(store, integrations, metrics=metrics)
    log.info("alerting started", extra={"receivers": len(integrations),
                                        "integrations": sum(len(v) for v in integrations.values())})
    return integrations, service, worker


def swap_config(service: AlertService, worker: OutboxWorker | None, config: Any,
                metrics: NotifyMetrics) -> dict[str, list[Integration]]:
    """Rebuild integrations from ``config.receivers`` and swap route, inhibition, receivers and
    policy into the running service and worker; return the new integrations."""
    integrations = build_integrations(config.receivers, templates_dir=_templates_dir(config), clock=time.time)
    service.configure(config, integrations)
    if worker is not None:
        worker.integrations = integrations
        metrics.init_labels(integrations)
    return integrations


async def close_integrations(integrations: Mapping[str, Sequence[Integration]]) -> None:
    """Close every notifier's network resources (errors logged, not raised)."""
    for items in integrations.values():
        for integ in items:
            try:
                await integ.notifier.aclose()
            except Exception as exc:  # noqa: BLE001 - closing must not fail shutdown
                log.warning("closing integration failed", extra={"integration": integ.name, "error": str(exc)})


async def announce_handoffs(config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]],
                            now: float, *, max_age: float = DEFAULT_MAX_AGE) -> list[Announcement]:
    """Enqueue a Slack message for each on-call change due to be announced (leader only).

    Reads the last announced state from the store's kv (:data:`ANNOUNCED_KEY`), writes one outbox
    row per Slack integration of each schedule's ``announce_receiver`` (dedup key
    ``handoff:<schedule>:<handoff unix time>``, so a restart or the other replica never
    announces twice), then stores the new state.

    :return: the announcements enqueued.
    """
    alerting = config.alerting
    receivers = {name: s.announce_receiver for name, s in alerting.schedules.items() if s.announce_receiver}
    if not receivers:
        return []
    schedules = {name: Schedule.from_config(name, alerting.schedules[name]) for name in receivers}
    last = await store.kv_get(ANNOUNCED_KEY)
    due, state = due_announcements(schedules, receivers, last if isinstance(last, dict) else None, now,
                                   max_age=max_age)
    stage = OutboxStage(store, integrations)
    external_url = getattr(getattr(config, "server", None), "external_url", "") or ""
    for a in due:
        msg = handoff_message(a, alerting.people, external_url)
        try:  # the person is part of the transition: a changed shift at the same instant is news
            written = await stage.enqueue(msg, now, transition=a.shift.person or "", only=["slack"])
        except KeyError:
            log.error("handoff announcement for an unknown receiver dropped", extra={"receiver": a.receiver})
            continue
        if not any(i.kind == "slack" for i in integrations.get(a.receiver, ())):
            log.warning("announce_receiver has no Slack integration; handoff not announced",
                        extra={"receiver": a.receiver, "schedule": a.schedule})
        log.info("on-call handoff announced", extra={"schedule": a.schedule, "person": a.shift.person,
                                                     "receiver": a.receiver, "new": bool(written)})
    if state != last:
        await store.kv_set(ANNOUNCED_KEY, state, now)
    return due
