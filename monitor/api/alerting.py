"""Alerting HTTP API: acknowledge/resolve, silences, Alertmanager-compatible intake, Slack buttons, signed links.

Routes (``daemon.alerting`` is the :class:`~monitor.daemon.leader_pipeline.AlertingFacade` over the pipeline's ports):

* ``POST /api/v1/alerts/{fingerprint}/ack`` | ``/unack`` | ``/resolve`` — bearer token
  (``Authorization: Bearer <token>``, tokens from ``api.tokens``); optional JSON
  ``{"comment": "..."}``; 200 with the escalation status, 401, 404.
* ``GET /api/v1/alerts/{fingerprint}/timeline`` — escalation timeline.
* ``GET /api/v2/alerts`` — alerts in Alertmanager's ``gettableAlerts`` shape (muted ones marked);
  ``POST /api/v2/alerts`` — Alertmanager v2 intake (``postableAlerts``; a Prometheus can list
  this daemon under ``alerting.alertmanagers``): 200, or 400 naming the invalid items (the
  valid ones are still taken, as Alertmanager does).
* ``POST /api/v1/intake/alertmanager`` — Alertmanager webhook payload (version 4).
* ``GET /api/v2/silences``, ``GET /api/v2/silence/{id}``; ``POST /api/v2/silences`` (token;
  ``postableSilence`` -> ``{"silenceID": id}``), ``DELETE /api/v2/silence/{id}`` (token).
* ``POST /api/v1/slack/actions`` — Slack interactivity (Block Kit buttons ``ack``/``resolve``,
  value = fingerprint(s)); verified with the signing secret: ``v0=`` + hex HMAC-SHA256 of
  ``v0:{X-Slack-Request-Timestamp}:{raw body}`` (https://api.slack.com/authentication/verifying-requests-from-slack),
  timestamps more than 5 minutes from now rejected, a signature seen before rejected (replay).
* ``GET /ack/{token}`` — a signed link (:mod:`monitor.notify.links`): a small HTML page
  confirming the action with a button; ``POST /ack/{token}`` performs it. (A plain GET never
  acts, so link scanners and chat previews cannot acknowledge a page.)

Bearer tokens are kept only as SHA-256 digests, computed when the config is (re)loaded, and
compared with :func:`hmac.compare_digest` against every configured digest.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from model.timestamps import parse_rfc3339
from monitor.alerting.intake import IntakeTooLarge, parse_v2_alerts, parse_webhook
from monitor.alerting.silence import SilenceError
from monitor.errors import NotFoundError
from monitor.notify.links import InvalidLinkError, verify

if TYPE_CHECKING:
    from monitor.daemon.wiring import Daemon

log = logging.getLogger("monitor.api")

#: Slack requests older (or newer) than this many seconds are rejected (Slack's recommendation).
SLACK_MAX_AGE = 300.0


class TokenAuth:
    """Bearer-token check against SHA-256 digests of the configured tokens.

    >>> from types import SimpleNamespace as NS
    >>> auth = TokenAuth([NS(name="alice", token=NS(get_secret_value=lambda: "s3cret-token"))])
    >>> auth.check("Bearer s3cret-token"), auth.check("Bearer nope"), auth.check(None)
    ('alice', None, None)
    """

    def __init__(self, tokens: list[Any]) -> None:
        self._digests = [(hashlib.sha256(t.token.get_secret_value().encode()).digest(), t.name) for t in tokens]

    def check(self, header: str | None) -> str | None:
        """Return the token name for an ``Authorization`` header value, or ``None``."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        digest = hashlib.sha256(value.strip().encode()).digest()
        found = None
        for d, name in self._digests:  # compare against all: no early exit on a match
            if hmac.compare_digest(d, digest):
                found = name
        return found


