"""Local stand-ins for Slack, PagerDuty and a webhook, for the demo: they speak the vendors' wire shapes.

One Starlette app, served by uvicorn inside the caller's event loop, answers:

- the **Slack Web API** methods codebook-monitor calls through slack-sdk, at ``POST /api/<method>``
  (https://api.slack.com/web): ``chat.postMessage``, ``chat.update``, ``conversations.open``
  and ``auth.test``. Arguments are read the way slack-sdk sends them — a JSON body
  (``chat.*``, because of ``blocks``), a form body, or query parameters (``conversations.open``
  and ``auth.test``); the bot token from ``Authorization: Bearer xoxb-...`` (or a ``token``
  argument). Answers are HTTP 200 with ``{"ok": true, "channel": "C...", "ts": "1764...",
  ...}`` or ``{"ok": false, "error": "channel_not_found"}``-style errors, as Slack does.
  Channel names (``#incidents``) get a stable channel id (``CINCIDENTS``); a user id
  (``U01ALICE``) gets a DM channel id (``D01ALICE``).
- the **PagerDuty Events API v2** at ``POST /v2/enqueue``
  (https://developer.pagerduty.com/docs/events-api-v2/overview/): ``202 {"status":
  "success", "message": "Event processed", "dedup_key": ...}``, or ``400 {"status": "invalid
  event", "message": "Event object is invalid", "errors": [...]}`` for an event without a
  routing key, a known ``event_action``, or (for ``trigger``) a summary, source and severity;
- a **generic webhook** receiver at ``POST /webhook/<name>`` (Alertmanager's webhook JSON,
  version 4, as ``webhook_configs`` send it): 200 (the demo's ``email`` receiver uses it).

All record what they received: ``GET /messages`` returns the JSON list (``?sink=slack``,
``?sink=pager`` or ``?sink=webhook`` to filter, ``?since=<id>`` for newer ones only),
``DELETE /messages`` clears it, ``GET /incidents`` shows the PagerDuty incidents by
``dedup_key``, and every message received is echoed as one readable line (stderr by default)::

    [slack] #incidents: [FIRING:1] HighErrorRate (api critical)
    [slack] DM @U01ALICE: Escalated to primary on-call: HighErrorRate
    [slack] update #incidents ts=1764428400.000001: [ACKNOWLEDGED] HighErrorRate
    [pager] trigger to routing key R0ALICE0... dedup=3f1c0a9e12b4d5e6 severity=critical: ...
    [webhook] email: [FIRING] LLMTokenQuotaHigh (1 alert)

Routing keys and tokens are secrets: only an 8-character prefix is ever recorded or shown.

Run it alone::

    python -m examples.notify_sinks --port 8001

then use ``api_url: http://127.0.0.1:8001/api/`` in ``slack_configs``,
``url: http://127.0.0.1:8001`` in ``pagerduty_configs`` and
``url: http://127.0.0.1:8001/webhook/NAME`` in ``webhook_configs``. Inside another event loop
(the ``demo`` command)::

    sinks = await start("127.0.0.1", 8001)
    ... sinks.slack_api_url, sinks.pagerduty_url, sinks.recorder.messages ...
    await sinks.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.embedded import RunningServer, start_app

SECRET_PREFIX = 8
"""How many characters of a routing key or token are recorded and shown."""

LINE_LIMIT = 160
"""Longest message text echoed on one line (the recorded message keeps all of it)."""

MAX_MESSAGES = 10_000
"""How many received messages are kept (a long demo run must not grow without bound)."""

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")


def prefix(secret: str) -> str:
    """Return the shown form of a secret: its first :data:`SECRET_PREFIX` characters and ``...``."""
    return secret[:SECRET_PREFIX] + "..." if secret else ""


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= LINE_LIMIT else text[: LINE_LIMIT - 1] + "…"


def _stderr(line: str) -> None:
    """The default echo: the line on stderr, after the UTC time of day."""
    print(f"{datetime.now(timezone.utc):%H:%M:%S} {line}", file=sys.stderr, flush=True)


@dataclass
class Recorder:
    """What the sinks received, in arrival order, and the echo of each message.

    :param echo: called with one readable line per message (to stderr, after the time, by default).
    :ivar messages: the recorded messages (dicts, see ``GET /messages``); the oldest are
        dropped beyond :data:`MAX_MESSAGES`.
    """

    echo: Callable[[str], None] = _stderr
    messages: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_MESSAGES))
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, sink: str, line: str, **data: Any) -> dict[str, Any]:
        """Record one message of ``sink`` and echo ``line``; return the record."""
        record = {"id": next(self._ids), "sink": sink,
                  "received_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"), "line": line, **data}
        self.messages.append(record)
        self.echo(line)
        return record

    def select(self, sink: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Return the messages of ``sink`` (all when ``None``) with an id above ``since``."""
        return [m for m in self.messages if (sink is None or m["sink"] == sink) and m["id"] > since]


