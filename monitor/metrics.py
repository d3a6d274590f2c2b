"""The daemon's own ``monitor_*`` metrics, declared once on an injected registry.

Declared in one block (name, help sentence, labels), after Alertmanager ``NewMetrics`` in
``notify/notify.go``; the registry is a constructor argument so tests get a fresh one
(client_python ``tests/test_core.py``).
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from monitor import __version__

#: Buckets for durations of probes, scrapes and evaluations, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Buckets for scheduling lag, in seconds (the target is p99 < 0.1 s).
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """Every ``monitor_*`` metric of the daemon, registered on ``registry``.

    :param registry: the registry to register on (a fresh one per daemon and per test).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.build_info = Info("monitor_build", "Version of codebook-monitor and of Python.", registry=registry)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.probe_runs = Counter(
            "monitor_probe_runs_total", "Probe runs, by probe, kind and outcome (success or failure).",
            ["probe", "kind", "outcome"], registry=registry)
        self.probe_duration = Histogram(
            "monitor_probe_duration_seconds", "Duration of probe runs in seconds.",
            ["probe", "kind"], buckets=DURATION_BUCKETS, registry=registry)
        self.scheduler_lag = Histogram(
            "monitor_scheduler_lag_seconds",
            "Delay between a job's scheduled run time and its start, in seconds.",
            buckets=LAG_BUCKETS, registry=registry)
        self.scheduler_missed = Counter(
            "monitor_scheduler_missed_runs_total", "Job runs missed (started too late and dropped).",
            ["job"], registry=registry)
        self.scheduler_overlaps = Counter(
            "monitor_scheduler_skipped_overlapping_runs_total",
            "Job runs skipped because the previous run of the same job was still going.",
            ["job"], registry=registry)
        self.scrapes = Counter(
            "monitor_scrapes_total", "Scrapes of targets, by job and outcome (success or failure).",
            ["job", "outcome"], registry=registry)
        self.scrape_errors = Counter(
            "monitor_scrape_errors_total",
            "Scrape problems, by job and reason (failed: no usable response; malformed_line: one bad exposition line).",
            ["job", "reason"], registry=registry)
        self.tsdb_series = Gauge("monitor_tsdb_series", "Series in the in-memory sample store.", registry=registry)
        self.tsdb_samples = Gauge("monitor_tsdb_samples", "Samples in the in-memory sample store.", registry=registry)
        self.tsdb_memory = Gauge(
            "monitor_tsdb_memory_bytes", "Estimated memory of the sample store in bytes.", registry=registry)
        self.tsdb_rejected_series = Gauge(
            "monitor_tsdb_rejected_series_total",
            "New series rejected because the store was at its series limit (a counter kept by the store).",
            registry=registry)
        self.tsdb_out_of_order = Gauge(
            "monitor_tsdb_out_of_order_samples_total",
            "Samples rejected as out of order (a counter kept by the store).", registry=registry)
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
