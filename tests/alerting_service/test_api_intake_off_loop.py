"""Intake bodies are decoded and validated on the parser thread, off the event loop (issue 9:
a 5,000-alert body held the loop ~0.2 s of pure CPU per POST)."""

from __future__ import annotations

import asyncio
import threading

import httpx

from monitor.api.intake import PARSER, off_loop
from tests.alerting_service.conftest import INTAKE_TOKEN

INTAKE = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
ALERT = {"labels": {"alertname": "DatabaseDown", "severity": "warning", "service": "db"},
         "startsAt": "2026-11-30T09:58:00Z"}


async def test_off_loop_runs_on_the_parser_thread_and_raises_there():
    assert await off_loop(lambda: threading.current_thread().name) != threading.current_thread().name
    try:
        await off_loop(int, "x")
    except ValueError:
        pass
    else:
        raise AssertionError("the function's exception is raised to the caller")


async def test_intake_posts_wait_for_the_parser_thread_while_the_loop_serves(harness, api):
    gate = threading.Event()
    busy = PARSER.submit(gate.wait, 30)  # the one parser thread is taken
    try:
        async with httpx.AsyncClient(base_url=api.url, headers=INTAKE, timeout=30) as c:
            v2 = asyncio.create_task(c.post("/api/v2/alerts", json=[ALERT]))
            hook = asyncio.create_task(c.post("/api/v1/intake/alertmanager",
                                              json={"version": "4", "alerts": [{**ALERT, "status": "firing"}]}))
            await asyncio.sleep(0.3)
            # the loop serves other requests meanwhile; the intakes wait for their decoding
            assert (await c.get("/-/healthy")).status_code == 200
            assert not v2.done() and not hook.done()
            gate.set()
            assert (await v2).status_code == 200
            assert (await hook).status_code == 200
            assert (await c.post("/api/v2/alerts", content=b"{not json")).status_code == 400
    finally:
        gate.set()
        busy.result(5)
