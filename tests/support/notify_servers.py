"""Real local servers for the notifier tests: scripted HTTP (aiohttp.web) and SMTP (aiosmtpd).

:class:`FakeHTTP` answers every request with the next scripted :class:`Reply` for its path, or
with its ``default`` handler; it records every request. :func:`slack_api`,
:func:`pagerduty_api` and :func:`webhook_sink` are defaults speaking each vendor's shapes.
:class:`FakeSMTP` is an aiosmtpd controller that records messages and can answer a scripted
reply code to ``RCPT``/``DATA``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from tests.support.probe_servers import closed_port


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

    def __init__(self, default: Callable[[Recorded], Reply] | None = None, *,
                 client_max_size: int = 1024 ** 2) -> None:
        self.default = default or (lambda req: Reply(200, {}))
        self.client_max_size = client_max_size  # aiohttp's limit on request bodies (413 past it)
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
        app = web.Application(client_max_size=self.client_max_size)
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


# -- vendor defaults ------------------------------------------------------------------------

class SlackWorkspace:
    """A Slack Web API holding the channels' history (bearer ``token``), callable as a handler.

    Methods, in Slack's shapes (https://api.slack.com/methods): ``chat.postMessage`` (a message
    with its ``ts``, a Unix time with microseconds as Slack's, and its ``metadata``
    ``{"event_type", "event_payload"}``), ``chat.update``, ``conversations.open`` (DM ``D<user>``),
    ``conversations.list`` (channels by ``name``) and ``conversations.history`` (newest first,
    ``oldest`` exclusive unless ``inclusive``, ``limit``, ``cursor`` ->
    ``response_metadata.next_cursor``, ``has_more``; ``metadata`` only with
    ``include_all_metadata``). A channel name ``#ops-alerts`` has the id ``COPSALERTS``; the
    workspace has the ``channels`` given (names without ``#``) and every one posted to.
    :attr:`posts` lists every message posted, :meth:`duplicates` the delivery ids posted twice.
    """

    def __init__(self, token: str, channels: tuple[str, ...] = ()) -> None:
        self.token = token
        self.history: dict[str, list[dict[str, Any]]] = defaultdict(list)  # channel id -> messages, oldest first
        self.names: dict[str, str] = {}  # channel name -> id
        for name in channels:
            self._channel("#" + name)
        self.posts: list[dict[str, Any]] = []
        self._last_ts = 0.0

    def _next_ts(self) -> str:
        t = max(time.time(), self._last_ts + 1e-6)
        self._last_ts = t
        return f"{t:.6f}"

    def _channel(self, channel: str) -> str:
        if channel.startswith("#"):
            cid = "C" + channel[1:].upper().replace("-", "")
            self.names[channel[1:]] = cid
            return cid
        return channel

    def delivery_ids(self) -> Counter:
        """How many messages were posted with each ``metadata.event_payload.delivery_id``."""
        return Counter(str(((m.get("metadata") or {}).get("event_payload") or {}).get("delivery_id", ""))
                       for m in self.posts)

    def duplicates(self) -> dict[str, int]:
        """Delivery ids posted more than once (two channel messages for one transition)."""
        return {k: n for k, n in self.delivery_ids().items() if k and n > 1}

    def __call__(self, req: Recorded) -> Reply:
        if req.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        data = req.data
        if req.path == "/api/conversations.open":
            return Reply(200, {"ok": True, "channel": {"id": "D" + data["users"]}})
        if req.path == "/api/chat.postMessage":
            channel = self._channel(data["channel"])
            msg: dict[str, Any] = {"type": "message", "ts": self._next_ts(), "text": data.get("text", ""),
                                   "blocks": data.get("blocks", [])}
            if isinstance(data.get("metadata"), dict):
                msg["metadata"] = data["metadata"]
            self.history[channel].append(msg)
            self.posts.append({**msg, "channel": channel})
            return Reply(200, {"ok": True, "channel": channel, "ts": msg["ts"],
                               "message": {"text": msg["text"]}})
        if req.path == "/api/chat.update":
            for m in self.history.get(data["channel"], []):
                if m["ts"] == data["ts"]:
                    m.update(text=data.get("text", ""), blocks=data.get("blocks", []), edited=True)
            return Reply(200, {"ok": True, "channel": data["channel"], "ts": data["ts"],
                               "text": data.get("text", "")})
        if req.path == "/api/conversations.list":
            return Reply(200, {"ok": True, "channels": [{"id": cid, "name": name, "is_channel": True}
                                                        for name, cid in self.names.items()],
                               "response_metadata": {"next_cursor": ""}})
        if req.path == "/api/conversations.history":
            return self._history(data)
        return Reply(404, {"ok": False, "error": "unknown_method"})

    def _history(self, data: dict[str, Any]) -> Reply:
        channel = data.get("channel", "")
        if channel not in self.history and channel not in self.names.values():
            return Reply(200, {"ok": False, "error": "channel_not_found"})
        oldest = float(data.get("oldest") or 0)
        inclusive = str(data.get("inclusive", "")).lower() in ("1", "true")
        with_meta = str(data.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = min(int(data.get("limit") or 100), 999)
        start = int(data.get("cursor") or 0)
        found = [m for m in reversed(self.history.get(channel, []))
                 if float(m["ts"]) > oldest or (inclusive and float(m["ts"]) == oldest)]
        page = found[start:start + limit]
        more = start + limit < len(found)
        messages = [{k: v for k, v in m.items() if k != "metadata" or with_meta} for m in page]
        return Reply(200, {"ok": True, "messages": messages, "has_more": more,
                           "response_metadata": {"next_cursor": str(start + limit) if more else ""}})


def slack_api(token: str, channels: tuple[str, ...] = ()) -> SlackWorkspace:
    """A Slack Web API (see :class:`SlackWorkspace`) accepting bearer ``token``, with ``channels``."""
    return SlackWorkspace(token, channels)


def pagerduty_api(req: Recorded) -> Reply:
    """PagerDuty Events API v2: 202 success, 400 for a body without routing key or action."""
    if req.path != "/v2/enqueue":
        return Reply(404, {"status": "not found"})
    data = req.data
    if not data.get("routing_key") or data.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        return Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                           "errors": ["'routing_key' is missing or blank"]})
    return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": data.get("dedup_key")})


class PagerDutyEvents:
    """A PagerDuty Events API v2 that models incidents by ``dedup_key``, callable as a handler.

    Events v2 semantics (PagerDuty "Events API v2 Overview", deduplication): a ``trigger`` with
    a ``dedup_key`` that has an open (unresolved) incident is appended to it and pages nobody;
    otherwise it opens an incident and pages (:attr:`pages`). A ``resolve`` closes the open
    incident; with none open it has no effect: :attr:`resolve_repeated` when the key had an
    incident before (a redelivered resolve), :attr:`resolve_unknown` when it never had one (a
    resolve for something never announced). :attr:`events` keeps ``(time, event)`` of every
    accepted event; :attr:`paged` the triggers that opened an incident.
    """

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.pages = 0
        self.deduplicated = 0
        self.resolve_repeated = 0
        self.resolve_unknown = 0
        self.paged: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one valid event to the incidents."""
        self.events.append((time.time(), event))
        key, action = str(event.get("dedup_key", "")), event.get("event_action")
        if action == "trigger":
            if key in self.open:
                self.deduplicated += 1
            else:
                self.open.add(key)
                self.pages += 1
                self.paged.append(event)
            self._seen.add(key)
        elif action == "resolve":
            if key in self.open:
                self.open.discard(key)
            elif key in self._seen:
                self.resolve_repeated += 1
            else:
                self.resolve_unknown += 1

    def __call__(self, req: Recorded) -> Reply:
        reply = pagerduty_api(req)
        if reply.status == 202:
            self.apply(req.data)
        return reply


def webhook_sink(req: Recorded) -> Reply:
    """Any webhook receiver: 200 with an empty body."""
    return Reply(200, b"")


def echo(status: int, **headers: str) -> Callable[[Recorded], Reply]:
    """An error reply that echoes the request back (path, headers, body) — a leak trap."""

    def handle(req: Recorded) -> Reply:
        echoed = f"{req.method} {req.path} {json.dumps(req.headers)} {req.body.decode(errors='replace')}"
        return Reply(status, {"ok": False, "error": "echo", "status": "error", "message": echoed}, headers)

    return handle


# -- SMTP -----------------------------------------------------------------------------------

def self_signed_context(cn: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return ``(server_context, client_context)`` for a fresh self-signed certificate."""
    import ipaddress
    import tempfile
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(cn))]), False)
            .sign(key, hashes.SHA256()))
    tmp = Path(tempfile.mkdtemp())
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    return server, client


class SMTPHandler:
    """aiosmtpd handler: records messages; ``rcpt_reply``/``data_reply`` script error replies."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                              or envelope.content))
        return "250 Message accepted for delivery"


class FakeSMTP:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in its own thread).

    :param users: ``{username: password}`` accepted by AUTH (AUTH offered without TLS).
    :param tls: offer STARTTLS with a self-signed certificate (``client_context`` trusts it).
    """

    def __init__(self, *, users: dict[str, str] | None = None, tls: bool = False) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.handler = SMTPHandler()
        self.port = closed_port()
        self.users = users or {}
        kwargs: dict[str, Any] = {}
        self.client_context = None
        if tls:
            server_ctx, self.client_context = self_signed_context()
            kwargs["tls_context"] = server_ctx
        if self.users:
            def authenticator(server, session, envelope, mechanism, auth_data):
                login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
                pw = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
                return AuthResult(success=self.users.get(login) == pw, handled=False)
            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> "FakeSMTP":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"
