"""The alerting workloads: ``rules`` (20 rules over 1,020 series), ``fault`` (fault -> firing
notification) and ``storm`` (1,000 alerts -> 200 grouped notifications)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from stack.figures import Figures, held, ratio
from stack.procs import Meter, TargetServer, loadavg
from stack.systems import Ours, Peer, Workload

def rules_file() -> str:
    """Return the ``rules`` workload's rule file: one group of 20 rules (10 recording, 10
    alerting) over the 1,020 ``bench_requests_total`` series."""
    rules = []
    for k in range(10):
        rules.append({"record": f"service:bench_requests:rate1m_{k}",
                      "expr": f'sum by (service) (rate(bench_requests_total{{code="200",instance!="i{k}"}}[1m]))'})
    for k in range(10):
        rules.append({"alert": f"BenchErrorRatio{k}",
                      "expr": f'sum by (service) (rate(bench_requests_total{{code="500"}}[1m])) / '
                              f'sum by (service) (rate(bench_requests_total[1m])) > 0.{k + 1}',
                      "for": "1m", "labels": {"severity": "warning"},
                      "annotations": {"summary": "error ratio of {{ $labels.service }}", "description": "bench"}})
    return json.dumps({"groups": [{"name": "bench", "rules": rules}]}, indent=1)


def workload_rules(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """Both scrape the 1,020 series and evaluate the same 20 rules at the same interval."""
    w = Workload(0, args.interval, args.timeout, scrape=True, rules=rules_file(), eval_interval=args.interval)
    fig = Figures(f"20 rules (10 recording, 10 alerting) over 1,020 scraped series, scrape and evaluation every "
                  f"{w.interval:g} s, {args.repeats} alternating runs of {args.seconds:g} s")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system = cls(root / f"rules-{cls.name}-{r}", targets, w)
            try:
                time.sleep(args.warmup)
                meter = Meter(system.procs)
                durations: list[float] = []
                deadline = time.monotonic() + args.seconds
                metric = ("monitor_rule_group_last_duration_seconds" if cls is Ours
                          else "prometheus_rule_group_last_duration_seconds")
                while time.monotonic() < deadline:
                    durations += system.own_metric(metric)
                    time.sleep(min(w.eval_interval, max(0.0, deadline - time.monotonic())))
                res = meter.done()
                main_proc = "codebook-monitor" if cls is Ours else "prometheus"
                fig.add(cls.name, {"cpu_per_s": res["cpu_per_s"],
                                   "cpu_per_s_evaluator_process": res["cpu_per_s_by_process"][main_proc],
                                   "group_duration_ms_median": statistics.median(durations) * 1000
                                   if durations else math.nan,
                                   "peak_rss_mib": res["peak_rss_mib"]})
            finally:
                system.stop()
    fig.notes.append("evaluator process: ours = the daemon; peer = prometheus alone (the issue's comparison)")
    fig.targets = [
        ("process CPU <= 2x Prometheus", "cpu_per_s_evaluator_process",
         lambda f: held(ratio(f, "cpu_per_s_evaluator_process"), 2.0, "x")),
        ("group duration <= 0.5x Prometheus", "group_duration_ms_median",
         lambda f: held(ratio(f, "group_duration_ms_median"), 0.5, "x")),
    ]
    return fig


FAULT_RULES = """\
groups:
  - name: fault
    interval: {interval}
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        for: {for_}
        labels: {{severity: critical}}
        annotations: {{summary: target down, description: bench}}
