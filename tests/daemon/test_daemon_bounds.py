"""The real daemon scraping a 1,000,000-series target and probing a hostile endpoint, with the default
limits: the scrape fails with ``up`` 0 and the reason, while a 1 s probe keeps its schedule,
``/health`` and ``/metrics`` answer, and the process does not balloon (issue 9, "Bounds").

Before the limits, the same target made ``/metrics`` time out at 30 s, ``/health`` take up to
16 s, a 1 s probe run 4 times in 70 s and RSS reach 2.4 GB. Bounds here are generous behaviour
bounds, not timings."""

from __future__ import annotations

import time

from tests.support.daemon_helpers import (TinyHttpServer, eventually, health_routes, metric_values, run_daemon,
                                          write_config)
from tests.support.hostile_servers import StreamingServer, endless, exposition

MiB = 1 << 20


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_one_second_probe_keeps_its_schedule_while_a_million_series_target_is_scraped(tmp_path):
    routes = {"/metrics": exposition(1_000_000), "/health": endless(b'{"status": "healthy", "pad": "',
                                                                     content_type="application/json")}
    with StreamingServer(routes) as hostile:
        async with TinyHttpServer(health_routes()) as api:
            cfg = write_config(tmp_path, f"""
                probes:
                  - name: fast
                    kind: api
                    url: {api.url}
                    interval: 1s
                    timeout: 1s
                  - name: endless-body
                    kind: api
                    url: {hostile.url}
                    interval: 2s
                    timeout: 2s
                scrape:
                  - name: huge
                    url: {hostile.url}/metrics
                    interval: 5s
                    timeout: 5s  # room for a loaded CI machine: the limit, not the timeout, must end it
                """)
            before = rss()
            async with run_daemon(cfg) as d:
                runs: set[float] = set()
                health_seconds: list[float] = []

                async def failures() -> float:
                    last = d.daemon.probes.last.get("fast")
                    if last is not None:
                        runs.add(last.finished_at)
                    t = time.monotonic()
                    r = await d.get("/health")
                    health_seconds.append(time.monotonic() - t)
                    assert r.status_code in (200, 503)
                    text = await d.metrics()
                    done = metric_values(text, "monitor_scrapes_total", job="huge", outcome="failure")
                    return done[0] >= 2 if done else False

                started = time.monotonic()
                await eventually(failures, timeout=120, interval=0.1, what="two failed scrapes of the huge target")
                window = time.monotonic() - started

                result = d.daemon.scrape.last["huge"]
                assert not result.up and result.limit == "sample_limit", result
                assert result.error.startswith("sample_limit exceeded: more than 50000 samples")
                r = await d.query('up{job="huge"}')
                assert [s["value"][1] for s in r.json()["data"]["result"]] == ["0"]
                r = await d.query('count(hostile_series)')
                assert r.json()["data"]["result"] == []  # nothing of the failed scrapes was stored

                probe = d.daemon.probes.last["endless-body"]
                assert not probe.success and probe.error.startswith("body exceeds body_size_limit 10MiB"), probe.error

                # a 1 s probe ran about once a second all along (before: 4 runs in 70 s)
                assert len(runs) >= window / 3, (len(runs), window)
                assert d.daemon.probes.last["fast"].success
                assert max(health_seconds) < 5, max(health_seconds)  # before: up to 16 s
                t = time.monotonic()
                assert (await d.get("/metrics")).status_code == 200
                assert time.monotonic() - t < 10  # before: timed out at 30 s
            assert rss() - before < 400 * MiB, (rss() - before) // MiB  # before: 2.4 GB
