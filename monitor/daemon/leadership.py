"""Leadership between replicas: only the leader runs the alert pipeline's side effects.

Two replicas share one PostgreSQL state store; the leader is whoever holds the store's advisory
lock (:meth:`monitor.store.base.Store.try_acquire_leadership`; with SQLite, a ``flock`` on the
state file's ``.leader`` file).

* Every replica probes, scrapes, evaluates rules and persists rule state, so a follower's state
  is warm when it takes over.
* Only the leader runs the alert pipeline (:class:`~monitor.daemon.leader_pipeline.LeaderPipeline`:
  ingest, ``tick``: routing, escalation), the :class:`~monitor.notify.outbox.OutboxWorker` and
  handoff announcements. Taking over, :class:`Leadership` hands the pipeline's
  :class:`~monitor.alerting.ports.AlertingPorts` to its ``on_change`` callback; stepping down,
  it hands over ``None`` (a follower ingests no rule alerts, and the alerting API answers 503).
* :meth:`Leadership.check` runs every :data:`LEADER_INTERVAL` seconds (scheduler job
  ``leader:check``): a follower tries to take the lock and, on success, builds the pipeline
  (restored from the shared store: firing alerts, escalations, silences, notification log) and
  the worker; a leader whose lock connection dropped steps down first (stops ticking, sending
  and announcing), then tries again like a follower.
* ``monitor_leader`` (1/0) and ``"leader"`` in ``/health`` checks show the role.

The daemon reaches the running pipeline only through this object: :meth:`Leadership.reconfigure`
on reload, :meth:`Leadership.stop` at shutdown.

With a PostgreSQL ``schema``, the lock key is derived from the schema name, so separate
deployments sharing one database (different schemas) do not block each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.alerting.ports import AlertingPorts
from monitor.daemon.leader_pipeline import (
    ANNOUNCE_INTERVAL,
    OUTBOX_INTERVAL,
    TICK_INTERVAL,
    LeaderPipeline,
    PipelineMetrics,
    close_integrations,
    reconfigure,
    start_pipeline,
)
from monitor.errors import StoreError
from monitor.notify.outbox import NotifyMetrics, OutboxWorker

log = logging.getLogger("monitor.daemon")

#: Seconds between leadership checks (followers retry the lock; leaders check they still hold it).
LEADER_INTERVAL = 3.0
#: Scheduler jobs that run only on the leader.
LEADER_JOBS = ("alerting:tick", "oncall:announce")


def _lock_lost(store: Any) -> bool:
    """Whether the store's dedicated lock connection is gone (PostgreSQL only).

    ``try_acquire_leadership`` silently reconnects and may win the lock again; a leader must
    first notice that it lost it meanwhile (the other replica may have acted), step down and
    restore from the store. SQLite keeps no lock connection: never lost.
    """
    if not hasattr(store, "_leader"):
        return False
    conn = store._leader  # noqa: SLF001 - PostgresStore exposes no "still held" check
    return conn is None or conn.is_closed()


class Leadership:
    """Acquire, keep and lose the leadership of one daemon; run its alert pipeline while leading.

    :param state: ``() -> Store | None``: the opened state store (``None`` before the daemon starts).
    :param config: ``() -> Config``: the configuration in force.
    :param scheduler: the daemon's scheduler (``leader:check`` and the leader jobs).
    :param registry: the metrics registry (notification metrics now, pipeline metrics at the
        first take-over).
    :param metrics: the daemon's :class:`~monitor.metrics.Metrics` (``monitor_leader``).
    :param on_change: called with the pipeline's ports on taking over, ``None`` on stepping down.
    :param interval: seconds between :meth:`check` runs.
    :param clock: Unix-seconds clock for handoff announcements.

    Example (what the daemon does)::

        leadership = Leadership(state=lambda: daemon.state, config=lambda: daemon.config,
                                scheduler=scheduler, registry=registry, metrics=metrics,
                                on_change=daemon.set_alerting_ports)
        await leadership.check()      # once at start: lead at once when the lock is free
        leadership.schedule()         # leader:check every few seconds (+ leader jobs)
        leadership.reconfigure(cfg)   # on reload
        await leadership.stop()       # before the store closes
    """

    def __init__(self, *, state: Callable[[], Any], config: Callable[[], Any], scheduler: Any,
                 registry: CollectorRegistry, metrics: Any, on_change: Callable[[AlertingPorts | None], None],
                 interval: float = LEADER_INTERVAL, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.config = config
        self.scheduler = scheduler
        self.registry = registry
        self.metrics = metrics
        self.on_change = on_change
        self.interval = interval
        self.clock = clock
        self.is_leader = False
        self.notify_metrics = NotifyMetrics(registry)
        self.leader: LeaderPipeline | None = None
        self.worker: OutboxWorker | None = None
        self._pipeline_metrics: PipelineMetrics | None = None
        self._lock = asyncio.Lock()
        self._worker_stop: asyncio.Event | None = None
        self._worker_task: asyncio.Task | None = None
        self._timer_task: asyncio.Task | None = None

    # -- scheduling -----------------------------------------------------------------------------

    def schedule(self) -> None:
        """Add the ``leader:check`` job, and the leader jobs when leading."""
        self.scheduler.add_interval_job("leader:check", self._check_job, self.interval, first_delay=self.interval)
        if self.is_leader:
            self._add_leader_jobs()

    def _add_leader_jobs(self) -> None:
        self.scheduler.add_interval_job("alerting:tick", self._tick, TICK_INTERVAL)
        self.scheduler.add_interval_job("oncall:announce", self.announce, ANNOUNCE_INTERVAL)

    async def _tick(self) -> None:
        leader = self.leader
        if leader is None:
            return
        try:
            await leader.tick()
        except Exception:  # noqa: BLE001 - a tick failure must not stop the scheduler; state is in the store
            log.exception("alerting tick failed")

    async def announce(self) -> list:
        """Enqueue due handoff announcements (leader only; a follower does nothing)."""
        leader = self.leader
        if not self.is_leader or leader is None:
            return []
        try:
            return await leader.announce(self.clock())
        except Exception:  # noqa: BLE001 - the next run retries; the outbox dedups
            log.exception("handoff announcement failed")
            return []

    def reconfigure(self, config: Any) -> None:
        """Swap a reloaded config into the running pipeline and worker (nothing while following);
        the old integrations are closed in the background."""
        if self.leader is None:
            return
        old = reconfigure(self.leader, self.worker, config, self.notify_metrics)
        asyncio.get_running_loop().create_task(close_integrations(old))

    # -- role changes ---------------------------------------------------------------------------

    async def _check_job(self) -> None:
        """:meth:`check` as the ``leader:check`` job. Stopping, the scheduler cancels a running
        job: a check cancelled mid take-over has given the lock back, and ends quietly rather
        than as a job that "raised an exception" with a traceback in the log."""
        try:
            await self.check()
        except asyncio.CancelledError:
            log.info("leader check interrupted by shutdown")

    async def check(self) -> bool:
        """Keep, take or give up the leadership; return whether this replica leads now."""
        async with self._lock:
            store = self.state()
            if store is None:
                return False
            if self.is_leader and _lock_lost(store):
                log.warning("leadership lost: the lock connection closed; stepping down")
                await self._step_down()
            try:
                held = await store.try_acquire_leadership()
            except StoreError as exc:
                log.warning("leader election failed", extra={"error": str(exc)})
                held = False
            if held and not self.is_leader:
                try:
                    await self._take_over()
                except asyncio.CancelledError:
                    await self._step_down()  # give the lock back (see _check_job)
                    raise
                except Exception as exc:  # noqa: BLE001 - give the lock back; retried next check
                    log.error("taking over the leadership failed; releasing the lock",
                              extra={"error": f"{type(exc).__name__}: {exc}"})
                    await self._step_down()
            elif not held and self.is_leader:
                log.warning("leadership lost; stepping down")
                await self._step_down()
            return self.is_leader

    async def _take_over(self) -> None:
        if self._pipeline_metrics is None:  # registered once: a process may lead several terms
            self._pipeline_metrics = PipelineMetrics.register(self.registry)
        leader, worker = await start_pipeline(self.config(), self.state(), self._pipeline_metrics,
                                              self.notify_metrics)
        self.leader, self.worker = leader, worker
        self.on_change(leader.ports())
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(worker.run(self._worker_stop, OUTBOX_INTERVAL), name="outbox")
        # groups flush when due (event-driven); the alerting:tick job is the safety poll
        self._timer_task = asyncio.create_task(leader.run(self._worker_stop), name="alerting:timers")
        self.is_leader = True
        self.metrics.leader.set(1)
        self._add_leader_jobs()
        log.info("leadership acquired: alerting, notifications and announcements run here")

    async def _stop_worker(self) -> None:
        if self._worker_stop is not None:
            self._worker_stop.set()
        for task in (self._timer_task, self._worker_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._timer_task = self._worker_task = None

    async def _close_pipeline(self) -> None:
        leader, self.leader, self.worker = self.leader, None, None
        if self._pipeline_metrics is not None:  # only the leader counts on-call pages
            self._pipeline_metrics.escalation.oncall.clear()
        await self._stop_worker()
        if leader is not None:
            await close_integrations(leader.integrations)

    async def _step_down(self) -> None:
        was = self.is_leader
        self.is_leader = False
        self.metrics.leader.set(0)
        for job in LEADER_JOBS:
            self.scheduler.remove_job(job)
        self.on_change(None)
        await self._close_pipeline()
        try:
            await self.state().release_leadership()
        except Exception as exc:  # noqa: BLE001 - a dead connection frees the lock anyway
            log.warning("releasing the leadership failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        if was:
            log.info("stepped down: following (probing, scraping and evaluating only)")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the outbox worker and close the integrations (daemon shutdown; closing the store
        releases the lock).

        Waits up to ``timeout`` seconds for a running :meth:`check` to finish first, so a
        take-over in progress does not leave a worker behind.
        """
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
            locked = True
        except asyncio.TimeoutError:
            locked = False
        try:
            await self._close_pipeline()
            self.is_leader = False
            self.metrics.leader.set(0)
        finally:
            if locked:
                self._lock.release()
