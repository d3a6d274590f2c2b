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

Rows of one chain — (receiver, integration, incident key, recipient) — go out in order: the
store claims only a chain's head, so a RESOLVED never overtakes its FIRING, however long the
FIRING's ``Retry-After``. Different chains go concurrently, and in :meth:`OutboxWorker.run` no
send waits for another integration's (per-integration concurrency; a hung webhook holds only
its own rows). Every outcome (``sent``, ``retry`` with its reason and next attempt, ``failed``,
``expired``) is written to the timeline of each alert in the message. :meth:`OutboxWorker.wake`
(called by the :class:`~monitor.notify.outbox_stage.OutboxStage` once its rows are committed,
and after each send, since a chain's next row may go then) starts a run at once; the interval is
only the fallback for retries coming due. Sends that finish together share their commits
(:class:`~monitor.store.batching.GroupCommit`: the "sent" marks in one transaction, the timeline
lines in another), so a storm of notifications costs a few commits, not several per message; in
:meth:`OutboxWorker.run` the expiry sweep and the depth gauge run at most once a second. A
restart resumes by construction: the rows are in the store. Shape after Alertmanager ``notify/notify.go``
(``RetryStage``, ``NewMetrics``).

Exactly-once across a crash between a send and its mark. Every attempt carries the row's
:func:`delivery_id` (:attr:`~monitor.notify.base.Message.delivery_id`), stable across retries,
restarts and replicas: the webhook sends it as ``Idempotency-Key`` (the receiver drops a
redelivery), Slack as message metadata. A new leader calls :meth:`OutboxWorker.recover_claims`
first: the rows a dead leader had claimed were in flight at the crash (their send may have
completed); their claims are released, and before such a row is sent again through an
integration whose notifier can look for an earlier delivery (``find_delivery``: Slack searches
the channel's history for the id), the worker asks it; found, the row is marked sent with that
delivery's facts (the Slack ``ts`` later updates need). PagerDuty needs nothing: Events v2
deduplicates a repeated event by ``dedup_key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.errors import NotifyError
from monitor.notify.base import UPDATE_KINDS, Integration, Message, NotifyResult
from monitor.notify.retry import Backoff, redact
from monitor.store.batching import GroupCommit

log = logging.getLogger("monitor.notify.outbox")

OUTCOMES = ("sent", "retry", "failed", "expired")
_STAT_FIELD = {"sent": "sent", "retry": "retried", "failed": "failed"}


def delivery_id(outbox_key: str) -> str:
    """Return the stable id of one transition through one integration: 32 hex digits of the
    SHA-256 of the outbox row's key (the key names receiver, integration, incident, recipient
    and transition; hashed so that no label value or routing key shows in a header)."""
    return hashlib.sha256(outbox_key.encode()).hexdigest()[:32]


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
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task] = {}  # row id -> its send (run() mode)
        self._limits: dict[tuple[str, str], asyncio.Semaphore] = {}
        # each send's row marked sent (with its delivery reference), and the timeline lines apart (a
        # failed line never undoes a mark): the sends finished meanwhile share one statement each
        self._marks: GroupCommit[tuple[int, float, Any, tuple | None]] = GroupCommit(store, self._write_marks)
        self._lines: GroupCommit[list[tuple]] = GroupCommit(
            store, lambda batch: store.append_timelines([line for lines in batch for line in lines]))
        self._swept = -float("inf")  # run(): when expiry and depth last ran (the clock's seconds)
        #: row id -> earliest time its send can have happened, for rows a dead leader had claimed
        self._in_flight_at_crash: dict[int, float] = {}
        if metrics is not None:
            metrics.init_labels(integrations)

    async def recover_claims(self) -> int:
        """Release a dead leader's claims (a new leader's first act) and remember the rows: their
        send may have completed before the crash, so each is looked up before it is sent again
        (see the module docstring). The lower bound of such a send is the row's ``created_at``:
        the dead leader's own claim time is lost if a second leader dies while recovering.

        :return: how many claims were released.
        """
        claimed = [r for r in await self.store.list_outbox("pending") if r.get("claimed_until") is not None]
        for row in claimed:
            self._in_flight_at_crash[int(row["id"])] = float(row["created_at"])
        return await self.store.release_claims()

    def wake(self) -> None:
        """Start a run now (rows were written, or a chain's head was sent)."""
        self._wake.set()

    def _limit(self, receiver: str, name: str) -> asyncio.Semaphore:
        key = (receiver, name)
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self.concurrency)
        return self._limits[key]

    def _find(self, receiver: str, name: str) -> Integration | None:
        for integ in self.integrations.get(receiver, ()):
            if integ.name == name:
                return integ
        return None

    def _count(self, receiver: str, integration: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(receiver, integration, outcome).inc()

    async def run_once(self, now: float | None = None, *, wait: bool = True) -> RunStats:
        """Expire, claim and send what is due at ``now`` (the clock when ``None``).

        :param wait: wait for the sends (tests, and the stats are complete); :meth:`run` passes
            ``False`` so that a slow integration never holds the next run (the stats then count
            what was claimed and expired).
        """
        now = self.clock() if now is None else now
        stats = RunStats()
        # Woken after every send, run() would sweep expiry and count depth per message: once a
        # second is enough (rows live an hour; the gauge is scraped every few seconds).
        sweep = wait or now - self._swept >= 1.0 or now < self._swept
        if sweep:
            self._swept = now
        if wait:  # a chain's next row is claimable once its head is sent: go on while rows go out
            await self._expire(now, stats)
            for _ in range(self.batch):
                sent = stats.sent
                if not await self._round(now, stats, wait=True) or stats.sent == sent:
                    break
        else:
            await self._round(now, stats, wait=False)  # first: a woken run sends before it sweeps
            if sweep:  # (claim_due never takes a row past its not_after)
                await self._expire(now, stats)
        if self.metrics is not None and sweep:
            self.metrics.depth.set(await self.store.depth())
        return stats

    async def _expire(self, now: float, stats: RunStats) -> None:
        """Mark the rows past their ``not_after`` expired; count and record them."""
        for row in await self.store.expire(now):
            stats.expired += 1
            self._count(row["receiver"], row["integration"], "expired")
            log.warning("notification expired undelivered", extra={
                "receiver": row["receiver"], "integration": row["integration"],
                "attempts": row["attempts"], "last_error": row["last_error"]})
            await self._timeline(row, now, "expired", {"error": row["last_error"]})

    async def _round(self, now: float, stats: RunStats, *, wait: bool) -> int:
        """Claim the due chain heads and send them; return how many were claimed."""
        rows = [r for r in await self.store.claim_due(now, self.batch, self.lease) if r["id"] not in self._inflight]
        stats.claimed += len(rows)

        async def send(row: dict) -> None:
            outcome = await self._deliver(row, self.clock() if not wait else now)
            field = _STAT_FIELD[outcome]
            setattr(stats, field, getattr(stats, field) + 1)
            if outcome == "sent":
                self.wake()  # the chain's next row may go now

        if wait:
            await asyncio.gather(*(send(row) for row in rows))
        else:
            for row in rows:
                task = asyncio.create_task(send(row), name=f"outbox-{row['id']}")
                self._inflight[row["id"]] = task
                task.add_done_callback(self._done(int(row["id"])))
        return len(rows)

    def _done(self, row_id: int) -> Callable[[asyncio.Task], None]:
        def forget(_task: asyncio.Task) -> None:
            self._inflight.pop(row_id, None)
        return forget

    async def _timeline(self, row: dict, now: float, outcome: str, detail: dict[str, Any]) -> None:
        """Write the outcome to the timeline of every alert of the row's message."""
        payload = row.get("payload") or {}
        fps = {a.get("fingerprint") for a in payload.get("alerts") or () if isinstance(a, dict)}
        base = {"integration": f"{row['receiver']}/{row['integration']}", "kind": payload.get("kind", ""),
                "recipient": payload.get("recipient", ""), "attempt": int(row["attempts"]) + 1}
        entries = [(fp, now, f"notification_{outcome}", {**base, **detail}) for fp in sorted(f for f in fps if f)]
        try:
            await self._lines.add(entries)
        except Exception as exc:  # noqa: BLE001 - the delivery happened; a lost timeline line must not undo it
            log.error("timeline write failed", extra={"alerts": len(entries), "error": str(exc)})

    async def _deliver(self, row: dict, now: float) -> str:
        receiver, name = row["receiver"], row["integration"]
        integ = self._find(receiver, name)
        if integ is None:
            err = f"no integration {receiver}/{name} in config"
            await self.store.mark_failed(row["id"], now, err, None)
            self._count(receiver, name, "failed")
            await self._timeline(row, now, "failed", {"error": err})
            return "failed"
        secrets = integ.notifier.secrets()
        ref_scope = f"{receiver}/{name}"
        try:
            message = Message.from_dict(row["payload"]).with_delivery_id(delivery_id(row["dedup_key"]))
            if message.kind in UPDATE_KINDS:
                prev = await self.store.get_message_ref(message.ref_key, ref_scope, message.recipient)
                message = message.with_previous(prev)
        except (TypeError, ValueError) as exc:
            await self.store.mark_failed(row["id"], now, f"unreadable payload: {exc}", None)
            self._count(receiver, name, "failed")
            await self._timeline(row, now, "failed", {"error": f"unreadable payload: {exc}"})
            return "failed"
        started = self.timer()
        try:
            result = await self._earlier_delivery(row, integ, message)
            recovered = result is not None
            if result is None:
                async with self._limit(receiver, name):  # the vendor's share: the send, not our bookkeeping
                    result = await integ.notify(message)
        except NotifyError as exc:
            err, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
        except Exception as exc:  # noqa: BLE001 - a bug or an untranslated SDK error: keep the row, retry
            err, retryable, retry_after = f"unexpected {type(exc).__name__}: {exc}", True, None
        else:
            self._observe(receiver, name, started)
            meta = dict(result.meta)
            ref = ((message.ref_key, ref_scope, message.recipient, {"channel": meta["channel"], "ts": meta["ts"]},
                    now) if meta.get("channel") and meta.get("ts") else None)
            await self._marks.add((int(row["id"]), now, meta, ref))  # with the sends finished meanwhile
            self._count(receiver, name, "sent")
            if recovered:
                log.info("notification found delivered before a crash; not sent again", extra={
                    "receiver": receiver, "integration": name, "delivery": message.delivery_id})
            await self._timeline(row, now, "sent", {"found_delivered": True} if recovered else {})
            return "sent"
        self._observe(receiver, name, started)
        err = redact(err, secrets)
        if not retryable:
            await self.store.mark_failed(row["id"], now, err, None)
            self._count(receiver, name, "failed")
            log.error("notification failed permanently", extra={
                "receiver": receiver, "integration": name, "error": err})
            await self._timeline(row, now, "failed", {"error": err})
            return "failed"
        delay = self.backoff.delay(int(row["attempts"]), retry_after)
        # The backoff counts from the failure, not from the attempt's start: an attempt that hung
        # for its whole timeout would otherwise be due again before its task ends, and a run
        # claiming it then (in flight, so skipped) would hide it for the whole lease.
        retry_at = max(now, self.clock()) + delay
        await self.store.mark_failed(row["id"], now, err, retry_at)
        self._count(receiver, name, "retry")
        log.warning("notification failed, will retry", extra={
            "receiver": receiver, "integration": name, "error": err, "retry_in_seconds": round(delay, 3)})
        await self._timeline(row, now, "retry", {"error": err, "retry_at": retry_at})
        return "retry"

    async def _write_marks(self, marks: list[tuple[int, float, Any, tuple | None]]) -> None:
        """Remember the rows' delivery references and mark them sent (a :class:`GroupCommit` batch:
        one transaction; the references first all the same, so that even without one a crash
        between the writes leaves the row to be sent again, found by its delivery id, never a sent
        row whose later updates go to an earlier message of the same alert)."""
        await self.store.put_message_refs([ref for *_, ref in marks if ref is not None])
        await self.store.mark_sent_many([(i, now, meta) for i, now, meta, _ in marks])

    async def _earlier_delivery(self, row: dict, integ: Integration, message: Message) -> NotifyResult | None:
        """For a row in flight at a crash: ask the notifier for an earlier delivery of it
        (``find_delivery(message, since)``); ``None`` when there is none, or nothing to ask.

        :raises NotifyError: the look-up failed (the row stays to be looked up at the next attempt).
        """
        since = self._in_flight_at_crash.get(int(row["id"]))
        if since is None:
            return None
        find = getattr(integ.notifier, "find_delivery", None)
        found = await find(message, since) if find is not None else None
        del self._in_flight_at_crash[int(row["id"])]
        return found

    def _observe(self, receiver: str, name: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.duration.labels(receiver, name).observe(max(0.0, self.timer() - started))

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Run at once on :meth:`wake`, else every ``interval`` seconds, until ``stop`` is set;
        then wait for the sends in flight.

        Sends run in the background (one concurrency limit per integration), so a run never waits
        for a slow vendor. A store failure is logged and retried on the next run (rows are safe in
        the store).
        """
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.run_once(wait=False)
                except Exception as exc:  # noqa: BLE001 - keep the loop alive; the rows wait in the store
                    log.error("outbox run failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                await self._pause(interval, stop)
        finally:
            if self._inflight:
                await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def _pause(self, interval: float, stop: asyncio.Event) -> None:
        """Wait ``interval`` seconds (the injected sleep), a :meth:`wake`, or ``stop``."""
        waits = [asyncio.ensure_future(self.sleep(interval)), asyncio.ensure_future(self._wake.wait()),
                 asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
