"""``GET /api/v1/slos``: every SLO's state now (objective, SLI over the period, budget left, burn rate, tiers firing).

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

from monitor.api.deps import query_deps
from monitor.api.query import query_error, result_json
from monitor.errors import QueryError
from monitor.slo.status import fetch_status_async, status_rows


async def list_slos(request: Request) -> Response:
    """``GET /api/v1/slos``: ``{"status": "success", "data": [row, ...]}``, one row per SLO, sorted by id.

    A row: ``slo`` (id), ``objective`` and ``sli`` (ratios 0..1; ``sli`` ``null`` before any
    traffic), ``period``, ``budget_remaining`` (ratio of the period's budget, negative when
    overspent), ``burn_rate`` (5m; 1 = on budget), ``firing`` (tier names).
    """
    engine = query_deps(request).engine
    t_ms = int(time.time() * 1000)

    async def run(expr: str) -> list[dict[str, Any]]:
        data = await engine.instant_query(expr, t_ms, render=result_json)
        result = data.get("result", []) if isinstance(data, dict) else []
        return result if isinstance(result, list) else []

    try:
        results = await fetch_status_async(run)
    except QueryError as e:
        return query_error(e)
    return JSONResponse({"status": "success", "data": status_rows(results)})


ROUTES = [Route("/api/v1/slos", list_slos)]
