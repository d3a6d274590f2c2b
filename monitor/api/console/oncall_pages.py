"""The console's On-call page (``/ui/oncall``) and its override forms.

* ``GET /ui/oncall?tz=Europe/Paris`` — each schedule's rotation, restrictions (business hours),
  who is on call now and the next shifts; a calendar of the coming :data:`CALENDAR_WEEKS` weeks
  (from this week's Monday); the stored overrides; the iCal feed links per schedule and per person.
* ``POST /ui/oncall/overrides`` — ``schedule``, ``person``, ``start``, ``end`` (``YYYY-MM-DDTHH:MM``, an
  ``<input type="datetime-local">`` read in the page's time zone ``tz``), ``comment``.
* ``POST /ui/oncall/overrides/{id}/remove`` — remove a stored override.

Times are shown in the viewer's zone: the ``tz`` query parameter (kept in the ``cbm_tz`` cookie), else
that cookie (``/ui/static/tz.js`` sets it to the browser's zone), else UTC. The page reads and the forms
write through the same services as ``/api/v1/oncall`` (:func:`monitor.api.oncall.schedule_views`,
:func:`~monitor.api.oncall.add_override`, :func:`~monitor.api.oncall.drop_override`), which validate
and write the audit log (``oncall.override.create`` / ``.remove``; actor the console user, source
``console:<client address>``). Forms need the ``ack`` scope (roles responder, admin) and the CSRF token.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import Response

from monitor.api.auth import credentials_of
from monitor.api.bodies import ApiError, client_host
from monitor.api.console.actions import FormRejected, _back, _checked, _reject
from monitor.api.console.pages import current_viewer, login_redirect, render
from monitor.api.deps import deps_of
from monitor.api.oncall import (
    MAX_SPAN, OnCallDeps, add_override, drop_override, running_schedules, schedule_views, stored_overrides,
)
from monitor.api.oncall_feeds import feed_token
from monitor.errors import NotFoundError
from monitor.escalation.schedule import shifts

__all__ = ["CALENDAR_WEEKS", "TZ_COOKIE", "add_override_form", "format_time", "oncall_page", "remove_override_form",
           "viewer_zone"]

#: Weeks the calendar shows, from the Monday of the current week.
CALENDAR_WEEKS = 4
#: The cookie keeping the viewer's time zone (an IANA name).
TZ_COOKIE = "cbm_tz"
#: Next shifts listed per schedule.
NEXT_SHIFTS = 4


def _zone_named(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America")
        return None


def viewer_zone(request: Request) -> tuple[ZoneInfo, bool]:
    """Return the viewer's time zone and whether it came from the ``tz`` query parameter (then
    kept in the :data:`TZ_COOKIE` cookie): ``tz``, else the cookie, else UTC. Unknown names are ignored."""
    given = _zone_named(request.query_params.get("tz"))
    if given is not None:
        return given, True
    return _zone_named(unquote(request.cookies.get(TZ_COOKIE) or "")) or ZoneInfo("UTC"), False


def format_time(value: str | datetime | None) -> str:
    """Return an ISO 8601 time (or a datetime) as ``Sat 05 Dec 09:00`` in its own offset (``""`` for none)."""
    if not value:
        return ""
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t.strftime("%a %d %b %H:%M")


def _deps(request: Request) -> OnCallDeps | None:
    deps: OnCallDeps | None = getattr(deps_of(request), "oncall", None)
    return deps


def _calendar(schedule: Any, zone: ZoneInfo, now: float) -> list[list[dict[str, Any]]]:
    """Return :data:`CALENDAR_WEEKS` weeks of days (Monday first) in ``zone``: ``{"date", "today",
    "shifts": [{"person", "source", "hours"}]}`` where ``hours`` is ``""`` for the whole day, else ``09:00–17:00``."""
    today = datetime.fromtimestamp(now, zone).date()
    monday = today - timedelta(days=today.weekday())
    first = datetime.combine(monday, datetime.min.time(), zone)
    last = datetime.combine(monday + timedelta(days=7 * CALENDAR_WEEKS), datetime.min.time(), zone)
    found = shifts(schedule, first.timestamp(), last.timestamp())
    weeks: list[list[dict[str, Any]]] = []
    for w in range(CALENDAR_WEEKS):
        week = []
        for d in range(7):
            day: date = monday + timedelta(days=7 * w + d)
            start = datetime.combine(day, datetime.min.time(), zone)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
            cells = []
            for s in found:
                a, b = max(s.start, start), min(s.end, end)
                if a >= b:
                    continue
                whole = a == start and b == end
                until = "24:00" if b == end else f"{b.astimezone(zone):%H:%M}"
                hours = "" if whole else f"{a.astimezone(zone):%H:%M}–{until}"
                cells.append({"person": s.person, "source": s.source, "hours": hours})
            week.append({"date": day, "today": day == today, "shifts": cells})
        weeks.append(week)
    return weeks


def _feeds(request: Request, deps: OnCallDeps) -> dict[str, dict[str, str]] | None:
    """Return the iCal feed URLs (``{"schedules": {...}, "people": {...}}``), ``None`` without ``api.link_key``."""
    key = credentials_of(request).link_key()
    if key is None:
        return None
    alerting = deps.alerting()
    base = str(request.base_url).rstrip("/")
    return {"schedules": {n: f"{base}/api/v1/oncall/schedules/{n}.ics?token={feed_token(key, 'schedule', n)}"
                          for n in sorted(alerting.schedules)},
            "people": {p: f"{base}/api/v1/oncall/people/{p}.ics?token={feed_token(key, 'person', p)}"
                       for p in sorted(alerting.people)}}


async def oncall_page(request: Request) -> Response:
    """``GET /ui/oncall``: schedules (now, next, restrictions), the calendar, overrides, feed links."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    zone, from_query = viewer_zone(request)
    deps = _deps(request)
    ctx: dict[str, Any] = {"zone": zone.key, "schedules": [], "overrides": [], "feeds": None, "people": {},
                           "store_error": "", "fmt": format_time,
                           "local_iso": lambda iso: format_time(datetime.fromisoformat(iso).astimezone(zone))}
    if deps is not None:
        now = deps.clock()
        views = await schedule_views(deps, now, zone, NEXT_SHIFTS)
        running = await running_schedules(deps, now)
        for v in views:
            v["calendar"] = _calendar(running[v["name"]], zone, now)
        ctx["schedules"] = views
        ctx["people"] = {p: getattr(cfg, "name", "") or p for p, cfg in sorted(deps.alerting().people.items())}
        try:
            ctx["overrides"] = await stored_overrides(deps)
        except ApiError as e:
            ctx["store_error"] = e.message
        ctx["feeds"] = _feeds(request, deps)
        local_now = datetime.fromtimestamp(now, zone).replace(second=0, microsecond=0, tzinfo=None)
        ctx["default_start"] = local_now.isoformat(timespec="minutes")
        ctx["default_end"] = (local_now + timedelta(hours=8)).isoformat(timespec="minutes")
    response = render(request, "oncall.html", **ctx)
    if from_query:
        response.set_cookie(TZ_COOKIE, zone.key, max_age=365 * 86400, path="/ui", samesite="lax")
    return response


