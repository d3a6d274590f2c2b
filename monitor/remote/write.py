"""Send the queue to one remote-write endpoint: batching, retries per the spec, metrics.

Semantics from the Prometheus Remote-Write 1.0 specification and ``storage/remote/queue_manager.go``:

* one request carries up to ``max_samples_per_send`` samples (whole queue batches), as a
  snappy-compressed protobuf ``WriteRequest`` (:mod:`monitor.remote.protocol`) with the spec's
  headers, each series labelled with the ``external_labels`` (a series' own label of the same
  name wins, as Prometheus's ``processExternalLabels``);
* 2xx: sent, the batches are acknowledged in the queue;
* 5xx, 429, timeouts and connection errors: retried, forever, with exponential backoff from
  ``min_backoff`` to ``max_backoff`` (a ``Retry-After`` in seconds on a 429 or 503 is honoured up
  to ``max_backoff``) — the batches stay queued, on disk, so an outage only delays them;
* any other 4xx: never retried (the spec's "MUST NOT"); the samples are counted as failed and
  acknowledged, so one bad batch cannot block the queue.

One sender per endpoint (one "shard"): batches go out in queue order, so every series'
samples arrive in timestamp order, which the stores require. The shard lag is the newest sample
queued minus the newest sent (seconds); see :class:`RemoteWriteCollector` for every metric.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from model.labels import Labels
from monitor import __version__
from .protocol import HEADERS, compress, encode
from .queue import RemoteQueue

__all__ = ["RemoteWriter", "RemoteWriteCollector", "USER_AGENT"]

log = logging.getLogger(__name__)

USER_AGENT = f"codebook-monitor/{__version__}"
#: Response body characters kept in an error message.
_BODY_LIMIT = 256


def _with_external(labels: Labels, external: Mapping[str, str]) -> Labels:
    if not external:
        return labels
    have = {k for k, _ in labels}
    extra = [(k, v) for k, v in external.items() if k not in have and v]
    return Labels.of([*labels, *extra]) if extra else labels


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


class RemoteWriter:
    """Send one endpoint's queue until cancelled (:meth:`run`).

    :param name: the endpoint's name (the ``remote_name`` label of the metrics; never the URL,
        which may hold a token).
    :param url: the endpoint, e.g. ``http://127.0.0.1:8428/api/v1/write``.
    :param queue: its queue (:class:`~monitor.remote.queue.RemoteQueue`, opened).
    :param client: the HTTP client (owned by the caller).
    :param external_labels: added to every series (its own labels win).
    :param max_samples_per_send: most samples per request.
    :param min_backoff: first retry delay, seconds; doubled per failure up to ``max_backoff``.
    :param timeout: seconds per request.
    :param headers: extra request headers (``Authorization``...); the spec's own cannot be overridden.
    :param clock: wall-clock seconds. :param rand: ``[0, 1)`` jitter source.
    """

    def __init__(self, name: str, url: str, queue: RemoteQueue, client: httpx.AsyncClient, *,
                 external_labels: Mapping[str, str] | None = None, max_samples_per_send: int = 2000,
                 min_backoff: float = 0.03, max_backoff: float = 5.0, timeout: float = 30.0,
                 headers: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.name = name
        self.url = url
        self.queue = queue
        self.client = client
        self.external_labels = dict(external_labels or {})
        self.max_samples_per_send = max_samples_per_send
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.headers = {**dict(headers or {}), **HEADERS, "User-Agent": USER_AGENT}
        self.clock = clock
        self.rand = rand
        self._wake = asyncio.Event()
        self._labelled: dict[Labels, Labels] = {}  # series -> with external labels (emptied when large)
        self.sent_samples_total = 0
        self.sent_batches_total = 0
        self.sent_bytes_total = 0
        #: Samples the store refused with a non-retryable 4xx (given up, never retried).
        self.failed_samples_total = 0
        #: Samples of requests that failed retryably (sent again later).
        self.retried_samples_total = 0
        self.highest_sent_ms = 0
        self.last_error = ""
        self.last_send_seconds = 0.0

    def wake(self) -> None:
        """Tell the sender that batches were queued (call after ``queue.append``)."""
        self._wake.set()

    async def run(self) -> None:
        """Send batches as they are queued, retrying failures, until cancelled."""
        backoff = self.min_backoff
        while True:
            batches = self.queue.peek(self.max_samples_per_send)
            if not batches:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = await self.send_once(batches)
            if delay is None:
                backoff = self.min_backoff
                continue
            wait = min(self.max_backoff, max(delay, backoff * (0.5 + self.rand() / 2)))
            backoff = min(self.max_backoff, backoff * 2)
            await asyncio.sleep(wait)

    async def send_once(self, batches: list[Any]) -> float | None:
        """Send ``batches`` (the oldest of the queue) in one request.

        :return: ``None`` when done with them (sent, or refused for good: acknowledged either
            way), else the least delay before a retry (seconds; 0 without ``Retry-After``).
        """
        series: dict[Labels, tuple[list[int], list[float]]] = {}
        n = 0
        max_t = 0
        for b in batches:
            for labels, ts, vs in b.series():
                got = series.get(labels)
                if got is None:
                    got = series[labels] = ([], [])
                got[0].extend(ts)
                got[1].extend(vs)
                n += len(ts)
            max_t = max(max_t, b.max_t)
        body = compress(encode((self._labels(lbl), ts, vs) for lbl, (ts, vs) in series.items()))
        t0 = time.perf_counter()
        try:
            # The answer is streamed and at most _BODY_LIMIT bytes of it read: a store (or a proxy
            # in front of it) answering with a large page costs nothing.
            async with self.client.stream("POST", self.url, content=body, headers=self.headers,
                                          timeout=self.timeout) as resp:
                head = b""
                if not 200 <= resp.status_code < 300:
                    async for chunk in resp.aiter_raw():
                        head += chunk
                        if len(head) >= _BODY_LIMIT:
                            break
        except httpx.HTTPError as e:
            return self._retryable(n, f"{type(e).__name__}: {e}", 0.0)
        finally:
            self.last_send_seconds = time.perf_counter() - t0
        status = resp.status_code
        if 200 <= status < 300:
            self.queue.ack(batches[-1].seq)
            self.sent_samples_total += n
            self.sent_batches_total += 1
            self.sent_bytes_total += len(body)
            self.highest_sent_ms = max(self.highest_sent_ms, max_t)
            self.last_error = ""
            return None
        text = " ".join(head[:_BODY_LIMIT].decode("utf-8", "replace").split())  # one line for the log
        if status >= 500 or status == 429:
            ra = _retry_after(resp) if status in (429, 503) else None
            return self._retryable(n, f"HTTP {status}: {text}", ra or 0.0)
        # Any other status: the spec forbids a retry. Give the samples up, keep the queue moving.
        self.queue.ack(batches[-1].seq)
        self.failed_samples_total += n
        self.last_error = f"HTTP {status}: {text}"
        log.error("remote write refused; samples dropped", extra={
            "remote_name": self.name, "status": status, "samples": n, "error": text})
        return None

    def _labels(self, labels: Labels) -> Labels:
        got = self._labelled.get(labels)
        if got is None:
            if len(self._labelled) >= 200_000:
                self._labelled.clear()
            got = self._labelled[labels] = _with_external(labels, self.external_labels)
        return got

    def _retryable(self, n: int, error: str, delay: float) -> float:
        if not self.last_error:  # log the first failure of a run of them, not every retry
            log.warning("remote write failed; retrying", extra={"remote_name": self.name, "error": error,
                                                               "queued_samples": self.queue.samples})
        self.retried_samples_total += n
        self.last_error = error
        return delay

    def lag_seconds(self) -> float:
        """Return the newest sample queued minus the newest sent, seconds (0 when all are sent)."""
        if not self.queue.samples:
            return 0.0
        return max(0.0, (self.queue.highest_appended_ms - self.highest_sent_ms) / 1000.0)


class RemoteWriteCollector:
    """The ``monitor_remote_write_*`` metrics of every writer, read at each collection.

    Counters (``remote_name`` label): ``samples_sent_total``, ``samples_failed_total`` (refused
    with a 4xx, given up), ``samples_retried_total``, ``samples_dropped_total`` (queue full),
    ``sent_bytes_total`` (compressed). Gauges: ``queue_samples``, ``queue_bytes``,
    ``queue_oldest_age_seconds``, ``highest_sent_timestamp_seconds``, ``shard_lag_seconds``.

    :param writers: returns the running writers.
    """

    def __init__(self, writers: Callable[[], Iterable[RemoteWriter]]) -> None:
        self.writers = writers

    def collect(self) -> Iterable[Any]:
        """Yield the metric families (``prometheus_client`` custom collector protocol)."""
        p = "monitor_remote_write_"
        lbl = ["remote_name"]
        fams: dict[str, Any] = {
            "sent": CounterMetricFamily(p + "samples_sent", "Samples sent and accepted by the store.", labels=lbl),
            "failed": CounterMetricFamily(p + "samples_failed",
                                          "Samples the store refused with a non-retryable status (dropped).",
                                          labels=lbl),
            "retried": CounterMetricFamily(p + "samples_retried", "Samples in requests that failed retryably.",
                                           labels=lbl),
            "dropped": CounterMetricFamily(p + "samples_dropped", "Samples dropped because the queue was full.",
                                           labels=lbl),
            "bytes": CounterMetricFamily(p + "sent_bytes", "Compressed request bytes sent.", labels=lbl),
            "qs": GaugeMetricFamily(p + "queue_samples", "Samples waiting in the queue.", labels=lbl),
            "qb": GaugeMetricFamily(p + "queue_bytes", "Payload bytes waiting in the queue.", labels=lbl),
            "age": GaugeMetricFamily(p + "queue_oldest_age_seconds",
                                     "Seconds since the oldest waiting batch was queued.", labels=lbl),
            "high": GaugeMetricFamily(p + "highest_sent_timestamp_seconds",
                                      "Timestamp of the newest sample sent.", labels=lbl),
            "lag": GaugeMetricFamily(p + "shard_lag_seconds",
                                     "Newest sample queued minus newest sample sent, seconds.", labels=lbl),
        }
        for w in self.writers():
            v = [w.name]
            fams["sent"].add_metric(v, w.sent_samples_total)
            fams["failed"].add_metric(v, w.failed_samples_total)
            fams["retried"].add_metric(v, w.retried_samples_total)
            fams["dropped"].add_metric(v, w.queue.dropped_samples_total)
            fams["bytes"].add_metric(v, w.sent_bytes_total)
            fams["qs"].add_metric(v, w.queue.samples)
            fams["qb"].add_metric(v, w.queue.bytes)
            fams["age"].add_metric(v, w.queue.oldest_age())
            fams["high"].add_metric(v, w.highest_sent_ms / 1000.0)
            fams["lag"].add_metric(v, w.lag_seconds())
        yield from fams.values()
