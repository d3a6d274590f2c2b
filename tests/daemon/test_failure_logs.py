"""A fault is logged when it starts, then at a low rate, and once when it ends (issue 16: the demo
logged "probe failed" every 5 s for the whole of a fault, and the scrape failure likewise). Real HTTP
targets on 127.0.0.1, the real probe runner and scraper."""

from __future__ import annotations

import logging

import httpx
from prometheus_client import CollectorRegistry

from monitor.daemon.probing import ProbeRunner
from monitor.metrics import Metrics
from monitor.scrape.scraper import Scraper
from monitor.tsdb.store import SampleStore
from probes import PROBES
from tests.support.daemon_helpers import HEALTH_DOC
from tests.support.probe_servers import HttpServer, Response


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _messages(caplog, logger: str) -> list[tuple[str, int | None]]:
    return [(r.getMessage(), getattr(r, "failures", None)) for r in caplog.records if r.name == logger]


async def test_probe_failure_logged_when_it_starts_then_every_5_minutes_then_recovered(caplog):
    state = {"up": False}

    def handler(req):
        if state["up"]:
            return Response.json(HEALTH_DOC)
        return Response(503, b"down")

    caplog.set_level(logging.INFO, logger="monitor.probes")
    async with HttpServer(handler) as srv:
        settings = PROBES["api"].Settings.model_validate({"name": "api", "kind": "api", "url": srv.url, "timeout": 2})
        runner = ProbeRunner([settings], SampleStore(), Metrics(CollectorRegistry()))
        clock = Clock()
        runner.failures.clock = clock
        for _ in range(12):  # a minute of 5 s runs
            clock.t += 5
            assert not (await runner.run("api")).success
        assert _messages(caplog, "monitor.probes") == [("probe failed", 1)]
        clock.t += 300
        await runner.run("api")
        assert _messages(caplog, "monitor.probes")[-1] == ("probe still failing", 13)
        state["up"] = True
        assert (await runner.run("api")).success
        await runner.run("api")
        assert _messages(caplog, "monitor.probes") == [
            ("probe failed", 1), ("probe still failing", 13), ("probe recovered", 13)]
        state["up"] = False
        await runner.run("api")
        assert _messages(caplog, "monitor.probes")[-1] == ("probe failed", 1)
        await runner.close()


async def test_scrape_failure_logged_when_it_starts_then_every_5_minutes_then_recovered(caplog):
    state = {"up": False}

    def handler(req):
        if state["up"]:
            return Response(200, b"up_metric 1\n", {"content-type": "text/plain; version=0.0.4"})
        return Response(500, b"oops")

    log = logging.getLogger("tests.scrape_failures")
    caplog.set_level(logging.INFO, logger="tests.scrape_failures")
    async with HttpServer(handler) as srv, httpx.AsyncClient() as client:
        scraper = Scraper("backend", srv.url + "/metrics", SampleStore(), client=client, timeout=2, logger=log)
        clock = Clock()
        scraper.failures.clock = clock
        for _ in range(12):
            clock.t += 5
            assert not (await scraper.scrape_once()).up
        messages = _messages(caplog, "tests.scrape_failures")
        assert len(messages) == 1 and messages[0][0].startswith(f"scrape of {srv.url}/metrics failed: ")
        clock.t += 300
        await scraper.scrape_once()
        messages = _messages(caplog, "tests.scrape_failures")
        assert len(messages) == 2 and "still failing" in messages[1][0] and messages[1][1] == 13
        state["up"] = True
        assert (await scraper.scrape_once()).up
        await scraper.scrape_once()
        messages = _messages(caplog, "tests.scrape_failures")
        assert len(messages) == 3 and messages[2] == (f"scrape of {srv.url}/metrics recovered", 13)


async def test_a_failing_scrape_job_logs_one_line_not_one_per_scrape(caplog):
    """The daemon's scrape job logged its own "scrape failed" beside the scraper's, at every scrape."""
    from monitor.config.model import ScrapeTarget
    from monitor.daemon.scraping import ScrapeTargets

    caplog.set_level(logging.INFO)
    async with HttpServer(lambda req: Response(500, b"oops")) as srv, httpx.AsyncClient() as client:
        targets = ScrapeTargets(SampleStore(), client, Metrics(CollectorRegistry()))
        targets.configure([ScrapeTarget(name="backend", url=srv.url + "/metrics")])
        job = targets.job("backend")
        for _ in range(10):
            await job()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith(f"scrape of {srv.url}/metrics failed"), lines
