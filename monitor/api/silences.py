"""Silences, Alertmanager API v2 shapes.

* ``GET /api/v2/silences`` — every silence (``gettableSilences``); ``filter`` matchers narrow it.
* ``GET /api/v2/silence/{id}`` — one silence; 404 unknown id.
* ``POST /api/v2/silences`` — a token with the ``ack`` scope; ``postableSilence`` (``matchers``:
  a list of ``{name, value, isRegex, isEqual}`` objects or a matcher string like
  ``{alertname="X"}``, ``startsAt`` (default now), ``endsAt`` (required), ``createdBy``
  (default the token name), ``comment``, optional ``id``) -> ``{"silenceID": id}``; 400 naming
  the invalid field, 404 unknown ``id``. The audit actor is the token's name.
* ``DELETE /api/v2/silence/{id}`` — ``ack`` scope; expire now; 404 unknown id.

Every route answers 503 on a follower. Scopes and limits: :mod:`monitor.api.access`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.timestamps import parse_rfc3339
from model.matchers import parse_matcher
from monitor.alerting.silence import SilenceError
from monitor.api.alertmanager import match_filter_labels
from monitor.api.auth import actor_of
from monitor.api.bodies import ApiError, client_host, error_response, json_object, json_type
from monitor.api.deps import running_ports
from monitor.errors import NotFoundError


async def list_silences(request: Request) -> Response:
    """``GET /api/v2/silences``: ``filter`` (repeatable matchers) keeps the silences whose matchers,
    read as ``{name: value}``, pass them all (Alertmanager ``CheckSilenceMatchesFilterLabels``)."""
    filters = []
    for text in request.query_params.getlist("filter"):
        try:
            filters.append(parse_matcher(text))
        except ValueError as e:
            raise ApiError(400, str(e)) from None
    silences = running_ports(request).silences.list_silences()
    return JSONResponse([s for s in silences
                         if match_filter_labels(filters, {m["name"]: m["value"] for m in s["matchers"]})])


async def get_silence(request: Request) -> Response:
    """``GET /api/v2/silence/{id}``."""
    ports = running_ports(request)
    try:
        return JSONResponse(ports.silences.get_silence(request.path_params["id"]))
    except NotFoundError as exc:
        return error_response(404, str(exc))


def _matchers(value: Any) -> list[dict[str, Any]] | str:
    """Check the shape of ``matchers`` (the pipeline validates names, values and regexes).

    :raises ApiError: 400 naming the first bad item or field.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise ApiError(400, "matchers: expected a non-empty list of matcher objects"
                            + (f", got {json_type(value)}" if not isinstance(value, list) else ""))
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise ApiError(400, f"matchers[{i}]: expected an object, got {json_type(m)}")
        for key, kind in (("name", str), ("value", str), ("isRegex", bool), ("isEqual", bool)):
            if key == "name" and key not in m:
                raise ApiError(400, f"matchers[{i}].name: required")
            if key in m and not isinstance(m[key], kind):
                want = "a string" if kind is str else "a boolean"
                raise ApiError(400, f"matchers[{i}].{key}: expected {want}, got {json_type(m[key])}")
    return value


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key}: expected a string, got {json_type(value)}")
    return value


async def create_silence(request: Request) -> Response:
    """``POST /api/v2/silences``."""
    ports = running_ports(request)
    actor = actor_of(request)
    body = await json_object(request)
    matchers = _matchers(body.get("matchers"))
    created_by, comment, silence_id = _text(body, "createdBy"), _text(body, "comment"), _text(body, "id")
    try:
        t = ports.clock()
        starts = parse_rfc3339(body.get("startsAt"))
        ends = parse_rfc3339(body.get("endsAt"))
        if ends is None:
            return error_response(400, "endsAt is required")
        sid = await ports.silences.create_silence(
            matchers, t if starts is None else starts, ends, created_by or actor, comment or "",
            actor=actor, source=f"api:{client_host(request)}", silence_id=silence_id or None)
    except NotFoundError as exc:
        return error_response(404, str(exc))
    except (SilenceError, ValueError, TypeError) as exc:
        return error_response(400, str(getattr(exc, "message", exc)))
    return JSONResponse({"silenceID": sid})


async def expire_silence(request: Request) -> Response:
    """``DELETE /api/v2/silence/{id}``."""
    ports = running_ports(request)
    actor = actor_of(request)
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
