"""Benchmark: one full rule-evaluation round of 50 rules like the shipped ones over 10,000
series holding 1 h of 15 s samples, through the real RuleManager / RuleGroup and Engine.

Series (10,000): ``http_requests_total{endpoint,status,client_id}`` (20 x 5 x 20 = 2,000),
``http_request_duration_seconds_bucket{endpoint,client_id,le}`` (20 x 20 x 12 = 4,800) with
``_sum``/``_count`` (800), and ``svc_requests_total{service,status,instance}`` (40 x 5 x 12 =
2,400). Rules (50): per-endpoint error-ratio alerts and p95 alerts over
``histogram_quantile(0.95, sum by (le) (rate(..._bucket[5m])))``, the shipped global ones,
and recording rules from ``rules/recording.yaml``.

The engine keeps two caches: compiled expressions (by query text, forever) and results of
calls/aggregations at one evaluation time (dropped when new samples of a metric they read
arrive). So the figures are split: the first round (cold: parse + compile) and steady rounds
(a new 15 s scrape of all 10,000 series appended before each round, as in the daemon, so the
result cache only helps within a round, where rules share subexpressions).

Target (issue 3): one full round < 100 ms on one core.

    python benchmarks/rules_bench.py --rounds 20
    python benchmarks/rules_bench.py --rounds 5 --profile     # + cProfile hotspots
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.promql.engine import Engine  # noqa: E402
from monitor.rules.manager import RuleManager  # noqa: E402
from model.labels import Labels  # noqa: E402
from monitor.tsdb.store import SampleStore  # noqa: E402

STEP_MS = 15_000
ENDPOINTS = [f"/api/v1/e{i:02d}" for i in range(20)]
STATUSES = ["200", "201", "404", "500", "503"]
CLIENTS = [f"client-{i:02d}" for i in range(20)]
LES = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
SERVICES = [f"svc-{i:02d}" for i in range(40)]
INSTANCES = [f"10.0.0.{i}:9100" for i in range(12)]


def rss_bytes() -> int:
    """Current resident set size (Linux /proc), bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Generator:
    """Counters for every series, advanced one 15 s scrape at a time."""

    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.series: list[tuple[Labels, float]] = []  # (labels, per-scrape increment)
        self.values: list[float] = []
        for e in ENDPOINTS:
            for c in CLIENTS:
                base = rng.uniform(1, 20)
                for s in STATUSES:
                    share = {"200": 0.9, "201": 0.06, "404": 0.03, "500": 0.007, "503": 0.003}[s]
                    self._add(Labels.of(__name__="http_requests_total", endpoint=e, status=s, client_id=c),
                              base * share * 15)
                median = rng.uniform(0.02, 1.5)
                cum = 0.0
                for le in LES:
                    bound = float(le)
                    frac = 1.0 if bound == float("inf") else min(1.0, bound / (2 * median))
                    cum = max(cum, frac)
                    self._add(Labels.of(__name__="http_request_duration_seconds_bucket", endpoint=e,
                                        client_id=c, le=le), base * cum * 15)
                self._add(Labels.of(__name__="http_request_duration_seconds_count", endpoint=e, client_id=c),
                          base * 15)
                self._add(Labels.of(__name__="http_request_duration_seconds_sum", endpoint=e, client_id=c),
                          base * median * 15)
        shares = {"200": 0.9, "201": 0.06, "404": 0.03, "500": 0.007, "503": 0.003}
        for k, sv in enumerate(SERVICES):
            broken = k == 0  # one service with a high error rate, so some alerts are active
            for s in STATUSES:
                share = 0.5 if broken and s == "500" else shares[s]
                for inst in INSTANCES:
                    self._add(Labels.of(__name__="svc_requests_total", service=sv, status=s, instance=inst),
                              rng.uniform(1, 10) * share * 15)

    def _add(self, labels: Labels, inc: float) -> None:
        self.series.append((labels, inc))
        self.values.append(0.0)

    def scrape(self, t_ms: int) -> list[tuple[Labels, int, float]]:
        out = []
        for i, (labels, inc) in enumerate(self.series):
            self.values[i] += inc
            out.append((labels, t_ms, self.values[i]))
        return out


