"""The daemon's own metrics as series in its sample store, so PromQL sees them like any other.

Grafana pointed straight at the daemon (no Prometheus in between) queries ``monitor_*`` and
``process_*`` — the "monitor itself" dashboard, ``monitor_escalations_active``, ... — which live
in the ``/metrics`` registry, not in the store. :class:`SelfScrape` copies them in every
:data:`SELF_SCRAPE_INTERVAL` seconds, as a scrape of ``/metrics`` would (Prometheus
``scrape/scrape.go``): every sample of a family whose name starts with one of :data:`PREFIXES`,
with the target labels ``job`` (:data:`SELF_JOB`, the job the shipped dashboards and the exported
scrape config use) and ``instance`` (``host:port`` of ``server.external_url``), stamped with the
collection time; a series that disappears gets a staleness marker. ``probe_*`` and ``ALERTS``
are left out: the probes and the rule evaluator already write those into the store.

Also the source of ``/api/v1/metadata``: :func:`registry_metadata`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from model.labels import METRIC_NAME, Labels
from monitor.tsdb.store import SampleStore

__all__ = ["PREFIXES", "SELF_JOB", "SELF_SCRAPE_INTERVAL", "SelfScrape", "merge_metadata", "registry_metadata"]

#: Seconds between two copies (Prometheus's default ``scrape_interval`` is 1m; the daemon's own
#: scrape targets default to 15 s, and so does this).
SELF_SCRAPE_INTERVAL = 15.0
#: The ``job`` label of the copied series.
SELF_JOB = "codebook-monitor"
#: Families copied (by name prefix).
PREFIXES = ("monitor_", "process_")


class SelfScrape:
    """Copies the registry's ``monitor_*`` / ``process_*`` samples into the store.

    :param registry: the ``/metrics`` registry.
    :param store: the sample store.
    :param instance: returns the ``instance`` label (``host:port``; read at each copy: ``--port``
        and reloads change it).
    :param refresh: called before each copy (updates gauges read on demand, as ``/metrics`` does).
    :param clock: returns Unix seconds.

    Usage: ``scheduler.add_interval_job("self:scrape", SelfScrape(registry, store, lambda: "127.0.0.1:9115").run, 15)``.
    """

    def __init__(self, registry: CollectorRegistry, store: SampleStore, instance: Callable[[], str], *,
                 refresh: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time) -> None:
        self._registry = registry
        self._store = store
        self.instance = instance
        self._refresh = refresh
        self._clock = clock
        self._last: set[Labels] = set()

    def collect(self) -> list[tuple[Labels, float]]:
        """Return ``(labels, value)`` of every sample of the copied families."""
        self._refresh()
        out: list[tuple[Labels, float]] = []
        target = {"job": SELF_JOB, "instance": self.instance()}
        for family in self._registry.collect():
            if not family.name.startswith(PREFIXES):
                continue
            for s in family.samples:
                out.append((Labels.of({**s.labels, **target, METRIC_NAME: s.name}), float(s.value)))
        return out

    async def run(self) -> None:
        """Copy once (the scheduler job); series gone since the last copy are marked stale."""
        t = int(self._clock() * 1000)
        samples = self.collect()
        self._store.append_batch((lbl, t, v) for lbl, v in samples)
        now = {lbl for lbl, _ in samples}
        for gone in self._last - now:
            self._store.mark_stale(gone, t)
        self._last = now


def registry_metadata(registry: CollectorRegistry) -> dict[str, list[dict[str, str]]]:
    """Return ``/api/v1/metadata`` data for ``registry``: ``{name: [{"type", "help", "unit"}]}``,
    named as the text format's ``# TYPE`` line names the family (a counter with ``_total``)."""
    out: dict[str, list[dict[str, str]]] = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        kind = family.type if family.type in ("counter", "gauge", "histogram", "summary", "info",
                                              "stateset", "gaugehistogram") else "unknown"
        out[name] = [{"type": kind, "help": family.documentation, "unit": family.unit or ""}]
    return out


def merge_metadata(*sources: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Merge ``/api/v1/metadata`` data (the scrape targets' and the daemon's own): per family, each
    distinct ``{"type", "help", "unit"}`` once, in the order first met."""
    out: dict[str, list[dict[str, str]]] = {}
    for source in sources:
        for name, entries in source.items():
            have = out.setdefault(name, [])
            have.extend(e for e in entries if e not in have)
    return out
