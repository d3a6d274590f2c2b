"""Run the configured probes, keep their last results, write their samples to the store,
and export them on ``/metrics``.

Every probe sample is labelled ``probe`` (the probe's name), ``target`` (what it checks),
``instance`` (the same target, where blackbox_exporter's dashboards look for it: a Prometheus
scraping blackbox_exporter relabels the probed target into ``instance``) and ``kind`` (the probe
kind), plus the probe's configured ``labels``. A Prometheus scraping ``/metrics`` keeps these
with ``honor_labels: true``; without it, its own ``instance`` renames ours ``exported_instance``. A series a probe stops
reporting gets a staleness marker, as Prometheus does for a vanished scrape series
(``scrape/scrape.go``).

Each probe measures its own connection, as blackbox_exporter's do (``prober/http.go`` builds a
client per probe, keep-alives off): :class:`ProbeClients` gives probes a client whose transport
opens a connection per request and has no pool, so no queue is shared between probes. One
shared pool would be a single queue for every target, and when targets fail all at once
httpcore's cost of serving that queue grows with the square of its length: the queue then never
drains and the prober collapses (issue 10). How many runs may be in flight at once is bounded by
one semaphore sized to the host (:func:`probe_concurrency`).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import resource
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.logging import FailureLog
from monitor.metrics import Metrics, RenderedMetric, line_prefix
from model.labels import METRIC_NAME, Labels
from monitor.tsdb.store import SampleStore
from probes import PROBES
from probes.base import ProbeResult, ProbeSettings, Sample, run_probe
from probes.transport import ProbeTransport

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
#: Connections one probe run may hold at once: its requests run one after another, so one is in
#: use and one may still be closing (a closed connection's socket is released by the loop).
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
    """Give every probe its HTTP client: one shared client whose transport opens a connection
    per request (:class:`~probes.transport.ProbeTransport`), verifying certificates with one
    shared TLS context.

    Nothing of it is shared between requests but the TLS context: no pool, no queue, no
    connection kept alive, so every request measures a connection of its own, as
    blackbox_exporter's probes do, and no queue's cost grows with the requests in flight. Its
    cookie jar accepts no cookie, so no probe sees another's cookies (blackbox_exporter keeps
    none between runs either). When the environment names a proxy (``HTTPS_PROXY``...), each
    probe gets a client of its own that mounts it, as httpx's default clients do (~1 ms each).

    Usage::

        clients = ProbeClients()
        client, owned = clients.client()   # one per probe; closed by the caller if owned
        await clients.aclose()              # at shutdown: the shared client

    :param ssl_context: the TLS context every client verifies with (httpx's default context,
        honouring ``SSL_CERT_FILE``/``SSL_CERT_DIR``, when ``None``).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._limits = httpx.Limits(max_connections=PROBE_MAX_CONNECTIONS, max_keepalive_connections=0)
        self._env_proxies = bool(urllib.request.getproxies())
        self._shared: httpx.AsyncClient | None = None

    def client(self) -> tuple[httpx.AsyncClient, bool]:
        """Return the client for one probe and whether the caller owns it (and closes it)."""
        if self._env_proxies:  # let httpx mount the environment's proxies, as its default client does
            return httpx.AsyncClient(verify=self._ssl, limits=self._limits, follow_redirects=False), True
        if self._shared is None or self._shared.is_closed:
            no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            self._shared = httpx.AsyncClient(transport=ProbeTransport(self._ssl), follow_redirects=False,
                                             cookies=no_cookies)
        return self._shared, False

    async def aclose(self) -> None:
        """Close the shared client (it holds no connection: this only marks it closed)."""
        if self._shared is not None:
            await self._shared.aclose()


