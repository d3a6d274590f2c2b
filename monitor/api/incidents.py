"""Incidents: ``/api/v1/incidents/...`` (JSON). The leader opens and resolves them
(:mod:`monitor.escalation.incidents`); people add notes and public updates here.

* ``GET /api/v1/incidents?status=open|resolved&limit=`` — newest first (default 100, at most 1000).
* ``GET /api/v1/incidents/stats?days=90`` — MTTA and MTTR per priority against the SLA over the
  incidents opened in the last ``days`` (1..366).
* ``GET /api/v1/incidents/{id}`` — one incident with its whole timeline (internal notes
  included, so always behind a ``read`` token).
* ``POST /api/v1/incidents/{id}/notes`` — ``ack`` scope, ``{"text"}``: an internal note.
* ``POST /api/v1/incidents/{id}/updates`` — ``ack`` scope, ``{"text", "status"?, "title"?}``: a
  public update shown on ``/status`` (``status``: ``investigating``, ``identified``, ``monitoring`` or
  ``resolved``; default the incident's current public status). ``title`` (at most
  :data:`TITLE_MAX` characters) becomes the incident's public title on ``/status`` from then on
  (:func:`monitor.api.statuspage.data.public_title`); the incident's own title is the alert's
  summary, internal text that the status page never shows.

Notes and updates are audited (``incident.note`` / ``incident.update``, target ``incident:<id>``)
in the same transaction. Times in answers are RFC 3339 (UTC) and durations seconds. 404 for an
unknown id; 503 while the state store is not open.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import actor_of
from monitor.api.bodies import ApiError, client_host, error_response, json_object, json_type
from monitor.api.oncall import OnCallDeps, oncall_deps
from monitor.errors import NotFoundError
from monitor.escalation.incidents import incident_stats
from monitor.escalation.policy import EscalationPolicy
from monitor.store.incidents import PUBLIC_STATUSES, IncidentStore

__all__ = ["ROUTES", "TEXT_MAX", "TITLE_MAX", "add_event", "event_json", "incident_json", "iso", "priority_stats"]

TEXT_MAX = 4000
TITLE_MAX = 200


def iso(t: float | None) -> str | None:
    """Return Unix seconds as RFC 3339 UTC (``None`` stays ``None``)."""
    return None if t is None else datetime.fromtimestamp(float(t), timezone.utc).isoformat()


def incident_json(row: dict[str, Any]) -> dict[str, Any]:
    """Return an incident row as the API shows it."""
    return {"id": int(row["id"]), "title": row["title"], "priority": row["priority"], "status": row["status"],
            "public_status": row["public_status"], "group_key": row["group_key"], "components": row["components"],
            "alerts": row["alerts"], "opened_at": iso(row["opened_at"]),
            "acknowledged_at": iso(row["acknowledged_at"]), "acknowledged_by": row["acknowledged_by"],
            "resolved_at": iso(row["resolved_at"])}


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """Return an incident event row as the API shows it."""
    return {"id": int(row["id"]), "at": iso(row["at"]), "kind": row["kind"], "actor": row["actor"],
            "text": row["text"], "public": row["public"], "detail": row["detail"]}


def _store(request: Request) -> IncidentStore:
    store: IncidentStore | None = oncall_deps(request).store()  # type: ignore[assignment]
    if store is None:
        raise ApiError(503, "the state store is not open yet")
    return store


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.query_params.get(name) or default)
    except ValueError:
        raise ApiError(400, f"{name}: expected an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: expected {low}..{high}")
    return value


def _id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except ValueError:
        raise ApiError(404, f'unknown incident "{request.path_params["id"]}"') from None


async def list_incidents(request: Request) -> Response:
    """``GET /api/v1/incidents``."""
    status = request.query_params.get("status") or None
    if status not in (None, "open", "resolved"):
        return error_response(400, "status: expected open or resolved")
    limit = _int_param(request, "limit", 100, 1, 1000)
    rows = await _store(request).list_incidents(status=status, limit=limit)
    return JSONResponse({"incidents": [incident_json(r) for r in rows]})


async def priority_stats(deps: OnCallDeps, store: IncidentStore, days: int) -> dict[str, Any]:
    """Return MTTA/MTTR per priority against the SLA over the incidents opened in the last ``days``
    (:func:`monitor.escalation.incidents.incident_stats` with the running escalation policy)."""
    now = deps.clock()
    rows = await store.list_incidents(opened_after=now - days * 86400, limit=100_000)
    policy = EscalationPolicy.from_config(deps.alerting().escalation)
    return incident_stats(rows, policy, now)


async def stats(request: Request) -> Response:
    """``GET /api/v1/incidents/stats``."""
    days = _int_param(request, "days", 90, 1, 366)
    return JSONResponse({"days": days, "priorities": await priority_stats(oncall_deps(request), _store(request), days)})


async def get_incident(request: Request) -> Response:
    """``GET /api/v1/incidents/{id}``."""
    store, incident_id = _store(request), _id(request)
    try:
        row = await store.get_incident(incident_id)
    except NotFoundError:
        return error_response(404, f'unknown incident "{incident_id}"')
    events = await store.list_incident_events(incident_id)
    return JSONResponse({**incident_json(row), "timeline": [event_json(e) for e in events]})


async def _text(request: Request) -> tuple[dict[str, Any], str]:
    body = await json_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, f"text: expected a non-empty string, got {json_type(text)}")
    if len(text) > TEXT_MAX:
        raise ApiError(400, f"text: at most {TEXT_MAX} characters")
    return body, text.strip()


async def add_note(request: Request) -> Response:
    """``POST /api/v1/incidents/{id}/notes``."""
    return await _add(request, public=False)


async def add_update(request: Request) -> Response:
    """``POST /api/v1/incidents/{id}/updates``."""
    return await _add(request, public=True)


async def add_event(deps: OnCallDeps, store: IncidentStore, incident_id: int, text: str, status: Any, *,
                    public: bool, actor: str, source: str, title: Any = None) -> dict[str, Any]:
    """Add an internal note (``public`` false) or a public update (shown on ``/status``; ``status`` one of
    :data:`~monitor.store.incidents.PUBLIC_STATUSES` or ``None`` for the current one) to an incident and
    audit it (``incident.note`` / ``incident.update``) in one transaction; return the API's answer.

    :param title: a public update's new public title for ``/status`` (kept in the update's ``detail``;
        at most :data:`TITLE_MAX` characters), or ``None``.
    :raises ApiError: 400 bad ``status`` or ``title``; 404 unknown incident.
    """
    if status is not None and (not public or status not in PUBLIC_STATUSES):
        raise ApiError(400, f"status: expected one of {', '.join(PUBLIC_STATUSES)}" if public
                       else "status: only a public update sets a status")
    if title is not None:
        if not public:
            raise ApiError(400, "title: only a public update sets a public title")
        if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX:
            raise ApiError(400, f"title: expected a non-empty string of at most {TITLE_MAX} characters")
        title = title.strip()
    now = deps.clock()
    try:
        row = await store.get_incident(incident_id)
    except NotFoundError:
        raise ApiError(404, f'unknown incident "{incident_id}"') from None
    status = status or row["public_status"]
    kind = "update" if public else "note"
    detail: dict[str, Any] = ({"status": status} | ({"title": title} if title else {})) if public else {}
    async with store.transaction():
        event_id = await store.add_incident_event(incident_id, now, kind, actor=actor, text=text, public=public,
                                                  detail=detail)
        if public:
            await store.update_incident(incident_id, now, public_status=status)
        await store.audit(actor, f"incident.{kind}", now, target=f"incident:{incident_id}",
                          source=source, detail={"text": text, "event": event_id})
    answer = {"id": event_id, "incident": incident_id, "kind": kind, "public": public, "public_status": status}
    return answer | ({"public_title": title} if title else {})


async def _add(request: Request, *, public: bool) -> Response:
    actor = actor_of(request)
    body, text = await _text(request)  # the body first: a body over the limit is 413 whatever the path
    incident_id = _id(request)
    store = _store(request)
    answer = await add_event(oncall_deps(request), store, incident_id, text, body.get("status"), public=public,
                             actor=actor, source=f"api:{client_host(request)}", title=body.get("title"))
    return JSONResponse(answer, status_code=201)


ROUTES = [
    Route("/api/v1/incidents", list_incidents, methods=["GET"]),
    Route("/api/v1/incidents/stats", stats, methods=["GET"]),
    Route("/api/v1/incidents/{id}", get_incident, methods=["GET"]),
    Route("/api/v1/incidents/{id}/notes", add_note, methods=["POST"]),
    Route("/api/v1/incidents/{id}/updates", add_update, methods=["POST"]),
]