"""


def _wait_webhook(targets: TargetServer, side: str, status: str, since: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for h in targets.webhooks():
            if h["side"] == side and h["status"] == status and h["t"] >= since:
                return float(h["t"])
        time.sleep(0.05)
    return None


def workload_fault(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """One target probed every 5 s by both sides at once; it fails; time to the webhook."""
    interval, for_ = 5.0, 10.0
    w = Workload(1, interval, min(args.timeout, 4.0), eval_interval=interval,
                 rules=FAULT_RULES.format(interval=f"{interval:g}s", for_=f"{for_:g}s"), webhook=targets.webhook,
                 group_by=["alertname"], group_wait=0.0, group_interval=5.0)
    fig = Figures(f"fault -> notification: one target probed every {interval:g} s by both sides at once, "
                  f"rule probe_success == 0 for {for_:g} s evaluated every {interval:g} s, group_wait 0, "
                  f"webhook receiver; {args.fault_trials} faults")
    ours = Ours(root / "fault-ours", targets, w)
    try:
        peer = Peer(root / "fault-peer", targets, w)
        try:
            time.sleep(2 * interval + 2)
            for trial in range(args.fault_trials):
                print(f"  fault {trial + 1}/{args.fault_trials} ... load {loadavg()}", flush=True)
                # a random phase against both sides' schedules
                time.sleep((trial * 1.7) % interval)
                t0 = time.time()
                targets.mode("error")
                for system in (ours, peer):
                    t = _wait_webhook(targets, system.name, "firing", t0, 120)
                    fig.add(system.name, {"fault_to_notification_minus_for_s":
                                          (t - t0 - for_) if t is not None else math.nan})
                targets.mode("ok")
                t1 = time.time()
                for system in (ours, peer):
                    if _wait_webhook(targets, system.name, "resolved", t1, 120) is None:
                        fig.notes.append(f"{system.name}: no resolved notification after fault {trial + 1}")
                time.sleep(interval)
        finally:
            peer.stop()
    finally:
        ours.stop()
    fig.notes.append("includes up to one probe interval and one evaluation interval on both sides")
    return fig


def storm_alerts(names: int = 20, services: int = 10, instances: int = 5) -> list[dict[str, Any]]:
    """Return the storm: ``names`` x ``services`` x ``instances`` alerts (1,000), grouped by
    (alertname, service) into ``names`` x ``services`` groups (200)."""
    # no startsAt: each side stamps the time it received them (an alert that started over
    # group_wait ago would be flushed at once by Alertmanager, before its group is complete)
    return [{"labels": {"alertname": f"Storm{a}", "service": f"svc{s}", "instance": f"i{i}",
                        "severity": "critical" if a < names // 2 else "warning"},
             "annotations": {"summary": "storm", "description": "bench"}}
            for a in range(names) for s in range(services) for i in range(instances)]


def workload_storm(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """1,000 alerts posted to each side's Alertmanager v2 API -> the last of 200 grouped notifications."""
    group_wait = 1.0
    w = Workload(0, webhook=targets.webhook, group_by=["alertname", "service"], group_wait=group_wait,
                 group_interval=300.0)
    alerts = storm_alerts()
    groups = len({(a["labels"]["alertname"], a["labels"]["service"]) for a in alerts})
    fig = Figures(f"alert storm: {len(alerts):,} alerts in one POST /api/v2/alerts -> the last of {groups} grouped "
                  f"webhook notifications (group_wait {group_wait:g} s, subtracted); {args.repeats} alternating runs")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system = cls(root / f"storm-{cls.name}-{r}", targets, w)
            try:
                time.sleep(3)
                targets.webhooks(clear=True)
                meter = Meter(system.procs)
                t0 = time.time()
                httpx.post(system.alerts_url, json=alerts, timeout=120).raise_for_status()
                posted = time.time() - t0
                deadline = time.monotonic() + 120
                got: list[dict[str, Any]] = []
                while time.monotonic() < deadline:
                    got = [h for h in targets.webhooks() if h["side"] == cls.name and h["status"] == "firing"]
                    if len({h["group"] for h in got}) >= groups and sum(h["alerts"] for h in got) >= len(alerts):
                        break
                    time.sleep(0.05)
                res = meter.done()
                last = max((h["t"] for h in got), default=math.nan)
                cpu = res["cpu_per_s"] * res["wall_s"]
                fig.add(cls.name, {"post_s": posted, "last_notification_s": last - t0 - group_wait,
                                   "notifications": len(got),
                                   "alerts_notified": sum(h["alerts"] for h in got), "cpu_s": cpu})
            finally:
                system.stop()
    fig.targets = [("storm -> last grouped notification <= 0.5 s", "last_notification_s",
                    lambda f: held(f.med("ours", "last_notification_s"), 0.5, " s"))]
    fig.notes.append("cpu_s: CPU seconds of the side's processes from the POST to the last notification "
                     "(peer: prometheus and blackbox_exporter idle beside alertmanager)")
    return fig
