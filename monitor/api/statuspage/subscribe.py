"""Email subscriptions of the public status page: subscribe, confirm, unsubscribe (no login).

* ``POST /status/subscribe`` — a form (``email=...``) or JSON ``{"email": "..."}``; with
  ``status_page.subscriptions.webhooks``, ``webhook=<https URL>`` instead (the confirmation is
  POSTed to it, with the confirm link: ``monitor.notify.status_webhook``); answers the same
  whether the address was known or not (no address enumeration): a page (202 for JSON) saying a
  confirmation email is on its way. The leader writes that email to the outbox
  (:mod:`monitor.notify.status_notices`). 400 for a malformed address, 429 past the per-client
  limit (``status_page.subscriptions.per_client`` per ``per_client_window``, counted per client
  address in this process) or ``max_subscribers``, 404 when subscriptions are not configured or
  ``api.link_key`` is not set.
* ``GET /status/confirm/{id}/{token}`` — a page with a button; ``POST`` confirms. A plain GET
  never acts (mail scanners follow links), as the signed ``/ack`` links.
* ``GET /status/unsubscribe/{id}/{token}`` — likewise; ``POST`` unsubscribes.

Bodies are limited to 4 KiB (``monitor.api.access``); tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import re
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import credentials_of
from monitor.api.bodies import ApiError, client_host, parse_json
from monitor.api.statuspage import render_message, status_deps
from monitor.errors import NotFoundError
from monitor.notify.status_notices import subscriber_token
from monitor.notify.status_webhook import url_shape_error

__all__ = ["ROUTES", "valid_email"]

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
#: Client addresses remembered for rate limiting at most (the oldest are dropped first).
MAX_CLIENTS = 10_000


def valid_email(text: str) -> str | None:
    """Return the address normalised (domain lower-cased), or ``None`` when it is not a plain address."""
    text = text.strip()
    if len(text) > 254 or not _EMAIL.match(text):
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(render_message(title, text), status_code=status)


def _settings(request: Request) -> tuple[Any, str, Any]:
    """``(subscriptions config, link key, store)``; 404/503 when not available."""
    deps = status_deps(request)
    subs = deps.config().status_page.subscriptions
    key = credentials_of(request).link_key()
    if subs is None or key is None:
        raise ApiError(404, "subscriptions are not enabled")
    store = deps.store()
    if store is None:
        raise ApiError(503, "the state store is not open yet")
    return subs, key, store


def _limited(request: Request, subs: Any, now: float) -> bool:
    """Record one subscribe request of the client; return whether it is over the limit."""
    seen: dict[str, deque[float]] = request.app.state.__dict__.setdefault("_subscribe_clients", {})
    host = client_host(request)
    times = seen.pop(host, None) or deque()
    seen[host] = times  # most recent last: the oldest client is dropped first
    while times and times[0] <= now - subs.per_client_window:
        times.popleft()
    if len(seen) > MAX_CLIENTS:
        del seen[next(iter(seen))]
    if len(times) >= subs.per_client:
        return True
    times.append(now)
    return False


def _too_many(wants_json: bool) -> Response:
    if wants_json:
        return JSONResponse({"status": "error", "error": "too many requests; try again later"}, status_code=429)
    return _page("Try again later", "Too many subscription requests; please try again later.", 429)


async def subscribe(request: Request) -> Response:
    """``POST /status/subscribe``."""
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    raw = await request.body()  # bounded (4 KiB, monitor.api.access): a body over it is 413 first
    subs, _, store = _settings(request)
    now = status_deps(request).clock()
    if _limited(request, subs, now):  # every request counts, malformed ones too
        return _too_many(wants_json)
    if wants_json:
        body = parse_json(raw)
        fields = body if isinstance(body, dict) else {}
    else:
        fields = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    raw_email, raw_hook = fields.get("email"), fields.get("webhook")
    kind, target, problem = "email", None, "email: expected an email address"
    if isinstance(raw_hook, str) and raw_hook and subs.webhooks and not raw_email:
        kind, target = "webhook", raw_hook.strip()
        shape = url_shape_error(target, allow_private=subs.allow_private_webhooks)
        if shape is not None:
            target, problem = None, f"webhook: {shape}"
    elif isinstance(raw_email, str):
        target = valid_email(raw_email)
    if target is None:
        if wants_json:
            return JSONResponse({"status": "error", "error": problem}, status_code=400)
        return _page("Cannot subscribe", f"{problem.capitalize()}. Please go back and correct it.", 400)
    if await store.count_subscribers() >= subs.max_subscribers:
        return _too_many(wants_json)
    await store.add_subscriber(kind, target, now)
    text = ("If the address can receive email, a confirmation link is on its way. Follow it to subscribe."
            if kind == "email" else "A confirmation with its link was queued for the webhook. Follow it to subscribe.")
    if wants_json:
        return JSONResponse({"status": "pending", "message": text}, status_code=202)
    return _page("Check your inbox", text, 202)


async def _checked(request: Request, action: str) -> tuple[Any, int] | Response:
    _, key, store = _settings(request)
    try:
        sid = int(request.path_params["id"])
        row = await store.get_subscriber(sid)
    except (ValueError, NotFoundError):
        return _page("Invalid link", "This link is not valid.", 404)
    expected = subscriber_token(key, action, sid, row["target"])
    if not hmac.compare_digest(expected.encode(), request.path_params["token"].encode()):
        return _page("Invalid link", "This link is not valid.", 403)
    return store, sid


def _handlers(action: str, verb: str, status: str, done: str) -> tuple[Any, Any]:
    async def confirm_page(request: Request) -> Response:
        checked = await _checked(request, action)
        if isinstance(checked, Response):
            return checked
        return HTMLResponse(render_message(f"{verb}?", "", button=verb))

    async def perform(request: Request) -> Response:
        checked = await _checked(request, action)
        if isinstance(checked, Response):
            return checked
        store, sid = checked
        await store.set_subscriber_status(sid, status, status_deps(request).clock())
        return _page(done, "You can close this page.")

    confirm_page.__doc__ = f"``GET /status/{action}/{{id}}/{{token}}``: the page with the {verb} button."
    perform.__doc__ = f"``POST /status/{action}/{{id}}/{{token}}``: {verb.lower()}."
    return confirm_page, perform


_confirm_get, _confirm_post = _handlers("confirm", "Confirm subscription", "confirmed", "Subscription confirmed")
_unsub_get, _unsub_post = _handlers("unsubscribe", "Unsubscribe", "unsubscribed", "Unsubscribed")

ROUTES = [
    Route("/status/subscribe", subscribe, methods=["POST"]),
    Route("/status/confirm/{id}/{token}", _confirm_get, methods=["GET"]),
    Route("/status/confirm/{id}/{token}", _confirm_post, methods=["POST"]),
    Route("/status/unsubscribe/{id}/{token}", _unsub_get, methods=["GET"]),
    Route("/status/unsubscribe/{id}/{token}", _unsub_post, methods=["POST"]),
]
