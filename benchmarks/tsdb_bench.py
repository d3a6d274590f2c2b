"""Sample-store benchmark: 10,000 series x 2 h at 15 s (4.8 M samples).

Prints bytes per sample (the store's own estimate and the process RSS delta), append
throughput, and the time of range slices and selections. Issue 2 target: <= 24 bytes/sample.
With ``--wal`` the store is durable (``monitor.tsdb.persist``): appends also queue each sample
for the write-ahead log, and the WAL flush after every batch (the daemon flushes once a second)
is timed apart; a checkpoint and a restart (replay) are timed at the end.

Run::

    python benchmarks/tsdb_bench.py [--series 10000] [--hours 2] [--step 15] [--wal]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import tempfile
import time

from model.labels import Labels
from model.matchers import Matcher
from monitor.tsdb import SampleStore


def rss_bytes() -> int:
    """Return the resident set size of this process (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def make_labels(n: int) -> list[Labels]:
    """Return ``n`` label sets shaped like a scraped backend's request counters."""
    out = []
    for i in range(n):
        out.append(Labels.of({
            "__name__": "http_requests_total",
            "job": "backend",
            "instance": f"10.0.{i // 1000}.{i % 250}:8000",
            "endpoint": f"/api/v1/e{i % 50}",
            "method": ("GET", "POST", "PUT", "DELETE")[i % 4],
            "status": ("200", "201", "400", "404", "500")[i % 5],
            "client_id": f"client-{i}",
        }))
    return out


def timed(fn, repeat: int = 20) -> float:
    """Return the median seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Fill the store as scrapes do, then print sizes and timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--step", type=int, default=15, help="scrape interval, seconds")
    ap.add_argument("--wal", action="store_true", help="a durable store (WAL in a temporary directory)")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    wal_dir = tempfile.mkdtemp(prefix="tsdb_bench.") if args.wal else None

    steps = int(args.hours * 3600 / args.step)
    labels = make_labels(args.series)
    t_start = 1_700_000_000_000
    step_ms = args.step * 1000

    gc.collect()
    store = SampleStore(retention_seconds=args.hours * 3600, max_series=args.series + 10)
    if wal_dir:
        store.open(wal_dir, now_ms=t_start)
    rss0 = rss_bytes()
    flush_s = 0.0

    # Append the way scrapes do: one batch of every series per interval.
    append_s = 0.0
    append_cpu = 0.0
    for k in range(steps):
        t = t_start + k * step_ms
        batch = [(lbl, t, float(k + i)) for i, lbl in enumerate(labels)]
        t0, c0 = time.perf_counter(), time.process_time()
        store.append_batch(batch)
        t1 = time.perf_counter()
        append_cpu += time.process_time() - c0
        append_s += t1 - t0
        if wal_dir:
            fsync = store.flush()
            flush_s += time.perf_counter() - t1
            if k % 240 == 0:
                fsync()
    del batch
    gc.collect()
    rss1 = rss_bytes()
    n = store.sample_count
    assert n == args.series * steps, n

    mem = store.memory_bytes()
    print(f"series={store.series_count:,} samples={n:,} ({args.hours:g} h at {args.step} s)")
    print(f"append_batch: {append_s:.2f} s, {n / append_s / 1e6:.2f} M samples/s "
          f"({append_s / n * 1e9:.0f} ns/sample, batches of {args.series:,}); "
          f"CPU time {append_cpu / n * 1e9:.0f} ns/sample (steadier on a shared machine)")
    if wal_dir:
        print(f"WAL flush after each batch: {flush_s / n * 1e9:.0f} ns/sample (write, fsync every 240 batches apart)")
    print(f"memory_bytes(): {mem / 2**20:.1f} MiB = {mem / n:.1f} bytes/sample (labels and index included)")
    print(f"RSS delta:      {(rss1 - rss0) / 2**20:.1f} MiB = {(rss1 - rss0) / n:.1f} bytes/sample")

    t_end = t_start + (steps - 1) * step_ms
    five_min = 5 * 60 * 1000
    one = [Matcher("client_id", "=", "client-1234")]
    sl = store.select(one, t_end - five_min, t_end)
    assert len(sl) == 1 and len(sl[0].timestamps) == five_min // step_ms + 1
    took = timed(lambda: store.select(one, t_end - five_min, t_end), 200)
    print(f"select 1 series x 5 m (equality matcher): {took * 1e6:.1f} us")
    one_h = [Matcher("client_id", "=", "client-1234")]
    print(f"select 1 series x 1 h: {timed(lambda: store.select(one_h, t_end - 3_600_000, t_end), 200) * 1e6:.1f} us")

    thousand = [Matcher("__name__", "=", "http_requests_total"), Matcher("endpoint", "=~", "/api/v1/e(1|2|3|4|5)")]
    res = store.select(thousand, t_end - five_min, t_end)
    print(f"select {len(res):,} series x 5 m (name + regex): "
          f"{timed(lambda: store.select(thousand, t_end - five_min, t_end)) * 1e3:.1f} ms")
    alt = [Matcher("__name__", "=", "http_requests_total"),
           Matcher("endpoint", "=~", "/api/v1/e1|/api/v1/e2|/api/v1/e3|/api/v1/e4|/api/v1/e5")]
    res = store.select(alt, t_end - five_min, t_end)
    print(f"select {len(res):,} series x 5 m (name + literal alternation): "
          f"{timed(lambda: store.select(alt, t_end - five_min, t_end)) * 1e3:.1f} ms")
    neg = [Matcher("__name__", "=", "http_requests_total"), Matcher("status", "!=", "200")]
    res = store.select(neg, t_end - five_min, t_end)
    print(f"select {len(res):,} series x 5 m (name + negative): "
          f"{timed(lambda: store.select(neg, t_end - five_min, t_end), 5) * 1e3:.1f} ms")
    res = store.instant([Matcher("__name__", "=", "http_requests_total")], t_end)
    print(f"instant {len(res):,} series (5 m lookback): "
          f"{timed(lambda: store.instant([Matcher('__name__', '=', 'http_requests_total')], t_end), 5) * 1e3:.1f} ms")

    # Retention: one gc pass a minute later drops 4 samples per series.
    t0 = time.perf_counter()
    dropped = store.gc(t_end + 60_000 + step_ms)
    print(f"gc (drops {dropped:,} samples): {(time.perf_counter() - t0) * 1e3:.1f} ms")

    if wal_dir:
        wal_bytes = sum(p.stat().st_size for p in os.scandir(os.path.join(wal_dir, "wal")))
        t0 = time.perf_counter()
        asyncio.run(store.checkpoint(now_ms=t_end))
        cp_s = time.perf_counter() - t0
        print(f"WAL before the checkpoint: {wal_bytes / 2**20:.1f} MiB = {wal_bytes / n:.1f} bytes/sample; "
              f"checkpoint: {cp_s:.2f} s, {store.disk_bytes() / 2**20:.1f} MiB on disk after it")
        store.close()
        kept = store.sample_count
        del store, sl, res
        gc.collect()
        again = SampleStore(retention_seconds=args.hours * 3600, max_series=args.series + 10)
        stats = again.open(wal_dir, now_ms=t_end + 60_000 + step_ms)
        assert again.sample_count == kept, (again.sample_count, kept)
        print(f"restart: open (checkpoint replay) {stats.seconds:.2f} s for {kept:,} samples")
        again.close()
        shutil.rmtree(wal_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
