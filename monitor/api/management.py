"""The process's own endpoints: health, metrics exposition and Prometheus's management API.

* ``GET /health`` — the health document (``status``, ``timestamp``, ``version``, ``checks``):
  200 when ``status`` is ``healthy``, 503 when ``degraded`` — except when the only degraded
  check is ``config`` (a rejected reload; the last good config keeps running): 200, ``status``
  ``degraded``, the cause in ``checks.config``.
* ``GET /metrics`` — every metric of the process in the Prometheus text format.
* ``GET /-/healthy``, ``GET /-/ready`` — ``OK`` while the server answers (Prometheus's probes).
* ``POST|PUT /-/reload`` — a token with the ``admin`` scope (:mod:`monitor.api.access`); reload
  the configuration file all-or-nothing: 200
  ``{"status": "success"}`` (plus ``warnings`` naming settings only a restart applies), or 400
  ``{"status": "error", "errorType": "bad_data", "error": ..., "errors": [...]}`` with the
  running configuration and rules kept.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.deps import process_deps
from monitor.metrics import render_text

#: Checks whose degradation alone answers 200 (``monitor.daemon.health.NOT_FAILING``; the API
#: may not import the daemon): a rejected reload leaves the last good config running.
_NOT_FAILING = frozenset({"config"})


async def health(request: Request) -> JSONResponse:
    """``GET /health``."""
    body = process_deps(request).health()
    checks = body.get("checks") or {}
    failing = [name for name, value in checks.items()
               if isinstance(value, str) and value != "healthy" and name not in _NOT_FAILING]
    ok = body.get("status") == "healthy" or (checks and not failing)
    return JSONResponse(body, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    """``GET /metrics``."""
    exposition = process_deps(request).metrics
    exposition.refresh()
    return Response(render_text(exposition.registry), media_type=CONTENT_TYPE_LATEST)


async def healthy(request: Request) -> Response:
    """``GET /-/healthy`` and ``GET /-/ready``."""
    return Response("OK\n", media_type="text/plain")


async def reload(request: Request) -> JSONResponse:
    """``POST|PUT /-/reload``."""
    result = process_deps(request).reload()
    if result.errors:
        return JSONResponse({"status": "error", "errorType": "bad_data",
                             "error": "reload failed; previous configuration and rules kept",
                             "errors": result.errors}, status_code=400)
    # Settings only a restart applies (server.host/port, state) are named here (and logged).
    return JSONResponse({"status": "success", "warnings": result.warnings} if result.warnings
                        else {"status": "success"})


#: Routes that need nothing from the process.
PROBE_ROUTES = [
    Route("/-/healthy", healthy),
    Route("/-/ready", healthy),
]

#: Routes reading :class:`~monitor.api.deps.ProcessDeps`.
ROUTES = [
    Route("/health", health),
    Route("/metrics", metrics),
    Route("/-/reload", reload, methods=["POST", "PUT"]),
]
