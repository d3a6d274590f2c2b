"""The console's pages (``GET /ui/...``): overview, alerts, one alert's timeline, silences, rules,
probes, query, login; and its static files.

Pages only read: probe results from memory, alerts and silences from the pipeline's views, rules
from the rule manager; PromQL (SLO budgets, the query graph) goes through the ad-hoc query engine
(:class:`monitor.promql.adhoc.AdHocQueries`: worker pool, deadline, sample limit), so a page can
never stall probing, rule evaluation or delivery. A page needs a session (any role); without one it
redirects to ``/ui/login?next=<path>``.
"""

from __future__ import annotations

import math
import re
import time
from importlib import resources
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from model.duration import parse_duration
from model.labels import Labels
from monitor.api.console.render import PALETTE, line_chart, sparkline
from monitor.api.console.session import Viewer
from monitor.api.deps import deps_of
from monitor.api.oncall import on_call_now
from monitor.api.slos import slo_status
from monitor.errors import NotFoundError, QueryError

#: The query page's ranges, and the points drawn per series.
QUERY_RANGES = ("5m", "15m", "1h", "3h", "6h", "12h", "1d", "2d", "7d")
GRAPH_POINTS = 240
#: Most series the graph draws (the rest are counted, not drawn).
GRAPH_SERIES = 20
#: Most characters of a PromQL expression the query page takes.
MAX_EXPR = 4096

#: Headers of every page: never cached, scripts and styles from the console only, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8",
           "favicon.svg": "image/svg+xml", "oncall.css": "text/css; charset=utf-8",
           "tz.js": "text/javascript; charset=utf-8"}


def console_of(request: Request) -> Any:
    """Return the console's state (:class:`monitor.api.console.ConsoleApp`) kept on the app."""
    return request.app.state.console


def viewer_of(request: Request) -> Viewer:
    """Return who is logged in on ``request``."""
    viewer: Viewer = console_of(request).sessions.viewer(request)
    return viewer


