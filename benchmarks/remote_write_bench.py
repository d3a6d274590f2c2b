"""Remote write into Debian's VictoriaMetrics: throughput, CPU per 1,000 samples, outage recovery.

The daemon's path: samples appended to the sample store, teed at each flush into the on-disk
queue (``monitor.remote.queue``), sent by the writer (``monitor.remote.write``) to a local
``victoria-metrics`` (its own port and data folder, stopped by PID).

1. Throughput: ``--series`` series x ``--rounds`` rounds appended and flushed as fast as the
   loop goes while the writer sends; samples/s from the first append until the queue is empty,
   and this process's CPU seconds per 1,000 samples (append + tee + queue + encode + compress +
   send).
2. Outage: ``--rate`` samples/s keep coming (``--outage-series`` series, one sample each per
   round); VictoriaMetrics is stopped for ``--outage`` seconds (default 300) and restarted; prints
   the queue's peak, the recovery time (restart until the queue is empty) and the samples lost
   (appended minus read back through the query API: must be 0).

Usage::

    .venv/bin/python benchmarks/remote_write_bench.py [--series 1000 --rounds 200] [--outage 300 --rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.labels import Labels  # noqa: E402
from monitor.remote.queue import RemoteQueue  # noqa: E402
from monitor.remote.write import RemoteWriter  # noqa: E402
from monitor.tsdb.store import SampleStore  # noqa: E402
from tests.support.remote_stores import Store  # noqa: E402


def cpu_seconds() -> float:
    """Return this process's user + system CPU seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Pipeline:
    """A store teed into a queue and a running writer."""

    def __init__(self, qdir: Path, url: str, client: httpx.AsyncClient) -> None:
        self.store = SampleStore(retention_seconds=600)
        self.queue = RemoteQueue(qdir)
        self.queue.open()
        self.writer = RemoteWriter("bench", url, self.queue, client, external_labels={"replica": "a"},
                                   min_backoff=0.03, max_backoff=5.0, timeout=30)

        def tee(ids, ts, vs, labels_of):
            self.queue.append(ids, ts, vs, labels_of)
            self.writer.wake()
        self.store.set_tee(tee)
        self.task = asyncio.create_task(self.writer.run())

    async def drain(self) -> None:
        """Flush the store and wait until the queue is empty."""
        self.store.flush()
        while self.queue.samples:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop the writer, close the queue."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.queue.close()


async def throughput(tmp: Path, vm: Store, series: int, rounds: int) -> dict:
    """Append ``series`` x ``rounds`` samples as fast as the loop goes; measure until all are sent."""
    labels = [Labels.of({"__name__": "bench_tp", "instance": f"host-{i % 50}", "i": str(i)}) for i in range(series)]
    async with httpx.AsyncClient() as client:
        p = Pipeline(tmp / "q-tp", vm.write_url, client)
        t_start = int(time.time() * 1000) - rounds * 1000
        c0, w0 = cpu_seconds(), time.monotonic()
        for r in range(rounds):
            p.store.append_batch([(lbl, t_start + r * 1000, float(r)) for lbl in labels])
            p.store.flush()
            await asyncio.sleep(0)
        await p.drain()
        wall, cpu = time.monotonic() - w0, cpu_seconds() - c0
        sent = p.writer.sent_samples_total
        await p.close()
    return {"samples": sent, "seconds": round(wall, 2), "samples_per_s": round(sent / wall),
            "cpu_ms_per_1000_samples": round(cpu / sent * 1e6, 2), "requests": p.writer.sent_batches_total,
            "compressed_bytes_per_sample": round(p.writer.sent_bytes_total / sent, 2)}


async def outage(tmp: Path, vm: Store, seconds: float, rate: int, n_series: int) -> dict:
    """Keep ``rate`` samples/s coming while the store is down ``seconds``; measure the recovery."""
    labels = [Labels.of({"__name__": "bench_outage", "i": str(i)}) for i in range(n_series)]
    period = n_series / rate
    appended = 0
    async with httpx.AsyncClient() as client:
        p = Pipeline(tmp / "q-outage", vm.write_url, client)
        stop = asyncio.Event()
        peak = {"samples": 0, "bytes": 0, "disk": 0}

        async def produce() -> None:
            nonlocal appended
            k = 0
            while not stop.is_set():
                t = int(time.time() * 1000)
                p.store.append_batch([(lbl, t, float(k)) for lbl in labels])
                appended += n_series
                p.store.flush()
                await asyncio.to_thread(p.queue.fsync_handle())
                peak["samples"] = max(peak["samples"], p.queue.samples)
                peak["bytes"] = max(peak["bytes"], p.queue.bytes)
                k += 1
                await asyncio.sleep(period)

        t_begin = time.time()
        producer = asyncio.create_task(produce())
        await asyncio.sleep(5)
        vm.stop()
        await asyncio.sleep(seconds)
        peak["disk"] = p.queue.disk_bytes()
        await vm.start()
        t_up = time.monotonic()
        while p.queue.samples > n_series * 2:  # caught up: at most a round or two in flight
            await asyncio.sleep(0.05)
        recovery = time.monotonic() - t_up
        stop.set()
        await producer
        await p.drain()
        await p.close()
    await vm.flush()
    async with httpx.AsyncClient(timeout=120) as c:
        window = int(time.time() - t_begin) + 120
        query = f"sum(count_over_time(bench_outage[{window}s]))"
        r = await c.post(vm.url + "/api/v1/query", data={"query": query, "time": f"{time.time() + 60}"})
        stored = int(float(r.json()["data"]["result"][0]["value"][1]))
    return {"outage_s": seconds, "rate_samples_per_s": rate, "appended": appended, "read_back": stored,
            "lost": appended - stored, "queue_peak_samples": peak["samples"], "queue_peak_bytes": peak["bytes"],
            "queue_disk_bytes_at_restart": peak["disk"], "recovery_s": round(recovery, 2),
            "retried_samples": p.writer.retried_samples_total, "dropped": p.queue.dropped_samples_total}


async def main(args: argparse.Namespace) -> dict:
    """Run the store and the two measurements; return the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    vm = Store("vm", tmp / "vm")
    await vm.start()
    try:
        out = {"load_average": os.getloadavg()}
        if args.rounds:
            out["throughput"] = await throughput(tmp, vm, args.series, args.rounds)
        if args.outage:
            out["outage"] = await outage(tmp, vm, args.outage, args.rate, args.outage_series)
        return out
    finally:
        vm.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=200, help="0 skips the throughput run")
    ap.add_argument("--outage", type=float, default=300.0, help="seconds the store is down; 0 skips")
    ap.add_argument("--rate", type=int, default=2000, help="samples/s during the outage run")
    ap.add_argument("--outage-series", type=int, default=200)
    print(json.dumps(asyncio.run(main(ap.parse_args())), indent=2))
