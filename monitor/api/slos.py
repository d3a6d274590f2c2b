"""``GET /api/v1/slos``: every SLO's state now (objective, SLI over the period, budget left, burn rate, tiers
firing); ``GET /api/v1/slos/{name}/report``: one SLO's calendar-month compliance.

The rows of ``codebook-monitor slo status`` (:func:`monitor.slo.status.status_rows`), built from
the recorded ``slo:*`` series and the firing ``ALERTS`` through the ad-hoc query engine (off the
event loop, under its limits).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.deps import QueryEngine, query_deps
from monitor.api.query import error, query_error, result_json
from monitor.errors import QueryError
from monitor.slo.report import month_window, report_queries, report_rows
from monitor.slo.status import fetch_status_async, status_rows


async def slo_status(engine: QueryEngine) -> list[dict[str, Any]]:
    """Return every SLO's status row now (:func:`monitor.slo.status.status_rows`), queried on ``engine``.

    Shared by ``GET /api/v1/slos`` and the console's overview.

    :raises QueryError: a query failed or hit the engine's limits.
    """
    t_ms = int(time.time() * 1000)

    async def run(expr: str) -> list[dict[str, Any]]:
        data = await engine.instant_query(expr, t_ms, render=result_json)
        result = data.get("result", []) if isinstance(data, dict) else []
        return result if isinstance(result, list) else []

    return status_rows(await fetch_status_async(run))


async def list_slos(request: Request) -> Response:
    """``GET /api/v1/slos``: ``{"status": "success", "data": [row, ...]}``, one row per SLO, sorted by id.

    A row: ``slo`` (id), ``objective`` and ``sli`` (ratios 0..1; ``sli`` ``null`` before any
    traffic), ``period``, ``budget_remaining`` (ratio of the period's budget, negative when
    overspent), ``burn_rate`` (5m; 1 = on budget), ``firing`` (tier names).
    """
    try:
        rows = await slo_status(query_deps(request).engine)
    except QueryError as e:
        return query_error(e)
    return JSONResponse({"status": "success", "data": rows})


async def slo_report(request: Request) -> Response:
    """``GET /api/v1/slos/{name}/report?month=YYYY-MM``: one SLO's compliance over a calendar month
    (default: this month, to date); ``name`` is the SLO id (``service-name``).

    ``{"status": "success", "data": row}`` with the row of :func:`monitor.slo.report.report_rows`;
    400 for a bad month, 404 when the SLO has no samples in the month.
    """
    name = request.path_params["name"]
    try:
        month, start, end, complete = month_window(request.query_params.get("month") or None, time.time())
    except ValueError as e:
        return error("bad_data", f'invalid parameter "month": {e}', 400)
    engine = query_deps(request).engine
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for key, expr in report_queries(start, end).items():
            data = await engine.instant_query(expr, int(end * 1000), render=result_json)
            results[key] = [r for r in data.get("result", []) if r.get("metric", {}).get("sloth_id") == name]
    except QueryError as e:
        return query_error(e)
    rows = report_rows(results, month, complete)
    if not rows:
        return error("not_found", f'no samples of SLO "{name}" in {month}', 404)
    return JSONResponse({"status": "success", "data": rows[0]})


ROUTES = [Route("/api/v1/slos", list_slos), Route("/api/v1/slos/{name}/report", slo_report)]