class ProbeRunner:
    """Owns one instance of every configured probe.

    :param settings: the probes' validated settings (``Config.probes``).
    :param store: the sample store the samples go to.
    :param metrics: the daemon's metrics (runs by outcome, duration histogram).
    :param clients: gives every probe its HTTP client (this runner closes those it owns, not
        the shared one); without it, probes get ``resources['http_client']`` or build their own.
    :param slots: bounds how many runs are in flight at once (shared by the runners of
        successive reloads; see :func:`probe_concurrency`); unbounded when ``None``.
    :param resources: shared objects passed to every probe (e.g. ``http_client``).
    :param kind_resources: ``{probe kind: {name: object}}`` passed to the probes of that kind
        only (the ``backup`` probe's ``restore_log``).
    """

    def __init__(self, settings: Iterable[ProbeSettings], store: SampleStore, metrics: Metrics, *,
                 clients: ProbeClients | None = None, slots: asyncio.Semaphore | None = None,
                 kind_resources: Mapping[str, Mapping[str, Any]] | None = None, **resources: Any) -> None:
        self._store = store
        self._metrics = metrics
        self._slots = slots
        self.settings: dict[str, ProbeSettings] = {s.name: s for s in settings}
        self._clients: list[httpx.AsyncClient] = []
        per_kind = kind_resources or {}
        self._probes = {name: PROBES[s.kind](s, **self._resources(clients, resources), **per_kind.get(s.kind, {}))
                        for name, s in self.settings.items()}
        self.last: dict[str, ProbeResult] = {}
        self.history: dict[str, deque[ProbeResult]] = {n: deque(maxlen=HISTORY) for n in self.settings}
        #: probe -> {sample key: the label set of that series}
        self._series: dict[str, dict[Any, Labels]] = {n: {} for n in self.settings}
        #: Called with ``(probe name, result)`` after each result is recorded (the ``/metrics``
        #: exposition renders it then, not all at once when scraped).
        self.on_result: list[Callable[[str, ProbeResult], None]] = []
        self._running: set[asyncio.Task[Any]] = set()
        #: "probe failed" once when a probe starts failing, then every 5 minutes while it fails,
        #: "probe recovered" when it succeeds again (not a line at every run of a failing probe).
        self.failures = FailureLog()

    def _resources(self, clients: ProbeClients | None, shared: dict[str, Any]) -> dict[str, Any]:
        if clients is None:
            return shared
        client, owned = clients.client()
        if owned:
            self._clients.append(client)
        return {**shared, "http_client": client}

    def base_labels(self, name: str) -> dict[str, str]:
        """Return the labels every sample of probe ``name`` carries (``instance`` is the target,
        as in blackbox_exporter's dashboards)."""
        s = self.settings[name]
        target = s.target()
        return {**s.labels, "probe": name, "target": target, "instance": target, "kind": s.kind}

    async def run(self, name: str) -> ProbeResult:
        """Run probe ``name`` once under its timeout, record and return the result. Never raises.

        The run first waits for a slot (see ``slots``); its samples carry the time the run
        started, as Prometheus stamps a scrape's samples with the scrape's start, so a probe's
        samples are one interval apart whatever each run lasts.
        """
        result = await self.run_admitted(name, None)
        assert result is not None  # admitted without an admission check
        return result

    async def run_admitted(self, name: str, admit: Callable[[str], bool] | None) -> ProbeResult | None:
        """Run probe ``name`` as :meth:`run` does if ``admit(name)`` (asked once the run has its
        slot, just before it starts) is true; return ``None`` when it is not (the probe sharded to
        another replica: :meth:`monitor.daemon.sharding.ProbeShards.may_run`)."""
        task = asyncio.current_task()
        assert task is not None  # a coroutine awaited on a running loop always has a task
        self._running.add(task)
        try:
            if self._slots is None:
                return await self._run_if(name, admit)
            async with self._slots:
                return await self._run_if(name, admit)
        finally:
            self._running.discard(task)

    async def _run_if(self, name: str, admit: Callable[[str], bool] | None) -> ProbeResult | None:
        if admit is not None and not admit(name):
            return None
        return await self._run(name)

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
        self._metrics.probe_duration.labels(s.kind).observe(result.duration_seconds)
        if not result.success:
            if (n := self.failures.failed(name)) is not None:
                log.warning("probe failed" if n == 1 else "probe still failing",
                            extra={"probe": name, "kind": s.kind, "target": s.target(), "error": result.error,
                                   "failures": n})
        elif (n := self.failures.recovered(name)) is not None:
            log.info("probe recovered", extra={"probe": name, "kind": s.kind, "target": s.target(), "failures": n})
        t_ms = int(started * 1000)
        # the label set of each series this probe reports, built once and then the store's own
        # copy (one per series in memory, no sorting or hashing of a new one each run)
        series = self._series[name]
        batch = []
        seen: set[Any] = set()
        new: list[Any] = []
        base: dict[str, str] | None = None
        for sample in result.samples:
            key = (sample.name, *sample.labels.items()) if sample.labels else sample.name
            seen.add(key)
            lbl = series.get(key)
            if lbl is None:
                if base is None:
                    base = self.base_labels(name)
                lbl = series[key] = Labels.of({**sample.labels, **base, METRIC_NAME: sample.name})
                new.append(key)
            batch.append((lbl, t_ms, sample.value))
        self._store.append_batch(batch)
        for key in new:
            series[key] = self._store.stored_labels(series[key]) or series[key]
        if len(series) > len(seen):
            for key in series.keys() - seen:
                self._store.mark_stale(series.pop(key), t_ms)
        for fn in self.on_result:
            fn(name, result)

    def family_of(self, name: str, metric: str) -> tuple[str, str]:
        """Return the family and type a sample ``metric`` of probe ``name`` is exposed under:
        ``(metric, "gauge")``, or ``(histogram, "histogram")`` for the ``_bucket``/``_sum``/``_count``
        samples of a histogram the probe lists in its ``HISTOGRAMS``."""
        histograms = getattr(type(self._probes[name]), "HISTOGRAMS", ())
        if histograms:
            base, _, suffix = metric.rpartition("_")
            if suffix in ("bucket", "sum", "count") and base in histograms:
                return base, "histogram"
        return metric, "gauge"

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


