"""The public status page: ``GET /status`` (HTML) and ``GET /status.json``, read-only, no login.

Data: :mod:`monitor.api.statuspage.data`. The HTML is server-rendered (Jinja2, autoescaped; the
templates are this package's ``templates/``, self-contained: no script, no CDN) and readable
on a phone (one column, ``viewport`` meta). Each component's 90 daily uptime bars are an inline
SVG drawn here (:func:`uptime_svg`), each bar with a ``<title>`` (the day and its uptime).

Being public, the page is computed at most once per :data:`CACHE_SECONDS` (every visitor in
that time gets the same document), so a flood of requests costs no more store queries.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from monitor.api.statuspage.data import StatusPageDeps, status_data, uptime_color

__all__ = ["ROUTES", "StatusPageDeps", "uptime_svg", "CACHE_SECONDS", "render_page"]

CACHE_SECONDS = 10.0
TEMPLATES = Path(__file__).parent / "templates"
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_STATE_TEXT = {"operational": "Operational", "degraded": "Degraded performance", "major_outage": "Major outage",
               "unknown": "No data yet"}


def _text(iso: str | None) -> str:
    return "" if iso is None else datetime.fromisoformat(iso).strftime("%b %d, %H:%M UTC")


def uptime_svg(days: list[dict[str, Any]]) -> str:
    """Return the inline SVG of daily uptime bars (``[{"day", "checks", "uptime"}]``, oldest first)."""
    width, gap = 8, 2
    rects = []
    for i, d in enumerate(days):
        up = d["uptime"]
        label = f"{d['day']}: no data" if up is None else f"{d['day']}: {up * 100:.2f}% of {d['checks']} checks"
        rects.append(f'<rect x="{i * (width + gap)}" y="0" width="{width}" height="34" rx="1.5" '
                     f'fill="{uptime_color(up)}"><title>{html.escape(label)}</title></rect>')
    total = len(days) * (width + gap) - gap
    return (f'<svg class="bars" viewBox="0 0 {max(total, 1)} 34" preserveAspectRatio="none" role="img" '
            f'aria-label="daily uptime, last {len(days)} days" xmlns="http://www.w3.org/2000/svg">'
            + "".join(rects) + "</svg>")


def render_page(data: dict[str, Any], *, subscribe: bool = False, webhooks: bool = False) -> str:
    """Render the HTML page from :func:`~monitor.api.statuspage.data.status_data`'s document."""
    components = [{**c, "svg": uptime_svg(c["days"]), "status_text": _STATE_TEXT.get(c["status"], c["status"]),
                   "uptime_text": "no data" if c["uptime"] is None else f"{c['uptime'] * 100:.2f}% uptime"}
                  for c in data["components"]]
    incidents = [{**i, "started_at_text": _text(i["started_at"]), "resolved_at_text": _text(i["resolved_at"]),
                  "updates": [{**u, "at_text": _text(u["at"])} for u in i["updates"]]} for i in data["incidents"]]
    maintenance = [{**m, "starts_at_text": _text(m["starts_at"]), "ends_at_text": _text(m["ends_at"])}
                   for m in data["maintenance"]]
    return _ENV.get_template("status.html").render(
        title=data["title"], components=components, incidents=incidents, maintenance=maintenance,
        updated_at=data["updated_at"], updated_at_text=_text(data["updated_at"]), subscribe=subscribe,
        subscribe_webhooks=subscribe and webhooks)


def render_message(title: str, text: str, button: str = "") -> str:
    """Render a small page with one message, or with a button posting to the same URL (subscription links)."""
    return _ENV.get_template("message.html").render(title=title, text=text, button=button)


def status_deps(request: Request) -> StatusPageDeps:
    """Return the app's :class:`StatusPageDeps` (its routes are mounted only when it has them)."""
    group: StatusPageDeps | None = getattr(request.app.state.deps, "status_page", None)
    assert group is not None, "status page routes mounted without StatusPageDeps"
    return group


async def _cached(request: Request) -> dict[str, Any]:
    deps = status_deps(request)
    cache: dict[str, Any] = request.app.state.__dict__.setdefault("_status_cache", {})
    hit: tuple[float, dict[str, Any]] | None = cache.get("data")
    now = deps.clock()
    if hit is not None and 0 <= now - hit[0] < CACHE_SECONDS:
        return hit[1]
    data = await status_data(deps)
    cache["data"] = (now, data)
    return data


async def status_page(request: Request) -> Response:
    """``GET /status``."""
    data = await _cached(request)
    subs = status_deps(request).config().status_page.subscriptions
    return HTMLResponse(render_page(data, subscribe=subs is not None, webhooks=bool(subs and subs.webhooks)),
                        headers={"Cache-Control": f"public, max-age={int(CACHE_SECONDS)}"})


async def status_json(request: Request) -> Response:
    """``GET /status.json``."""
    return JSONResponse(await _cached(request), headers={"Cache-Control": f"public, max-age={int(CACHE_SECONDS)}"})


ROUTES = [
    Route("/status", status_page, methods=["GET"]),
    Route("/status.json", status_json, methods=["GET"]),
]
