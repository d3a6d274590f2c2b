"""On-call schedules and overrides: ``/api/v1/oncall/...`` (JSON).

* ``GET /api/v1/oncall/schedules?tz=Europe/Paris`` — every schedule with its restrictions, who
  is on call now (``current``) and the next shifts (``next``, up to ``count``, default 5), times
  in the viewer's zone ``tz`` (IANA, default ``UTC``).
* ``GET /api/v1/oncall/schedules/{name}/shifts?start=&end=&tz=`` — the calendar: every shift
  from ``start`` (default now) to ``end`` (default 28 days later; at most 92 days), times as
  RFC 3339 / Unix seconds like Prometheus's API.
* ``GET /api/v1/oncall/overrides?schedule=`` — the overrides made through the API, current and
  future (the configured ones are in the schedule's config).
* ``POST /api/v1/oncall/overrides`` — ``ack`` scope: ``{"schedule", "person", "start", "end",
  "comment"?}`` (RFC 3339 times with a zone) -> 201 with the stored row; 400 naming the bad field
  (unknown schedule or person, end not after start, longer than 92 days, in the past).
* ``DELETE /api/v1/oncall/overrides/{id}`` — ``ack`` scope; 404 unknown or already removed.

Creating and removing write the audit log (``oncall.override.create`` /
``oncall.override.remove``, target ``schedule:<name>``, actor the token's name) in the same
transaction as the override. The scope is ``ack``: whoever may acknowledge a page may swap a
shift (no new scope, so tokens keep working). The leader's escalation sees a new override
within ``monitor.escalation.runner.OVERRIDE_REFRESH`` seconds (it re-reads them on its tick).
Stored overrides are merged after the configured ones, so they win where both apply.

The views answer 404 when the schedule is unknown and 503 while the state store is not open
(configured overrides still show through ``schedules``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.timestamps import parse_api_time, parse_rfc3339
from monitor.api.auth import actor_of
from monitor.api.bodies import ApiError, client_host, error_response, json_object, json_type
from monitor.errors import NotFoundError, StoreError
from monitor.escalation.schedule import (
    Schedule, Shift, instant, next_handoffs, overrides_from_rows, shifts, who_is_on_call,
)
from monitor.store.overrides import OverrideStore

__all__ = ["OnCallDeps", "ROUTES", "MAX_SPAN", "add_override", "drop_override", "on_call_now", "running_schedules",
           "schedule_views", "shift_json", "stored_overrides"]

#: The longest calendar window and the longest override (seconds): 92 days.
MAX_SPAN = 92 * 86400.0
#: The most upcoming shifts ``GET /api/v1/oncall/schedules`` lists per schedule.
MAX_NEXT = 50
#: How far back the start of the current shift is looked for (seconds): 35 days.
LOOK_BACK = 35 * 86400.0
COMMENT_MAX = 1000


@dataclass(frozen=True)
class OnCallDeps:
    """What the on-call routes read.

    :ivar alerting: returns the running ``alerting:`` config (``schedules``, ``people``).
    :ivar store: returns the open state store (with the override calls), or ``None`` before it is open.
    :ivar clock: Unix-seconds clock.
    """

    alerting: Callable[[], Any]
    store: Callable[[], OverrideStore | None]
    clock: Callable[[], float] = time.time


def oncall_deps(request: Request) -> OnCallDeps:
    """Return the app's :class:`OnCallDeps` (its routes are mounted only when it has them)."""
    group: OnCallDeps | None = getattr(request.app.state.deps, "oncall", None)
    assert group is not None, "on-call routes mounted without OnCallDeps"
    return group


def _store(deps: OnCallDeps) -> OverrideStore:
    store = deps.store()
    if store is None:
        raise ApiError(503, "the state store is not open yet")
    return store


async def running_schedules(deps: OnCallDeps, now: float) -> dict[str, Schedule]:
    """Return every configured schedule with the stored overrides merged in (by name)."""
    store = deps.store()
    stored = overrides_from_rows(await store.list_overrides(ending_after=now - MAX_SPAN)) if store else {}
    return {name: Schedule.from_config(name, cfg).with_overrides(stored.get(name, ()))
            for name, cfg in deps.alerting().schedules.items()}


def _zone(request: Request) -> ZoneInfo:
    name = request.query_params.get("tz") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America")
        raise ApiError(400, f'tz: unknown time zone "{name}"') from None


def _iso(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).isoformat()


def shift_json(s: Shift, zone: ZoneInfo) -> dict[str, Any]:
    """Return a shift as JSON: ``{"person", "source", "start", "end"}`` (ISO 8601 in ``zone``)."""
    return {"person": s.person, "source": s.source, "start": _iso(s.start, zone), "end": _iso(s.end, zone)}


