"""Run the configured probes, keep their last results, write their samples to the store,
and export them on ``/metrics``.

Every probe sample is labelled ``probe`` (the probe's name), ``target`` (what it checks) and
``kind`` (the probe kind), plus the probe's configured ``labels``. A series a probe stops
reporting gets a staleness marker, as Prometheus does for a vanished scrape series
(``scrape/scrape.go``).

Each probe measures its own connection, as blackbox_exporter's do (``prober/http.go`` builds a
client per probe, keep-alives off): :class:`ProbeClients` gives every probe an HTTP client of its
own with a pool of at most two connections and no keep-alive between requests, so no queue is
shared between probes. One shared pool would be a single queue for every target, and when
targets fail all at once httpcore's cost of serving that queue grows with the square of its
length: the queue then never drains and the prober collapses (issue 10). How many runs may be in
flight at once is bounded by one semaphore sized to the host (:func:`probe_concurrency`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import httpx
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from monitor.metrics import Metrics
from model.labels import METRIC_NAME, Labels
from monitor.tsdb.store import SampleStore
from probes import PROBES
from probes.base import ProbeResult, ProbeSettings, Sample, run_probe

log = logging.getLogger("monitor.probes")

#: Help text of the samples every probe emits (the harness adds them).
COMMON_HELP = {
    "probe_success": "Whether the probe succeeded (1) or failed (0).",
    "probe_duration_seconds": "How long the probe took to complete, in seconds.",
}
#: How many past results of each probe are kept for ``/api/v1/probes``.
HISTORY = 10
#: The samples, logs and details of every result kept in a history: none (shared, never mutated).
_NO_SAMPLES: list[Sample] = []
_NO_LOGS: list[str] = []
#: Connections one probe's client may hold at once: its requests run one after another, so one
#: is in use and one may still be closing (a timed-out request's connection is discarded).
PROBE_MAX_CONNECTIONS = 2
#: Open files kept for everything but probe connections (listeners, the state store, scrapes,
#: notifier connections, log files).
RESERVED_FILES = 256
#: Upper bound of :func:`probe_concurrency`, whatever the open-files limit.
MAX_PROBE_CONCURRENCY = 10_000


def probe_concurrency(open_files: int | None = None) -> int:
    """Return how many probe runs this host lets be in flight at once.

    A run in flight holds at most :data:`PROBE_MAX_CONNECTIONS` sockets; the bound keeps
    :data:`RESERVED_FILES` open files for the rest of the daemon, so a mass outage in which every
    target hangs can never exhaust the process's file descriptors (``EMFILE`` would fail the
    daemon's own listeners and state store). Probes waiting for a slot are not timed: their run
    starts, and is timed, once it has one.

    :param open_files: the soft ``RLIMIT_NOFILE``; read from the process when ``None``.
    :return: a number of runs, at least 16 and at most :data:`MAX_PROBE_CONCURRENCY`.
    """
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if open_files == resource.RLIM_INFINITY:
            open_files = MAX_PROBE_CONCURRENCY * PROBE_MAX_CONNECTIONS + RESERVED_FILES
    return max(16, min(MAX_PROBE_CONCURRENCY, (open_files - RESERVED_FILES) // PROBE_MAX_CONNECTIONS))


def raise_open_files_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit, as the Go runtime does at start-up for
    Prometheus and blackbox_exporter (Go 1.19+); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a sandbox may forbid it: keep the soft limit
            log.debug("cannot raise the open-files limit", extra={"soft": soft, "hard": hard})
    return soft


class ProbeClients:
    """Build one small ``httpx.AsyncClient`` per probe (its own pool: no queue shared between
    probes), every one verifying certificates with one shared TLS context.

    Clients keep no connection alive between requests (``max_keepalive_connections=0``), so
    every request measures a connection of its own, as blackbox_exporter's probes do, and no
    idle socket per probe lingers between runs. Building a client is cheap (tens of
    microseconds; the TLS context, which costs ~20 ms to load, is built once) unless the
    environment names a proxy (``HTTPS_PROXY``...): then clients read it, as httpx's default
    clients do, at ~1 ms a client.

    Usage::

        clients = ProbeClients()
        client = clients.new()          # one per probe; its owner closes it
        await client.aclose()

    :param ssl_context: the TLS context every client verifies with (httpx's default context,
        honouring ``SSL_CERT_FILE``/``SSL_CERT_DIR``, when ``None``).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._limits = httpx.Limits(max_connections=PROBE_MAX_CONNECTIONS, max_keepalive_connections=0)
        self._env_proxies = bool(urllib.request.getproxies())

    def new(self) -> httpx.AsyncClient:
        """Return a new client for one probe (the caller closes it)."""
        if self._env_proxies:  # let httpx mount the environment's proxies, as its default client does
            return httpx.AsyncClient(verify=self._ssl, limits=self._limits, follow_redirects=False)
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=self._limits)
        return httpx.AsyncClient(transport=transport, follow_redirects=False)


