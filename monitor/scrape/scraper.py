"""Scrape Prometheus ``/metrics`` endpoints into the sample store.

One :class:`Scraper` per target, called on the target's interval by the daemon's scheduler.
Behaviour follows Prometheus ``scrape/scrape.go`` (``scrapeLoop``):

- every sample gets the target labels ``job`` and ``instance`` (``host:port`` of the URL) plus
  any configured ``labels``; an exposed label that collides is renamed ``exported_<name>``
  unless ``honor_labels`` (``mutateSampleLabels``), in which case the exposed value wins;
- all samples of one scrape share the scrape's start time (ms) unless the exposition carries
  its own timestamp (``honor_timestamps: true``, Prometheus's default);
- report series per target (``scrapeLoop.report``): ``up``, ``scrape_duration_seconds``,
  ``scrape_samples_scraped``, ``scrape_series_added``;
- staleness (``scrapeCache.forEachStale``): a series of the previous scrape that is absent
  now gets a staleness marker at this scrape's timestamp; a failed scrape counts as an empty
  one, so all previous series go stale and ``up`` is 0. Series exposed with an explicit
  timestamp are not tracked for staleness, as in Prometheus;
- limits (:class:`~monitor.scrape.limits.ScrapeLimits`: ``body_size_limit``, ``sample_limit``, ``label_limit``,
  ``label_name_length_limit``, ``label_value_length_limit``, Prometheus's ``scrape_config``
  names): past one, the whole scrape fails, ``up`` 0 with the reason, and nothing of it is
  stored;
- an exposition that breaks the format (:class:`~monitor.scrape.exposition.ExpositionError`: a
  second ``# TYPE`` for one name, an invalid escape in a label value, a duplicate label name, a bad
  float, ...) fails the scrape the same way, at its first bad line: ``up`` 0, the error
  ``line N: reason``, :attr:`ScrapeResult.reason` ``parse``, ``scrape_samples_scraped`` the samples
  before that line (Prometheus's ``scrapeLoop.append`` stops there and rolls the scrape back), and the
  previous scrape's series go stale;
- metadata: each family's ``TYPE``, ``HELP`` and ``UNIT`` of the last good scrape
  (:attr:`Scraper.metadata`; a failed scrape keeps the previous).

The body is read as a stream and parsed as it arrives, a slice of lines at a time with the
event loop given back between slices, so neither a huge target nor a hostile one holds the
loop or the memory: reading stops at ``body_size_limit`` and parsing at the first sample past
``sample_limit`` (Prometheus parses on to report the total; counting the rest is the work this
limit is there to refuse, so ``scrape_samples_scraped`` is then the count when it stopped).

The parser is :mod:`monitor.scrape.exposition`; the limits are :mod:`monitor.scrape.limits`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from model.labels import METRIC_NAME, Labels
from monitor.gcpause import paused_gc
from monitor.logging import FailureLog
from monitor.scrape.exposition import (ExpositionError, ExpositionParser, FamilyMetadata, is_openmetrics,
                                       normalize_float_labels)
from monitor.scrape.limits import ScrapeLimitExceeded, ScrapeLimits
from monitor.tsdb.series import STALE_NAN
from monitor.tsdb.store import SampleStore
from probes.base import BodyTooLarge, iter_body

__all__ = ["ScrapeResult", "Scraper", "instance_of"]

#: The logger's name when none is given: the module's before it became a package (the
#: ``logger`` field of the JSON log lines).
LOGGER_NAME = "monitor.scrape"

#: Sent as Prometheus does, text format first (``scrape/scrape.go`` ``scrapeAcceptHeader``).
ACCEPT_HEADER = ("text/plain;version=0.0.4;q=1.0,"
                 "application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1")
#: Seconds of parsing or appending between two returns to the event loop.
SLICE_SECONDS = 0.005
#: Exposition lines parsed, and samples appended, between two looks at the clock.
_LINES_PER_STEP = 50
_APPEND_STEP = 250


#: Errors of a connection that closed before any answer came: retried once (:meth:`Scraper._read`).
_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class _HttpStatus(Exception):
    """The target answered with a status other than 200."""


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """The outcome of one scrape.

    :ivar up: the target answered 200 with a well-formed body within the limits.
    :ivar duration_seconds: wall time of the request and parse, seconds.
    :ivar samples_scraped: samples in the exposition; on a failure 0, except when a sample
        or label limit, or a line breaking the format, failed the scrape: then the count up to
        where parsing stopped.
    :ivar series_added: series not present in the previous scrape.
    :ivar error: why the scrape failed (``None`` when ``up``).
    :ivar timestamp_ms: the scrape's timestamp (ms), given to samples without their own.
    :ivar limit: the :class:`ScrapeLimits` setting that failed the scrape, e.g. ``sample_limit``.
    :ivar reason: why it failed, in one word: ``parse`` (the exposition breaks the format; ``error``
        is ``line N: reason``), the ``limit``, ``http_status``, ``timeout`` or ``connection``
        (anything else: refused, reset, TLS, a bad URL); ``None`` when ``up``.
    """

    up: bool
    duration_seconds: float
    samples_scraped: int
    error: str | None
    series_added: int = 0
    timestamp_ms: int = 0
    limit: str | None = None
    reason: str | None = None


class Scraper:
    """Scrapes one target into a :class:`SampleStore`.

    :param job: the ``job`` label.
    :param url: the full URL of the metrics endpoint, e.g. ``http://10.0.0.5:8000/metrics``.
    :param store: where samples go.
    :param client: a shared ``httpx.AsyncClient`` (owned by the daemon).
    :param timeout: the whole scrape's deadline, seconds (connect + read + parse).
    :param labels: extra target labels (like ``static_configs[].labels``).
    :param honor_labels: on a collision keep the exposed label instead of the target's.
    :param limits: the target's limits (default: none; the daemon passes the configured ones).
    :param clock: returns the current time in seconds (injected for tests).
    :param logger: where failures are logged (when a target starts failing, then every 5 minutes).

    Counters for ``monitor/metrics.py``: :attr:`scrapes_total`, :attr:`failures_total`,
    :attr:`parse_failures_total`. :attr:`metadata` holds the families' metadata.

    Usage::

        scraper = Scraper("backend", "http://127.0.0.1:8000/metrics", store,
                          client=client, timeout=10)
        result = await scraper.scrape_once()   # every scrape_interval
        ...
        scraper.stop()                         # target removed: mark its series stale
    """

    def __init__(self, job: str, url: str, store: SampleStore, *, client: httpx.AsyncClient,
                 timeout: float, labels: dict[str, str] | None = None,
                 honor_labels: bool = False, limits: ScrapeLimits | None = None,
                 clock: Callable[[], float] = time.time, logger: logging.Logger | None = None,
                 normalize_float_labels: bool = True) -> None:
        self.job = job
        self.normalize_float_labels = normalize_float_labels
        self.url = url
        self.store = store
        self.client = client
        self.timeout = timeout
        self.honor_labels = honor_labels
        self.limits = limits or ScrapeLimits()
        self.clock = clock
        self.instance = instance_of(url)
        target = {"job": job, "instance": self.instance}
        target.update(labels or {})
        self.target_labels: dict[str, str] = {k: v for k, v in target.items() if v != ""}
        self.log = logger or logging.getLogger(LOGGER_NAME)
        self._log_extra = {"job": job, "instance": self.instance}
        self._report_labels = {
            name: Labels.of(self.target_labels, __name__=name)
            for name in ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                         "scrape_series_added")
        }
        self._label_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._over_limit = False  # the last scrape failed at a limit (see scrape_once)
        self._previous: set[Labels] = set()
        self.scrapes_total = 0
        self.failures_total = 0
        self.parse_failures_total = 0
        #: ``{family: FamilyMetadata}`` of the last scrape that parsed (a failed one keeps the previous).
        self.metadata: dict[str, FamilyMetadata] = {}
        self.last_result: ScrapeResult | None = None
        #: a failing target is logged when it starts failing, then every 5 minutes, and once recovered
        self.failures = FailureLog()

    async def scrape_once(self) -> ScrapeResult:
        """Scrape the target once, store samples, staleness markers and report series.

        Never raises for target trouble (connection refused, timeout, non-200, bad lines, a
        limit passed): that is reported in the result and as ``up`` 0.

        When the previous scrape failed at a limit, the cyclic garbage collector is paused
        until this one's batch is stored or dropped: it holds up to ``sample_limit`` samples (no
        reference cycles), which every full collection meanwhile walks with the GIL held —
        60-150 ms loop stalls, several per scrape of a target that is always past its limit
        (:mod:`monitor.gcpause`). Not otherwise: when the samples are kept, the first collection
        after the pause would walk all of them at once (a target's first scrape of 50,000 new
        series: a 0.3 s stall).
        """
        if not self._over_limit:
            return await self._scrape_once()
        with paused_gc():
            return await self._scrape_once()

    async def _scrape_once(self) -> ScrapeResult:
        started = self.clock()
        t_ms = int(started * 1000)
        t0 = time.perf_counter()
        error: str | None = None
        limit: str | None = None
        reason: str | None = None
        scrape = _Scrape(t_ms)
        try:
            async with asyncio.timeout(self.timeout):
                await self._read(scrape)
        except _HttpStatus as e:
            error, reason = str(e), "http_status"
        except BodyTooLarge as e:
            error, limit = f"{e} (stopped reading there)", "body_size_limit"
        except ScrapeLimitExceeded as e:
            error, limit = str(e), e.limit
        except ExpositionError as e:
            error, reason = str(e), "parse"
        except (TimeoutError, httpx.TimeoutException):
            error, reason = f"scrape timed out after {self.timeout:g}s", "timeout"
        except Exception as e:  # noqa: BLE001 - httpx.HTTPError, InvalidURL, ...: target trouble
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            reason = "connection"
        duration = time.perf_counter() - t0

        up = error is None
        reason = limit or reason
        # Prometheus reports no samples for a failed scrape, except the count that failed one
        samples_scraped = scrape.count if up or reason in ("parse", "sample_limit", "label_limit",
                                                           "label_name_length_limit",
                                                           "label_value_length_limit") else 0
        if up:
            batch, current = scrape.batch, scrape.current
            self._remember_labels(scrape.new_labels)
            if scrape.parser is not None:
                self.metadata = scrape.parser.metadata()
        else:  # a failed scrape stores (and caches) nothing of what it read: it counts as an empty one
            batch, current = [], set()
            await _release(scrape)
        scrape.new_labels = {}
        added = len(current - self._previous)
        for gone in self._previous - current:
            batch.append((gone, t_ms, STALE_NAN))
        self._previous = current

        report = self._report_labels
        batch.append((report["up"], t_ms, 1.0 if up else 0.0))
        batch.append((report["scrape_duration_seconds"], t_ms, duration))
        batch.append((report["scrape_samples_scraped"], t_ms, float(samples_scraped)))
        batch.append((report["scrape_series_added"], t_ms, float(added)))
        await self._append(batch)

        self.scrapes_total += 1
        if not up:
            self.failures_total += 1
            self.parse_failures_total += reason == "parse"
            if (n := self.failures.failed(self.url)) is not None:
                self.log.warning("scrape of %s failed: %s" if n == 1 else "scrape of %s still failing: %s",
                                 self.url, error, extra={**self._log_extra, "failures": n, "reason": reason})
        elif (n := self.failures.recovered(self.url)) is not None:
            self.log.info("scrape of %s recovered", self.url, extra={**self._log_extra, "failures": n})
        result = ScrapeResult(up=up, duration_seconds=duration, samples_scraped=samples_scraped,
                              error=error, series_added=added, timestamp_ms=t_ms, limit=limit,
                              reason=None if up else reason)
        self.last_result = result
        self._over_limit = limit is not None
        return result

    async def _read(self, scrape: _Scrape) -> None:
        """Stream the body into ``scrape``, parsing it as it arrives, within the limits.

        :raises _HttpStatus: the answer is not a 200.
        :raises BodyTooLarge: the body passed ``body_size_limit``.
        :raises ScrapeLimitExceeded: a sample passed another limit.
        :raises ExpositionError: the body breaks the exposition format.
        """
        for attempt in (1, 2):
            answered = False
            try:
                async with self.client.stream("GET", self.url, headers={"Accept": ACCEPT_HEADER},
                                              timeout=self.timeout) as resp:
                    answered = True
                    await self._read_response(resp, scrape)
                return
            except _CLOSED_UNDER_US as e:
                # A kept-alive connection the server closed as idle just as the GET went out
                # (uvicorn's keep-alive timeout is 5 s, a common scrape interval): nothing was
                # answered, so send it again, once, on a new connection, as Go's net/http
                # transport does for Prometheus (``shouldRetryRequest``: a GET on a reused
                # connection that failed before the response).
                if answered or attempt == 2:
                    raise
                self.log.debug("scrape of %s: connection closed before an answer (%s: %s); retrying once",
                               self.url, type(e).__name__, e, extra=self._log_extra)

    async def _read_response(self, resp: httpx.Response, scrape: _Scrape) -> None:
        """Parse the streamed answer ``resp`` into ``scrape`` (see :meth:`_read`)."""
        if resp.status_code != 200:
            raise _HttpStatus(f"server returned HTTP status {resp.status_code} {resp.reason_phrase}")
        parser = scrape.parser = ExpositionParser(
            openmetrics=is_openmetrics(resp.headers.get("content-type")),
            encoding=resp.charset_encoding or "utf-8")
        async for chunk in iter_body(resp, self.limits.body_size_limit):
            parser.feed(chunk)
            await self._parse_pending(scrape)
        parser.feed(b"", final=True)
        await self._parse_pending(scrape)
        parser.close()

    async def _parse_pending(self, scrape: _Scrape) -> None:
        """Parse the lines fed so far, a slice at a time, giving the event loop back in between."""
        parser = scrape.parser
        assert parser is not None
        sample_limit = self.limits.sample_limit
        t_ms = scrape.t_ms
        pause = _Pause()
        while parser.pending:
            for name, exposed, value, ts in parser.parse(_LINES_PER_STEP):
                scrape.count += 1
                if sample_limit and scrape.count > sample_limit:
                    raise self._sample_limit_exceeded(parser)
                lbl = self._labels_for(name, exposed, scrape.new_labels)
                if ts is None:
                    scrape.current.add(lbl)
                    scrape.batch.append((lbl, t_ms, value))
                else:
                    scrape.batch.append((lbl, ts, value))
            await pause()

    def _sample_limit_exceeded(self, parser: ExpositionParser) -> ScrapeLimitExceeded:
        return ScrapeLimitExceeded(
            "sample_limit", f"sample_limit exceeded: more than {self.limits.sample_limit} samples "
                            f"(stopped parsing at line {parser.line_no})")

    async def _append(self, batch: list[tuple[Labels, int, float]]) -> None:
        """Append ``batch`` to the store a slice at a time, giving the event loop back in between."""
        pause = _Pause()
        for i in range(0, len(batch), _APPEND_STEP):
            if i:
                await pause()
            self.store.append_batch(batch[i:i + _APPEND_STEP])

    def stop(self, t_ms: int | None = None) -> None:
        """Mark every series of the last scrape and the report series stale (target removed).

        Prometheus ``scrapeLoop.endOfRunStaleness``. ``t_ms`` defaults to the clock's now.
        """
        t = int(self.clock() * 1000) if t_ms is None else t_ms
        batch = [(lbl, t, STALE_NAN) for lbl in self._previous]
        batch.extend((lbl, t, STALE_NAN) for lbl in self._report_labels.values())
        self._previous = set()
        self.store.append_batch(batch)

    def _labels_for(self, name: str, exposed: dict[str, str],
                    fresh: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] | None = None) -> Labels:
        """Return the stored label set for an exposed sample (``mutateSampleLabels``), cached.

        :param fresh: where a label set not cached yet is put (the scrape's own, merged into the
            cache when the scrape succeeds); by default the cache itself.
        """
        key = (name, tuple(exposed.items()))
        lbl = self._label_cache.get(key)
        if lbl is not None:
            return lbl
        if fresh is not None:
            lbl = fresh.get(key)
            if lbl is not None:
                return lbl
        merged = dict(exposed)
        if self.normalize_float_labels:
            normalize_float_labels(name, merged)
        merged[METRIC_NAME] = name
        for k, v in self.target_labels.items():
            if k in merged and merged[k] != "":
                if self.honor_labels:
                    continue
                exported = "exported_" + k
                while exported in merged:
                    exported = "exported_" + exported
                merged[exported] = merged[k]
            merged[k] = v
        lbl = Labels.of(merged)
        self.limits.check_labels(lbl)
        if fresh is not None:
            fresh[key] = lbl
            return lbl
        self._remember_labels({key: lbl})
        return lbl

    def _remember_labels(self, fresh: dict[tuple[str, tuple[tuple[str, str], ...]], Labels]) -> None:
        """Add a successful scrape's new label sets to the cache (at most about 100,000)."""
        if len(self._label_cache) + len(fresh) > 100_000:  # a target churning labels: start over
            self._label_cache.clear()
        self._label_cache.update(fresh)


