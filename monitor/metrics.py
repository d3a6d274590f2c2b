"""The daemon's own ``monitor_*`` metrics, declared once on an injected registry, and the
``/metrics`` rendering.

Declared in one block (name, help sentence, labels), after Alertmanager ``NewMetrics`` in
``notify/notify.go``; the registry is a constructor argument so tests get a fresh one
(client_python ``tests/test_core.py``).

``/metrics`` must stay cheap with thousands of probes (issue 10: < 50 ms at 5,000). Rendering
through ``prometheus_client`` costs about 10 us per line — collecting each child, sorting and
escaping its labels, formatting its value — so families with a child per probe, job or target
render their lines themselves, the labels of each series escaped once and kept:
:class:`LabelledCounter` for the counters here, the probe collector
(:class:`monitor.daemon.probing.ProbeCollector`) for probe results. They yield a
:class:`RenderedMetric`, whose text :func:`render_text` copies as is; every other family goes
through ``generate_latest``, so the output is byte for byte what ``generate_latest`` would
write. A rendered family still has ``samples`` (built when read) for every other reader
(``registry.get_sample_value``, ``generate_latest``).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from monitor import __version__

__all__ = ["DURATION_BUCKETS", "LAG_BUCKETS", "LabelledCounter", "Metrics", "RenderedMetric", "line_prefix",
           "render_text"]

#: Buckets for durations of probes, scrapes and evaluations, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Buckets for scheduling lag, in seconds (the target is p99 < 0.1 s).
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


def line_prefix(name: str, labels: Mapping[str, str]) -> str:
    """Return a sample's exposition line up to its value: ``name{a="1",b="x"} `` (one space).

    Exactly what ``generate_latest`` writes (labels sorted; names escaped the default way,
    values with backslash, newline and double quote escaped), so a caller can keep it and
    append the value (``floatToGoString``) and a newline at each rendering.
    """
    if not labels:
        return f"{escape_metric_name(name)} "
    inner = ",".join('{}="{}"'.format(escape_label_name(k), v.replace("\\", r"\\").replace("\n", r"\n")
                                      .replace('"', r'\"'))
                     for k, v in sorted(labels.items()))
    return f"{escape_metric_name(name)}{{{inner}}} "


class RenderedMetric(Metric):
    """A metric family whose sample lines are already rendered in the Prometheus text format.

    :func:`render_text` writes its header and :attr:`text`; ``samples`` are built only when
    something reads them.

    :param name: the family name (a counter's without ``_total``).
    :param documentation: the help sentence.
    :param typ: ``gauge``, ``counter``...
    :param text: the sample lines, each ending in a newline.
    :param samples: builds ``(sample name, labels, value)`` triples for readers of ``samples``.
    """

    def __init__(self, name: str, documentation: str, typ: str, text: str,
                 samples: Callable[[], Iterable[tuple[str, dict[str, str], float]]]) -> None:
        super().__init__(name, documentation, typ)
        self.text = text
        self._build = samples
        self._samples: list[Sample] | None = None

    @property
    def samples(self) -> list[Sample]:
        """The samples, built on first use."""
        if self._samples is None:
            self._samples = [Sample(n, labels, v) for n, labels, v in self._build()]
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value

    def header(self) -> str:
        """Return the ``# HELP`` and ``# TYPE`` lines ``generate_latest`` writes for this family."""
        return generate_latest(_Families([Metric(self.name, self.documentation, self.type)])).decode("utf-8")


class _Families(Collector):
    """Yield given families (lets ``generate_latest`` render a run of them)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        return iter(self._families)


def render_text(registry: Collector) -> bytes:
    """Render ``registry`` in the Prometheus text format (what ``GET /metrics`` serves).

    Byte for byte ``generate_latest(registry)``, but a :class:`RenderedMetric` is copied rather
    than rendered sample by sample.
    """
    out: list[bytes] = []
    plain: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, RenderedMetric):
            if plain:
                out.append(generate_latest(_Families(plain)))
                plain = []
            out.append((metric.header() + metric.text).encode("utf-8"))
        else:
            plain.append(metric)
    if plain:
        out.append(generate_latest(_Families(plain)))
    return b"".join(out)


class _CounterChild:
    """One labelled child of a :class:`LabelledCounter`; keeps its exposition line current."""

    __slots__ = ("prefix", "value", "line")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.value = 0.0
        self.line = f"{prefix}0.0\n"

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount
        self.line = f"{self.prefix}{floatToGoString(self.value)}\n"


class LabelledCounter(Collector):
    """A counter with labels, for families with a child per probe, job or target.

    The part of ``prometheus_client.Counter`` the daemon uses — ``labels(*values).inc(n)`` —
    with each child's labels rendered once and its line rendered when it changes, so a scrape
    joins kept strings rather than spending ~10 us per child. Not thread-safe: the daemon
    increments it from its event loop.

    :param name: the counter's name (``_total`` is added to the sample name if missing).
    :param documentation: the help sentence.
    :param labelnames: the label names, in the order ``labels()`` takes their values.
    :param registry: registered on it when given.

    >>> runs = LabelledCounter("monitor_probe_runs_total", "Probe runs.", ["probe"])
    >>> runs.labels("api").inc()
    >>> render_text(_Families(list(runs.collect()))).decode().splitlines()[-1]
    'monitor_probe_runs_total{probe="api"} 1.0'
    """

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str],
                 registry: CollectorRegistry | None = None) -> None:
        self.name = name[:-len("_total")] if name.endswith("_total") else name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _CounterChild] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _CounterChild:
        """Return the child for these label values (created at 0 on first use)."""
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values, got {len(key)}")
            child = _CounterChild(line_prefix(self.name + "_total", dict(zip(self.labelnames, key))))
            self._children[key] = child
        return child

    def describe(self) -> Iterator[Metric]:
        """Yield the family without samples (the registry checks names with it)."""
        yield Metric(self.name, self.documentation, "counter")

    def collect(self) -> Iterator[Metric]:
        """Yield the family, its lines rendered from the kept prefixes."""
        children = list(self._children.items())
        text = "".join([c.line for _, c in children])
        sample, names = self.name + "_total", self.labelnames
        yield RenderedMetric(self.name, self.documentation, "counter", text,
                             lambda: [(sample, dict(zip(names, key)), c.value) for key, c in children])


class Metrics:
    """Every ``monitor_*`` metric of the daemon, registered on ``registry``.

    :param registry: the registry to register on (a fresh one per daemon and per test).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.build_info = Info("monitor_build", "Version of codebook-monitor and of Python.", registry=registry)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.probe_runs = LabelledCounter(
            "monitor_probe_runs_total", "Probe runs, by probe, kind and outcome (success or failure).",
            ["probe", "kind", "outcome"], registry=registry)
        # Per kind, not per probe: 15 lines per probe were most of /metrics. The last run of each
        # probe is the probe_duration_seconds{probe} gauge the probe collector exports.
        self.probe_duration = Histogram(
            "monitor_probe_duration_seconds",
            "Duration of probe runs in seconds, by probe kind (each probe's last run: probe_duration_seconds).",
            ["kind"], buckets=DURATION_BUCKETS, registry=registry)
        self.scheduler_lag = Histogram(
            "monitor_scheduler_lag_seconds",
            "Delay between a job's scheduled run time and its start, in seconds.",
            buckets=LAG_BUCKETS, registry=registry)
        self.scheduler_missed = LabelledCounter(
            "monitor_scheduler_missed_runs_total", "Job runs missed (started too late and dropped).",
            ["job"], registry=registry)
        self.scheduler_overlaps = LabelledCounter(
            "monitor_scheduler_skipped_overlapping_runs_total",
            "Job runs skipped because the previous run of the same job was still going.",
            ["job"], registry=registry)
        self.scrapes = LabelledCounter(
            "monitor_scrapes_total", "Scrapes of targets, by job and outcome (success or failure).",
            ["job", "outcome"], registry=registry)
        self.scrape_errors = LabelledCounter(
            "monitor_scrape_errors_total",
            "Failed scrapes, by job and reason (failed: every failed scrape; parse: also counted there, the "
            "exposition broke the text format or OpenMetrics).",
            ["job", "reason"], registry=registry)
        self.tsdb_series = Gauge("monitor_tsdb_series", "Series in the in-memory sample store.", registry=registry)
        self.tsdb_samples = Gauge("monitor_tsdb_samples", "Samples in the in-memory sample store.", registry=registry)
        self.tsdb_memory = Gauge(
            "monitor_tsdb_memory_bytes",
            "Estimated memory of the sample store in bytes (sample arrays and label strings; set at each "
            "retention sweep and scrape).", registry=registry)
        # monitor_tsdb_rejected_series_total, monitor_tsdb_out_of_order_samples_total and
        # monitor_tsdb_wal_errors_total are counters kept by the store, exposed by
        # monitor.daemon.collectors.StoreCounters.
        self.tsdb_disk = Gauge(
            "monitor_tsdb_disk_bytes",
            "Bytes the sample store holds on disk (checkpoint, blocks, WAL; 0 in memory only).", registry=registry)
        self.tsdb_checkpoint_duration = Gauge(
            "monitor_tsdb_checkpoint_duration_seconds",
            "Wall time of the sample store's last checkpoint, seconds (0 before the first).", registry=registry)
        self.tsdb_checkpoint_written = Gauge(
            "monitor_tsdb_checkpoint_written_bytes",
            "Bytes the sample store's last checkpoint wrote (head file and new block file).", registry=registry)
        self.config_reload_ok = Gauge(
            "monitor_config_last_reload_successful", "Whether the last configuration reload succeeded (1) or not (0).",
            registry=registry)
        self.config_reload_time = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration reload.", registry=registry)
        self.leader = Gauge(
            "monitor_leader",
            "Whether this replica holds the leadership (1) and runs alerting side effects, or follows (0).",
            registry=registry)
