"""The writer against a local HTTP server scripted per request: the spec's headers and body,
5xx and 429 retried (``Retry-After`` honoured), other 4xx never retried, and the metrics."""

from __future__ import annotations

import asyncio
import time
from array import array

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from model.labels import Labels
from monitor.remote.protocol import decode, decompress
from monitor.remote.queue import RemoteQueue
from monitor.remote.write import RemoteWriteCollector, RemoteWriter
from tests.support.daemon_helpers import eventually

UP = Labels.of({"__name__": "up", "job": "api"})


class Scripted:
    """Answers each POST with the next status of ``script`` (then 204); records every request."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[dict[str, str], bytes, float]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read(), time.monotonic()))
        status, headers = self.script.pop(0) if self.script else (204, {})
        return web.Response(status=status, headers=headers, text="nope" if status >= 400 else "")


async def _serve(s: Scripted) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/api/v1/write", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/api/v1/write"


async def _run(script, n_batches=1, **kw):
    s = Scripted(script)
    runner, url = await _serve(s)
    q = RemoteQueue(None, batch_samples=10)
    q.open()
    async with httpx.AsyncClient() as client:
        w = RemoteWriter("t", url, q, client, min_backoff=0.01, max_backoff=2.0, **kw)
        for b in range(n_batches):
            q.append(array("q", [1] * 10), array("q", [b * 100 + i for i in range(10)]),
                     array("d", [float(i) for i in range(10)]), {1: UP}.get)
        task = asyncio.create_task(w.run())
        try:
            await eventually(lambda: _done(q), timeout=30, what="the queue empties")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()
    return s, w, q


async def _done(q):
    return q.samples == 0 or None


async def test_headers_and_body_follow_the_spec():
    s, w, _ = await _run([], external_labels={"replica": "a", "job": "ignored"})
    headers, body, _ = s.requests[0]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["User-Agent"].startswith("codebook-monitor/")
    series = decode(decompress(body))
    # the series' own job wins over the external label of the same name; names sorted
    assert series == [({"__name__": "up", "job": "api", "replica": "a"}, [(i, float(i)) for i in range(10)])]
    assert w.sent_samples_total == 10


async def test_5xx_and_429_are_retried_until_accepted():
    s, w, q = await _run([(500, {}), (503, {}), (429, {"Retry-After": "1"})])
    assert len(s.requests) == 4 and len({r[1] for r in s.requests}) == 1  # the same body each time
    assert w.sent_samples_total == 10 and w.retried_samples_total == 30 and w.failed_samples_total == 0


async def test_other_4xx_are_never_retried_and_the_queue_moves_on():
    s, w, q = await _run([(400, {})], n_batches=1, max_samples_per_send=10)
    assert len(s.requests) == 1
    assert w.failed_samples_total == 10 and w.sent_samples_total == 0 and "HTTP 400" in w.last_error


async def test_metrics_name_the_endpoint_never_its_url():
    s, w, q = await _run([(500, {})], n_batches=3, max_samples_per_send=10)
    reg = CollectorRegistry()
    reg.register(RemoteWriteCollector(lambda: [w]))
    text = generate_latest(reg).decode()
    assert 'monitor_remote_write_samples_sent_total{remote_name="t"} 30.0' in text
    assert 'monitor_remote_write_samples_retried_total{remote_name="t"} 10.0' in text
    assert 'monitor_remote_write_queue_samples{remote_name="t"} 0.0' in text
    assert "monitor_remote_write_shard_lag_seconds" in text and "127.0.0.1" not in text


async def test_retry_after_sets_the_least_delay():
    s = Scripted([(429, {"Retry-After": "3"}), (503, {"Retry-After": "soon"}), (500, {"Retry-After": "7"})])
    runner, url = await _serve(s)
    q = RemoteQueue(None)
    q.open()
    q.append(array("q", [1]), array("q", [1]), array("d", [1.0]), {1: UP}.get)
    try:
        async with httpx.AsyncClient() as client:
            w = RemoteWriter("t", url, q, client)
            delays = [await w.send_once(q.peek(10)) for _ in range(3)]
    finally:
        await runner.cleanup()
    # 429 and 503 honour a Retry-After in seconds; an unparsable one, or one on another 5xx, does not count
    assert delays == [3.0, 0.0, 0.0] and q.samples == 1
