"""Print how long the web console's pages take against a real daemon (not a test).

The daemon runs in-process with the console tests' configuration (tests/console/helpers.py: three
users, a firing critical and a firing warning rule, local PagerDuty and webhook sinks); each page
is fetched 30 times by a logged-in responder and the median and worst times are printed.

    .venv/bin/python -m benchmarks.console_pages
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.console.helpers import console_config, login
from tests.support.daemon_helpers import eventually, run_daemon
from tests.support.notify_servers import FakeHTTP, PagerDutyEvents, webhook_sink

PAGES = ["/ui/", "/ui/alerts", "/ui/silences", "/ui/rules", "/ui/probes", "/ui/query?expr=up&range=1h"]
ROUNDS = 30


async def time_pages(client: httpx.AsyncClient, base_url: str, paths: list[str], *, width: int = 28) -> None:
    """Fetch each of ``paths`` :data:`ROUNDS` times and print its median and worst time (ms) and size (bytes).

    :raises AssertionError: a page did not answer 200.
    """
    for path in paths:
        times = []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            r = await client.get(base_url + path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code)
        print(f"GET {path:<{width}} median {statistics.median(times):6.1f} ms  worst {max(times):6.1f} ms  "
              f"({len(r.content)} bytes)")


async def main() -> None:
    """Start the daemon and its sinks, log in, time every page."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeHTTP(PagerDutyEvents()) as pd, FakeHTTP(webhook_sink) as chat:
            cfg = console_config(Path(tmp), pd.url, chat.url)
            async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as c:
                t = time.perf_counter()
                await login(c, d.url, "alice")
                print(f"login (argon2 check, then two pages): {(time.perf_counter() - t) * 1000:.0f} ms")

                async def firing() -> list:
                    return list((await d.get("/api/v2/alerts")).json())

                await eventually(firing, what="a firing alert")
                await time_pages(c, d.url, PAGES)


if __name__ == "__main__":
    asyncio.run(main())
