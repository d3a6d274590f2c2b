"""Small real servers on 127.0.0.1 for the probe, daemon and notifier tests.

:class:`HttpServer` speaks just enough HTTP/1.1 (one request per connection, ``Connection:
close``) over ``asyncio.start_server``, optionally TLS; :class:`SilentServer` accepts (and
counts) connections and never answers; :func:`closed_port` gives a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """One HTTP response to send; ``hang=True`` never answers."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, **headers: str) -> "Response":
        return cls(status, json.dumps(obj).encode(), {"content-type": "application/json", **headers})


Handler = Callable[[Request], Awaitable[Response] | Response]

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


class HttpServer:
    """A tiny HTTP/1.1 server; every request is handed to ``handler`` and recorded in ``requests``.

    Usage::

        async with HttpServer(lambda req: Response.json({"ok": True})) as srv:
            httpx.get(srv.url + "/x")
    """

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "HttpServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            req = Request(method, path, headers, body)
            self.requests.append(req)
            resp = self.handler(req)
            if asyncio.iscoroutine(resp):
                resp = await resp
            if resp.hang:
                await asyncio.Event().wait()
            payload = resp.body
            if isinstance(payload, str):
                payload = payload.encode()
            elif not isinstance(payload, bytes):
                payload = json.dumps(payload).encode()
            out = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}",
                   f"content-length: {len(payload)}", "connection: close"]
            out += [f"{k}: {v}" for k, v in resp.headers.items()]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError,
                asyncio.CancelledError):
            pass  # a test server shut down or fed garbage: drop the connection quietly
        finally:
            self._tasks.discard(task)
            writer.close()


class SilentServer:
    """Accepts TCP connections and never sends a byte (a hung target)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0
        self.port = 0

    async def __aenter__(self) -> "SilentServer":
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._writers.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()


class BlurtServer:
    """Writes ``payload`` as soon as a client connects, then closes (e.g. plain HTTP on a TLS probe)."""

    def __init__(self, payload: bytes = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n") -> None:
        self.payload = payload
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "BlurtServer":
        async def blurt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(self.payload)
            await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(blurt, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def closed_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
