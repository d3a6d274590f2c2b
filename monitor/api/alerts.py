"""Alerts held by the alert pipeline: acknowledge, unacknowledge, resolve, timeline, list.

* ``POST /api/v1/alerts/{fingerprint}/ack`` | ``/unack`` | ``/resolve`` — a token with the
  ``ack`` scope (its name is the actor); optional JSON ``{"comment": "..."}`` (ack and resolve;
  at most 16 KiB); 200 ``{"status": "success", "data": <escalation status>}``, 400 bad body,
  401, 403, 404 unknown alert. The audit source is ``api:<client>``, or ``cli:<client>`` when
  the request carries ``X-Monitor-Client: cli...``.
* ``POST /api/v1/alerts/{fingerprint}/escalate`` — ``ack`` scope: notify the escalation's next
  level now (optional ``comment``); ``POST /api/v1/alerts/{fingerprint}/note`` — ``ack`` scope: add
  ``{"comment": "..."}`` (required) to the timeline. Same answers and audit as ack.
* ``GET /api/v1/alerts/{fingerprint}/timeline`` — the escalation timeline, oldest first (``read``).
* ``GET /api/v2/alerts`` — in :mod:`monitor.api.alertmanager` (with its filters).

Scopes and limits: :mod:`monitor.api.access`.

Every route answers 503 on a follower (no alert pipeline runs there).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import actor_of
from monitor.api.bodies import ApiError, client_host, error_response, json_object
from monitor.api.deps import running_ports
from monitor.errors import NotFoundError


async def _act(request: Request, action: str) -> Response:
    ports = running_ports(request)
    actor = actor_of(request)
    fp = request.path_params["fingerprint"]
    body = await json_object(request)
    comment = body.get("comment")
    comment = "" if comment is None else comment
    if not isinstance(comment, str):
        raise ApiError(400, "bad body: comment: expected a string")
    via = "cli" if request.headers.get("x-monitor-client", "").startswith("cli") else "api"
    source = f"{via}:{client_host(request)}"
    try:
        if action == "ack":
            res = await ports.acks.acknowledge(fp, actor, source, comment=comment)
        elif action == "unack":
            res = await ports.acks.unacknowledge(fp, actor, source)
        elif action == "escalate":
            res = await ports.acks.escalate_now(fp, actor, source, comment=comment)
        elif action == "note":
            if not comment.strip():
                raise ApiError(400, "bad body: comment: a note needs some text")
            await ports.acks.note(fp, actor, source, comment)
            res = {"fingerprint": fp}
        else:
            res = await ports.acks.resolve(fp, actor, source, comment=comment)
    except NotFoundError as exc:
        return error_response(404, str(exc))
    return JSONResponse({"status": "success", "data": res})


async def acknowledge(request: Request) -> Response:
    """``POST /api/v1/alerts/{fingerprint}/ack``: stop the escalation."""
    return await _act(request, "ack")


async def unacknowledge(request: Request) -> Response:
    """``POST /api/v1/alerts/{fingerprint}/unack``: restart the escalation from its first step."""
    return await _act(request, "unack")


async def resolve(request: Request) -> Response:
    """``POST /api/v1/alerts/{fingerprint}/resolve``: resolve by hand."""
    return await _act(request, "resolve")


async def escalate(request: Request) -> Response:
    """``POST /api/v1/alerts/{fingerprint}/escalate``: notify the next level of the escalation now."""
    return await _act(request, "escalate")


async def note(request: Request) -> Response:
    """``POST /api/v1/alerts/{fingerprint}/note``: add a note to the alert's timeline."""
    return await _act(request, "note")


async def timeline(request: Request) -> Response:
    """``GET /api/v1/alerts/{fingerprint}/timeline``."""
    ports = running_ports(request)
    try:
        rows = await ports.views.timeline(request.path_params["fingerprint"])
    except NotFoundError as exc:
        return error_response(404, str(exc))
    return JSONResponse({"status": "success", "data": rows})


ROUTES = [
    Route("/api/v1/alerts/{fingerprint}/ack", acknowledge, methods=["POST"]),
    Route("/api/v1/alerts/{fingerprint}/unack", unacknowledge, methods=["POST"]),
    Route("/api/v1/alerts/{fingerprint}/resolve", resolve, methods=["POST"]),
    Route("/api/v1/alerts/{fingerprint}/escalate", escalate, methods=["POST"]),
    Route("/api/v1/alerts/{fingerprint}/note", note, methods=["POST"]),
    Route("/api/v1/alerts/{fingerprint}/timeline", timeline, methods=["GET"]),
]
