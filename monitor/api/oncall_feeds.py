"""iCal feeds of on-call shifts, one per schedule and one per person (RFC 5545, ``icalendar``).

* ``GET /api/v1/oncall/schedules/{name}.ics?token=...`` — every shift of the schedule;
* ``GET /api/v1/oncall/people/{person}.ics?token=...`` — that person's shifts in every schedule;
* ``GET /api/v1/oncall/feeds`` — the feeds' URLs (``read`` scope, always: they are secrets).

Authentication is a secret URL, as PagerDuty's calendar feeds: calendar clients (Google,
Outlook, Apple) cannot send a bearer token, so the URL carries ``token``, an HMAC-SHA256 of
the feed's kind and name under ``api.link_key`` (the key of the signed ``/ack`` links), cut to
32 hex digits and compared in constant time. A token does not expire; changing ``api.link_key``
revokes every feed URL (and every outstanding ack link). Answers: 404 when ``api.link_key`` is
not set or the name is unknown, 403 for a wrong token.

A feed has every shift overlapping 14 days back to 84 days ahead of now; each shift is a ``VEVENT``
with times in UTC, ``SUMMARY`` ``On call: <person> (<schedule>)``, ``CATEGORIES`` ``rotation`` or
``override``, and a ``UID`` stable across fetches: schedule, person and the shift's real start (a
shift under way 14 days back keeps its start, looked for up to ``LOOK_BACK`` earlier, so calendar
apps update the event instead of adding a copy on every fetch).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

from icalendar import Calendar, Event
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import credentials_of
from monitor.api.bodies import error_response
from monitor.api.oncall import LOOK_BACK, oncall_deps, running_schedules
from monitor.escalation.schedule import Schedule, Shift, shifts

__all__ = ["ROUTES", "feed_token", "BACK_DAYS", "AHEAD_DAYS"]

BACK_DAYS = 14
AHEAD_DAYS = 84


def feed_token(key: str, kind: str, name: str) -> str:
    """Return the URL token of the ``kind`` (``schedule`` or ``person``) feed ``name`` under ``key``."""
    msg = f"oncall-feed\x00{kind}\x00{name}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()[:32]


def _checked(request: Request, kind: str, name: str) -> Response | None:
    key = credentials_of(request).link_key()
    if key is None:
        return error_response(404, "calendar feeds need api.link_key")
    given = request.query_params.get("token") or ""
    if not hmac.compare_digest(feed_token(key, kind, name).encode(), given.encode()):
        return error_response(403, "invalid feed token")
    return None


def _calendar(title: str, items: list[tuple[Schedule, Shift]]) -> Response:
    cal = Calendar()
    cal.add("prodid", "-//codebook-monitor//on-call//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", title)
    stamp = datetime.now(timezone.utc).replace(microsecond=0)
    for schedule, s in items:
        ev = Event()
        ev.add("uid", f"{schedule.name}-{s.person}-{int(s.start.timestamp())}@codebook-monitor")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", s.start.astimezone(timezone.utc))
        ev.add("dtend", s.end.astimezone(timezone.utc))
        ev.add("summary", f"On call: {s.person} ({schedule.name})")
        ev.add("categories", [s.source])
        cal.add_component(ev)
    return Response(cal.to_ical(), media_type="text/calendar; charset=utf-8")


async def _window(request: Request) -> tuple[dict[str, Schedule], float, float]:
    deps = oncall_deps(request)
    now = deps.clock()
    start, end = now - BACK_DAYS * 86400, now + AHEAD_DAYS * 86400
    return await running_schedules(deps, start - LOOK_BACK), start, end


def _feed_shifts(schedule: Schedule, start: float, end: float) -> list[Shift]:
    """Return the shifts overlapping ``[start, end)``, the first one with its real start (not cut at
    ``start``): a shift's ``UID`` is made of its start, so it must not move with the clock."""
    return [s for s in shifts(schedule, start - LOOK_BACK, end) if s.end.timestamp() > start]


async def schedule_feed(request: Request) -> Response:
    """``GET /api/v1/oncall/schedules/{name}.ics``."""
    name = request.path_params["name"]
    refused = _checked(request, "schedule", name)
    if refused is not None:
        return refused
    schedules, start, end = await _window(request)
    schedule = schedules.get(name)
    if schedule is None:
        return error_response(404, f'unknown schedule "{name}"')
    return _calendar(f"On call: {name}", [(schedule, s) for s in _feed_shifts(schedule, start, end)])


async def person_feed(request: Request) -> Response:
    """``GET /api/v1/oncall/people/{person}.ics``."""
    person = request.path_params["person"]
    refused = _checked(request, "person", person)
    if refused is not None:
        return refused
    if person not in oncall_deps(request).alerting().people:
        return error_response(404, f'unknown person "{person}"')
    schedules, start, end = await _window(request)
    items = [(sch, s) for _, sch in sorted(schedules.items()) for s in _feed_shifts(sch, start, end)
             if s.person == person]
    items.sort(key=lambda it: it[1].start)
    return _calendar(f"On call: {person}", items)


async def list_feeds(request: Request) -> Response:
    """``GET /api/v1/oncall/feeds``: ``{"schedules": {name: url}, "people": {id: url}}``."""
    key = credentials_of(request).link_key()
    if key is None:
        return error_response(404, "calendar feeds need api.link_key")
    alerting = oncall_deps(request).alerting()
    base = str(request.base_url).rstrip("/")
    return JSONResponse({
        "schedules": {n: f"{base}/api/v1/oncall/schedules/{n}.ics?token={feed_token(key, 'schedule', n)}"
                      for n in sorted(alerting.schedules)},
        "people": {p: f"{base}/api/v1/oncall/people/{p}.ics?token={feed_token(key, 'person', p)}"
                   for p in sorted(alerting.people)},
    })


ROUTES = [
    Route("/api/v1/oncall/feeds", list_feeds, methods=["GET"]),
    Route("/api/v1/oncall/schedules/{name}.ics", schedule_feed, methods=["GET"]),
    Route("/api/v1/oncall/people/{person}.ics", person_feed, methods=["GET"]),
]