def probe_job(runner: Callable[[], ProbeRunner], name: str,
              admit: Callable[[str], bool] | None = None) -> Callable[[], Awaitable[None]]:
    """Return the scheduler job running probe ``name`` once on the current runner (a reload
    replaces the runner), if ``admit(name)`` (see :meth:`ProbeRunner.run_admitted`). The job
    never raises; cancelled at shutdown, it just ends."""
    async def job() -> None:
        try:
            await runner().run_admitted(name, admit)
        except asyncio.CancelledError:  # shutdown while the probe ran: not an error
            log.debug("probe cancelled at shutdown", extra={"probe": name})
    return job


class ProbeCollector(Collector):
    """Export the last result of every probe as gauges (``probe_success``, ``probe_*``).

    Each metric name becomes one family; each sample keeps exactly its own labels plus the
    probe's (:meth:`ProbeRunner.base_labels`). With thousands of probes this is most of
    ``/metrics``, so each result is rendered to text once, when the runner records it (the
    labels of each series escaped once and kept), and a scrape joins the kept text
    (:class:`~monitor.metrics.RenderedMetric`); ``benchmarks/metrics_bench.py`` has the figures.

    :param runner: returns the running :class:`ProbeRunner` (a reload replaces it).
    """

    def __init__(self, runner: Callable[[], ProbeRunner]) -> None:
        self._runner = runner
        self._attached: ProbeRunner | None = None
        #: family -> probe -> that probe's lines of the family
        self._lines: dict[str, dict[str, str]] = {}
        self._helps: dict[str, str] = {}
        self._types: dict[str, str] = {}
        #: probe -> the runner and result its lines show (after a reload the same result may need
        #: other labels)
        self._shown: dict[str, tuple[ProbeRunner, ProbeResult]] = {}
        #: probe -> (its settings, its base labels, {sample key: (family, line prefix)})
        self._prefixes: dict[str, tuple[ProbeSettings, dict[str, str], dict[Any, tuple[str, str]]]] = {}
        self._attach(runner())

    def _attach(self, runner: ProbeRunner) -> None:
        """Render ``runner``'s results as it records them (an old runner's are ignored)."""
        def on_result(name: str, result: ProbeResult) -> None:
            if self._runner() is not runner:
                return
            try:
                self._render(runner, name, result)
            except Exception:  # noqa: BLE001 - the exposition must never fail a probe run
                log.exception("rendering a probe result for /metrics failed", extra={"probe": name})

        runner.on_result.append(on_result)
        self._attached = runner

    def _render(self, runner: ProbeRunner, name: str, result: ProbeResult) -> None:
        """Keep the lines of probe ``name``'s ``result``, by family."""
        settings = runner.settings[name]
        cached = self._prefixes.get(name)
        if cached is None or cached[0] is not settings:  # a new probe, or a reload
            base = runner.base_labels(name)
            # the kept prefixes stay right if the probe's labels did not change
            cached = (settings, base, cached[2] if cached is not None and cached[1] == base else {})
            self._prefixes[name] = cached
        _, base, prefixes = cached
        lines: dict[str, list[str]] = {}
        for sample in result.samples:
            key = (sample.name, *sample.labels.items()) if sample.labels else sample.name
            got = prefixes.get(key)
            if got is None:
                family, typ = runner.family_of(name, sample.name)
                got = prefixes[key] = (family, line_prefix(sample.name, {**sample.labels, **base}))
                if family not in self._helps:
                    self._helps[family] = runner.help_for(name, family)
                    self._types[family] = typ
            family, prefix = got
            lines.setdefault(family, []).append(f"{prefix}{floatToGoString(sample.value)}\n")
        previous = self._shown.get(name)
        if previous is not None:
            for family in {runner.family_of(name, s.name)[0] for s in previous[1].samples} - lines.keys():
                self._drop(family, name)
        for family, parts in lines.items():
            self._lines.setdefault(family, {})[name] = "".join(parts)
        self._shown[name] = (runner, result)

    def _drop(self, family: str, name: str) -> None:
        probes = self._lines.get(family)
        if probes is not None:
            probes.pop(name, None)
            if not probes:
                del self._lines[family]

    def _forget(self, name: str) -> None:
        _, result = self._shown.pop(name)
        families = {s.name for s in result.samples}
        families |= {family for family, probes in self._lines.items() if name in probes}
        for family in families:
            self._drop(family, name)
        self._prefixes.pop(name, None)

    def collect(self) -> Iterator[Metric]:
        """Yield one gauge family per metric name the probes reported last."""
        runner = self._runner()
        if runner is not self._attached:
            self._attach(runner)
        last = dict(runner.last)
        shown = self._shown
        for name, result in last.items():  # results recorded before attaching (a reload copies them)
            got = shown.get(name)
            if got is None or got[1] is not result or got[0] is not runner:
                self._render(runner, name, result)
        if len(shown) != len(last):
            for name in shown.keys() - last.keys():  # probes removed by a reload
                self._forget(name)
        for family, probes in self._lines.items():
            typ = self._types.get(family, "gauge")
            yield RenderedMetric(family, self._helps[family], typ, "".join(probes.values()),
                                 _samples_of(runner, list(probes), last, family, typ))


def _samples_of(runner: ProbeRunner, names: list[str], last: dict[str, ProbeResult],
                family: str, typ: str = "gauge") -> Callable[[], list[tuple[str, dict[str, str], float]]]:
    """Return a builder of ``family``'s samples from the results of probes ``names``, in the
    order of the rendered lines (for readers of ``samples``: ``get_sample_value``,
    ``generate_latest``)."""
    def build() -> list[tuple[str, dict[str, str], float]]:
        out: list[tuple[str, dict[str, str], float]] = []
        for name in names:
            base = runner.base_labels(name)
            if typ == "histogram":
                wanted = {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
                out.extend((sample.name, {**sample.labels, **base}, sample.value)
                           for sample in last[name].samples if sample.name in wanted)
            else:
                out.extend((family, {**sample.labels, **base}, sample.value)
                           for sample in last[name].samples if sample.name == family)
        return out
    return build
