"""The probing workloads: ``targets<N>`` (N healthy targets) and ``outage`` (all fail, then recover)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from stack.figures import Figures, held, our_lags, quantile, ratio, sample_quality
from stack.procs import Meter, TargetServer, loadavg
from stack.systems import Ours, Peer, System, Workload

def steady_run(system_cls: type[System], folder: Path, targets: TargetServer, w: Workload, warmup: float,
               seconds: float) -> tuple[System, dict[str, Any], dict[str, float]]:
    """Start a side, let it warm up, measure it for ``seconds``; return it still running."""
    system = system_cls(folder, targets, w)
    time.sleep(warmup)
    hits0 = targets.hits()
    meter = Meter(system.procs)
    time.sleep(seconds)
    res = meter.done()
    hits1 = targets.hits()
    hits = {k: hits1.get(k, 0) - hits0.get(k, 0) for k in hits1}
    return system, res, hits


def workload_targets(n: int, args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """N healthy targets: alternating runs for resources, one concurrent run for latency."""
    w = Workload(n, args.interval, args.timeout)
    fig = Figures(f"{n:,} HTTP targets every {w.interval:g} s (timeout {w.timeout:g} s), "
                  f"{args.repeats} alternating runs of {args.seconds:g} s after {args.warmup:g} s warm-up")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system, res, hits = steady_run(cls, root / f"t{n}-{cls.name}-{r}", targets, w, args.warmup,
                                           args.seconds)
            try:
                end = time.time()
                succ = system.samples("probe_success", end, args.seconds)
                q = sample_quality(succ, n, w.interval, args.seconds)
                family = "ours" if cls is Ours else "blackbox"
                expected = n * res["wall_s"] / w.interval
                row = {"cpu_per_s": res["cpu_per_s"], "peak_rss_mib": res["peak_rss_mib"],
                       "hits_per_expected": hits.get(family, 0) / expected, "missed_runs": q["missed_runs"],
                       "gap_within_1pct": q["gap_within_1pct"], "gap_dev_p99_ms": q["gap_dev_p99_ms"],
                       "ok_fraction": sum(1 for v in succ.values() if v and v[-1][1] == 1) / n}
                for pname, cpu in res["cpu_per_s_by_process"].items():
                    row[f"cpu_per_s[{pname}]"] = cpu
                for pname, rss in res["peak_rss_mib_by_process"].items():
                    row[f"peak_rss_mib[{pname}]"] = rss
                if cls is Ours:
                    lags = our_lags(succ, targets, n, w.interval)
                    row["lag_p50_ms"] = quantile(lags, 0.5) * 1000
                    row["lag_p99_ms"] = quantile(lags, 0.99) * 1000
                    row["lag_max_ms"] = max(lags, default=math.nan) * 1000
                fig.add(cls.name, row)
            finally:
                system.stop()
    print(f"  concurrent run: both sides on the same targets ... load {loadavg()}", flush=True)
    ours = Ours(root / f"t{n}-both-ours", targets, w)
    try:
        peer = Peer(root / f"t{n}-both-peer", targets, w)
        try:
            time.sleep(args.warmup + args.seconds)
            end = time.time()
            for system in (ours, peer):
                d = [v for vals in system.samples("probe_duration_seconds", end, args.seconds).values()
                     for _, v in vals]
                fig.add(system.name, {"concurrent_duration_p50_ms": quantile(d, 0.5) * 1000,
                                      "concurrent_duration_p99_ms": quantile(d, 0.99) * 1000})
        finally:
            peer.stop()
    finally:
        ours.stop()
    fig.targets = [
        ("CPU <= 1.0x the peer", "cpu_per_s", lambda f: held(ratio(f, "cpu_per_s"), 1.0, "x")),
        ("peak RSS <= 0.5x the peer", "peak_rss_mib", lambda f: held(ratio(f, "peak_rss_mib"), 0.5, "x")),
        ("0 missed runs", "missed_runs", lambda f: held(max(f.ours.get("missed_runs", [math.nan])), 0, "")),
    ]
    if n <= 1000:
        fig.targets.append(("scheduler lag p99 < 20 ms", "lag_p99_ms",
                            lambda f: held(max(f.ours.get("lag_p99_ms", [math.nan])), 20, " ms", strict=True)))
    else:
        fig.targets += [
            ("scheduler lag p99 < 100 ms", "lag_p99_ms",
             lambda f: held(max(f.ours.get("lag_p99_ms", [math.nan])), 100, " ms", strict=True)),
            ("every sample one interval apart (+-1 %)", "gap_within_1pct",
             lambda f: (min(f.ours.get("gap_within_1pct", [0])) >= 1.0,
                        f"{min(f.ours.get('gap_within_1pct', [0])) * 100:.2f} % of gaps within 1 %")),
        ]
    return fig


def workload_outage(n: int, args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """N targets healthy, then all failing for two intervals, then all recovered."""
    w = Workload(n, args.interval, args.timeout)
    healthy, down, after = 2 * w.interval, 2 * w.interval, args.after
    fig = Figures(f"mass outage: {n:,} targets every {w.interval:g} s, all '{args.outage_mode}' for "
                  f"{down:g} s, then recovered; {args.outage_repeats} alternating runs")
    for r in range(args.outage_repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.outage_repeats}: {cls.name} ... load {loadavg()}", flush=True)
            system = cls(root / f"outage-{cls.name}-{r}", targets, w)
            try:
                time.sleep(args.warmup)
                m = Meter(system.procs)
                time.sleep(healthy)
                h = m.done()
                targets.mode(args.outage_mode)
                m = Meter(system.procs)
                time.sleep(down)
                d = m.done()
                targets.mode("ok")
                up = time.time()
                m = Meter(system.procs)
                time.sleep(w.interval + w.timeout + 2)
                first_window_end = time.time()
                time.sleep(max(0.0, up + after - time.time()))
                a = m.done()
                end = time.time()
                succ = system.samples("probe_success", end, end - up + 1)
                first_ok = 0
                ok_late = 0
                for values in succ.values():
                    after_up = sorted((t, v) for t, v in values if t >= up + 0.05)
                    if after_up and after_up[0][0] <= first_window_end and after_up[0][1] == 1:
                        first_ok += 1
                    if after_up and after_up[-1][1] == 1 and after_up[-1][0] >= end - w.interval - w.timeout:
                        ok_late += 1
                fig.add(cls.name, {"cpu_per_s_healthy": h["cpu_per_s"], "cpu_per_s_during": d["cpu_per_s"],
                                   "cpu_per_s_after": a["cpu_per_s"],
                                   "during_over_healthy": d["cpu_per_s"] / h["cpu_per_s"],
                                   "ok_first_run_after_recovery": first_ok,
                                   f"ok_{after:g}s_after_recovery": ok_late,
                                   "peak_rss_mib": a["peak_rss_mib"]})
            finally:
                system.stop()
    fig.targets = [
        ("CPU during <= 1.5x healthy", "during_over_healthy",
         lambda f: held(max(f.ours.get("during_over_healthy", [math.nan])), 1.5, "x")),
        (f"{n:,} of {n:,} OK one interval after recovery", "ok_first_run_after_recovery",
         lambda f: (min(f.ours.get("ok_first_run_after_recovery", [0])) == n,
                    f"{min(f.ours.get('ok_first_run_after_recovery', [0])):.0f} of {n:,} (worst run)")),
    ]
    return fig
