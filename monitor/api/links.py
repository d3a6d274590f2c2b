"""``/ack/{token}``: the signed links in pages and emails (tokens: :mod:`monitor.notify.links`).

``GET`` answers a small HTML page confirming the action with a button; ``POST`` performs it
(``ack``, ``unack`` or ``resolve``, as the actor ``signed-link``, audit source
``link:<client>``). A plain GET never acts, so link scanners and chat previews cannot
acknowledge a page. HTML answers: 404 when ``api.link_key`` is not set or the alert is unknown,
403 for a malformed, forged or expired token. 503 (JSON) on a follower.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from monitor.alerting.ports import AlertingPorts
from monitor.api.auth import credentials_of
from monitor.api.bodies import client_host
from monitor.api.deps import running_ports
from monitor.errors import NotFoundError
from monitor.notify.links import InvalidLinkError, verify

_VERB = {"ack": "Acknowledge", "resolve": "Resolve", "unack": "Unacknowledge"}
_DONE = {"ack": "acknowledged", "resolve": "resolved", "unack": "unacknowledged"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status)


def _check(request: Request, ports: AlertingPorts) -> tuple[str, str] | Response:
    """``(fingerprint, action)`` of the request's token, or the page refusing it."""
    key = credentials_of(request).link_key()
    if key is None:
        return _page("Links are not enabled", "<p>api.link_key is not configured.</p>", 404)
    try:
        return verify(request.path_params["token"], ports.clock(), key)
    except InvalidLinkError as exc:
        return _page("Invalid link", f"<p>{html.escape(str(exc))}.</p>", 403)


async def confirm(request: Request) -> Response:
    """``GET /ack/{token}``: the confirmation page."""
    checked = _check(request, running_ports(request))
    if isinstance(checked, Response):
        return checked
    fp, action = checked
    verb = _VERB[action]
    return _page(f"{verb} alert {fp}?", f'<form method="post"><button type="submit">{verb}</button></form>')


async def perform(request: Request) -> Response:
    """``POST /ack/{token}``: act."""
    ports = running_ports(request)
    checked = _check(request, ports)
    if isinstance(checked, Response):
        return checked
    fp, action = checked
    source = f"link:{client_host(request)}"
    try:
        if action == "ack":
            await ports.acks.acknowledge(fp, "signed-link", source)
        elif action == "unack":
            await ports.acks.unacknowledge(fp, "signed-link", source)
        else:
            await ports.acks.resolve(fp, "signed-link", source)
    except NotFoundError:
        return _page("Unknown alert", f"<p>No alert {html.escape(fp)}.</p>", 404)
    verb = _DONE[action]
    return _page(f"Alert {verb}", f"<p>Alert {html.escape(fp)} {verb}.</p>")


ROUTES = [
    Route("/ack/{token}", confirm, methods=["GET"]),
    Route("/ack/{token}", perform, methods=["POST"]),
]
