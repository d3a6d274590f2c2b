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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from monitor.metrics import Metrics
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

    def base_labels(self, name: str) -> dict[str, str]:
        """Return the labels every sample of probe ``name`` carries."""
        s = self.settings[name]
        return {**s.labels, "probe": name, "target": s.target(), "kind": s.kind}

    async def run(self, name: str) -> ProbeResult:
        """Run probe ``name`` once under its timeout, record and return the result. Never raises.

        Its samples carry the time the run started, as Prometheus stamps a scrape's samples with
        the scrape's start, so a probe's samples are one interval apart whatever each run lasts.
        """
        s = self.settings[name]
        started = time.time()
        result = await run_probe(self._probes[name], s.timeout)
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
        self.history[name].append(result)
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
