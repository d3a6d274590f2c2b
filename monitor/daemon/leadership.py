"""Leadership between replicas: only the leader runs alerting side effects.

Two replicas share one PostgreSQL state store; the leader is whoever holds the store's advisory
lock (:meth:`monitor.store.base.Store.try_acquire_leadership`; SQLite is always the leader).

* Every replica probes, scrapes, evaluates rules and persists rule state, so a follower's state
  is warm when it takes over.
* Only the leader runs the :class:`~monitor.alerting.service.AlertService` (ingest, ``tick``:
  routing, escalation), the :class:`~monitor.notify.outbox.OutboxWorker` and handoff
  announcements. A follower has ``daemon.alerting = None``: rule alerts are not ingested and
  the alerting API answers 503.
* :meth:`Leadership.check` runs every :data:`LEADER_INTERVAL` seconds (scheduler job
  ``leader:check``): a follower tries to take the lock and, on success, starts the alert service
  (restored from the shared store: firing alerts, escalations, silences, notification log) and
  the worker; a leader whose lock connection dropped steps down first (stops ticking, sending
  and announcing), then tries again like a follower.
* ``monitor_leader`` (1/0) and ``"leader"`` in ``/health`` checks show the role.

With a PostgreSQL ``schema``, the lock key is derived from the schema name, so separate
deployments sharing one database (different schemas) do not block each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from monitor.daemon import alerting_glue
from monitor.errors import StoreError

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
    """Acquire, keep and lose the leadership of one daemon; start and stop its alerting side.

    :param daemon: the :class:`~monitor.daemon.wiring.Daemon`; this object sets its
        ``alerting``, ``outbox`` and ``integrations`` while leading, and reads its ``config``,
        ``state``, ``registry``, ``notify_metrics``, ``metrics`` and ``scheduler``.
    :param interval: seconds between :meth:`check` runs.
    :param clock: Unix-seconds clock for handoff announcements.

    Example (what the daemon does)::

        leadership = Leadership(daemon)
        await leadership.check()      # once at start: lead at once when the lock is free
        leadership.schedule()         # leader:check every few seconds (+ leader jobs)
        ...
        await leadership.stop()       # before the store closes
    """

    def __init__(self, daemon: Any, *, interval: float = LEADER_INTERVAL, clock=time.time) -> None:
        self.daemon = daemon
        self.interval = interval
        self.clock = clock
        self.is_leader = False
        self._lock = asyncio.Lock()
        self._worker_stop: asyncio.Event | None = None
        self._worker_task: asyncio.Task | None = None
        self._first_service: Any = None

    # -- scheduling -----------------------------------------------------------------------------

    def schedule(self) -> None:
        """Add the ``leader:check`` job, and the leader jobs when leading."""
        self.daemon.scheduler.add_interval_job("leader:check", self.check, self.interval,
                                               first_delay=self.interval)
        if self.is_leader:
            self._add_leader_jobs()

    def _add_leader_jobs(self) -> None:
        sched = self.daemon.scheduler
        sched.add_interval_job("alerting:tick", self._tick, alerting_glue.TICK_INTERVAL)
        sched.add_interval_job("oncall:announce", self.announce, alerting_glue.ANNOUNCE_INTERVAL)

    async def _tick(self) -> None:
        service = self.daemon.alerting
        if service is None:
            return
        try:
            await service.tick()
        except Exception:  # noqa: BLE001 - a tick failure must not stop the scheduler; state is in the store
            log.exception("alerting tick failed")

    async def announce(self) -> list:
        """Enqueue due handoff announcements (leader only; a follower does nothing)."""
        d = self.daemon
        if not self.is_leader or d.alerting is None:
            return []
        try:
            return await alerting_glue.announce_handoffs(d.config, d.state, d.integrations, self.clock())
        except Exception:  # noqa: BLE001 - the next run retries; the outbox dedups
            log.exception("handoff announcement failed")
            return []

    # -- role changes ---------------------------------------------------------------------------

    async def check(self) -> bool:
        """Keep, take or give up the leadership; return whether this replica leads now."""
        async with self._lock:
            store = self.daemon.state
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
                except Exception as exc:  # noqa: BLE001 - give the lock back; retried next check
                    log.error("taking over the leadership failed; releasing the lock",
                              extra={"error": f"{type(exc).__name__}: {exc}"})
                    await self._step_down()
            elif not held and self.is_leader:
                log.warning("leadership lost; stepping down")
                await self._step_down()
            return self.is_leader

    async def _take_over(self) -> None:
        d = self.daemon
        integrations, service, worker = await alerting_glue.start_alerting(
            d.config, d.state, d.registry, d.notify_metrics, previous=self._first_service)
        self._first_service = self._first_service or service
        d.integrations, d.alerting, d.outbox = integrations, service, worker
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(worker.run(self._worker_stop, alerting_glue.OUTBOX_INTERVAL),
                                                name="outbox")
        self.is_leader = True
        d.metrics.leader.set(1)
        self._add_leader_jobs()
        log.info("leadership acquired: alerting, notifications and announcements run here")

    async def _stop_worker(self) -> None:
        if self._worker_stop is not None:
            self._worker_stop.set()
        task, self._worker_task = self._worker_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _step_down(self) -> None:
        d = self.daemon
        was = self.is_leader
        self.is_leader = False
        d.metrics.leader.set(0)
        for job in LEADER_JOBS:
            d.scheduler.remove_job(job)
        d.alerting = None
        d.outbox = None
        await self._stop_worker()
        integrations, d.integrations = d.integrations, {}
        await alerting_glue.close_integrations(integrations)
        try:
            await d.state.release_leadership()
        except Exception as exc:  # noqa: BLE001 - a dead connection frees the lock anyway
            log.warning("releasing the leadership failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        if was:
            log.info("stepped down: following (probing, scraping and evaluating only)")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the outbox worker (daemon shutdown; closing the store releases the lock).

        Waits up to ``timeout`` seconds for a running :meth:`check` to finish first, so a
        take-over in progress does not leave a worker behind.
        """
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
            locked = True
        except asyncio.TimeoutError:
            locked = False
        try:
            await self._stop_worker()
            self.is_leader = False
            self.daemon.metrics.leader.set(0)
        finally:
            if locked:
                self._lock.release()
