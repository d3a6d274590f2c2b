"""Daemon glue for alerting: build integrations, the alert service and the outbox worker; reload them.

Kept out of :mod:`monitor.daemon.wiring` so the composition root stays short. The daemon calls
:func:`start_alerting` once the state store is open, runs ``outbox.run(stop, OUTBOX_INTERVAL)``
as a task and ``alerting.tick()`` every :data:`TICK_INTERVAL` seconds, and :func:`swap_config`
on reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.alerting.service import AlertService
from monitor.notify.base import Integration
from monitor.notify.outbox import NotifyMetrics, OutboxWorker
from monitor.notify.registry import build_integrations

log = logging.getLogger("monitor.daemon")

#: Seconds between alerting ticks (dispatcher timers, escalation deadlines).
TICK_INTERVAL = 1.0
#: Seconds between outbox runs.
OUTBOX_INTERVAL = 1.0


def notify_metrics(registry: CollectorRegistry) -> NotifyMetrics:
    """Register the notification metrics (``monitor_notifications_total``, ``monitor_outbox_depth``)."""
    return NotifyMetrics(registry)


def _templates_dir(config: Any) -> str | None:
    value = getattr(getattr(config, "notify", None), "templates_dir", None)
    return str(value) if value else None


async def start_alerting(config: Any, store: Any, registry: CollectorRegistry,
                         metrics: NotifyMetrics) -> tuple[dict[str, list[Integration]], AlertService, OutboxWorker]:
    """Build integrations, the :class:`AlertService` (restored from the store) and the outbox worker."""
    integrations = build_integrations(config.receivers, templates_dir=_templates_dir(config), clock=time.time)
    service = AlertService(config, store, integrations, clock=time.time, registry=registry,
                           logger=logging.getLogger("monitor.alerting"))
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