# -- Slack Web API ---------------------------------------------------------------------------

class SlackWorkspace:
    """The state of the fake Slack workspace: channels, DMs and posted messages.

    :param recorder: where posts and updates are recorded.
    :param token: when set, the only bot token accepted (others get ``invalid_auth``);
        when ``None`` any token is accepted, a missing one gets ``not_authed``.
    """

    TEAM = {"url": "https://codebook-demo.slack.com/", "team": "Codebook Demo", "team_id": "T0DEMO",
            "user": "codebook-monitor", "user_id": "U0MONITOR", "bot_id": "B0MONITOR"}

    def __init__(self, recorder: Recorder, token: str | None = None) -> None:
        self.recorder = recorder
        self.token = token
        self.names: dict[str, str] = {}          # channel id -> "#name" or "@U..."
        #: (channel id, ts) -> the message as it reads now (``text``, ``blocks``, ``posted_id``).
        self.posts: dict[tuple[str, str], dict[str, Any]] = {}
        self._seq = itertools.count(1)

    def channel_id(self, channel: str) -> str | None:
        """Return the channel id for ``#name``, ``name``, a channel id or a user id (its DM)."""
        channel = channel.strip()
        if not channel:
            return None
        if re.fullmatch(r"[UW][A-Z0-9]+", channel):
            return self.open_dm(channel)
        if re.fullmatch(r"[CDG][A-Z0-9]+", channel):
            self.names.setdefault(channel, "#" + channel if channel[0] != "D" else channel)
            return channel
        name = channel.lstrip("#")
        if not re.fullmatch(r"[a-z0-9_\-]{1,80}", name):
            return None
        cid = "C" + re.sub(r"[^A-Z0-9]", "", name.upper())[:20]
        self.names[cid] = "#" + name
        return cid

    def open_dm(self, user: str) -> str:
        """Return the DM channel id with ``user`` (``U01ALICE`` -> ``D01ALICE``)."""
        cid = "D" + user[1:]
        self.names[cid] = "@" + user
        return cid

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def call(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        """Answer one Web API call (the JSON body Slack would send back)."""
        if not token:
            return {"ok": False, "error": "not_authed"}
        if self.token is not None and token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler = {"chat.postMessage": self._post, "chat.update": self._update,
                   "conversations.open": self._open, "auth.test": self._auth_test}.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        return handler(args)

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, **self.TEAM}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users", "")).split(",") if u.strip()]
        if not users and args.get("channel"):
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": args["channel"]}}
        if len(users) != 1 or not re.fullmatch(r"[UW][A-Z0-9]+", users[0].strip()):
            return {"ok": False, "error": "user_not_found" if users else "users_list_not_supplied"}
        return {"ok": True, "no_op": False, "already_open": False,
                "channel": {"id": self.open_dm(users[0].strip())}}

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self.channel_id(str(args.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        text, blocks = str(args.get("text") or ""), args.get("blocks") or []
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        ts = self._ts()
        where = self.names[cid]
        shown = f"DM {where}" if where.startswith("@") else where
        record = self.recorder.add("slack", f"[slack] {shown}: {_one_line(text or _blocks_text(blocks))}",
                                   method="chat.postMessage", channel=cid, channel_name=where, ts=ts,
                                   text=text, blocks=blocks)
        self.posts[(cid, ts)] = {"text": text, "blocks": blocks, "posted_id": record["id"]}
        return {"ok": True, "channel": cid, "ts": ts,
                "message": {"type": "message", "text": text, "ts": ts, "bot_id": self.TEAM["bot_id"],
                            "blocks": blocks}}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if cid not in self.names:
            return {"ok": False, "error": "channel_not_found"}
        original = self.posts.get((cid, ts))
        if original is None:
            return {"ok": False, "error": "message_not_found"}
        text, blocks = str(args.get("text") or ""), args.get("blocks") or []
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        original.update(text=text, blocks=blocks)
        self.recorder.add("slack", f"[slack] update {self.names[cid]} ts={ts}: "
                                   f"{_one_line(text or _blocks_text(blocks))}",
                          method="chat.update", channel=cid, channel_name=self.names[cid], ts=ts,
                          text=text, blocks=blocks, updates=original["posted_id"])
        return {"ok": True, "channel": cid, "ts": ts, "text": text,
                "message": {"type": "message", "text": text, "blocks": blocks}}


def _blocks_text(blocks: Any) -> str:
    """The plain text of a Block Kit ``header``/``section`` list (for messages without ``text``)."""
    parts = []
    for b in blocks if isinstance(blocks, list) else []:
        text = b.get("text") if isinstance(b, dict) else None
        if isinstance(text, dict) and text.get("text"):
            parts.append(str(text["text"]))
    return " | ".join(parts)


async def _slack_args(request: Request) -> tuple[dict[str, Any], str]:
    """Return the call's arguments (query + form or JSON body) and its bearer token."""
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if body and "json" in ctype:
        loaded = json.loads(body)
        if isinstance(loaded, dict):
            args.update(loaded)
    elif body:
        args.update(parse_qsl(body.decode(), keep_blank_values=True))
    for key in ("blocks", "attachments"):  # form-encoded calls send these as JSON strings
        if isinstance(args.get(key), str):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else str(args.pop("token", ""))
    return args, token


def _slack_route(workspace: SlackWorkspace) -> Route:
    async def api(request: Request) -> Response:
        try:
            args, token = await _slack_args(request)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"ok": False, "error": "invalid_json"})
        return JSONResponse(workspace.call(request.path_params["method"], args, token))

    return Route("/api/{method}", api, methods=["POST", "GET"])