def _restrictions(s: Schedule) -> list[dict[str, Any]]:
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return [{"weekdays": [names[d] for d in sorted(r.weekdays)], "time_zone": r.time_zone,
             "start_time": f"{r.start_minute // 60:02d}:{r.start_minute % 60:02d}",
             "end_time": f"{r.end_minute // 60:02d}:{r.end_minute % 60:02d}"} for r in s.restrictions]


async def on_call_now(deps: OnCallDeps, now: float) -> list[dict[str, Any]]:
    """Return ``[{"schedule", "person"}]``: who each schedule has on call at ``now``, stored overrides
    included (``person`` ``None`` when nobody), by schedule name. Without the state store (not open, or
    failing) the configured schedules alone answer, as the escalation would."""
    try:
        running = await running_schedules(deps, now)
    except StoreError:
        running = {name: Schedule.from_config(name, cfg) for name, cfg in deps.alerting().schedules.items()}
    return [{"schedule": name, "person": who_is_on_call(s, now)} for name, s in sorted(running.items())]


async def schedule_views(deps: OnCallDeps, now: float, zone: ZoneInfo, count: int) -> list[dict[str, Any]]:
    """Return every schedule (by name) as ``GET /api/v1/oncall/schedules`` shows it: restrictions,
    ``current`` shift (from where it began) and the ``count`` next shifts and handoffs, times in ``zone``."""
    at = instant(now)  # the one instant every shift below is cut at and compared with
    out = []
    for name, s in sorted((await running_schedules(deps, now)).items()):
        upcoming = shifts(s, at, at + timedelta(seconds=MAX_SPAN), limit=count + 1)
        # compare instants, not floats: a datetime rounds ``now`` to the microsecond (maybe up), so the shift
        # cut at ``now`` could start "after" it and nobody would be on call
        current = upcoming[0] if upcoming and upcoming[0].start <= at else None
        following = upcoming[1:] if current else upcoming
        if current is not None:  # show where it began, not "now"
            before = shifts(s, at - timedelta(seconds=LOOK_BACK), at)
            if before and before[-1].end == current.start and \
                    (before[-1].person, before[-1].source) == (current.person, current.source):
                current = Shift(before[-1].start, current.end, current.person, current.source)
        out.append({
            "name": name, "time_zone": s.time_zone, "members": list(s.members), "rotation": s.rotation,
            "restrictions": _restrictions(s),
            "current": shift_json(current, zone) if current else None,
            "next": [shift_json(x, zone) for x in following[:count]],
            "next_handoffs": [{"at": _iso(h, zone), "person": p} for h, p in next_handoffs(s, at, count)],
        })
    return out


async def list_schedules(request: Request) -> Response:
    """``GET /api/v1/oncall/schedules``."""
    deps, zone = oncall_deps(request), _zone(request)
    try:
        count = min(max(int(request.query_params.get("count") or 5), 1), MAX_NEXT)
    except ValueError:
        return error_response(400, "count: expected an integer")
    now = deps.clock()
    out = await schedule_views(deps, now, zone, count)
    return JSONResponse({"time_zone": zone.key, "now": _iso(datetime.fromtimestamp(now, timezone.utc), zone),
                         "schedules": out})


async def schedule_shifts(request: Request) -> Response:
    """``GET /api/v1/oncall/schedules/{name}/shifts``."""
    deps, zone = oncall_deps(request), _zone(request)
    now = deps.clock()
    try:
        start = parse_api_time(request.query_params.get("start"), now)
        end = parse_api_time(request.query_params.get("end"), start + 28 * 86400)
    except ValueError as exc:
        return error_response(400, str(exc))
    if end <= start:
        return error_response(400, "end: must be after start")
    if end - start > MAX_SPAN:
        return error_response(400, "end: at most 92 days after start")
    name = request.path_params["name"]
    schedule = (await running_schedules(deps, start)).get(name)
    if schedule is None:
        return error_response(404, f'unknown schedule "{name}"')
    return JSONResponse({"schedule": name, "time_zone": zone.key,
                         "shifts": [shift_json(x, zone) for x in shifts(schedule, start, end)]})


def _override_json(row: dict[str, Any]) -> dict[str, Any]:
    utc = timezone.utc
    return {"id": int(row["id"]), "schedule": row["schedule"], "person": row["person"],
            "start": datetime.fromtimestamp(float(row["starts_at"]), utc).isoformat(),
            "end": datetime.fromtimestamp(float(row["ends_at"]), utc).isoformat(),
            "created_by": row["created_by"], "comment": row["comment"]}


