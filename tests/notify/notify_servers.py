"""Real local servers for the notifier tests: scripted HTTP (aiohttp.web) and SMTP (aiosmtpd).

:class:`FakeHTTP` answers every request with the next scripted :class:`Reply` for its path, or
with its ``default`` handler; it records every request. :func:`slack_api`,
:func:`pagerduty_api` and :func:`webhook_sink` are defaults speaking each vendor's shapes.
:class:`FakeSMTP` is an aiosmtpd controller that records messages and can answer a scripted
reply code to ``RCPT``/``DATA``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        """The query parameters plus the JSON or form body, as a dict."""
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            return {**self.query, **json.loads(self.body or b"{}")}
        return {**self.query, **dict(parse_qsl(self.body.decode()))}


@dataclass
class Reply:
    """A scripted answer; ``delay`` seconds before answering (for timeouts)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeHTTP:
    """A scripted HTTP server on 127.0.0.1 (real sockets, real HTTP/1.1 via aiohttp).

    Usage::

        async with FakeHTTP(pagerduty_api) as srv:
            srv.script("/v2/enqueue", Reply(503), Reply(503))   # then the default answers
            ... srv.url ... srv.requests
    """

    def __init__(self, default: Callable[[Recorded], Reply] | None = None) -> None:
        self.default = default or (lambda req: Reply(200, {}))
        self.requests: list[Recorded] = []
        self._script: dict[str, deque[Reply | Callable[[Recorded], Reply]]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        """Queue replies for ``path`` (used in order, then the default handler)."""
        self._script[path].extend(replies)

    def on(self, path: str) -> list[Recorded]:
        """The recorded requests to ``path``."""
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = Recorded(request.method, request.path, dict(request.headers), await request.read(),
                       dict(request.query))
        self.requests.append(rec)
        queue = self._script.get(request.path)
        reply = queue.popleft() if queue else self.default
        if callable(reply):
            reply = reply(rec)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body
        if isinstance(body, (dict, list)):
            return web.json_response(body, status=reply.status, headers=reply.headers)
        return web.Response(status=reply.status, body=body or b"", headers=reply.headers)

    async def __aenter__(self) -> "FakeHTTP":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- vendor defaults ------------------------------------------------------------------------

_ts = itertools.count(1)


def slack_api(token: str) -> Callable[[Recorded], Reply]:
    """A Slack Web API: chat.postMessage / chat.update / conversations.open (bearer ``token``)."""

    def handle(req: Recorded) -> Reply:
        if req.headers.get("Authorization") != f"Bearer {token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        data = req.data
        if req.path == "/api/conversations.open":
            return Reply(200, {"ok": True, "channel": {"id": "D" + data["users"]}})
        if req.path == "/api/chat.postMessage":
            channel = data["channel"]
            if channel.startswith("#"):
                channel = "C" + channel[1:].upper().replace("-", "")
            return Reply(200, {"ok": True, "channel": channel, "ts": f"1700000000.{next(_ts):06d}",
                               "message": {"text": data.get("text", "")}})
        if req.path == "/api/chat.update":
            return Reply(200, {"ok": True, "channel": data["channel"], "ts": data["ts"],
                               "text": data.get("text", "")})
        return Reply(404, {"ok": False, "error": "unknown_method"})

    return handle


def pagerduty_api(req: Recorded) -> Reply:
    """PagerDuty Events API v2: 202 success, 400 for a body without routing key or action."""
    if req.path != "/v2/enqueue":
        return Reply(404, {"status": "not found"})
    data = req.data
    if not data.get("routing_key") or data.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        return Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                           "errors": ["'routing_key' is missing or blank"]})
    return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": data.get("dedup_key")})


def webhook_sink(req: Recorded) -> Reply:
    """Any webhook receiver: 200 with an empty body."""
    return Reply(200, b"")


def echo(status: int, **headers: str) -> Callable[[Recorded], Reply]:
    """An error reply that echoes the request back (path, headers, body) — a leak trap."""

    def handle(req: Recorded) -> Reply:
        echoed = f"{req.method} {req.path} {json.dumps(req.headers)} {req.body.decode(errors='replace')}"
        return Reply(status, {"ok": False, "error": "echo", "status": "error", "message": echoed}, headers)

    return handle
