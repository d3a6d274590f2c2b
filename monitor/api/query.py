"""Prometheus's query API: ``GET|POST /api/v1/query`` and ``GET|POST /api/v1/query_range``.

Response envelopes, value encoding (``[<unix seconds>, "<value>"]``) and error types
(``bad_data`` 400, ``execution`` 422 for too many samples, ``timeout`` 503, ``unavailable`` 503
when the query pool is full) follow Prometheus ``web/api/v1/api.go`` (``returnAPIError``).

Queries never run on the event loop: the engine handed in (``QueryDeps.engine``,
:class:`monitor.promql.adhoc.AdHocQueries`) evaluates them in a bounded worker pool, under the
engine's limits (``rules.query_max_samples``, ``rules.query_timeout``; see
:mod:`monitor.promql.limits`) and the text bounds of :mod:`monitor.promql.bounds`, so a heavy or
hostile query cannot stall probes, rules or delivery.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from monitor.api.deps import query_deps
from monitor.errors import QueryError
from monitor.promql.jsonfmt import STREAM_SAMPLES, format_sample_value, result_chunks, result_json
from monitor.promql.limits import QueryOverloadError, QueryTimeoutError, TooManySamplesError
from model.duration import parse_duration
from model.timestamps import MAX_TIME, parse_api_time

__all__ = ["STREAM_SAMPLES", "MAX_POINTS", "ROUTES", "error", "format_sample_value", "parse_step", "query_error",
           "result_chunks", "result_json"]

#: Most points a range query may return per series (Prometheus: 11,000).
MAX_POINTS = 11_000


def parse_step(text: str | None) -> float:
    """Parse a range-query step: seconds (``15``) or a duration (``15s``).

    :raises ValueError: missing, unparsable or not positive.
    """
    if not text:
        raise ValueError("missing step")
    try:
        step = float(text)
    except ValueError:
        step = parse_duration(text)
    if step != step or step in (math.inf, -math.inf):
        raise ValueError(f'cannot parse "{text}" to a valid duration')
    if step > MAX_TIME:
        raise ValueError(f'cannot parse "{text}" to a valid duration. It overflows int64')
    if step <= 0:
        raise ValueError("zero or negative query resolution step widths are not accepted. "
                         "Try a positive integer")
    return step


async def _send(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """Yield the encoded pieces, dropping each once sent."""
    chunks.reverse()
    while chunks:
        yield chunks.pop()


def error(kind: str, message: str, status: int) -> JSONResponse:
    """Return a Prometheus API error envelope."""
    return JSONResponse({"status": "error", "errorType": kind, "error": message}, status_code=status)


def query_error(e: QueryError) -> JSONResponse:
    """Answer a failed query as Prometheus's ``returnAPIError`` does."""
    if isinstance(e, TooManySamplesError):
        return error("execution", str(e), 422)
    if isinstance(e, QueryTimeoutError):
        return error("timeout", str(e), 503)
    if isinstance(e, QueryOverloadError):
        return error("unavailable", str(e), 503)
    return error("bad_data", str(e), 400)


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    return params


async def query(request: Request) -> Response:
    """``GET|POST /api/v1/query``: ``query``, ``time`` (RFC 3339 or Unix seconds; default now)."""
    p = await _params(request)
    if not p.get("query"):
        return error("bad_data", "invalid parameter \"query\": missing query", 400)
    try:
        t = parse_api_time(p.get("time"), time.time())
    except ValueError as e:
        return error("bad_data", f'invalid parameter "time": {e}', 400)
    try:
        chunks = await query_deps(request).engine.instant_query(p["query"], int(t * 1000), render=result_chunks)
    except QueryError as e:
        return query_error(e)
    return StreamingResponse(_send(chunks), media_type="application/json")


async def query_range(request: Request) -> Response:
    """``GET|POST /api/v1/query_range``: ``query``, ``start``, ``end`` (RFC 3339 or Unix seconds),
    ``step`` (seconds or a duration); at most :data:`MAX_POINTS` points per series."""
    p = await _params(request)
    if not p.get("query"):
        return error("bad_data", "invalid parameter \"query\": missing query", 400)
    try:
        name = "start"
        start = parse_api_time(p.get("start") or None, math.nan)
        name = "end"
        end = parse_api_time(p.get("end") or None, math.nan)
        name = "step"
        step = parse_step(p.get("step"))
    except ValueError as e:
        return error("bad_data", f'invalid parameter "{name}": {e}', 400)
    if math.isnan(start) or math.isnan(end):
        return error("bad_data", "start and end are required", 400)
    if end < start:
        return error("bad_data", "end timestamp must not be before start time", 400)
    if (end - start) / step > MAX_POINTS:
        return error("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                                 "Try decreasing the query resolution (?step=XX)", 400)
    try:
        chunks = await query_deps(request).engine.range_query(p["query"], int(start * 1000), int(end * 1000),
                                                              int(step * 1000), render=result_chunks)
    except QueryError as e:
        return query_error(e)
    return StreamingResponse(_send(chunks), media_type="application/json")


ROUTES = [
    Route("/api/v1/query", query, methods=["GET", "POST"]),
    Route("/api/v1/query_range", query_range, methods=["GET", "POST"]),
]