async def current_viewer(request: Request) -> Viewer:
    """Return who is logged in on ``request``, after refreshing the users kept in the state store."""
    await console_of(request).sessions.refresh()
    return viewer_of(request)


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render ``template`` with the viewer, the CSRF token, the active page and ``ctx``.

    A visitor without a session gets one holding a fresh CSRF token (the login form needs it).
    """
    console = console_of(request)
    csrf, fresh = console.sessions.csrf_token(request)
    body = console.env.get_template(template).render(viewer=viewer_of(request), csrf=csrf, path=request.url.path,
                                                     alerting=_ports(request) is not None, now=time.time(), **ctx)
    response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
    if fresh:
        console.sessions.write(response, request, {"c": csrf})
    return response


def login_redirect(request: Request) -> RedirectResponse:
    """Return a 303 to the login page, coming back to this page afterwards."""
    return RedirectResponse("/ui/login?next=" + quote(request.url.path, safe="/"), status_code=303)


def _ports(request: Request) -> Any:
    alerting = deps_of(request).alerting
    return alerting.ports() if alerting is not None else None


# -- overview ---------------------------------------------------------------------------------------


#: The probes' sparklines: hours drawn and points per line.
SPARK_HOURS = 3
SPARK_POINTS = 90


async def _probe_series(request: Request) -> dict[str, tuple[list[float | None], list[bool]]]:
    """Return each probe's latency (worst per step) and failures (any per step) over the last
    :data:`SPARK_HOURS` hours, from the stored ``probe_duration_seconds`` and ``probe_success``
    series (two range queries through the ad-hoc engine); ``{}`` when they fail."""
    queries = deps_of(request).queries
    if queries is None:
        return {}
    end = int(time.time() * 1000)
    step = SPARK_HOURS * 3600 * 1000 // SPARK_POINTS
    start = end - step * (SPARK_POINTS - 1)
    window = f"{step // 1000}s"
    try:
        durations = await queries.engine.range_query(
            f"max by (probe) (max_over_time(probe_duration_seconds[{window}]))", start, end, step)
        successes = await queries.engine.range_query(
            f"min by (probe) (min_over_time(probe_success[{window}]))", start, end, step)
    except QueryError:
        return {}
    out: dict[str, tuple[list[float | None], list[bool]]] = {}
    for s in durations:
        values: list[float | None] = [None] * SPARK_POINTS
        for t, v in s.points:
            values[min(max((t - start) // step, 0), SPARK_POINTS - 1)] = v
        out[s.labels.get("probe") or ""] = (values, [False] * SPARK_POINTS)
    for s in successes:
        name = s.labels.get("probe") or ""
        if name in out:
            for t, v in s.points:
                out[name][1][min(max((t - start) // step, 0), SPARK_POINTS - 1)] = v < 1
    return out


async def probe_rows(request: Request) -> list[dict[str, Any]]:
    """Every probe: name, kind, target, state (``up``/``down``/``unknown``), last latency (s), and
    latency sparklines (``spark``, ``spark_wide``: SVG) over the last :data:`SPARK_HOURS` hours, or
    over the last results kept in memory while fewer than 10 points are stored (a fresh start)."""
    queries = deps_of(request).queries
    if queries is None:
        return []
    runner = queries.probes()
    stored = await _probe_series(request)
    rows = []
    for name, s in runner.settings.items():
        last = runner.last.get(name)
        history = list(runner.history.get(name, ()))
        values, bad = stored.get(name, ([], []))
        span = f"last {SPARK_HOURS} h"
        if sum(v is not None for v in values) < 10:
            values, bad = [r.duration_seconds for r in history], [not r.success for r in history]
            span = f"last {len(history)} runs"
        rows.append({
            "name": name, "kind": s.kind, "target": s.target(),
            "state": "unknown" if last is None else "up" if last.success else "down",
            "latency": None if last is None else last.duration_seconds,
            "error": None if last is None else last.error,
            "finished_at": None if last is None else last.finished_at,
            "details": {} if last is None else last.details,
            "span": span,
            "spark": sparkline(values, bad, label=f"{name} latency, {span}"),
            "spark_wide": sparkline(values, bad, width=320, height=48, label=f"{name} latency, {span}"),
        })
    return rows


async def slo_rows(request: Request) -> tuple[list[dict[str, Any]], str]:
    """Return the SLO status rows (:func:`monitor.api.slos.slo_status`) and an error text (``""``)."""
    queries = deps_of(request).queries
    if queries is None:
        return [], ""
    try:
        return await slo_status(queries.engine), ""
    except QueryError as e:
        return [], str(e)


def _severity(alert: dict[str, Any]) -> str:
    return str(alert.get("labels", {}).get("severity", "none"))


async def overview(request: Request) -> Response:
    """``GET /ui/``: probes with sparklines, alerts by severity, SLO budgets, on call, next maintenance."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    now = time.time()
    ports = _ports(request)
    alerts = ports.views.alerts_api() if ports is not None else []
    counts: dict[str, dict[str, int]] = {}
    for a in alerts:
        state = _alert_state(a)
        counts.setdefault(_severity(a), {}).setdefault(state, 0)
        counts[_severity(a)][state] += 1
    for a in _pending(request):
        counts.setdefault(_severity(a), {}).setdefault("pending", 0)
        counts[_severity(a)]["pending"] += 1
    slos, slo_error = await slo_rows(request)
    console = deps_of(request).console
    oncall = console.oncall(now) if console is not None else []
    if deps_of(request).oncall is not None:  # stored overrides too (monitor.api.oncall), as the On-call page
        oncall = await on_call_now(deps_of(request).oncall, now)
    maintenance = console.maintenance(now) if console is not None else None
    order = {"critical": 0, "warning": 1, "info": 2}
    return render(request, "overview.html", probes=await probe_rows(request),
                  counts=sorted(counts.items(), key=lambda kv: (order.get(kv[0], 9), kv[0])),
                  slos=slos, slo_error=slo_error, oncall=oncall, maintenance=maintenance)


# -- alerts -----------------------------------------------------------------------------------------


