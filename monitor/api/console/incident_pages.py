"""The console's Incidents pages (``/ui/incidents``) and their forms.

* ``GET /ui/incidents?days=90`` — open incidents, the history (the latest :data:`HISTORY` resolved),
  and MTTA / MTTR per priority against the SLA (the escalation policy's ``ack`` and ``resolve``
  deadlines) over the incidents opened in the last ``days`` (1..366).
* ``GET /ui/incidents/{id}`` — one incident with its timeline (internal notes included) and the forms.
* ``POST /ui/incidents/{id}/notes`` — ``text``: an internal note.
* ``POST /ui/incidents/{id}/updates`` — ``text``, ``status`` (investigating, identified, monitoring,
  resolved): a public update, shown on ``/status``.

Pages read and forms write through the same services as ``/api/v1/incidents``
(:func:`monitor.api.incidents.priority_stats`, :func:`~monitor.api.incidents.add_event`), which write the
audit log (``incident.note`` / ``incident.update``; actor the console user, source
``console:<client address>``). Forms need the ``ack`` scope (roles responder, admin) and the CSRF token.
Times are shown in the viewer's zone as on the On-call page (:func:`~monitor.api.console.oncall_pages.viewer_zone`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from monitor.api.bodies import ApiError, client_host
from monitor.api.console.actions import FormRejected, _back, _checked, _reject
from monitor.api.console.oncall_pages import viewer_zone
from monitor.api.console.pages import current_viewer, login_redirect, render
from monitor.api.deps import deps_of
from monitor.api.incidents import TEXT_MAX, add_event, event_json, incident_json, priority_stats
from monitor.errors import NotFoundError
from monitor.store.incidents import PUBLIC_STATUSES, IncidentStore

__all__ = ["HISTORY", "add_note_form", "add_update_form", "duration_text", "incident_page", "incidents_page"]

#: Resolved incidents listed on the page.
HISTORY = 50


def duration_text(seconds: float | None) -> str:
    """Return seconds as ``42s``, ``12m``, ``3h 05m`` or ``2d 4h`` (``"–"`` for none)."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _local(zone: ZoneInfo) -> Any:
    def fmt(t: float | None) -> str:
        return "" if t is None else datetime.fromtimestamp(float(t), zone).strftime("%Y-%m-%d %H:%M")
    return fmt


def _context(request: Request) -> tuple[Any, IncidentStore | None]:
    deps = getattr(deps_of(request), "oncall", None)
    store = deps.store() if deps is not None else None
    return deps, store


def _row(r: dict[str, Any]) -> dict[str, Any]:
    """Return an incident for the page: the API's JSON plus the raw Unix times (``*_ts``) and durations."""
    out = incident_json(r)
    out.update(opened_ts=r["opened_at"], acknowledged_ts=r["acknowledged_at"], resolved_ts=r["resolved_at"],
               tta=None if r["acknowledged_at"] is None else r["acknowledged_at"] - r["opened_at"],
               ttr=None if r["resolved_at"] is None else r["resolved_at"] - r["opened_at"])
    return out


async def incidents_page(request: Request) -> Response:
    """``GET /ui/incidents``: open incidents, history, MTTA/MTTR per priority against the SLA."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    zone, _ = viewer_zone(request)
    try:
        days = min(max(int(request.query_params.get("days") or 90), 1), 366)
    except ValueError:
        days = 90
    deps, store = _context(request)
    ctx: dict[str, Any] = {"zone": zone.key, "days": days, "open": [], "history": [], "stats": {},
                           "store_error": "", "local": _local(zone), "dur": duration_text}
    if store is None:
        ctx["store_error"] = "the state store is not open yet" if deps is not None else "incidents are not served here"
    else:
        ctx["open"] = [_row(r) for r in await store.list_incidents(status="open", limit=1000)]
        ctx["history"] = [_row(r) for r in await store.list_incidents(status="resolved", limit=HISTORY)]
        ctx["stats"] = await priority_stats(deps, store, days)
        now = deps.clock()
        for row in ctx["open"]:  # past its priority's deadline and still not acknowledged / resolved
            sla = ctx["stats"].get(row["priority"], {})
            age = now - row["opened_ts"]
            row["ack_late"] = row["acknowledged_ts"] is None and age > (sla.get("ack_sla_seconds") or float("inf"))
            row["resolve_late"] = age > (sla.get("resolve_sla_seconds") or float("inf"))
    return render(request, "incidents.html", **ctx)


async def incident_page(request: Request) -> Response:
    """``GET /ui/incidents/{id}``: one incident, its timeline, the note and public update forms."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    zone, _ = viewer_zone(request)
    raw = request.path_params["id"]
    _, store = _context(request)
    ctx: dict[str, Any] = {"zone": zone.key, "incident": None, "timeline": [], "local": _local(zone),
                           "dur": duration_text, "statuses": PUBLIC_STATUSES, "text_max": TEXT_MAX, "raw_id": raw}
    if store is None:
        return render(request, "incident.html", status=503, **ctx)
    try:
        row = await store.get_incident(int(raw))
    except (NotFoundError, ValueError):
        return render(request, "incident.html", status=404, **ctx)
    events = await store.list_incident_events(int(raw))
    ctx["incident"] = _row(row)
    ctx["timeline"] = [{**event_json(e), "at_ts": e["at"]} for e in events]
    return render(request, "incident.html", **ctx)


async def _add(request: Request, *, public: bool) -> Response:
    try:
        viewer, form = await _checked(request, "ack")
        deps, store = _context(request)
        if store is None:
            raise FormRejected(503, "the state store is not open yet")
        raw = request.path_params["id"]
        try:
            incident_id = int(raw)
        except ValueError:
            raise FormRejected(404, f'unknown incident "{raw}"') from None
        text = form.get("text", "").strip()
        if not text:
            raise FormRejected(400, "text: required")
        if len(text) > TEXT_MAX:
            raise FormRejected(400, f"text: at most {TEXT_MAX} characters")
        status = (form.get("status") or None) if public else None
        try:
            await add_event(deps, store, incident_id, text, status, public=public, actor=viewer.name,
                            source=f"console:{client_host(request)}")
        except ApiError as e:
            raise FormRejected(e.status, e.message) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, f"/ui/incidents/{incident_id}")


async def add_note_form(request: Request) -> Response:
    """``POST /ui/incidents/{id}/notes``: an internal note on the incident's timeline."""
    return await _add(request, public=False)


async def add_update_form(request: Request) -> Response:
    """``POST /ui/incidents/{id}/updates``: a public update (and status), shown on ``/status``."""
    return await _add(request, public=True)
