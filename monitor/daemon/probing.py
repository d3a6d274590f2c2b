"""Run the configured probes, keep their last results, write their samples to the store,
and export them on ``/metrics``.

Every probe sample is labelled ``probe`` (the probe's name), ``target`` (what it checks) and
``kind`` (the probe kind), plus the probe's configured ``labels``. A series a probe stops
reporting gets a staleness marker, as Prometheus does for a vanished scrape series
(``scrape/scrape.go``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.metrics import Metrics, RenderedMetric, line_prefix
from model.labels import METRIC_NAME, Labels
from monitor.tsdb.store import SampleStore
from probes import PROBES
from probes.base import ProbeResult, ProbeSettings, run_probe

log = logging.getLogger("monitor.probes")

#: Help text of the samples every probe emits (the harness adds them).
COMMON_HELP = {
    "probe_success": "Whether the probe succeeded (1) or failed (0).",
    "probe_duration_seconds": "How long the probe took to complete, in seconds.",
}
#: How many past results of each probe are kept for ``/api/v1/probes``.
HISTORY = 10


class ProbeRunner:
    """Owns one instance of every configured probe.

    :param settings: the probes' validated settings (``Config.probes``).
    :param store: the sample store the samples go to.
    :param metrics: the daemon's metrics (runs by outcome, duration histogram).
    :param resources: shared objects passed to every probe (e.g. ``http_client``).
    """

    def __init__(self, settings: Iterable[ProbeSettings], store: SampleStore, metrics: Metrics,
                 **resources: Any) -> None:
        self._store = store
        self._metrics = metrics
        self.settings: dict[str, ProbeSettings] = {s.name: s for s in settings}
        self._probes = {name: PROBES[s.kind](s, **resources) for name, s in self.settings.items()}
        self.last: dict[str, ProbeResult] = {}
        self.history: dict[str, deque[ProbeResult]] = {n: deque(maxlen=HISTORY) for n in self.settings}
        self._series: dict[str, set[Labels]] = {n: set() for n in self.settings}
        #: Called with ``(probe name, result)`` after each result is recorded (the ``/metrics``
        #: exposition renders it then, not all at once when scraped).
        self.on_result: list[Callable[[str, ProbeResult], None]] = []

    def base_labels(self, name: str) -> dict[str, str]:
        """Return the labels every sample of probe ``name`` carries."""
        s = self.settings[name]
        return {**s.labels, "probe": name, "target": s.target(), "kind": s.kind}

    async def run(self, name: str) -> ProbeResult:
        """Run probe ``name`` once under its timeout, record and return the result. Never raises."""
        s = self.settings[name]
        result = await run_probe(self._probes[name], s.timeout)
        self._record(name, result)
        return result

    async def run_all(self) -> dict[str, ProbeResult]:
        """Run every probe once, concurrently; return ``{name: result}``."""
        names = list(self.settings)
        results = await asyncio.gather(*(self.run(n) for n in names))
        return dict(zip(names, results))

    def _record(self, name: str, result: ProbeResult) -> None:
        s = self.settings[name]
        self.last[name] = result
        self.history[name].append(result)
        outcome = "success" if result.success else "failure"
        self._metrics.probe_runs.labels(name, s.kind, outcome).inc()
        self._metrics.probe_duration.labels(s.kind).observe(result.duration_seconds)
        if not result.success:
            log.warning("probe failed", extra={"probe": name, "kind": s.kind, "target": s.target(),
                                               "error": result.error})
        t_ms = int(result.finished_at * 1000)
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
        for fn in self.on_result:
            fn(name, result)

    def help_for(self, name: str, metric: str) -> str:
        """Return the help text of ``metric`` as emitted by probe ``name``."""
        probe = self._probes[name]
        helps = {**getattr(type(probe), "METRICS", {}), **getattr(probe, "metrics", {})}
        return helps.get(metric) or COMMON_HELP.get(metric) or metric

    async def close(self) -> None:
        """Close every probe's own resources."""
        for p in self._probes.values():
            try:
                await p.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.exception("closing probe failed")


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
                got = prefixes[key] = (sample.name, line_prefix(sample.name, {**sample.labels, **base}))
                if sample.name not in self._helps:
                    self._helps[sample.name] = runner.help_for(name, sample.name)
            family, prefix = got
            lines.setdefault(family, []).append(f"{prefix}{floatToGoString(sample.value)}\n")
        previous = self._shown.get(name)
        if previous is not None:
            for family in {s.name for s in previous[1].samples} - lines.keys():
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
        for family in {s.name for s in result.samples}:
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
            yield RenderedMetric(family, self._helps[family], "gauge", "".join(probes.values()),
                                 _samples_of(runner, list(probes), last, family))


def _samples_of(runner: ProbeRunner, names: list[str], last: dict[str, ProbeResult],
                family: str) -> Callable[[], list[tuple[str, dict[str, str], float]]]:
    """Return a builder of ``family``'s samples from the results of probes ``names``, in the
    order of the rendered lines (for readers of ``samples``: ``get_sample_value``,
    ``generate_latest``)."""
    def build() -> list[tuple[str, dict[str, str], float]]:
        out: list[tuple[str, dict[str, str], float]] = []
        for name in names:
            base = runner.base_labels(name)
            out.extend((family, {**sample.labels, **base}, sample.value)
                       for sample in last[name].samples if sample.name == family)
        return out
    return build