class _Pause:
    """Give the event loop back once :data:`SLICE_SECONDS` of work have passed since the last time."""

    def __init__(self) -> None:
        self._until = time.perf_counter() + SLICE_SECONDS

    async def __call__(self) -> None:
        if time.perf_counter() >= self._until:
            await asyncio.sleep(0)
            self._until = time.perf_counter() + SLICE_SECONDS


async def _release(scrape: _Scrape) -> None:
    """Drop what a failed scrape read a slice at a time (freeing 50,000 samples and their label
    sets in one go held the loop for tens of milliseconds)."""
    pause = _Pause()
    scrape.current.clear()  # its label sets are still the batch's: nothing is freed yet
    fresh, batch = scrape.new_labels, scrape.batch
    while fresh:
        for _ in range(min(len(fresh), _APPEND_STEP)):
            fresh.popitem()
        await pause()
    while batch:
        del batch[-_APPEND_STEP:]
        await pause()


@dataclass(slots=True)
class _Scrape:
    """What one scrape has read so far."""

    t_ms: int
    parser: ExpositionParser | None = None
    count: int = 0
    batch: list[tuple[Labels, int, float]] = field(default_factory=list)
    current: set[Labels] = field(default_factory=set)
    #: Label sets this scrape made that the cache did not hold; cached only if it succeeds.
    new_labels: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = field(default_factory=dict)


def instance_of(url: str) -> str:
    """Return ``host:port`` of ``url`` (default port by scheme), as Prometheus's ``instance``."""
    u = httpx.URL(url)
    host = u.host
    if ":" in host:
        host = f"[{host}]"
    port = u.port or (443 if u.scheme == "https" else 80)
    return f"{host}:{port}"
