"""Prometheus's rule API: ``GET /api/v1/alerts`` and ``GET /api/v1/rules`` (``?type=alert|record``).

Envelopes and error types as Prometheus ``web/api/v1/api.go`` (see :mod:`monitor.api.query`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor.api.deps import query_deps
from monitor.api.query import error


async def alerts(request: Request) -> JSONResponse:
    """``GET /api/v1/alerts``: pending and firing rule alerts."""
    return JSONResponse({"status": "success", "data": query_deps(request).rules.alerts_api()})


async def rules(request: Request) -> JSONResponse:
    """``GET /api/v1/rules``: every rule group; ``type=alert`` or ``type=record`` keeps one kind."""
    kind = request.query_params.get("type", "").lower()
    if kind not in ("", "alert", "record"):
        return error("bad_data", f'invalid parameter "type": invalid rule type "{kind}" '
                                 '(not supported value; use "alert" or "record")', 400)
    data = query_deps(request).rules.to_api()
    if kind:
        want = "alerting" if kind == "alert" else "recording"
        for g in data["groups"]:
            g["rules"] = [r for r in g["rules"] if r["type"] == want]
    return JSONResponse({"status": "success", "data": data})


ROUTES = [
    Route("/api/v1/alerts", alerts),
    Route("/api/v1/rules", rules),
]
