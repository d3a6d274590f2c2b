"""The job scheduler: APScheduler 3.x ``AsyncIOScheduler`` with lag, miss and overlap accounting.

Every job runs at most once at a time (``max_instances=1``) and missed runs are coalesced into
one (``coalesce=True``), so a hung target can delay only its own next run, never another job.
Scheduling lag is the delay from a run's scheduled time to its submission on the event loop.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

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
    """

    def __init__(self, metrics: Metrics, *, on_lag: Callable[[float], None] | None = None) -> None:
        self._metrics = metrics
        self._on_lag = on_lag
        self._sched = AsyncIOScheduler(timezone=timezone.utc)
        self._sched.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.missed: dict[str, int] = {}
        self.overlaps: dict[str, int] = {}

    def add_interval_job(self, job_id: str, func: Callable[[], Awaitable[None]], interval: float,
                         *, first_delay: float = 0.0) -> None:
        """Run ``func`` every ``interval`` seconds, first after ``first_delay`` seconds.

        ``first_delay`` spreads jobs of the same interval over it so they do not all start at once.
        Replaces a job with the same id.

        :raises ValueError: ``interval`` is not a positive number of seconds of at most
            :data:`MAX_INTERVAL` (larger values overflow the scheduler's timers).
        """
        if not 0 < interval <= MAX_INTERVAL:
            raise ValueError(f"job {job_id}: interval must be between 0 and {MAX_INTERVAL:.0f} seconds, "
                             f"got {interval:g}")
        first_delay = min(max(first_delay, 0.0), MAX_INTERVAL)
        start = datetime.now(timezone.utc) + timedelta(seconds=first_delay)
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
        elif event.code == EVENT_JOB_MISSED:
            self.missed[event.job_id] = self.missed.get(event.job_id, 0) + 1
            self._metrics.scheduler_missed.labels(event.job_id).inc()
            log.warning("job run missed", extra={"job": event.job_id})
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.overlaps[event.job_id] = self.overlaps.get(event.job_id, 0) + 1
            self._metrics.scheduler_overlaps.labels(event.job_id).inc()
            log.warning("job still running; this run is skipped", extra={"job": event.job_id})


def spread(name: str, interval: float) -> float:
    """Return a stable first delay in seconds, in [0, min(interval, 5 s)), for job ``name``, so
    jobs of equal intervals do not all fire together (the same name always gets the same delay)."""
    return (zlib.crc32(name.encode()) % 1000) / 1000 * min(interval, 5.0)