class SlackVerifier:
    """Verify Slack request signatures and reject replays (in-memory, per process).

    :param secret: the app's signing secret.
    :param max_age: seconds a timestamp may differ from now.
    """

    def __init__(self, secret: str, max_age: float = SLACK_MAX_AGE) -> None:
        self._secret = secret.encode()
        self.max_age = max_age
        self._seen: dict[str, float] = {}

    def sign(self, timestamp: str, body: bytes) -> str:
        """Return ``v0=<hex>`` for ``timestamp`` and ``body`` (what Slack sends)."""
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str:
        """Return ``""`` when valid, else the reason (``missing``, ``stale``, ``bad signature``, ``replay``)."""
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "bad timestamp"
        if abs(now - ts) > self.max_age:
            return "stale timestamp"
        if not hmac.compare_digest(self.sign(timestamp, body).encode(), signature.encode()):
            return "bad signature"
        for sig, seen_at in list(self._seen.items()):
            if seen_at < now - 2 * self.max_age:
                del self._seen[sig]
        if signature in self._seen:
            return "replayed request"
        self._seen[signature] = now
        return ""


#: The largest request body the alerting API reads (4 MiB); a larger one is answered 413.
MAX_BODY_BYTES = 4 * 1024 * 1024


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the request body, giving up (:class:`_BodyTooLarge`) beyond ``limit`` bytes
    without buffering the rest (``Content-Length`` is checked first, then the bytes read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> JSONResponse:
    return _err(413, f"request body larger than {MAX_BODY_BYTES} bytes (4 MiB); send smaller batches")


def _err(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"status": "error", "error": message}, status_code=status, headers=headers or None)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def routes(daemon: "Daemon") -> list[Route]:
    """Return the alerting routes for ``daemon``."""
    cache: dict[str, Any] = {}

    def api_cfg() -> Any:
        return daemon.config.api

    def auth() -> TokenAuth:
        cfg = api_cfg()
        if cache.get("auth_for") is not cfg:
            cache["auth"] = TokenAuth(cfg.tokens)
            cache["auth_for"] = cfg
        return cache["auth"]

    def slack() -> SlackVerifier | None:
        secret = api_cfg().slack_signing_secret
        if secret is None:
            return None
        value = secret.get_secret_value()
        if cache.get("slack_secret_hash") != hashlib.sha256(value.encode()).digest():
            cache["slack"] = SlackVerifier(value)
            cache["slack_secret_hash"] = hashlib.sha256(value.encode()).digest()
        return cache["slack"]

    def service() -> Any:
        return getattr(daemon, "alerting", None)

    def now() -> float:
        return service().clock()

    def authed(handler: Callable) -> Callable:
        async def wrapper(request: Request) -> Response:
            if service() is None:
                return _err(503, "alerting is not running")
            actor = auth().check(request.headers.get("authorization"))
            if actor is None:
                log.warning("API request rejected: missing or invalid bearer token",
                            extra={"client": _client(request), "path": request.url.path})
                return _err(401, "missing or invalid bearer token", **{"WWW-Authenticate": 'Bearer realm="monitor"'})
            return await handler(request, actor)
        return wrapper

    def needs_service(handler: Callable) -> Callable:
        async def wrapper(request: Request) -> Response:
            if service() is None:
                return _err(503, "alerting is not running")
            return await handler(request)
        return wrapper

    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def act(action: str) -> Callable:
        async def handler(request: Request, actor: str) -> Response:
            fp = request.path_params["fingerprint"]
            try:
                body = await _body(request)
            except ValueError as exc:
                return _err(400, f"bad body: {exc}")
            via = "cli" if request.headers.get("x-monitor-client", "").startswith("cli") else "api"
            source = f"{via}:{_client(request)}"
            svc = service()
            try:
                if action == "ack":
                    res = await svc.acknowledge(fp, actor, source, comment=str(body.get("comment", "")))
                elif action == "unack":
                    res = await svc.unacknowledge(fp, actor, source)
                else:
                    res = await svc.resolve(fp, actor, source, comment=str(body.get("comment", "")))
            except NotFoundError as exc:
                return _err(404, str(exc))
            return JSONResponse({"status": "success", "data": res})
        return authed(handler)

    @needs_service
    async def timeline(request: Request) -> Response:
        try:
            rows = await service().timeline(request.path_params["fingerprint"])
        except NotFoundError as exc:
            return _err(404, str(exc))
        return JSONResponse({"status": "success", "data": rows})

    @needs_service
    async def alerts_get(request: Request) -> Response:
        return JSONResponse(service().alerts_api())

    @needs_service
    async def alerts_post(request: Request) -> Response:
        try:
            body = json.loads(await _read_body(request) or b"null")
        except _BodyTooLarge:
            return _too_large()
        except ValueError as exc:
            return _err(400, f"bad JSON: {exc}")
        svc = service()
        t = now()
        try:
            result = parse_v2_alerts(body, t, resolve_timeout=svc.resolve_timeout)
        except IntakeTooLarge as exc:
            return _err(413, str(exc))
        if result.alerts:
            await svc.ingest(result.alerts, t, source=f"api:{_client(request)}")
        if not result.ok:
            return _err(400, result.error_text())
        return Response(status_code=200)

    @needs_service
    async def webhook_post(request: Request) -> Response:
        try:
            msg = parse_webhook(json.loads(await _read_body(request) or b"null"), now())
        except _BodyTooLarge:
            return _too_large()
        except IntakeTooLarge as exc:
            return _err(413, str(exc))
        except ValueError as exc:
            return _err(400, str(exc))
        if msg.result.alerts:
            await service().ingest(msg.result.alerts, now(), source=f"webhook:{_client(request)}")
        if not msg.result.ok:
            return _err(400, msg.result.error_text())
        return JSONResponse({"status": "success", "data": {"alerts": len(msg.result.alerts)}})

    @needs_service
    async def silences_get(request: Request) -> Response:
        return JSONResponse(service().list_silences())

    @needs_service
    async def silence_get(request: Request) -> Response:
        try:
            return JSONResponse(service().get_silence(request.path_params["id"]))
        except NotFoundError as exc:
            return _err(404, str(exc))

    async def silences_post(request: Request, actor: str) -> Response:
        try:
            body = await _body(request)
            t = now()
            starts = parse_rfc3339(body.get("startsAt"))
            ends = parse_rfc3339(body.get("endsAt"))
            if ends is None:
                return _err(400, "endsAt is required")
            sid = await service().create_silence(
                body.get("matchers") or [], t if starts is None else starts, ends,
                str(body.get("createdBy") or actor), str(body.get("comment") or ""), actor=actor,
                source=f"api:{_client(request)}", silence_id=body.get("id") or None)
        except NotFoundError as exc:
            return _err(404, str(exc))
        except (SilenceError, ValueError, TypeError) as exc:
            return _err(400, str(getattr(exc, "message", exc)))
        return JSONResponse({"silenceID": sid})

    async def silence_delete(request: Request, actor: str) -> Response:
        try:
            await service().expire_silence(request.path_params["id"], actor, f"api:{_client(request)}")
        except NotFoundError as exc:
            return _err(404, str(exc))
        except SilenceError as exc:
            return _err(400, str(exc))
        return Response(status_code=200)

    @needs_service
    async def slack_actions(request: Request) -> Response:
        verifier = slack()
        if verifier is None:
            return _err(404, "Slack interactivity is not configured (api.slack_signing_secret)")
        raw = await request.body()
        reason = verifier.verify(request.headers.get("x-slack-request-timestamp"),
                                 request.headers.get("x-slack-signature"), raw, now())
        if reason:
            log.warning("slack request rejected", extra={"reason": reason,
                                                                        "client": _client(request)})
            return _err(401, reason)
        try:
            payload = json.loads(parse_qs(raw.decode()).get("payload", [""])[0])
            action = payload["actions"][0]
            user = payload.get("user") or {}
            user_id = str(user.get("id") or "")
        except (ValueError, KeyError, IndexError, TypeError):
            return _err(400, "bad Slack payload")
        kind = action.get("action_id")
        fps = [f for f in str(action.get("value", "")).split(",") if f]
        if kind not in ("ack", "resolve") or not fps:
            return _err(400, f"unknown action {kind!r}")
        actor = f"slack:{user.get('username') or user.get('name') or user_id}"
        done = []
        for fp in fps:
            try:
                if kind == "ack":
                    await service().acknowledge(fp, actor, f"slack:{user_id}")
                else:
                    await service().resolve(fp, actor, f"slack:{user_id}")
                done.append(fp)
            except NotFoundError:
                continue
        verb = "acknowledged" if kind == "ack" else "resolved"
        return JSONResponse({"response_type": "ephemeral", "replace_original": False,
                             "text": f"{len(done)} alert(s) {verb} by <@{user_id}>"})

    def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status)

    def _check_link(request: Request) -> tuple[str, str] | Response:
        key = api_cfg().link_key
        if key is None:
            return _page("Links are not enabled", "<p>api.link_key is not configured.</p>", 404)
        try:
            return verify(request.path_params["token"], now(), key.get_secret_value())
        except InvalidLinkError as exc:
            return _page("Invalid link", f"<p>{html.escape(str(exc))}.</p>", 403)

    @needs_service
    async def link_get(request: Request) -> Response:
        checked = _check_link(request)
        if isinstance(checked, Response):
            return checked
        fp, action = checked
        verb = {"ack": "Acknowledge", "resolve": "Resolve", "unack": "Unacknowledge"}[action]
        return _page(f"{verb} alert {fp}?",
                     f'<form method="post"><button type="submit">{verb}</button></form>')

    @needs_service
    async def link_post(request: Request) -> Response:
        checked = _check_link(request)
        if isinstance(checked, Response):
            return checked
        fp, action = checked
        source = f"link:{_client(request)}"
        svc = service()
        try:
            if action == "ack":
                await svc.acknowledge(fp, "signed-link", source)
            elif action == "unack":
                await svc.unacknowledge(fp, "signed-link", source)
            else:
                await svc.resolve(fp, "signed-link", source)
        except NotFoundError:
            return _page("Unknown alert", f"<p>No alert {html.escape(fp)}.</p>", 404)
        verb = {"ack": "acknowledged", "resolve": "resolved", "unack": "unacknowledged"}[action]
        return _page(f"Alert {verb}", f"<p>Alert {html.escape(fp)} {verb}.</p>")

    return [
        Route("/api/v1/alerts/{fingerprint}/ack", act("ack"), methods=["POST"]),
        Route("/api/v1/alerts/{fingerprint}/unack", act("unack"), methods=["POST"]),
        Route("/api/v1/alerts/{fingerprint}/resolve", act("resolve"), methods=["POST"]),
        Route("/api/v1/alerts/{fingerprint}/timeline", timeline, methods=["GET"]),
        Route("/api/v2/alerts", alerts_get, methods=["GET"]),
        Route("/api/v2/alerts", alerts_post, methods=["POST"]),
        Route("/api/v1/intake/alertmanager", webhook_post, methods=["POST"]),
        Route("/api/v2/silences", silences_get, methods=["GET"]),
        Route("/api/v2/silences", authed(silences_post), methods=["POST"]),
        Route("/api/v2/silence/{id}", silence_get, methods=["GET"]),
        Route("/api/v2/silence/{id}", authed(silence_delete), methods=["DELETE"]),
        Route("/api/v1/slack/actions", slack_actions, methods=["POST"]),
        Route("/ack/{token}", link_get, methods=["GET"]),
        Route("/ack/{token}", link_post, methods=["POST"]),
    ]
