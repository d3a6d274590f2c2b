"""Silences, Alertmanager API v2 shapes.

* ``GET /api/v2/silences`` — every silence (``gettableSilences``).
* ``GET /api/v2/silence/{id}`` — one silence; 404 unknown id.
* ``POST /api/v2/silences`` — bearer token; ``postableSilence`` (``matchers``, ``startsAt``
  (default now), ``endsAt`` (required), ``createdBy`` (default the token name), ``comment``,
  optional ``id``) -> ``{"silenceID": id}``; 400 invalid, 404 unknown ``id``.
* ``DELETE /api/v2/silence/{id}`` — bearer token; expire now; 404 unknown id.

Every route answers 503 on a follower.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.timestamps import parse_rfc3339
from monitor.alerting.silence import SilenceError
from monitor.api.auth import bearer_actor
from monitor.api.bodies import client_host, error_response, json_object
from monitor.api.deps import running_ports
from monitor.errors import NotFoundError


async def list_silences(request: Request) -> Response:
    """``GET /api/v2/silences``."""
    return JSONResponse(running_ports(request).silences.list_silences())


async def get_silence(request: Request) -> Response:
    """``GET /api/v2/silence/{id}``."""
    ports = running_ports(request)
    try:
        return JSONResponse(ports.silences.get_silence(request.path_params["id"]))
    except NotFoundError as exc:
        return error_response(404, str(exc))


async def create_silence(request: Request) -> Response:
    """``POST /api/v2/silences``."""
    ports = running_ports(request)
    actor = bearer_actor(request)
    try:
        body = await json_object(request)
        t = ports.clock()
        starts = parse_rfc3339(body.get("startsAt"))
        ends = parse_rfc3339(body.get("endsAt"))
        if ends is None:
            return error_response(400, "endsAt is required")
        sid = await ports.silences.create_silence(
            body.get("matchers") or [], t if starts is None else starts, ends,
            str(body.get("createdBy") or actor), str(body.get("comment") or ""), actor=actor,
            source=f"api:{client_host(request)}", silence_id=body.get("id") or None)
    except NotFoundError as exc:
        return error_response(404, str(exc))
    except (SilenceError, ValueError, TypeError) as exc:
        return error_response(400, str(getattr(exc, "message", exc)))
    return JSONResponse({"silenceID": sid})


async def expire_silence(request: Request) -> Response:
    """``DELETE /api/v2/silence/{id}``."""
    ports = running_ports(request)
    actor = bearer_actor(request)
    try:
        await ports.silences.expire_silence(request.path_params["id"], actor, f"api:{client_host(request)}")
    except NotFoundError as exc:
        return error_response(404, str(exc))
    except SilenceError as exc:
        return error_response(400, str(exc))
    return Response(status_code=200)


ROUTES = [
    Route("/api/v2/silences", list_silences, methods=["GET"]),
    Route("/api/v2/silences", create_silence, methods=["POST"]),
    Route("/api/v2/silence/{id}", get_silence, methods=["GET"]),
    Route("/api/v2/silence/{id}", expire_silence, methods=["DELETE"]),
]