def rule_file() -> str:
    """50 rules like the shipped ones (rules/api.yaml, rules/recording.yaml)."""
    alerts: list[dict] = []
    records: list[dict] = []
    for e in ENDPOINTS:  # 20
        sel = f'endpoint="{e}"'
        alerts.append({"alert": f"EndpointErrorRate_{e.rsplit('/', 1)[1]}", "expr":
                       f'sum(rate(http_requests_total{{status=~"5..",{sel}}}[5m])) / '
                       f'sum(rate(http_requests_total{{{sel}}}[5m])) > 0.05', "for": "5m",
                       "labels": {"severity": "critical"},
                       "annotations": {"summary": "error rate {{ $value | humanizePercentage }}"}})
    for e in ENDPOINTS:  # 20
        sel = f'endpoint="{e}"'
        alerts.append({"alert": f"EndpointLatency_{e.rsplit('/', 1)[1]}", "expr":
                       f'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket'
                       f'{{{sel}}}[5m]))) > 5', "for": "5m", "labels": {"severity": "critical"},
                       "annotations": {"summary": "p95 {{ $value | humanizeDuration }}"}})
    ratio = ('sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))')
    alerts += [  # 5: the shipped global ones
        {"alert": "HighErrorRate", "expr": f"{ratio} > 0.05", "for": "5m", "labels": {"severity": "critical"}},
        {"alert": "ElevatedErrorRate", "expr": f"{ratio} > 0.02", "for": "10m", "labels": {"severity": "warning"}},
        {"alert": "HighApiLatency", "expr": "histogram_quantile(0.95, sum by (le) "
         "(rate(http_request_duration_seconds_bucket[5m]))) > 5", "for": "5m", "labels": {"severity": "critical"}},
        {"alert": "ClientErrorRate", "expr": 'sum by (client_id) (rate(http_requests_total{status=~"5.."}[5m])) '
         '/ sum by (client_id) (rate(http_requests_total[5m])) > 0.1', "for": "10m",
         "labels": {"severity": "warning"}},
        {"alert": "ServiceErrorRate", "expr": 'sum by (service) (rate(svc_requests_total{status=~"5.."}[5m])) '
         '/ sum by (service) (rate(svc_requests_total[5m])) > 0.05', "for": "5m",
         "labels": {"severity": "critical"}},
    ]
    records += [  # 5: from rules/recording.yaml
        {"record": ":http_requests:rate5m", "expr": "sum(rate(http_requests_total[5m]))"},
        {"record": "endpoint:http_request_errors:ratio_rate5m", "expr":
         'sum by (endpoint) (rate(http_requests_total{status=~"5.."}[5m])) '
         '/ sum by (endpoint) (rate(http_requests_total[5m]))'},
        {"record": "endpoint:http_request_duration_seconds:p95", "expr":
         "histogram_quantile(0.95, sum by (endpoint, le) (rate(http_request_duration_seconds_bucket[5m])))"},
        {"record": "client_id:http_requests:rate5m", "expr": "sum by (client_id) (rate(http_requests_total[5m]))"},
        {"record": "client_id:http_request_duration_seconds:p99", "expr":
         "histogram_quantile(0.99, sum by (client_id, le) (rate(http_request_duration_seconds_bucket[5m])))"},
    ]
    assert len(alerts) + len(records) == 50
    import yaml

    return yaml.safe_dump({"groups": [
        {"name": "api-alerts", "interval": "15s", "rules": alerts},
        {"name": "recording", "interval": "15s", "rules": records},
    ]}, sort_keys=False)


