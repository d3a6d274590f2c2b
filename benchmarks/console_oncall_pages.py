"""Print how long the console's On-call and Incidents pages take against a real daemon (not a test).

As :mod:`benchmarks.console_pages`, with the on-call test configuration
(tests/console/test_console_oncall_http.py: two schedules, one with business hours, three people):
one stored override and one open incident (from the firing critical rule) with a note; each page is
fetched 30 times by a logged-in responder and the median and worst times are printed.

    .venv/bin/python -m benchmarks.console_oncall_pages
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from types import SimpleNamespace

import httpx

from benchmarks.console_pages import time_pages
from tests.console.helpers import csrf_of, login
from tests.console.test_console_oncall_http import oncall_config
from tests.support.daemon_helpers import eventually, run_daemon
from tests.support.notify_servers import FakeHTTP, PagerDutyEvents, webhook_sink


async def main() -> None:
    """Start the daemon and its sinks, log in, add an override and a note, time every page."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeHTTP(PagerDutyEvents()) as pd, FakeHTTP(webhook_sink) as chat:
            cfg = oncall_config(Path(tmp), SimpleNamespace(pd=pd, chat=chat))
            async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as c:
                await login(c, d.url, "alice")
                page = (await c.get(d.url + "/ui/oncall")).text
                r = await c.post(d.url + "/ui/oncall/overrides", data={
                    "csrf": csrf_of(page), "schedule": "primary", "person": "carol", "tz": "UTC",
                    "start": "2030-01-01T00:00", "end": "2030-01-02T00:00"})
                assert r.status_code == 303, r.text

                async def opened() -> list:
                    return list((await d.get("/api/v1/incidents")).json()["incidents"])

                [inc, *_] = await eventually(opened, timeout=60, what="an incident")
                r = await c.post(d.url + f"/ui/incidents/{inc['id']}/notes", data={"csrf": csrf_of(page), "text": "x"})
                assert r.status_code == 303, r.text
                await time_pages(c, d.url, ["/ui/oncall", "/ui/oncall?tz=America/New_York", "/ui/incidents",
                                            f"/ui/incidents/{inc['id']}"], width=32)


if __name__ == "__main__":
    asyncio.run(main())
