"""Collectors that read the daemon's state at scrape time for ``/metrics``: rule evaluation
(``ALERTS``, ``ALERTS_FOR_STATE``, ``monitor_rule_*``) and who is on call (``monitor_oncall``);
and the sample store's gauges (``monitor_tsdb_*``), refreshed before each rendering.

``ALERTS{alertname, alertstate, <alert labels>} 1`` and ``ALERTS_FOR_STATE{alertname,
<alert labels>} <active_at seconds>`` are the series Prometheus writes for every pending and
firing alert (``rules/alerting.go`` ``sample`` / ``forStateSample``); the group figures mirror
Prometheus's ``prometheus_rule_*`` metrics (``rules/group.go`` ``NewGroupMetrics``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.escalation.schedule import OnCallLookup
from monitor.metrics import Metrics
from monitor.rules.manager import RuleManager
from monitor.tsdb.store import SampleStore
from model.labels import METRIC_NAME


class RuleCollector(Collector):
    """Collect ``ALERTS``/``ALERTS_FOR_STATE`` and ``monitor_rule_*`` from ``manager``."""

    def __init__(self, manager: RuleManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        """Yield ``ALERTS``, ``ALERTS_FOR_STATE`` and the ``monitor_rule_*`` families."""
        by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
        for group in self._manager.groups():
            for rule in group.rules:
                for labels, value in getattr(rule, "samples", ()):
                    d = labels.as_dict()
                    name = d.pop(METRIC_NAME)
                    by_name.setdefault(name, []).append((d, value))
        helps = {"ALERTS": "Pending and firing alerts (1 per alert; alertstate pending or firing).",
                 "ALERTS_FOR_STATE": "Unix time at which each pending or firing alert became active."}
        for name in ("ALERTS", "ALERTS_FOR_STATE"):
            fam = Metric(name, helps[name], "gauge")
            for d, v in by_name.get(name, []):
                fam.add_sample(name, d, v)
            yield fam

        labels = ["rule_group"]
        evals = CounterMetricFamily("monitor_rule_evaluations", "Rule evaluations, by group.", labels=labels)
        fails = CounterMetricFamily("monitor_rule_evaluation_failures",
                                    "Rule evaluations that failed, by group.", labels=labels)
        dur = GaugeMetricFamily("monitor_rule_group_last_duration_seconds",
                                "Duration of the last evaluation of each rule group, in seconds.", labels=labels)
        last = GaugeMetricFamily("monitor_rule_group_last_evaluation_timestamp_seconds",
                                 "Unix time of the last evaluation of each rule group.", labels=labels)
        interval = GaugeMetricFamily("monitor_rule_group_interval_seconds",
                                     "Evaluation interval of each rule group, in seconds.", labels=labels)
        rules = GaugeMetricFamily("monitor_rule_group_rules", "Rules in each rule group.", labels=labels)
        invalid = CounterMetricFamily(
            "monitor_rule_invalid_severity",
            "Alerts (per evaluation) whose templated severity expanded outside the policy, paged as critical.",
            labels=labels)
        for g in self._manager.groups():
            key = [f"{g.file};{g.name}"]
            evals.add_metric(key, g.evaluations_total)
            fails.add_metric(key, g.failures_total)
            dur.add_metric(key, g.evaluation_time)
            last.add_metric(key, g.last_evaluation or 0.0)
            interval.add_metric(key, g.interval)
            rules.add_metric(key, len(g.rules))
            invalid.add_metric(key, sum(getattr(r, "invalid_severity_total", 0) for r in g.rules))
        yield from (evals, fails, dur, last, interval, rules, invalid)
        # No separate rules reload gauge: a reload is all-or-nothing over the config and its rule
        # files, so monitor_config_last_reload_successful covers both (as Prometheus's
        # prometheus_config_last_reload_successful does).


class OnCallCollector(Collector):
    """Collect ``monitor_oncall{schedule, person} 1`` for whoever is on call now in each schedule.

    :param lookup: returns the current ``OnCallLookup`` (it changes on reload).
    :param clock: Unix seconds.
    """

    def __init__(self, lookup: Callable[[], OnCallLookup | None], clock: Callable[[], float] = time.time) -> None:
        self._lookup = lookup
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """Yield ``monitor_oncall``."""
        fam = GaugeMetricFamily("monitor_oncall", "1 for the person on call now in each schedule.",
                                labels=["schedule", "person"])
        lookup = self._lookup()
        if lookup is not None:
            now = self._clock()
            for name in sorted(lookup.schedules):
                person = lookup(f"schedule:{name}", now)
                if person is not None:
                    fam.add_metric([name, person], 1.0)
        yield fam


def update_store_gauges(metrics: Metrics, store: SampleStore) -> None:
    """Set the ``monitor_tsdb_*`` gauges (series, samples, estimated memory, disk bytes, the last
    checkpoint's duration and bytes) from ``store``; O(1) (disk bytes: a running total), run at each
    retention sweep and ``/metrics``. The store's counters are :class:`StoreCounters`."""
    metrics.tsdb_series.set(store.series_count)
    metrics.tsdb_samples.set(store.sample_count)
    metrics.tsdb_memory.set(store.estimated_memory_bytes)
    metrics.tsdb_disk.set(store.disk_bytes())
    metrics.tsdb_checkpoint_duration.set(store.last_checkpoint_seconds)
    metrics.tsdb_checkpoint_written.set(store.last_checkpoint_bytes)


class StoreCounters(Collector):
    """The sample store's own counters as counters (``TYPE counter``, so ``promtool check
    metrics`` accepts their ``_total`` names): ``monitor_tsdb_rejected_series_total`` (new series
    refused at ``tsdb.max_series``), ``monitor_tsdb_out_of_order_samples_total`` and
    ``monitor_tsdb_wal_errors_total`` (failed WAL writes, retried at the next flush)."""

    def __init__(self, store: SampleStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        """Yield the counters, read from the store at collection time."""
        yield CounterMetricFamily("monitor_tsdb_rejected_series",
                                  "New series rejected because the store was at its series limit.",
                                  value=self._store.rejected_series_total)
        yield CounterMetricFamily("monitor_tsdb_out_of_order_samples", "Samples rejected as out of order.",
                                  value=self._store.out_of_order_total)
        yield CounterMetricFamily("monitor_tsdb_wal_errors",
                                  "Failed WAL writes (disk full, I/O error; retried at the next flush).",
                                  value=self._store.wal_errors_total)