async def main(rounds: int, profile: bool, hours: float) -> dict:
    t0_wall = time.time()
    rss0 = rss_bytes()
    gen = Generator()
    store = SampleStore(retention_seconds=7200, max_series=200_000)
    engine = Engine(store)
    points = int(hours * 3600_000 / STEP_MS)
    now_ms = (int(time.time() * 1000) // STEP_MS) * STEP_MS
    start_ms = now_ms - points * STEP_MS
    fill_t = time.perf_counter()
    for k in range(points):
        store.append_batch(gen.scrape(start_ms + k * STEP_MS))
    fill_seconds = time.perf_counter() - fill_t
    gc.collect()
    rss_filled = rss_bytes()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(rule_file())
        mgr = RuleManager(store, engine, default_interval=15.0)
        errors = mgr.load([str(path)])
        assert not errors, errors
        groups = mgr.groups()
        n_rules = sum(len(g.rules) for g in groups)

        t = start_ms + (points - 1) * STEP_MS

        async def round_at(t_ms: int) -> float:
            c0 = time.process_time()
            w0 = time.perf_counter()
            await mgr.eval_all(t_ms / 1000)
            w = time.perf_counter() - w0
            cpu.append(time.process_time() - c0)
            return w

        cpu: list[float] = []
        first = await round_at(t)
        first_cpu = cpu[-1]

        steady: list[float] = []
        append_times: list[float] = []
        prof = cProfile.Profile() if profile else None
        cpu.clear()
        for _ in range(rounds):
            t += STEP_MS
            a0 = time.perf_counter()
            store.append_batch(gen.scrape(t))  # the next scrape invalidates cached results
            append_times.append(time.perf_counter() - a0)
            if prof:
                prof.enable()
            steady.append(await round_at(t))
            if prof:
                prof.disable()

        # allocation of one steady round, measured apart (tracemalloc slows it down)
        t += STEP_MS
        store.append_batch(gen.scrape(t))
        tracemalloc.start()
        await mgr.eval_all(t / 1000)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        health = {st.health for g in groups for st in g.status}
        rule_errors = [st.last_error for g in groups for st in g.status if st.last_error]
        firing = [a for a in mgr.alerts()]

    result = {
        "benchmark": "rules_bench",
        "series": store.series_count,
        "input_series": len(gen.series),
        "samples": store.sample_count,
        "hours_of_data": hours,
        "scrape_step_seconds": STEP_MS / 1000,
        "rules": n_rules,
        "groups": len(groups),
        "rule_health": sorted(health),
        "rule_errors": rule_errors[:5],
        "active_alerts": len(firing),
        "fill_seconds": round(fill_seconds, 2),
        "engine_caches": "compiled expressions (forever) and call/aggregation results per evaluation "
                         "time (invalidated by new samples); first round is cold, steady rounds follow "
                         "a fresh scrape of all series",
        "first_round_ms": round(first * 1000, 1),
        "first_round_cpu_ms": round(first_cpu * 1000, 1),
        "steady_rounds": rounds,
        "steady_round_ms_min": round(min(steady) * 1000, 1),
        "steady_round_ms_median": round(statistics.median(steady) * 1000, 1),
        "steady_round_ms_max": round(max(steady) * 1000, 1),
        "steady_round_cpu_ms_median": round(statistics.median(cpu) * 1000, 1),
        "scrape_append_ms_median": round(statistics.median(append_times) * 1000, 1),
        "target_ms": 100,
        "meets_target": statistics.median(steady) * 1000 < 100,
        "store_memory_bytes_estimate": store.memory_bytes(),
        "rss_before_bytes": rss0,
        "rss_after_fill_bytes": rss_filled,
        "rss_end_bytes": rss_bytes(),
        "peak_rss_bytes": peak_rss_bytes(),
        "round_traced_alloc_peak_bytes": traced_peak,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "wall_seconds": round(time.time() - t0_wall, 1),
    }
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        result["profile_tottime_top15"] = [line for line in s.getvalue().splitlines() if line.strip()][-16:]
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="steady rounds to time (default 20)")
    p.add_argument("--hours", type=float, default=1.0, help="hours of 15 s samples to fill (default 1)")
    p.add_argument("--profile", action="store_true", help="cProfile the steady rounds, print top 15")
    args = p.parse_args()
    print(json.dumps(asyncio.run(main(args.rounds, args.profile, args.hours)), indent=2))