def _local_time(field: str, text: str, zone: ZoneInfo) -> float:
    """Return a ``datetime-local`` value (``YYYY-MM-DDTHH:MM``) read in ``zone`` as Unix seconds.

    :raises FormRejected: 400 naming ``field``.
    """
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormRejected(400, f"{field}: expected a date and time like 2026-12-05T09:00") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    try:
        return t.astimezone(timezone.utc).timestamp()
    except OverflowError:  # 9999-12-31T23:59 east of UTC
        raise FormRejected(400, f"{field}: out of range") from None


def _need(request: Request) -> OnCallDeps:
    deps = _deps(request)
    if deps is None:
        raise FormRejected(503, "on-call schedules are not served here")
    return deps


async def add_override_form(request: Request) -> Response:
    """``POST /ui/oncall/overrides``: store an override (400 naming the bad field)."""
    try:
        viewer, form = await _checked(request, "ack")
        deps = _need(request)
        zone = _zone_named(form.get("tz")) or viewer_zone(request)[0]
        start = _local_time("start", form.get("start", ""), zone)
        end = _local_time("end", form.get("end", ""), zone)
        if end - start > MAX_SPAN:
            raise FormRejected(400, "end: an override lasts at most 92 days")
        try:
            await add_override(deps, form.get("schedule", "")[:256], form.get("person", "")[:256], start, end,
                               form.get("comment", "")[:2000], actor=viewer.name,
                               source=f"console:{client_host(request)}")
        except ApiError as e:
            raise FormRejected(e.status, e.message) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, "/ui/oncall")


async def remove_override_form(request: Request) -> Response:
    """``POST /ui/oncall/overrides/{id}/remove``: remove a stored override (404 unknown or removed)."""
    try:
        viewer, form = await _checked(request, "ack")
        deps = _need(request)
        raw = request.path_params["id"]
        try:
            await drop_override(deps, int(raw), actor=viewer.name, source=f"console:{client_host(request)}")
        except (NotFoundError, ValueError):
            raise FormRejected(404, f'unknown override "{raw}"') from None
        except ApiError as e:
            raise FormRejected(e.status, e.message) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, "/ui/oncall")
