"""A mass outage cannot collapse the prober: hundreds of api probes whose targets all hang (or
all refuse connections) at once are every one OK again on their first run after recovery; each
request has a connection of its own; the number of runs in flight is bounded.

Behaviour, not timing: the bounds are generous, and what is checked is which runs succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from prometheus_client import CollectorRegistry

from monitor.daemon.probing import ProbeClients, ProbeRunner, probe_concurrency
from monitor.metrics import Metrics
from monitor.tsdb.store import SampleStore
from probes import PROBES
from probes.transport import ProbeTransport
from tests.support.daemon_helpers import HEALTH_DOC, eventually, run_daemon, write_config

BODY = json.dumps(HEALTH_DOC).encode()


class Targets:
    """Many targets (``/t/<n>/health``) on one port, all switched at once between ``ok``,
    ``hang`` (accept, read, never answer) and ``refuse`` (listener closed)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.port = 0
        self.server: asyncio.Server | None = None
        self.held: set[asyncio.StreamWriter] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    async def __aenter__(self) -> "Targets":
        await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.set_mode("refuse")

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True,
                                                 backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]

    async def set_mode(self, mode: str) -> None:
        previous, self.mode = self.mode, mode
        if mode == "refuse" and self.server is not None:
            self.server.close()
            self.server = None
        if previous == "refuse" and mode != "refuse":
            await self._listen()
        if mode != "hang":
            for w in list(self.held):
                w.transport.abort()
            self.held.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.mode == "hang":
                self.held.add(writer)
                await reader.read()  # until the client gives up
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + BODY)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.in_flight -= 1
            self.held.discard(writer)
            writer.close()


def _started(result) -> float:
    return result.finished_at - result.duration_seconds


@pytest.mark.parametrize("failure", ["hang", "refuse"])
async def test_every_target_is_ok_on_its_next_run_after_a_mass_outage(tmp_path, failure):
    n, interval = 300, 2.0
    async with Targets() as targets:
        probes = "\n".join(f"  - {{name: t{i}, kind: api, url: 'http://127.0.0.1:{targets.port}/t/{i}', "
                           f"interval: {interval:g}s, timeout: 1500ms}}" for i in range(n))
        cfg = write_config(tmp_path, "log:\n  level: ERROR\nprobes:\n" + probes + "\n")
        async with run_daemon(cfg) as d:
            runner = d.daemon.probes

            def started_since(t: float, success: bool) -> set[str]:
                return {name for name, hist in runner.history.items()
                        if any(r.success is success and _started(r) >= t for r in hist)}

            async def all_ok_once():
                return len(started_since(0, True)) == n

            await eventually(all_ok_once, timeout=60, what="every probe OK once")
            await targets.set_mode(failure)
            down = time.time()

            async def all_failing():  # every probe failed twice in a row: the outage outlasted an interval
                return len(started_since(down + interval, False)) == n

            await eventually(all_failing, timeout=60, what="every probe failing")
            await targets.set_mode("ok")
            up = time.time()

            async def first_run_after_recovery():
                first = {}
                for name, hist in runner.history.items():
                    after = [r for r in hist if _started(r) >= up + 0.05]
                    if after:
                        first[name] = after[0].success
                return first if len(first) == n else None

            first = await eventually(first_run_after_recovery, timeout=60, what="a run of every probe after recovery")
            failed = sorted(name for name, ok in first.items() if not ok)
            assert not failed, f"{len(failed)} of {n} probes failed their first run after recovery: {failed[:10]}"


def _api(name: str, url: str, timeout: float = 5.0):
    return PROBES["api"].Settings.model_validate({"name": name, "kind": "api", "url": url, "timeout": timeout})


async def test_probes_share_a_pool_less_client_that_outlives_a_reload():
    settings = [_api(f"p{i}", f"http://127.0.0.1:1/t/{i}") for i in range(3)]
    clients = ProbeClients()
    runner = ProbeRunner(settings, SampleStore(), Metrics(CollectorRegistry()), clients=clients)
    shared = {id(p._client) for p in runner._probes.values()}
    client = next(iter(runner._probes.values()))._client
    assert len(shared) == 1 and isinstance(client._transport, ProbeTransport)  # no pool, no queue
    await runner.close()  # a reload: the next runner keeps the same client
    assert not client.is_closed
    await clients.aclose()
    assert client.is_closed


async def test_with_a_proxy_in_the_environment_each_probe_owns_a_client(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    settings = [_api(f"p{i}", f"http://127.0.0.1:1/t/{i}") for i in range(3)]
    runner = ProbeRunner(settings, SampleStore(), Metrics(CollectorRegistry()), clients=ProbeClients())
    owned = [p._client for p in runner._probes.values()]
    assert len({id(c) for c in owned}) == 3
    await runner.close()
    assert all(c.is_closed for c in owned)


async def test_runs_in_flight_are_bounded_by_the_slots():
    async with Targets() as targets:
        targets.delay = 0.3
        settings = [_api(f"p{i}", f"http://127.0.0.1:{targets.port}/t/{i}") for i in range(12)]
        runner = ProbeRunner(settings, SampleStore(), Metrics(CollectorRegistry()), clients=ProbeClients(),
                             slots=asyncio.Semaphore(3))
        try:
            results = await runner.run_all()
        finally:
            await runner.close()
        assert all(r.success for r in results.values())
        assert targets.max_in_flight <= 3


async def test_closing_a_runner_waits_for_runs_in_flight_then_closes():
    async with Targets() as targets:
        targets.delay = 0.3
        runner = ProbeRunner([_api("p", f"http://127.0.0.1:{targets.port}/t/0")], SampleStore(),
                             Metrics(CollectorRegistry()), clients=ProbeClients())
        run = asyncio.create_task(runner.run("p"))
        await asyncio.sleep(0.1)
        await runner.close()  # a reload: the run in flight finishes with its client still open
        assert (await run).success


async def test_closing_with_no_grace_cancels_runs_in_flight():
    async with Targets() as targets:
        await targets.set_mode("hang")
        runner = ProbeRunner([_api("p", f"http://127.0.0.1:{targets.port}/t/0", timeout=30)], SampleStore(),
                             Metrics(CollectorRegistry()), clients=ProbeClients())
        run = asyncio.create_task(runner.run("p"))
        await asyncio.sleep(0.2)
        await asyncio.wait_for(runner.close(grace=0), 10)
        with contextlib.suppress(asyncio.CancelledError):
            await run
        assert run.cancelled()


@pytest.mark.parametrize(("open_files", "expected"), [(1024, 384), (20000, 9872), (10**7, 10_000), (100, 16)])
def test_probe_concurrency_leaves_files_for_the_rest_of_the_daemon(open_files, expected):
    assert probe_concurrency(open_files) == expected
