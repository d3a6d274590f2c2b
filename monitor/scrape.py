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
  timestamp are not tracked for staleness, as in Prometheus.

Unlike Prometheus, a malformed exposition line does not fail the scrape: every good line is
kept, each bad one is counted (:attr:`ScrapeResult.malformed_lines`) and logged with its line
number (issue 2, section 4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_fd_to_metric_families

from model.labels import METRIC_NAME, Labels
from monitor.tsdb.series import STALE_NAN
from monitor.tsdb.store import SampleStore

__all__ = ["ExposedSample", "ScrapeResult", "Scraper", "parse_exposition"]

#: ``(name, labels, value, timestamp_ms or None)`` as exposed (names kept exactly).
ExposedSample = tuple[str, dict[str, str], float, "int | None"]

#: Sent as Prometheus does, text format first (``scrape/scrape.go`` ``scrapeAcceptHeader``).
ACCEPT_HEADER = ("text/plain;version=0.0.4;q=1.0,"
                 "application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1")
_MAX_LINE_IN_ERROR = 120
_MAX_WARNINGS_PER_SCRAPE = 5


def _trim(line: str, limit: int = _MAX_LINE_IN_ERROR) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _to_ms(ts: object, scale: int = 1000) -> int | None:
    """Convert a parser timestamp (seconds, float or ``Timestamp``) to int milliseconds."""
    if ts is None:
        return None
    return int(round(float(ts) * scale))  # type: ignore[arg-type]


def parse_exposition(text: str, content_type: str | None = None
                     ) -> tuple[list[ExposedSample], list[str]]:
    """Parse exposition text, keeping every good sample line and reporting every bad one.

    Text format 0.0.4 is parsed with ``prometheus_client.parser`` line by line (its
    ``# HELP``/``# TYPE`` handling is skipped so sample names stay exactly as exposed: it
    would rename a counter ``foo`` to ``foo_total``). OpenMetrics (``content_type`` starting
    with ``application/openmetrics-text``) is parsed with ``prometheus_client.openmetrics``
    and falls back to the line-by-line text parser if the document is invalid.

    :param text: the response body.
    :param content_type: the response's ``Content-Type``, or ``None`` for text format.
    :return: ``(samples, errors)``: samples as ``(name, labels, value, timestamp_ms|None)``
        in exposition order; errors as ``"line N: <reason>: <trimmed line>"``, one per bad line.
    """
    if content_type and content_type.lower().startswith("application/openmetrics-text"):
        try:
            out: list[ExposedSample] = []
            for fam in om_parser.text_string_to_metric_families(text):
                for s in fam.samples:
                    out.append((s.name, dict(s.labels), float(s.value), _to_ms(s.timestamp)))
            return out, []
        except Exception:  # noqa: BLE001 - an invalid document: salvage what we can below
            return _parse_text_lines(text, openmetrics=True)
    return _parse_text_lines(text)


def _parse_text_lines(text: str, openmetrics: bool = False
                      ) -> tuple[list[ExposedSample], list[str]]:
    """Parse text-format sample lines one at a time; see :func:`parse_exposition`.

    With ``openmetrics`` (salvaging an invalid OpenMetrics document) exemplars are cut off
    and timestamps are read as seconds rather than milliseconds.
    """
    lines = text.splitlines()
    if openmetrics:
        lines = [ln[: ln.rfind(" # {")] if " # {" in ln else ln for ln in lines]
    ts_scale = 1_000_000 if openmetrics else 1000  # the text parser divides by 1000
    n = len(lines)
    pos = 0  # index of the next line to feed; after a failure, lines[pos - 1] is the bad one

    def feed() -> Iterator[str]:
        nonlocal pos
        while pos < n:
            line = lines[pos]
            pos += 1
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            yield line

    samples: list[ExposedSample] = []
    errors: list[str] = []
    while True:
        try:
            # Without comment lines every sample is yielded as soon as its line is parsed,
            # so on an exception everything before the bad line has been collected.
            for fam in text_fd_to_metric_families(feed()):  # type: ignore[arg-type]
                for s in fam.samples:
                    samples.append((s.name, s.labels, float(s.value),
                                    _to_ms(s.timestamp, ts_scale)))
            return samples, errors
        except Exception as e:  # noqa: BLE001 - the parser raises ValueError and others
            reason = str(e).split(":", 1)[0] or type(e).__name__
            errors.append(f"line {pos}: {reason}: {_trim(lines[pos - 1])}")


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """The outcome of one scrape.

    :ivar up: the target answered 200 with a body (malformed lines do not make it down).
    :ivar duration_seconds: wall time of the request and parse, seconds.
    :ivar samples_scraped: good samples in the exposition.
    :ivar malformed_lines: lines that could not be parsed.
    :ivar series_added: series not present in the previous scrape.
    :ivar error: why the scrape failed (``None`` when ``up``).
    :ivar timestamp_ms: the scrape's timestamp (ms), given to samples without their own.
    """

    up: bool
    duration_seconds: float
    samples_scraped: int
    malformed_lines: int
    error: str | None
    series_added: int = 0
    timestamp_ms: int = 0


class Scraper:
    """Scrapes one target into a :class:`SampleStore`.

    :param job: the ``job`` label.
    :param url: the full URL of the metrics endpoint, e.g. ``http://10.0.0.5:8000/metrics``.
    :param store: where samples go.
    :param client: a shared ``httpx.AsyncClient`` (owned by the daemon).
    :param timeout: the whole scrape's deadline, seconds (connect + read + parse).
    :param labels: extra target labels (like ``static_configs[].labels``).
    :param honor_labels: on a collision keep the exposed label instead of the target's.
    :param clock: returns the current time in seconds (injected for tests).
    :param logger: where malformed lines and failures are logged.

    Counters for ``monitor/metrics.py``: :attr:`scrapes_total`, :attr:`failures_total`,
    :attr:`malformed_lines_total`.

    Usage::

        scraper = Scraper("backend", "http://127.0.0.1:8000/metrics", store,
                          client=client, timeout=10)
        result = await scraper.scrape_once()   # every scrape_interval
        ...
        scraper.stop()                         # target removed: mark its series stale
    """

    def __init__(self, job: str, url: str, store: SampleStore, *, client: httpx.AsyncClient,
                 timeout: float, labels: dict[str, str] | None = None,
                 honor_labels: bool = False, clock: Callable[[], float] = time.time,
                 logger: logging.Logger | None = None) -> None:
        self.job = job
        self.url = url
        self.store = store
        self.client = client
        self.timeout = timeout
        self.honor_labels = honor_labels
        self.clock = clock
        self.instance = instance_of(url)
        target = {"job": job, "instance": self.instance}
        target.update(labels or {})
        self.target_labels: dict[str, str] = {k: v for k, v in target.items() if v != ""}
        self.log = logger or logging.getLogger(__name__)
        self._log_extra = {"job": job, "instance": self.instance}
        self._report_labels = {
            name: Labels.of(self.target_labels, __name__=name)
            for name in ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                         "scrape_series_added")
        }
        self._label_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._previous: set[Labels] = set()
        self.scrapes_total = 0
        self.failures_total = 0
        self.malformed_lines_total = 0
        self.last_result: ScrapeResult | None = None

    async def scrape_once(self) -> ScrapeResult:
        """Scrape the target once, store samples, staleness markers and report series.

        Never raises for target trouble (connection refused, timeout, non-200, bad lines):
        that is reported in the result and as ``up`` 0.
        """
        started = self.clock()
        t_ms = int(started * 1000)
        t0 = time.perf_counter()
        error: str | None = None
        parsed: list[ExposedSample] = []
        errors: list[str] = []
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self.client.get(
                    self.url, headers={"Accept": ACCEPT_HEADER}, timeout=self.timeout)
                if resp.status_code != 200:
                    error = f"server returned HTTP status {resp.status_code} {resp.reason_phrase}"
                else:
                    parsed, errors = parse_exposition(resp.text, resp.headers.get("content-type"))
        except (TimeoutError, httpx.TimeoutException):
            error = f"scrape timed out after {self.timeout:g}s"
        except Exception as e:  # noqa: BLE001 - httpx.HTTPError, InvalidURL, ...: target trouble
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        duration = time.perf_counter() - t0

        up = error is None
        batch: list[tuple[Labels, int, float]] = []
        current: set[Labels] = set()
        for name, exposed, value, ts in parsed:
            lbl = self._labels_for(name, exposed)
            if ts is None:
                current.add(lbl)
                batch.append((lbl, t_ms, value))
            else:
                batch.append((lbl, ts, value))
        added = len(current - self._previous)
        for gone in self._previous - current:
            batch.append((gone, t_ms, STALE_NAN))
        self._previous = current

        report = self._report_labels
        batch.append((report["up"], t_ms, 1.0 if up else 0.0))
        batch.append((report["scrape_duration_seconds"], t_ms, duration))
        batch.append((report["scrape_samples_scraped"], t_ms, float(len(parsed))))
        batch.append((report["scrape_series_added"], t_ms, float(added)))
        self.store.append_batch(batch)

        self.scrapes_total += 1
        self.malformed_lines_total += len(errors)
        if not up:
            self.failures_total += 1
            self.log.warning("scrape of %s failed: %s", self.url, error, extra=self._log_extra)
        for err in errors[:_MAX_WARNINGS_PER_SCRAPE]:
            self.log.warning("malformed exposition line from %s: %s", self.url, err,
                             extra=self._log_extra)
        if len(errors) > _MAX_WARNINGS_PER_SCRAPE:
            self.log.warning("%d more malformed exposition lines from %s",
                             len(errors) - _MAX_WARNINGS_PER_SCRAPE, self.url,
                             extra=self._log_extra)
        result = ScrapeResult(up=up, duration_seconds=duration, samples_scraped=len(parsed),
                              malformed_lines=len(errors), error=error, series_added=added,
                              timestamp_ms=t_ms)
        self.last_result = result
        return result

    def stop(self, t_ms: int | None = None) -> None:
        """Mark every series of the last scrape and the report series stale (target removed).

        Prometheus ``scrapeLoop.endOfRunStaleness``. ``t_ms`` defaults to the clock's now.
        """
        t = int(self.clock() * 1000) if t_ms is None else t_ms
        batch = [(lbl, t, STALE_NAN) for lbl in self._previous]
        batch.extend((lbl, t, STALE_NAN) for lbl in self._report_labels.values())
        self._previous = set()
        self.store.append_batch(batch)

    def _labels_for(self, name: str, exposed: dict[str, str]) -> Labels:
        """Return the stored label set for an exposed sample (``mutateSampleLabels``), cached."""
        key = (name, tuple(exposed.items()))
        lbl = self._label_cache.get(key)
        if lbl is not None:
            return lbl
        merged = dict(exposed)
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
        if len(self._label_cache) > 100_000:  # a target churning labels: start over
            self._label_cache.clear()
        self._label_cache[key] = lbl
        return lbl


def instance_of(url: str) -> str:
    """Return ``host:port`` of ``url`` (default port by scheme), as Prometheus's ``instance``."""
    u = httpx.URL(url)
    host = u.host
    if ":" in host:
        host = f"[{host}]"
    port = u.port or (443 if u.scheme == "https" else 80)
    return f"{host}:{port}"

