"""SLO history in the durable sample store: 50 SLOs x 30 days (issue 11, item 4, "Measured").

Writes, through a store opened on a fresh directory, what 50 Sloth-style SLOs record: 12 ``slo:*``
series each (``slo:sli_error:ratio_rate5m`` ... ``ratio_rate30d``, ``slo:objective:ratio``,
``slo:error_budget:ratio``, ``slo:current_burn_rate:ratio``,
``slo:period_error_budget_remaining:ratio``) at the default retention rule's 1 m resolution for
30 days, plus the last 2 h of ``--probe-series`` probe series at 15 s. It flushes the WAL every
simulated minute (the daemon: every second), fsyncs it and runs the retention sweep (which closes
chunks) every simulated hour (the daemon: every minute), and checkpoints every simulated day (the
daemon: every hour) and two hours and one hour before the end, so the last checkpoint is an hourly
one and the WAL holds the last hour (the most a crash can leave to replay with
``checkpoint_interval: 1h``). Then it prints:

- memory: the store's own accounting (``estimated_memory_bytes``, the ``monitor_tsdb_memory_bytes``
  gauge; and the full walk ``memory_bytes()``) and the RSS growth of this process;
- the last (hourly) checkpoint: bytes written, wall time, the event loop's worst lateness;
- disk: the checkpoint, block and WAL bytes;
- restart recovery: a fresh process opens the directory (checkpoint + WAL replay): wall time and
  its RSS;
- a 30-day PromQL query over the downsampled series (``sum_over_time(...[30d])``), one SLO and all.

Run::

    python benchmarks/slo_store_bench.py [--slos 50] [--days 30] [--probe-series 200] [--dir DIR]

``--dir`` keeps the store there (default: a temporary directory, deleted). The recovery step runs
``python benchmarks/slo_store_bench.py --recover DIR`` in a subprocess (a clean RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.labels import Labels
from monitor.promql.engine import Engine
from monitor.tsdb.retention import DEFAULT_RETENTION_RULES, RetentionRule
from monitor.tsdb.store import SampleStore

MIN = 60_000
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
T_END = 1_796_428_800_000  # 2026-12-05 00:00 UTC, a whole minute


def rss_bytes() -> int:
    """Return the resident set size of this process (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def make_store() -> SampleStore:
    """Build the store as the daemon does by default (2 h, ``slo:*`` 35 d at 1 m)."""
    rules = [RetentionRule.parse(m, r, s) for m, r, s in DEFAULT_RETENTION_RULES]
    return SampleStore(retention_seconds=7200, retention_rules=rules)


def slo_series(slos: int) -> list[Labels]:
    """Twelve Sloth-named series per SLO."""
    out = []
    for k in range(slos):
        base = {"sloth_id": f"svc-{k}-availability", "sloth_service": f"svc-{k}", "sloth_slo": "availability"}
        out += [Labels.of(base, __name__=f"slo:sli_error:ratio_rate{w}", sloth_window=w) for w in WINDOWS]
        out += [Labels.of(base, __name__=n) for n in ("slo:objective:ratio", "slo:error_budget:ratio",
                                                       "slo:current_burn_rate:ratio",
                                                       "slo:period_error_budget_remaining:ratio")]
    return out


def probe_series(n: int) -> list[Labels]:
    """``n`` probe series shaped like the blackbox-style probe metrics."""
    names = ("probe_success", "probe_duration_seconds", "probe_http_status_code", "probe_http_duration_seconds")
    return [Labels.of(__name__=names[i % 4], probe=f"probe-{i // 4}", kind="api", target=f"http://10.0.0.{i}/health")
            for i in range(n)]


def fill(store: SampleStore, args: argparse.Namespace) -> dict[str, float]:
    """Append the history minute by minute; flush each minute, checkpoint each hour; return timings."""
    rng = random.Random(1)
    slo = slo_series(args.slos)
    probes = probe_series(args.probe_series)
    minutes = int(args.days * 1440)
    t0 = T_END - minutes * MIN
    last_checkpoint = t0
    append_s = flush_s = checkpoint_s = 0.0
    checkpoints = 0
    lag = 0.0
    err = [0.001] * args.slos
    for m in range(minutes + 1):
        t = t0 + m * MIN
        batch = []
        for k in range(args.slos):
            err[k] = max(0.0, err[k] + rng.gauss(0, 0.0002))
            ratios = [err[k] * (1 + 0.1 * j) for j in range(8)]
            batch += [(lb, t, v) for lb, v in zip(slo[12 * k:12 * k + 8], ratios)]
            batch += [(slo[12 * k + 8], t, 0.999), (slo[12 * k + 9], t, 0.001),
                      (slo[12 * k + 10], t, ratios[0] / 0.001), (slo[12 * k + 11], t, 1 - ratios[-1] / 0.001)]
        if t > T_END - 7_200_000:
            for s in range(0, MIN, 15_000):
                batch += [(lb, t + s - MIN + 1, 1.0) for lb in probes]
        a = time.perf_counter()
        store.append_batch(batch)
        b = time.perf_counter()
        fsync = store.flush()
        c = time.perf_counter()
        append_s += b - a
        flush_s += c - b
        if m % 60 == 0:  # the daemon fsyncs every second of real time, off the loop; here hourly
            fsync()
            store.gc(t)
        # A checkpoint a simulated day (the daemon: every hour; the fill would spend its time
        # copying heads) and the last two two hours and one hour before the end.
        if ((t - last_checkpoint >= 86_400_000 and t < T_END - 7_200_000)
                or t in (T_END - 7_200_000, T_END - 3_600_000)):
            store.gc(t)
            d = time.perf_counter()
            lag = asyncio.run(checkpoint_with_ticker(store, t))
            checkpoint_s = time.perf_counter() - d  # the last one: an hourly one
            checkpoints += 1
            last_checkpoint = t
    store.gc(T_END)
    return {"append_s": append_s, "flush_s": flush_s, "last_checkpoint_s": checkpoint_s, "checkpoints": checkpoints,
            "loop_lag_s": lag, "last_checkpoint_bytes": store.last_checkpoint_bytes}


async def checkpoint_with_ticker(store: SampleStore, t: int) -> float:
    """Checkpoint while a 10 ms ticker runs on the same loop; return the ticker's worst lateness, seconds."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            a = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - a - 0.01)
    task = asyncio.create_task(ticker())
    await store.checkpoint(now_ms=t)
    done = True
    await task
    return worst


def recover(directory: str) -> None:
    """Open the store at ``directory`` in this (fresh) process; print JSON figures."""
    rss0 = rss_bytes()
    store = make_store()
    stats = store.open(directory, now_ms=T_END)
    gc.collect()
    rss1 = rss_bytes()
    engine = Engine(store, max_samples=50_000_000)
    t = time.perf_counter()
    one = engine.instant_query('sum_over_time(slo:sli_error:ratio_rate5m{sloth_service="svc-0"}[30d])', T_END)
    q_one = time.perf_counter() - t
    t = time.perf_counter()
    every = engine.instant_query("count_over_time(slo:sli_error:ratio_rate5m[30d])", T_END)
    q_all = time.perf_counter() - t
    print(json.dumps({
        "seconds": stats.seconds, "checkpoint_samples": stats.checkpoint_samples, "wal_records": stats.wal_records,
        "wal_samples": stats.wal_samples, "series": store.series_count, "samples": store.sample_count,
        "rss_bytes": rss1, "rss_delta": rss1 - rss0, "estimated": store.estimated_memory_bytes,
        "query_one_s": q_one, "query_all_s": q_all, "one": len(one), "counted": [s.v for s in every][:1],
    }))
    store.close()


def main() -> None:
    """Fill, measure, recover in a fresh process, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slos", type=int, default=50)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--probe-series", type=int, default=200)
    ap.add_argument("--dir", help="keep the store in this directory")
    ap.add_argument("--recover", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.recover:
        recover(args.recover)
        return
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="slo_store_bench."))
    try:
        print(f"load average before: {os.getloadavg()}")
        gc.collect()
        rss0 = rss_bytes()
        store = make_store()
        store.open(directory, now_ms=T_END - int(args.days * 86_400_000))
        wall = time.perf_counter()
        timings = fill(store, args)
        wall = time.perf_counter() - wall
        gc.collect()
        rss1 = rss_bytes()
        est, walk = store.estimated_memory_bytes, store.memory_bytes()
        n = store.sample_count
        store.close()
        checkpoint = sum(p.stat().st_size for p in directory.glob("checkpoint.*"))
        blocks = list(directory.glob("block.*"))
        block_bytes = sum(p.stat().st_size for p in blocks)
        wal = sum(p.stat().st_size for p in (directory / "wal").iterdir())
        print(f"{args.slos} SLOs x 12 slo:* series x {args.days:g} d at 1 m + {args.probe_series} probe series x 2 h "
              f"at 15 s: series={store.series_count:,} samples={n:,} (filled in {wall:.0f} s)")
        print(f"append: {timings['append_s'] / n * 1e9:.0f} ns/sample; WAL flush (write, no fsync) each minute: "
              f"{timings['flush_s'] / n * 1e9:.0f} ns/sample; {timings['checkpoints']:.0f} checkpoints, "
              f"the last (an hour after the one before) wrote {timings['last_checkpoint_bytes'] / 2**20:.2f} MiB in "
              f"{timings['last_checkpoint_s']:.2f} s, event loop late by at most "
              f"{timings['loop_lag_s'] * 1e3:.0f} ms meanwhile")
        print(f"memory: store accounting (monitor_tsdb_memory_bytes) {est / 2**20:.1f} MiB = {est / n:.1f} B/sample; "
              f"memory_bytes() {walk / 2**20:.1f} MiB; RSS delta {(rss1 - rss0) / 2**20:.1f} MiB "
              f"= {(rss1 - rss0) / n:.1f} B/sample")
        print(f"disk: checkpoint (heads) {checkpoint / 2**20:.1f} MiB, "
              f"{len(blocks)} blocks {block_bytes / 2**20:.1f} MiB, "
              f"WAL (last hour) {wal / 2**20:.2f} MiB, total {(checkpoint + block_bytes + wal) / 2**20:.1f} MiB "
              f"({(checkpoint + block_bytes + wal) / n:.2f} B/sample)")
        out = subprocess.run([sys.executable, __file__, "--recover", str(directory)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out)
        assert r["samples"] == n, (r["samples"], n)
        print(f"restart recovery (fresh process): {r['seconds']:.2f} s for {r['checkpoint_samples']:,} checkpoint "
              f"samples + {r['wal_samples']:,} WAL samples; its RSS {r['rss_bytes'] / 2**20:.0f} MiB "
              f"(store {r['estimated'] / 2**20:.0f} MiB)")
        print(f"PromQL at the end: sum_over_time(...5m{{one SLO}}[30d]) {r['query_one_s'] * 1e3:.0f} ms; "
              f"count_over_time(slo:sli_error:ratio_rate5m[30d]) over {args.slos} SLOs {r['query_all_s'] * 1e3:.0f} ms "
              f"(each counts {r['counted'][0]:.0f} samples)")
        print(f"load average after: {os.getloadavg()}")
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
