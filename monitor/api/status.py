"""Prometheus's status API and helpers Grafana calls: ``/api/v1/status/buildinfo``,
``/api/v1/status/runtimeinfo``, ``/api/v1/status/config``, ``/api/v1/status/flags``,
``/api/v1/format_query`` and ``/api/v1/targets``.

Shapes follow Prometheus ``web/api/v1/api.go`` (``serveBuildInfo``, ``serveRuntimeInfo``,
``serveConfig``, ``serveFlags``, ``formatQuery``, ``targets``): every answer is the success
envelope ``{"status": "success", "data": ...}``; a bad query is ``bad_data`` (400). What is
Go-specific in Prometheus (``goVersion``, ``GOMAXPROCS``, ``goroutineCount``) is answered with
the Python equivalents (interpreter version, CPU count, thread count). ``/status/config`` serves
the running configuration as YAML with every secret masked (``**********``), never in clear.
"""

from __future__ import annotations

import platform
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import __version__
from monitor.api.catalog import success
from monitor.api.deps import query_deps
from monitor.api.query import error
from monitor.errors import QueryError
from monitor.promql.bounds import restore_placeholders
from monitor.promql.nodes import parse_expr

__all__ = ["ROUTES", "build_info"]


def build_info() -> dict[str, str]:
    """Return the ``buildinfo`` data: ``version``, ``revision``, ``branch``, ``buildUser``, ``buildDate``,
    ``goVersion`` (here the Python version, ``python3.12.3``)."""
    return {"version": __version__, "revision": "", "branch": "", "buildUser": "", "buildDate": "",
            "goVersion": f"python{platform.python_version()}"}


async def buildinfo(request: Request) -> Response:
    """``GET /api/v1/status/buildinfo``."""
    return success(build_info())


def _status(request: Request) -> Any:
    status = query_deps(request).status
    assert status is not None, "status routes mounted without StatusDeps"
    return status


async def runtimeinfo(request: Request) -> Response:
    """``GET /api/v1/status/runtimeinfo``: ``startTime``, ``CWD``, ``reloadConfigSuccess``,
    ``lastConfigTime``, ``corruptionCount``, ``goroutineCount``, ``GOMAXPROCS``, ``GOGC``,
    ``GODEBUG``, ``storageRetention``."""
    return success(_status(request).runtime())


async def config(request: Request) -> Response:
    """``GET /api/v1/status/config``: ``{"yaml": "<running configuration, secrets masked>"}``."""
    return success({"yaml": _status(request).config_yaml()})


async def flags(request: Request) -> Response:
    """``GET /api/v1/status/flags``: ``{flag: value}`` of the command line (all strings)."""
    return success(_status(request).flags())


async def format_query(request: Request) -> Response:
    """``GET|POST /api/v1/format_query``: ``query`` -> the expression pretty-printed as
    Prometheus's ``parser.Prettify`` does (promql-parser's ``prettify``)."""
    params = dict(request.query_params)
    if request.method == "POST":
        await request.body()  # read (bounded: 413 past the limit) whatever its content type
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    query = params.get("query")
    if not query:
        return error("bad_data", 'invalid parameter "query": missing query', 400)
    try:
        expr = parse_expr(query)
    except QueryError as e:
        return error("bad_data", f'invalid parameter "query": {e}', 400)
    return success(restore_placeholders(expr.prettify()))


async def targets(request: Request) -> Response:
    """``GET /api/v1/targets``: ``state`` (``active``, ``dropped``, ``any``; default any), ``scrapePool``
    -> ``{"activeTargets": [...], "droppedTargets": [], "droppedTargetCounts": {}}``; each active
    target has ``discoveredLabels``, ``labels``, ``scrapePool``, ``scrapeUrl``, ``globalUrl``,
    ``lastError``, ``lastScrape``, ``lastScrapeDuration``, ``health`` (``up``/``down``/``unknown``),
    ``scrapeInterval``, ``scrapeTimeout``."""
    state = request.query_params.get("state", "any")
    if state not in ("active", "dropped", "any", ""):
        state = "any"  # Prometheus treats an unknown state as any
    pool = request.query_params.get("scrapePool")
    active = [t for t in _status(request).targets() if not pool or t["scrapePool"] == pool]
    data: dict[str, Any] = {}
    if state != "dropped":
        data["activeTargets"] = active
    if state != "active":
        data["droppedTargets"] = []
        data["droppedTargetCounts"] = {t["scrapePool"]: 0 for t in active}
    return success(data)


ROUTES = [
    Route("/api/v1/status/buildinfo", buildinfo, methods=["GET"]),
    Route("/api/v1/status/runtimeinfo", runtimeinfo, methods=["GET"]),
    Route("/api/v1/status/config", config, methods=["GET"]),
    Route("/api/v1/status/flags", flags, methods=["GET"]),
    Route("/api/v1/format_query", format_query, methods=["GET", "POST"]),
    Route("/api/v1/targets", targets, methods=["GET"]),
]