def _alert_state(a: dict[str, Any]) -> str:
    """Return ``firing``, ``acknowledged``, ``silenced`` or ``inhibited``."""
    status = a.get("status", {})
    if status.get("silencedBy"):
        return "silenced"
    if status.get("inhibitedBy"):
        return "inhibited"
    if a.get("escalation", {}).get("status") == "acknowledged":
        return "acknowledged"
    return "firing"


def _pending(request: Request) -> list[dict[str, Any]]:
    queries = deps_of(request).queries
    if queries is None:
        return []
    return [a for a in queries.rules.alerts_api().get("alerts", []) if a.get("state") == "pending"]


def silence_matchers(labels: dict[str, str]) -> str:
    """Return the matcher text that silences exactly an alert with ``labels`` (``{a="x", b="y"}``)."""
    def q(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ", ".join(f'{k}="{q(v)}"' for k, v in sorted(labels.items())) + "}"


def _values(request: Request) -> dict[frozenset[tuple[str, str]], str]:
    queries = deps_of(request).queries
    if queries is None:
        return {}
    return {frozenset(a["labels"].items()): str(a.get("value", "")) for a in queries.rules.alerts_api()["alerts"]}


async def alerts_page(request: Request) -> Response:
    """``GET /ui/alerts``: the pipeline's alerts grouped as routed (receiver, group labels), by state;
    rule alerts still pending; buttons to acknowledge, unacknowledge, resolve and silence."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    ports = _ports(request)
    values = _values(request)
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[dict[str, Any]]] = {}
    order = {"firing": 0, "acknowledged": 1, "silenced": 2, "inhibited": 3}
    alerting = deps_of(request).alerting
    route = alerting.route() if alerting is not None else None
    for a in ports.views.alerts_api() if ports is not None else []:
        card: dict[str, Any] = {**a, "state": _alert_state(a), "silence": silence_matchers(a["labels"]),
                                "value": values.get(frozenset(a["labels"].items()), "")}
        keys = _group_keys(route, a["labels"])
        for key in keys:
            groups.setdefault(key, []).append(card)

    def rank(card: dict[str, Any]) -> tuple[int, str]:
        return order[card["state"]], str(card.get("startsAt", ""))

    grouped: list[dict[str, Any]] = [{"receiver": k[0], "labels": dict(k[1]), "alerts": sorted(groups[k], key=rank)}
                                     for k in sorted(groups)]
    return render(request, "alerts.html", groups=grouped, pending=_pending(request))


def _group_keys(route: Any, labels: dict[str, str]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Return the ``(receiver, group labels)`` of every route an alert matches (as ``/api/v2/alerts/groups``)."""
    if route is None:
        return [("", ())]
    ls = Labels.of(labels)
    out = []
    for m in route.routes_for(ls):
        group = ls if m.opts.group_by_all else ls.keep(*m.opts.group_by)
        out.append((m.receiver, tuple(sorted(group.as_dict().items()))))
    return out or [("", ())]


async def alert_page(request: Request) -> Response:
    """``GET /ui/alerts/{fingerprint}``: one alert with its labels, annotations and timeline."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    fp = request.path_params["fingerprint"]
    ports = _ports(request)
    if ports is None:
        return render(request, "alert.html", status=503, alert=None, timeline=[], fingerprint=fp)
    alert = next((a for a in ports.views.alerts_api() if a.get("fingerprint") == fp), None)
    try:
        timeline = await ports.views.timeline(fp)
    except NotFoundError:
        timeline = None
    if alert is None and timeline is None:
        return render(request, "alert.html", status=404, alert=None, timeline=[], fingerprint=fp)
    card = None
    if alert is not None:
        card = {**alert, "state": _alert_state(alert), "silence": silence_matchers(alert["labels"]),
                "value": _values(request).get(frozenset(alert["labels"].items()), "")}
    return render(request, "alert.html", alert=card, timeline=timeline or [], fingerprint=fp)


# -- silences, rules, probes -------------------------------------------------------------------------


async def silences_page(request: Request) -> Response:
    """``GET /ui/silences``: active, pending and expired silences; the create form (``?matchers=`` prefills it)."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    ports = _ports(request)
    silences = ports.silences.list_silences() if ports is not None else []
    order = {"active": 0, "pending": 1, "expired": 2}
    silences.sort(key=lambda s: (order.get(s["status"]["state"], 3), s.get("endsAt", "")))
    return render(request, "silences.html", silences=silences,
                  prefill=request.query_params.get("matchers", "")[:MAX_EXPR])


async def rules_page(request: Request) -> Response:
    """``GET /ui/rules``: rule groups with each rule's health, last evaluation and last error."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    queries = deps_of(request).queries
    groups = queries.rules.to_api()["groups"] if queries is not None else []
    return render(request, "rules.html", groups=groups)


async def probes_page(request: Request) -> Response:
    """``GET /ui/probes``: every probe with its target, last result, error and latency sparkline."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    return render(request, "probes.html", probes=await probe_rows(request))


# -- query ------------------------------------------------------------------------------------------


def _series_label(labels: Any) -> str:
    d = labels.as_dict() if hasattr(labels, "as_dict") else dict(labels)
    name = d.pop("__name__", "")
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}"


