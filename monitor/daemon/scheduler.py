"""The job scheduler: APScheduler 3.x ``AsyncIOScheduler`` with lag, miss and overlap accounting.

Every job runs at most once at a time (``max_instances=1``) and missed runs are coalesced into
one (``coalesce=True``), so a hung target can delay only its own next run, never another job.
Scheduling lag is the delay from a run's scheduled time to its submission on the event loop.

Jobs of one interval are spread over the whole of it, as Prometheus spreads scrapes
(``scrape/target.go`` ``offset``): each job gets a stable phase from a hash of its id, and runs at
the wall-clock instants ``t`` with ``t mod interval == phase``. Load is flat over the interval,
a job's runs are exactly one interval apart, and a restarted daemon runs every job at the same
phase as before.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from apscheduler.events import (EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED,
                                JobEvent, JobSubmissionEvent)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.metrics import Metrics

log = logging.getLogger("monitor.scheduler")

#: The longest interval a job may have (10 years, as ``probes.base.MAX_DURATION_SECONDS``).
MAX_INTERVAL = 10 * 365 * 86400.0


class Scheduler:
    """Interval jobs on the running asyncio loop.

    :param metrics: where lag (``monitor_scheduler_lag_seconds``), missed runs and skipped
        overlapping runs are counted.
    :param on_lag: optional callback receiving each lag in seconds (benchmarks use it).
    :param on_run: optional callback receiving ``(job_id, scheduled, lag)`` for each run
        submitted: its scheduled time in Unix seconds and its lag in seconds.
    """

    def __init__(self, metrics: Metrics, *, on_lag: Callable[[float], None] | None = None,
                 on_run: Callable[[str, float, float], None] | None = None) -> None:
        self._metrics = metrics
        self._on_lag = on_lag
        self._on_run = on_run
        self._sched = AsyncIOScheduler(timezone=timezone.utc)
        self._sched.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.missed: dict[str, int] = {}
        self.overlaps: dict[str, int] = {}

    def add_interval_job(self, job_id: str, func: Callable[[], Awaitable[None]], interval: float,
                         *, first_delay: float = 0.0, phase: float | None = None) -> None:
        """Run ``func`` every ``interval`` seconds; replaces a job with the same id.

        With ``phase`` (seconds, see :func:`spread`) the runs are the wall-clock instants ``t``
        (Unix seconds) with ``t mod interval == phase``, the first one the next such instant;
        otherwise the first run is ``first_delay`` seconds from now. Either way each run is
        scheduled exactly ``interval`` after the one before.

        :raises ValueError: ``interval`` is not a positive number of seconds of at most
            :data:`MAX_INTERVAL` (larger values overflow the scheduler's timers).
        """
        if not 0 < interval <= MAX_INTERVAL:
            raise ValueError(f"job {job_id}: interval must be between 0 and {MAX_INTERVAL:.0f} seconds, "
                             f"got {interval:g}")
        now = time.time()
        if phase is not None:
            first = next_run_at(now, interval, phase)
        else:
            first = now + min(max(first_delay, 0.0), MAX_INTERVAL)
        start = datetime.fromtimestamp(first, timezone.utc)
        self._sched.add_job(
            func, IntervalTrigger(seconds=interval, start_date=start, timezone=timezone.utc),
            id=job_id, name=job_id, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(interval)), replace_existing=True, next_run_time=start)

    def remove_job(self, job_id: str) -> None:
        """Remove a job if it exists."""
        if self._sched.get_job(job_id) is not None:
            self._sched.remove_job(job_id)

    def job_ids(self) -> set[str]:
        """Return the ids of every scheduled job."""
        return {j.id for j in self._sched.get_jobs()}

    @property
    def running(self) -> bool:
        """Whether the scheduler is started."""
        return bool(self._sched.running)

    def start(self) -> None:
        """Start the scheduler on the running event loop."""
        self._sched.start()

    def shutdown(self) -> None:
        """Stop scheduling (running jobs are left to finish or be cancelled by the caller)."""
        if self._sched.running:
            self._sched.shutdown(wait=False)

    def _on_event(self, event: JobEvent) -> None:
        if isinstance(event, JobSubmissionEvent):
            scheduled = event.scheduled_run_times[-1]
            lag = max(0.0, time.time() - scheduled.timestamp())
            self._metrics.scheduler_lag.observe(lag)
            if self._on_lag:
                self._on_lag(lag)
            if self._on_run:
                self._on_run(event.job_id, scheduled.timestamp(), lag)
        elif event.code == EVENT_JOB_MISSED:
            self.missed[event.job_id] = self.missed.get(event.job_id, 0) + 1
            self._metrics.scheduler_missed.labels(event.job_id).inc()
            log.warning("job run missed", extra={"job": event.job_id})
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.overlaps[event.job_id] = self.overlaps.get(event.job_id, 0) + 1
            self._metrics.scheduler_overlaps.labels(event.job_id).inc()
            log.warning("job still running; this run is skipped", extra={"job": event.job_id})


def spread(job_id: str, interval: float) -> float:
    """Return the stable phase, in seconds in ``[0, interval)``, of job ``job_id`` (see
    :meth:`Scheduler.add_interval_job`).

    The phase is a hash of the id (not Python's ``hash``, which changes from one process to the
    next), so many jobs of one interval cover it evenly, as Prometheus's scrape offsets do, and
    the same id gets the same phase in every process.
    """
    digest = hashlib.blake2b(job_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def next_run_at(now: float, interval: float, phase: float) -> float:
    """Return the first instant after ``now`` (Unix seconds) whose remainder modulo
    ``interval`` is ``phase``."""
    return now - (now - phase) % interval + interval