class ProbeRunner:
    """Owns one instance of every configured probe.

    :param settings: the probes' validated settings (``Config.probes``).
    :param store: the sample store the samples go to.
    :param metrics: the daemon's metrics (runs by outcome, duration histogram).
    :param clients: gives every probe an HTTP client of its own (owned and closed by this
        runner); without it, probes get ``resources['http_client']`` or build their own.
    :param slots: bounds how many runs are in flight at once (shared by the runners of
        successive reloads; see :func:`probe_concurrency`); unbounded when ``None``.
    :param resources: shared objects passed to every probe (e.g. ``http_client``).
    """

    def __init__(self, settings: Iterable[ProbeSettings], store: SampleStore, metrics: Metrics, *,
                 clients: ProbeClients | None = None, slots: asyncio.Semaphore | None = None,
                 **resources: Any) -> None:
        self._store = store
        self._metrics = metrics
        self._slots = slots
        self.settings: dict[str, ProbeSettings] = {s.name: s for s in settings}
        self._clients: list[httpx.AsyncClient] = []
        self._probes = {name: PROBES[s.kind](s, **self._resources(clients, resources))
                        for name, s in self.settings.items()}
        self.last: dict[str, ProbeResult] = {}
        self.history: dict[str, deque[ProbeResult]] = {n: deque(maxlen=HISTORY) for n in self.settings}
        self._series: dict[str, set[Labels]] = {n: set() for n in self.settings}
        self._running: set[asyncio.Task[Any]] = set()

    def _resources(self, clients: ProbeClients | None, shared: dict[str, Any]) -> dict[str, Any]:
        if clients is None:
            return shared
        client = clients.new()
        self._clients.append(client)
        return {**shared, "http_client": client}

    def base_labels(self, name: str) -> dict[str, str]:
        """Return the labels every sample of probe ``name`` carries."""
        s = self.settings[name]
        return {**s.labels, "probe": name, "target": s.target(), "kind": s.kind}

    async def run(self, name: str) -> ProbeResult:
        """Run probe ``name`` once under its timeout, record and return the result. Never raises.

        The run first waits for a slot (see ``slots``); its samples carry the time the run
        started, as Prometheus stamps a scrape's samples with the scrape's start, so a probe's
        samples are one interval apart whatever each run lasts.
        """
        task = asyncio.current_task()
        assert task is not None  # a coroutine awaited on a running loop always has a task
        self._running.add(task)
        try:
            if self._slots is None:
                return await self._run(name)
            async with self._slots:
                return await self._run(name)
        finally:
            self._running.discard(task)

    async def _run(self, name: str) -> ProbeResult:
        started = time.time()
        result = await run_probe(self._probes[name], self.settings[name].timeout)
        self._record(name, result, started)
        return result

    async def run_all(self) -> dict[str, ProbeResult]:
        """Run every probe once, concurrently; return ``{name: result}``."""
        names = list(self.settings)
        results = await asyncio.gather(*(self.run(n) for n in names))
        return dict(zip(names, results))

    def _record(self, name: str, result: ProbeResult, started: float) -> None:
        s = self.settings[name]
        self.last[name] = result
        self.history[name].append(history_entry(result))
        outcome = "success" if result.success else "failure"
        self._metrics.probe_runs.labels(name, s.kind, outcome).inc()
        self._metrics.probe_duration.labels(name, s.kind).observe(result.duration_seconds)
        if not result.success:
            log.warning("probe failed", extra={"probe": name, "kind": s.kind, "target": s.target(),
                                               "error": result.error})
        t_ms = int(started * 1000)
        base = self.base_labels(name)
        batch = []
        seen: set[Labels] = set()
        for sample in result.samples:
            lbl = Labels.of({**sample.labels, **base, METRIC_NAME: sample.name})
            seen.add(lbl)
            batch.append((lbl, t_ms, sample.value))
        self._store.append_batch(batch)
        for gone in self._series[name] - seen:
            self._store.mark_stale(gone, t_ms)
        self._series[name] = seen

    def help_for(self, name: str, metric: str) -> str:
        """Return the help text of ``metric`` as emitted by probe ``name``."""
        probe = self._probes[name]
        helps = {**getattr(type(probe), "METRICS", {}), **getattr(probe, "metrics", {})}
        return helps.get(metric) or COMMON_HELP.get(metric) or metric

    async def close(self, grace: float | None = None) -> None:
        """Close every probe's own resources and the clients built for them, once the runs in
        flight have ended.

        :param grace: seconds to wait for runs in flight (they end within their timeout) before
            cancelling them; ``None`` waits up to the longest probe timeout, 0 cancels at once.
        """
        running = {t for t in self._running if not t.done()}
        if running:
            if grace is None:
                grace = max((s.timeout for s in self.settings.values()), default=0.0) + 1.0
            _, pending = await asyncio.wait(running, timeout=grace) if grace > 0 else (set(), running)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        for p in self._probes.values():
            try:
                await p.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.exception("closing probe failed")
        for c in self._clients:
            await c.aclose()
        self._clients.clear()


