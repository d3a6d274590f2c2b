"""Helpers for the daemon tests: the real daemon served in-process by its ``Lifecycle`` on a free
port, small real servers on 127.0.0.1, and polling helpers (no timing assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from monitor.config.loader import load_config
from monitor.daemon.lifecycle import Lifecycle
from monitor.daemon.wiring import Daemon

HEALTH_DOC = {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1.0.0",
              "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}


#: The token :func:`write_config` adds (scopes read, ack, admin) and :func:`run_daemon`'s client sends,
#: so tests can reload (``POST /-/reload`` needs the ``admin`` scope).
ADMIN_TOKEN = "ck_test_admin_token_0123456789abcdef"


def write_config(tmp_path: Path, body: str, name: str = "monitor.yaml") -> Path:
    """Write a config (dedented) to ``tmp_path``; ``server.port`` 0, a state file in tmp_path and
    an ``api:`` section with :data:`ADMIN_TOKEN` are added when the body sets none of them."""
    text = textwrap.dedent(body)
    if "server:" not in text:
        text = "server:\n  host: 127.0.0.1\n  port: 0\n" + text
    if "state:" not in text:
        text += f"\nstate:\n  backend: sqlite\n  path: {tmp_path / 'state.db'}\n"
    if "\napi:" not in "\n" + text:
        text += f"\napi:\n  tokens: [{{name: test-admin, token: {ADMIN_TOKEN}, scopes: [read, ack, admin]}}]\n"
    path = tmp_path / name
    path.write_text(text)
    return path


@dataclass
class Running:
    """A daemon served by its ``Lifecycle`` in this event loop."""

    daemon: Daemon
    task: asyncio.Task
    url: str
    client: httpx.AsyncClient

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(self.url + path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.post(self.url + path, **kw)

    async def metrics(self) -> str:
        r = await self.get("/metrics")
        assert r.status_code == 200
        return r.text

    async def query(self, expr: str, **params: Any) -> httpx.Response:
        return await self.get("/api/v1/query", params={"query": expr, **params})


@contextlib.asynccontextmanager
async def run_daemon(config_path: Path, startup_timeout: float = 30.0) -> AsyncIterator[Running]:
    """Build a :class:`Daemon` from ``config_path`` and serve it with the real ``Lifecycle.serve()``."""
    daemon = Daemon(load_config(config_path))
    lifecycle = Lifecycle(daemon, config_path, host="127.0.0.1")
    task = asyncio.create_task(lifecycle.serve())
    deadline = time.monotonic() + startup_timeout
    server = lifecycle.server
    while True:
        if server.started:
            break
        if task.done():
            task.result()
            raise AssertionError("serve() returned before the server started")
        assert time.monotonic() < deadline, "daemon did not start"
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        try:
            yield Running(daemon, task, url, client)
        finally:
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), 30)
            except asyncio.TimeoutError:
                server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.2,
                     what: str = "condition") -> Any:
    """Poll ``check()`` until it returns a truthy value (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}"[:3000])
        await asyncio.sleep(interval)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_values(text: str, name: str, **labels: str) -> list[float]:
    """Values of the exposition lines of metric ``name`` whose labels include ``labels``."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        got = dict(_LABEL.findall(m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            out.append(float(m.group(4)))
    return out


class TinyHttpServer:
    """A one-request-per-connection HTTP/1.1 server on 127.0.0.1 answering ``routes[path]``
    (``(status, content_type, body)``); counts requests per path."""

    def __init__(self, routes: dict[str, tuple[int, str, str | bytes]]) -> None:
        self.routes = routes
        self.hits: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "TinyHttpServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ", 2)[1].split("?", 1)[0]
            self.hits[path] = self.hits.get(path, 0) + 1
            status, ctype, body = self.routes.get(path, (404, "text/plain", "not found\n"))
            payload = body.encode() if isinstance(body, str) else body
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {len(payload)}\r\n"
                         f"connection: close\r\n\r\n".encode() + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


def health_routes() -> dict[str, tuple[int, str, str]]:
    return {"/health": (200, "application/json", json.dumps(HEALTH_DOC))}


#: A rule file whose one alert stays pending for an hour (activeAt checks, reload tests).
PENDING_RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: AlwaysPending
        expr: vector(1)
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: always pending
"""
