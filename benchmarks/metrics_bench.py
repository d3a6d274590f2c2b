"""Benchmark: ``/metrics`` size and rendering time with N probe results.

Builds the daemon's real registry (``Daemon`` from a config of N ``api`` probes: every
``monitor_*`` metric, the probe, rule, on-call, process and notify collectors), records one
result per probe through the probe runner as a run would (samples as the ``api`` probe reports
them: ``probe_success``, ``probe_duration_seconds``, ``probe_http_status_code``,
``probe_api_health_duration_seconds``, ``probe_api_healthy`` and one
``probe_api_check_healthy`` per health check), then times what ``GET /metrics`` does — refresh
the store gauges and render the registry — over fresh results each round (every probe ran
since the last scrape: the usual case when probes and scrapes share an interval). It also times
``prometheus_client.generate_latest`` over the same registry, and the recording of results.

Prints figures; tests never assert timings. Target (issue 10): < 50 ms at 5,000 probes.

    python benchmarks/metrics_bench.py --probes 1000 5000
    python benchmarks/metrics_bench.py --probes 5000 --checks 0 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest  # noqa: E402

from monitor.config.loader import load_config_text  # noqa: E402
from monitor.daemon.collectors import update_store_gauges  # noqa: E402
from monitor.daemon.wiring import Daemon  # noqa: E402
from probes.base import ProbeResult, Sample  # noqa: E402

try:  # what GET /metrics renders with (plain generate_latest before it existed)
    from monitor.metrics import render_text as serve  # noqa: E402
except ImportError:
    serve = generate_latest

CHECKS = ("database", "pinecone", "llm")


def config_text(n: int, tmp: str) -> str:
    """Return a config of ``n`` api probes every 15 s."""
    probes = "".join(f"""
  - name: api-{i:05d}
    kind: api
    url: http://127.0.0.1:9/t/{i}
    interval: 15s
    timeout: 5s
""" for i in range(n))
    return f"""
server: {{host: 127.0.0.1, port: 9115}}
state: {{path: {tmp}/state.db}}
probes:{probes}
"""


def result(i: int, k: int, checks: int) -> ProbeResult:
    """Return the result of probe ``i`` at round ``k``, shaped like the api probe's."""
    r = ProbeResult(success=True)
    r.duration_seconds = 0.010 + (i % 97) * 1e-4 + k * 1e-6
    r.finished_at = 1_700_000_000.0 + k * 15 + i * 15 / 5000
    r.add("probe_api_health_duration_seconds", r.duration_seconds * 0.9)
    r.add("probe_http_status_code", 200)
    r.add("probe_api_healthy", 1)
    for c in CHECKS[:checks]:
        r.add("probe_api_check_healthy", 1, check=c)
    r.samples.append(Sample("probe_success", {}, 1.0))
    r.samples.append(Sample("probe_duration_seconds", {}, r.duration_seconds))
    return r


def figures(times: list[float]) -> str:
    """Return min / median / max of ``times`` (seconds) in milliseconds."""
    ms = sorted(t * 1000 for t in times)
    return f"min {ms[0]:.1f} / median {statistics.median(ms):.1f} / max {ms[-1]:.1f} ms"


def bench(n: int, checks: int, rounds: int, tmp: str) -> None:
    """Build a daemon with ``n`` probes; record and render ``rounds`` times; print the figures."""
    daemon = Daemon(load_config_text(config_text(n, tmp), f"{tmp}/monitor.yaml", base_dir=tmp, env={}))
    runner = daemon.probes
    names = list(runner.settings)
    record, render, plain = [], [], []
    body = b""
    try:
        for k in range(rounds + 1):
            results = [result(i, k, checks) for i in range(n)]
            t = time.perf_counter()
            for name, res in zip(names, results):
                runner._record(name, res)  # noqa: SLF001 - a made-up result, recorded as a run would
            record.append(time.perf_counter() - t)
            gc.collect()
            t = time.perf_counter()
            update_store_gauges(daemon.metrics, daemon.store)
            body = serve(daemon.registry)
            render.append(time.perf_counter() - t)
            if k % 3 == 0:
                t = time.perf_counter()
                generate_latest(daemon.registry)
                plain.append(time.perf_counter() - t)
    finally:
        asyncio.run(daemon.http.aclose())
    lines = body.count(b"\n")
    per_probe = sum(1 for line in body.splitlines() if b'probe="api-00001"' in line)
    print(f"{n} probes, {checks} health checks each: /metrics {len(body) / 1e6:.2f} MB, {lines} lines "
          f"({per_probe} lines name one probe)")
    print(f"  GET /metrics (refresh + render, every result new): {figures(render[1:])}")
    print(f"  generate_latest(registry):                          {figures(plain)}")
    print(f"  recording {n} results:                              {figures(record[1:])} "
          f"= {statistics.median(record[1:]) / n * 1e6:.1f} us per result")


def main() -> None:
    """Parse arguments and run the benchmark for each probe count."""
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--checks", type=int, default=3, choices=range(len(CHECKS) + 1))
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    print(f"renderer: {serve.__module__}.{serve.__name__}")
    for n in args.probes:
        with tempfile.TemporaryDirectory() as tmp:
            bench(n, args.checks, args.rounds, tmp)


if __name__ == "__main__":
    main()
