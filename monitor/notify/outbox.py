"""The outbox delivery worker: claim due rows, send each once, record the outcome.

Every notification is a row in the state store before anything is sent
(:class:`~monitor.notify.outbox_stage.OutboxStage`); this worker delivers them at least once:

1. ``store.expire(now)``: rows past ``not_after`` become ``expired`` (counted, never sent);
2. ``store.claim_due(now)``: pending rows whose ``next_attempt_at`` has come, leased;
3. per row: rebuild the :class:`~monitor.notify.base.Message`, attach the stored delivery
   reference (so Slack acknowledge/resolve *update* the original message), call the
   integration once; success -> ``mark_sent`` (+ remember ``channel``/``ts``); retryable
   error -> ``mark_failed`` with ``next_attempt_at = now + backoff`` (full jitter, or the
   receiver's ``Retry-After``); permanent error -> ``mark_failed(next_attempt_at=None)``.

Rows with the same (receiver, integration, incident) go out in order (a resolve after its
trigger); different ones concurrently. A restart resumes by construction: the rows are in the
store. Shape after Alertmanager ``notify/notify.go`` (``RetryStage``, ``NewMetrics``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.errors import NotifyError
from monitor.notify.base import Integration, Message
from monitor.notify.retry import Backoff, redact

log = logging.getLogger("monitor.notify.outbox")

OUTCOMES = ("sent", "retry", "failed", "expired")
_STAT_FIELD = {"sent": "sent", "retry": "retried", "failed": "failed"}


class NotifyMetrics:
    """The notification metrics, registered on an injected registry.

    * ``monitor_notifications_total{receiver, integration, outcome}``: attempts by outcome
      (``sent``, ``retry`` = failed and rescheduled, ``failed`` = permanent, ``expired``);
    * ``monitor_notification_duration_seconds{receiver, integration}``: one attempt's latency;
    * ``monitor_outbox_depth``: pending rows after the last run.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter("monitor_notifications", "Notification attempts by outcome.",
                                     ["receiver", "integration", "outcome"], registry=registry)
        self.duration = Histogram("monitor_notification_duration_seconds",
                                  "Duration of one notification attempt in seconds.",
                                  ["receiver", "integration"], registry=registry,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.depth = Gauge("monitor_outbox_depth", "Notifications waiting in the outbox.", registry=registry)

    def init_labels(self, integrations: Mapping[str, Sequence[Integration]]) -> None:
        """Pre-initialise every (receiver, integration, outcome) series to 0."""
        for receiver, items in integrations.items():
            for integ in items:
                for outcome in OUTCOMES:
                    self.notifications.labels(receiver, integ.name, outcome)


@dataclass
class RunStats:
    """What one :meth:`OutboxWorker.run_once` did (counts of rows)."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0


class OutboxWorker:
    """Deliver outbox rows through the configured integrations.

    :param store: the state store.
    :param integrations: ``{receiver: [Integration, ...]}`` (``build_integrations`` output).
    :param clock: unix-seconds clock (default ``time.time``).
    :param sleep: ``asyncio.sleep``-like, for :meth:`run`.
    :param rng: ``() -> [0, 1)`` for backoff jitter.
    :param backoff: the backoff policy (``Backoff(base=5, cap=300, rng=rng)`` by default).
    :param metrics: :class:`NotifyMetrics`, or ``None``.
    :param batch: rows claimed per run; :param lease: seconds a claim hides a row.
    :param concurrency: parallel sends across different incidents.

    Example::

        worker = OutboxWorker(store, build_integrations(cfg.receivers),
                              metrics=NotifyMetrics(registry))
        await worker.run_once()            # or: await worker.run(stop_event, interval=1.0)
    """

    def __init__(self, store, integrations: Mapping[str, Sequence[Integration]], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: Callable[[], float] = random.random, backoff: Backoff | None = None,
                 metrics: NotifyMetrics | None = None, batch: int = 50, lease: float = 60.0,
                 concurrency: int = 8, timer: Callable[[], float] = time.perf_counter) -> None:
        self.store = store
        self.integrations = integrations
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff or Backoff(rng=rng)
        self.metrics = metrics
        self.batch = batch
        self.lease = lease
        self.concurrency = concurrency
        self.timer = timer
        if metrics is not None:
            metrics.init_labels(integrations)

    def _find(self, receiver: str, name: str) -> Integration | None:
        for integ in self.integrations.get(receiver, ()):
            if integ.name == name:
                return integ
        return None

    def _count(self, receiver: str, integration: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(receiver, integration, outcome).inc()

    async def run_once(self, now: float | None = None) -> RunStats:
        """Expire, claim and send what is due at ``now`` (the clock when ``None``)."""
        now = self.clock() if now is None else now
        stats = RunStats()
        for row in await self.store.expire(now):
            stats.expired += 1
            self._count(row["receiver"], row["integration"], "expired")
            log.warning("notification expired undelivered", extra={
                "receiver": row["receiver"], "integration": row["integration"],
                "attempts": row["attempts"], "last_error": row["last_error"]})
        rows = await self.store.claim_due(now, self.batch, self.lease)
        stats.claimed = len(rows)
        chains: dict[tuple[str, str, str], list[dict]] = {}
        for row in rows:
            ref = str((row["payload"] or {}).get("dedup_key", row["id"]))
            chains.setdefault((row["receiver"], row["integration"], ref), []).append(row)
        sem = asyncio.Semaphore(self.concurrency)

        async def chain(items: list[dict]) -> None:
            async with sem:
                for row in items:
                    field = _STAT_FIELD[await self._deliver(row, now)]
                    setattr(stats, field, getattr(stats, field) + 1)

        await asyncio.gather(*(chain(items) for items in chains.values()))
        if self.metrics is not None:
            self.metrics.depth.set(await self.store.depth())
        return stats

    async def _deliver(self, row: dict, now: float) -> str:
        receiver, name = row["receiver"], row["integration"]
        integ = self._find(receiver, name)
        if integ is None:
            await self.store.mark_failed(row["id"], now, f"no integration {receiver}/{name} in config", None)
            self._count(receiver, name, "failed")
            return "failed"
        secrets = integ.notifier.secrets()
        ref_scope = f"{receiver}/{name}"
        try:
            message = Message.from_dict(row["payload"])
            if message.kind in ("acknowledged", "resolved"):
                prev = await self.store.get_message_ref(message.ref_key, ref_scope, message.recipient)
                message = message.with_previous(prev)
        except (TypeError, ValueError) as exc:
            await self.store.mark_failed(row["id"], now, f"unreadable payload: {exc}", None)
            self._count(receiver, name, "failed")
            return "failed"
        started = self.timer()
        try:
            result = await integ.notify(message)
        except NotifyError as exc:
            err, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
        except Exception as exc:  # noqa: BLE001 - a bug or an untranslated SDK error: keep the row, retry
            err, retryable, retry_after = f"unexpected {type(exc).__name__}: {exc}", True, None
        else:
            self._observe(receiver, name, started)
            meta = dict(result.meta)
            await self.store.mark_sent(row["id"], now, meta)
            if meta.get("channel") and meta.get("ts"):
                await self.store.put_message_ref(message.ref_key, ref_scope, message.recipient,
                                                 {"channel": meta["channel"], "ts": meta["ts"]}, now)
            self._count(receiver, name, "sent")
            return "sent"
        self._observe(receiver, name, started)
        err = redact(err, secrets)
        if not retryable:
            await self.store.mark_failed(row["id"], now, err, None)
            self._count(receiver, name, "failed")
            log.error("notification failed permanently", extra={
                "receiver": receiver, "integration": name, "error": err})
            return "failed"
        delay = self.backoff.delay(int(row["attempts"]), retry_after)
        await self.store.mark_failed(row["id"], now, err, now + delay)
        self._count(receiver, name, "retry")
        log.warning("notification failed, will retry", extra={
            "receiver": receiver, "integration": name, "error": err, "retry_in_seconds": round(delay, 3)})
        return "retry"

    def _observe(self, receiver: str, name: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.duration.labels(receiver, name).observe(max(0.0, self.timer() - started))

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Call :meth:`run_once` every ``interval`` seconds until ``stop`` is set.

        A store failure is logged and retried on the next tick (rows are safe in the store).
        """
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the loop alive; the rows wait in the store
                log.error("outbox run failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            await self.sleep(interval)