# -- PagerDuty Events API v2 ------------------------------------------------------------------

def check_event(event: Any) -> list[str]:
    """Return the Events API v2 validation errors of ``event`` (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = []
    if not str(event.get("routing_key") or "").strip():
        errors.append("'routing_key' is missing or blank")
    action = event.get("event_action")
    if action not in PD_ACTIONS:
        errors.append("'event_action' is missing or not one of trigger, acknowledge, resolve")
    if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            if not str(payload.get("summary") or "").strip():
                errors.append("'payload.summary' is missing or blank")
            if not str(payload.get("source") or "").strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in PD_SEVERITIES:
                errors.append("'payload.severity' must be one of critical, error, warning, info")
    return errors


class PagerService:
    """The fake PagerDuty: validates events, tracks incidents by ``dedup_key``, records events.

    :ivar incidents: ``dedup_key -> {"status": triggered|acknowledged|resolved,
        "routing_key": prefix, "summary": ...}``.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.incidents: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count(1)

    def enqueue(self, event: Any) -> tuple[int, dict[str, Any]]:
        """Answer one event: ``(202, success)`` or ``(400, invalid event)``."""
        errors = check_event(event)
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        action = event["event_action"]
        dedup = str(event.get("dedup_key") or f"pd-{next(self._seq):08d}")
        key = prefix(str(event["routing_key"]))
        payload = event.get("payload") or {}
        summary = str(payload.get("summary", ""))
        status = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[action]
        incident = self.incidents.setdefault(dedup, {"routing_key": key, "summary": summary})
        incident["status"] = status
        line = f"[pager] {action} to routing key {key} dedup={dedup}"
        if action == "trigger":
            line += f" severity={payload.get('severity')}: {_one_line(summary)}"
        shown = {k: v for k, v in event.items() if k != "routing_key"}
        self.recorder.add("pager", line, event_action=action, routing_key=key, dedup_key=dedup,
                          summary=summary, severity=payload.get("severity", ""), event=shown)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}


def _pager_route(service: PagerService) -> Route:
    async def enqueue(request: Request) -> Response:
        try:
            event = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"status": "invalid event", "message": "Event object is invalid",
                                 "errors": ["body is not valid JSON"]}, status_code=400)
        status, body = service.enqueue(event)
        return JSONResponse(body, status_code=status)

    return Route("/v2/enqueue", enqueue, methods=["POST"])


# -- generic webhook (Alertmanager webhook JSON) -----------------------------------------------

