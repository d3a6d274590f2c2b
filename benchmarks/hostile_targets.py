"""Hostile probe and scrape targets: how much memory and time one probe run or one scrape costs.

Each case runs in a fresh child process (so its RSS is its own) against hostile targets served by
a separate server process (``tests/support/hostile_servers.py``: bodies made lazily, so the server
holds almost nothing). Every child builds its part the way the daemon does, from ``monitor.yaml``
models with their defaults: the ``api`` probe through :func:`probes.base.run_probe`, a scrape
target through :class:`monitor.daemon.scraping.ScrapeTargets` (``tsdb.max_series`` 200,000). It
prints one JSON line: RSS before the run, peak RSS (``ru_maxrss``), their difference, seconds,
and the outcome. Cases:

- ``probe_1gib``: the ``api`` probe (timeout 30 s) whose ``/health`` body is 1 GiB;
- ``probe_endless``: the same with a body that never ends (timeout 10 s);
- ``scrape_50mib``: a scrape (timeout 60 s) of a 50 MiB body (comment lines);
- ``scrape_1m_series``: a scrape (timeout 60 s) of a target exposing 1,000,000 series (~37 MB);
- ``scrape_wide``: a scrape (timeout 60 s) of 50,000 series with 70 labels each;
- ``scrape_50k_allowed``: a scrape within the limits (50,000 series, the default
  ``sample_limit``), with the longest time the event loop went without running a 2 ms ticker
  (``max_loop_gap_ms``).

The same script measures another checkout of the code, so the figures before a change can be
printed beside those after it::

    .venv/bin/python benchmarks/hostile_targets.py                       # this checkout
    git archive <commit> | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/hostile_targets.py  # the code at <commit>

``--cases probe_1gib,scrape_wide`` runs a subset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("probe_1gib", "probe_endless", "scrape_50mib", "scrape_1m_series", "scrape_wide", "scrape_50k_allowed")
MiB = 1 << 20


def rss_mib() -> float:
    """Return this process's resident set size in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def serve() -> None:
    """Serve every hostile route until stdin closes; print the port first."""
    sys.path.insert(0, str(ROOT))
    from tests.support.hostile_servers import Body, StreamingServer, endless, exposition, sized

    comments = b"# " + b"c" * 1000 + b"\n"
    routes = {
        "/1gib/health": sized(1 << 30, b'{"status": "healthy", "pad": "', content_type="application/json"),
        "/endless/health": endless(b'{"status": "healthy", "pad": "', content_type="application/json"),
        "/50mib": Body(lambda: (comments for _ in range(50 * 1024))),
        "/1m": exposition(1_000_000),
        "/wide": exposition(50_000, labels=70),
        "/50k": exposition(50_000),
    }
    with StreamingServer(routes) as srv:
        print(srv.port, flush=True)
        sys.stdin.read()


async def run_case(case: str, base: str) -> dict:
    """Run one case against the hostile server at ``base``; return its figures and outcome."""
    import httpx
    from prometheus_client import CollectorRegistry

    from monitor.config.model import ScrapeTarget
    from monitor.daemon.scraping import ScrapeTargets
    from monitor.metrics import Metrics
    from monitor.tsdb.store import SampleStore
    from probes.api import ApiProbe, ApiSettings
    from probes.base import run_probe

    before = rss_mib()
    t0 = time.perf_counter()
    if case.startswith("probe_"):
        path = {"probe_1gib": "/1gib", "probe_endless": "/endless"}[case]
        timeout = 30.0 if case == "probe_1gib" else 10.0
        probe = ApiProbe(ApiSettings(name="hostile", url=base + path, timeout=timeout, interval=timeout))
        result = await run_probe(probe, timeout)
        await probe.close()
        outcome = {"success": result.success, "error": result.error}
    else:
        path = {"scrape_50mib": "/50mib", "scrape_1m_series": "/1m", "scrape_wide": "/wide",
                "scrape_50k_allowed": "/50k"}[case]
        store = SampleStore(max_series=200_000)
        gaps = [0.0]
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last - 0.002)
                last = now

        async with httpx.AsyncClient() as client:
            targets = ScrapeTargets(store, client, Metrics(CollectorRegistry()))
            targets.configure([ScrapeTarget(name="hostile", url=base + path, interval=60, timeout=60)])
            tick = asyncio.create_task(ticker())
            await targets.job("hostile")()
            done.set()
            await tick
        last = targets.last["hostile"]
        outcome = {"up": last.up, "error": last.error, "samples_scraped": last.samples_scraped,
                   "series_in_store": store.series_count, "max_loop_gap_ms": round(max(gaps) * 1000)}
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "rss_before_mib": round(before), "rss_peak_mib": round(peak),
            "rss_growth_mib": round(peak - before), "seconds": round(seconds, 2), **outcome}


def main() -> None:
    """Serve, run one case, or run every case in its own process and print a JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    if args.case:
        print(json.dumps(asyncio.run(run_case(args.case, args.base))), flush=True)
        return
    server_env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the server is always this checkout's
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=server_env)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        code = os.environ.get("PYTHONPATH") or "this checkout"
        print(json.dumps({"code": code}), flush=True)
        for case in args.cases.split(","):
            out = subprocess.run([sys.executable, __file__, "--case", case, "--base", base],
                                 capture_output=True, text=True)
            line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else json.dumps(
                {"case": case, "crashed": out.returncode, "stderr": out.stderr[-500:]})
            print(line, flush=True)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)


if __name__ == "__main__":
    main()