def history_entry(result: ProbeResult) -> ProbeResult:
    """Return what a probe's history keeps of ``result``: outcome, reason, duration and time,
    without samples, logs or details (the last result keeps those).

    One object instead of about ten: thousands of probes times :data:`HISTORY` full results
    were most of the objects the cyclic garbage collector walks, and its full collections
    stalled the event loop for over 100 ms at 1,000 probes.
    """
    return ProbeResult(result.success, result.duration_seconds, _NO_SAMPLES, result.error, _NO_LOGS,
                       {}, result.finished_at)


def probe_job(runner: Callable[[], ProbeRunner], name: str) -> Callable[[], Awaitable[None]]:
    """Return the scheduler job running probe ``name`` once on the current runner (a reload
    replaces the runner). The job never raises; cancelled at shutdown, it just ends."""
    async def job() -> None:
        try:
            await runner().run(name)
        except asyncio.CancelledError:  # shutdown while the probe ran: not an error
            log.debug("probe cancelled at shutdown", extra={"probe": name})
    return job


class ProbeCollector(Collector):
    """Export the last result of every probe as gauges (``probe_success``, ``probe_*``).

    Each metric name becomes one family; each sample keeps exactly its own labels.

    :param runner: returns the running :class:`ProbeRunner` (a reload replaces it).
    """

    def __init__(self, runner: Callable[[], ProbeRunner]) -> None:
        self._runner = runner

    def collect(self) -> Iterator[Metric]:
        """Yield one gauge family per metric name the probes reported last."""
        runner = self._runner()
        by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
        helps: dict[str, str] = {}
        for name, result in list(runner.last.items()):
            base = runner.base_labels(name)
            for sample in result.samples:
                by_name.setdefault(sample.name, []).append(({**sample.labels, **base}, sample.value))
                helps.setdefault(sample.name, runner.help_for(name, sample.name))
        for metric, rows in by_name.items():
            fam = Metric(metric, helps[metric], "gauge")
            for labels, value in rows:
                fam.add_sample(metric, labels, value)
            yield fam
