"""Benchmark: N HTTP probes on an interval against a local server, through the daemon's real
scheduler and probe runner.

Prints CPU seconds per wall second, peak RSS, scheduling lag p50/p99, missed and overlapping
runs. Targets (issue 2): < 0.25 CPU-s/s, lag p99 < 100 ms, 0 missed, 0 overlapping.

    python benchmarks/probe_bench.py --probes 1000 --interval 15 --duration 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time

import httpx
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor.daemon.probing import ProbeRunner
from monitor.daemon.scheduler import Scheduler
from monitor.metrics import Metrics
from monitor.tsdb.store import SampleStore
from probes import PROBES

HEALTH = {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1",
          "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}


async def health(request):
    return JSONResponse(HEALTH)


def _server_process(port: int) -> None:
    app = Starlette(routes=[Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def main(n: int, interval: float, duration: float, port: int) -> None:
    import multiprocessing

    # The target runs in its own process so its CPU is not counted as ours.
    server = multiprocessing.Process(target=_server_process, args=(port,), daemon=True)
    server.start()
    async with httpx.AsyncClient() as probe_client:
        for _ in range(100):
            try:
                await probe_client.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    lags: list[float] = []
    metrics = Metrics(CollectorRegistry())
    store = SampleStore()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    http = httpx.AsyncClient(limits=limits)
    settings = [PROBES["api"].Settings.model_validate(
        {"name": f"api-{i}", "kind": "api", "url": f"http://127.0.0.1:{port}", "interval": interval,
         "timeout": 5}) for i in range(n)]
    runner = ProbeRunner(settings, store, metrics, http_client=http)
    sched = Scheduler(metrics, on_lag=lags.append)
    for i, s in enumerate(settings):
        sched.add_interval_job(f"probe:{s.name}", _job(runner, s.name), s.interval,
                               first_delay=1 + interval * i / n)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    sched.start()
    await asyncio.sleep(duration)
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    sched.shutdown()
    await http.aclose()
    server.terminate()
    runs = sum(len(h) for h in runner.history.values())
    ok = sum(1 for r in runner.last.values() if r.success)
    lags.sort()
    q = statistics.quantiles(lags, n=100) if len(lags) > 2 else [0] * 99
    print(json.dumps({
        "probes": n, "interval_s": interval, "duration_s": round(wall, 1),
        "runs": sum(metrics.probe_runs.labels(s.name, "api", o).value for s in settings
                    for o in ("success", "failure")),
        "last_results_ok": ok, "history_entries": runs,
        "cpu_seconds_per_wall_second": round(cpu / wall, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "lag_p50_ms": round(q[49] * 1000, 2), "lag_p99_ms": round(q[98] * 1000, 2),
        "missed": sum(sched.missed.values()), "overlapping": sum(sched.overlaps.values()),
    }, indent=2))


def _job(runner: ProbeRunner, name: str):
    async def job() -> None:
        await runner.run(name)
    return job


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--port", type=int, default=18099)
    a = ap.parse_args()
    asyncio.run(main(a.probes, a.interval, a.duration, a.port))