async def query_page(request: Request) -> Response:
    """``GET /ui/query?expr=...&range=1h``: a PromQL range query drawn as an SVG graph
    (:data:`GRAPH_POINTS` steps over the range, at most :data:`GRAPH_SERIES` series drawn)."""
    viewer = await current_viewer(request)
    if not viewer.logged_in:
        return login_redirect(request)
    expr = request.query_params.get("expr", "").strip()
    rng = request.query_params.get("range", "1h")
    if rng not in QUERY_RANGES:
        rng = "1h"
    ctx: dict[str, Any] = {"expr": expr, "range": rng, "ranges": QUERY_RANGES, "chart": None, "legend": [],
                           "error": "", "hidden": 0}
    queries = deps_of(request).queries
    if expr and queries is not None:
        if len(expr) > MAX_EXPR:
            ctx["error"] = f"expression longer than {MAX_EXPR} characters"
        else:
            end = int(time.time() * 1000)
            span = int(parse_duration(rng) * 1000)
            start = end - span
            step = max(span // GRAPH_POINTS, 1000)
            try:
                matrix = await queries.engine.range_query(expr, start, end, step)
            except QueryError as e:
                ctx["error"] = str(e)
            else:
                series = [(_series_label(s.labels), s.points) for s in list(matrix)[:GRAPH_SERIES]]
                ctx["chart"] = line_chart(series, start, end)
                ctx["legend"] = [(PALETTE[i % len(PALETTE)], label, _last(pts)) for i, (label, pts) in
                                 enumerate(series)]
                ctx["hidden"] = max(len(matrix) - GRAPH_SERIES, 0)
    return render(request, "query.html", **ctx)


def _last(points: Any) -> str:
    for _, v in reversed(points):
        if math.isfinite(v):
            return f"{v:.6g}"
    return ""


# -- login, static ----------------------------------------------------------------------------------

_NEXT = re.compile(r"/ui(/[A-Za-z0-9_./-]*)?")


def safe_next(target: str | None) -> str:
    """Return ``target`` when it is a console path (no open redirect), else ``/ui/``."""
    return target if target and _NEXT.fullmatch(target) and "//" not in target else "/ui/"


async def login_page(request: Request) -> Response:
    """``GET /ui/login``: the login form (username and password, or an API token)."""
    return render(request, "login.html", next=safe_next(request.query_params.get("next")), error="")


async def static(request: Request) -> Response:
    """``GET /ui/static/{name}``: the console's CSS, JavaScript and icon (404 for anything else)."""
    name = request.path_params["name"]
    media = _STATIC.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    data = resources.files("monitor.api.console").joinpath("static", name).read_bytes()
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


__all__ = ["GRAPH_POINTS", "QUERY_RANGES", "alert_page", "alerts_page", "current_viewer", "login_page", "overview",
           "probes_page", "query_page", "render", "rules_page", "safe_next", "silence_matchers", "silences_page",
           "static", "viewer_of"]