async def list_overrides(request: Request) -> Response:
    """``GET /api/v1/oncall/overrides``."""
    deps = oncall_deps(request)
    return JSONResponse({"overrides": await stored_overrides(deps, request.query_params.get("schedule") or None)})


def _field(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ApiError(400, f"{key}: expected a non-empty string, got {json_type(value)}")
    return value


async def add_override(deps: OnCallDeps, schedule: str, person: str, start: float | None, end: float | None,
                       comment: str, *, actor: str, source: str) -> dict[str, Any]:
    """Store an override of ``schedule`` by ``person`` from ``start`` to ``end`` (Unix seconds) and audit
    it (``oncall.override.create`` by ``actor`` from ``source``) in one transaction; return it as JSON.

    :raises ApiError: 400 naming the bad field (unknown schedule or person, comment too long, end not
        after start, longer than :data:`MAX_SPAN`, over already); 503 while the state store is not open.
    """
    alerting = deps.alerting()
    if schedule not in alerting.schedules:
        raise ApiError(400, f'schedule: unknown schedule "{schedule}"')
    if person not in alerting.people:
        raise ApiError(400, f'person: unknown person "{person}"')
    if len(comment) > COMMENT_MAX:
        raise ApiError(400, f"comment: at most {COMMENT_MAX} characters")
    now = deps.clock()
    if start is None or end is None or end <= start:
        raise ApiError(400, "end: must be after start")
    if end - start > MAX_SPAN:
        raise ApiError(400, "end: an override lasts at most 92 days")
    if end <= now:
        raise ApiError(400, "end: the override would be over already")
    store = _store(deps)
    async with store.transaction():
        row = await store.create_override(schedule, person, start, end, actor, now, comment=comment)
        await store.audit(actor, "oncall.override.create", now, target=f"schedule:{schedule}",
                          source=source, detail=_override_json(row))
    return _override_json(row)


async def drop_override(deps: OnCallDeps, override_id: int, *, actor: str, source: str) -> dict[str, Any]:
    """Remove a stored override and audit it (``oncall.override.remove``) in one transaction; return it as JSON.

    :raises NotFoundError: unknown or already removed.
    :raises ApiError: 503 while the state store is not open.
    """
    store, now = _store(deps), deps.clock()
    async with store.transaction():
        row = await store.remove_override(override_id, actor, now)
        await store.audit(actor, "oncall.override.remove", now, target=f"schedule:{row['schedule']}",
                          source=source, detail=_override_json(row))
    return _override_json(row)


async def stored_overrides(deps: OnCallDeps, schedule: str | None = None) -> list[dict[str, Any]]:
    """Return the stored overrides not over yet (of ``schedule``, or all) as JSON.

    :raises ApiError: 503 while the state store is not open.
    """
    rows = await _store(deps).list_overrides(schedule, ending_after=deps.clock())
    return [_override_json(r) for r in rows]


async def create_override(request: Request) -> Response:
    """``POST /api/v1/oncall/overrides``."""
    deps = oncall_deps(request)
    actor = actor_of(request)
    body = await json_object(request)
    schedule, person = _field(body, "schedule"), _field(body, "person")
    comment = _field(body, "comment", required=False)
    times: dict[str, float | None] = {}
    for key in ("start", "end"):  # a bad time names its field, as the other 400s do
        try:
            times[key] = parse_rfc3339(_field(body, key))
        except ValueError as exc:
            return error_response(400, f"{key}: {exc}")
    start, end = times["start"], times["end"]
    row = await add_override(deps, schedule, person, start, end, comment, actor=actor,
                             source=f"api:{client_host(request)}")
    return JSONResponse(row, status_code=201)


async def remove_override(request: Request) -> Response:
    """``DELETE /api/v1/oncall/overrides/{id}``."""
    deps = oncall_deps(request)
    actor = actor_of(request)
    try:
        override_id = int(request.path_params["id"])
    except ValueError:
        return error_response(404, f'unknown override "{request.path_params["id"]}"')
    try:
        row = await drop_override(deps, override_id, actor=actor, source=f"api:{client_host(request)}")
    except NotFoundError:
        return error_response(404, f'unknown override "{override_id}"')
    return JSONResponse(row)


ROUTES = [
    Route("/api/v1/oncall/schedules", list_schedules, methods=["GET"]),
    Route("/api/v1/oncall/schedules/{name}/shifts", schedule_shifts, methods=["GET"]),
    Route("/api/v1/oncall/overrides", list_overrides, methods=["GET"]),
    Route("/api/v1/oncall/overrides", create_override, methods=["POST"]),
    Route("/api/v1/oncall/overrides/{id}", remove_override, methods=["DELETE"]),
]