def _webhook_route(recorder: Recorder) -> Route:
    """``POST /webhook/<name>``: any receiver of Alertmanager's webhook JSON (version 4); 200."""

    async def hook(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        name = request.path_params["name"]
        alerts = body.get("alerts") or []
        names = sorted({str((a.get("labels") or {}).get("alertname", "")) for a in alerts if isinstance(a, dict)})
        kind = body.get("codebookKind") or body.get("status", "")
        recorder.add("webhook", f"[webhook] {name}: [{str(kind).upper()}] {', '.join(names)} "
                                f"({len(alerts)} alert{'s' if len(alerts) != 1 else ''})",
                     name=name, status=body.get("status", ""), kind=kind, group_key=body.get("groupKey", ""),
                     payload=body)
        return Response(status_code=200)

    return Route("/webhook/{name}", hook, methods=["POST"])


# -- the app and its server -------------------------------------------------------------------

def create_app(*, slack_token: str | None = None, echo: Callable[[str], None] = _stderr) -> Starlette:
    """Return the sinks' ASGI app; ``app.state.recorder``, ``.slack`` and ``.pager`` hold the state.

    :param slack_token: the only bot token Slack accepts (any token when ``None``).
    :param echo: receives one readable line per message (stderr by default).
    """
    recorder = Recorder(echo=echo)
    slack = SlackWorkspace(recorder, token=slack_token)
    pager = PagerService(recorder)

    async def get_messages(request: Request) -> Response:
        sink = request.query_params.get("sink") or None
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return JSONResponse({"error": "since must be an integer"}, status_code=400)
        return JSONResponse(recorder.select(sink, since))

    async def delete_messages(request: Request) -> Response:
        recorder.messages.clear()
        return Response(status_code=204)

    async def incidents(request: Request) -> Response:
        return JSONResponse(pager.incidents)

    app = Starlette(routes=[
        _slack_route(slack),
        _pager_route(pager),
        _webhook_route(recorder),
        Route("/messages", get_messages, methods=["GET"]),
        Route("/messages", delete_messages, methods=["DELETE"]),
        Route("/incidents", incidents, methods=["GET"]),
    ])
    app.state.recorder, app.state.slack, app.state.pager = recorder, slack, pager
    return app


class RunningSinks(RunningServer):
    """The sinks served by uvicorn inside the caller's event loop.

    :ivar url: the base URL, e.g. ``http://127.0.0.1:8001``.
    :ivar app: the ASGI app (see :func:`create_app`).
    """

    app: Starlette

    @property
    def slack_api_url(self) -> str:
        """The ``api_url`` for ``slack_configs`` (and slack-sdk's ``base_url``)."""
        return self.url + "/api/"

    @property
    def pagerduty_url(self) -> str:
        """The ``url`` for ``pagerduty_configs`` (events go to ``{url}/v2/enqueue``)."""
        return self.url

    @property
    def recorder(self) -> Recorder:
        """The recorded messages."""
        return self.app.state.recorder


async def start(host: str = "127.0.0.1", port: int = 8001, *, slack_token: str | None = None,
                echo: Callable[[str], None] = _stderr, startup_timeout: float = 10.0) -> RunningSinks:
    """Start the sinks in the running event loop; return once they accept connections.

    The socket is bound by :func:`examples.embedded.start_app`, not by uvicorn, which answers a
    bind error with ``sys.exit()`` (that would end the host's event loop), as
    :func:`examples.sample_backend.serve` does.

    :param port: TCP port (0 = any free port; read :attr:`RunningSinks.url`).
    :raises RuntimeError: the sinks could not start (e.g. the port is taken).
    """
    app = create_app(slack_token=slack_token, echo=echo)
    return await start_app(app, host, port, name="the notify sinks", handle=RunningSinks,
                           log_level="warning", lifespan="off", startup_timeout=startup_timeout)


async def _main(args: argparse.Namespace) -> None:
    sinks = await start(args.host, args.port, slack_token=args.slack_token)
    print(f"notify sinks on {sinks.url}\n  slack_configs api_url: {sinks.slack_api_url}\n"
          f"  pagerduty_configs url: {sinks.pagerduty_url}\n  webhook_configs url: {sinks.url}/webhook/NAME\n"
          f"  received: curl {sinks.url}/messages",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sinks.stop()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m examples.notify_sinks --port 8001``."""
    parser = argparse.ArgumentParser(prog="python -m examples.notify_sinks", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="TCP port (default 8001)")
    parser.add_argument("--slack-token", default=None, help="the only Slack bot token to accept (default any)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
