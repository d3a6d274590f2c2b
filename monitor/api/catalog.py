"""Prometheus's metadata API: ``/api/v1/labels``, ``/api/v1/label/{name}/values``,
``/api/v1/series``, ``/api/v1/metadata``, ``/api/v1/targets/metadata`` and ``/api/v1/query_exemplars``
(always empty).

Shapes and errors follow Prometheus ``web/api/v1/api.go`` (``labelNames``, ``labelValues``,
``series``, ``metricMetadata``): ``match[]`` is repeatable and each is a series selector
(``up{job="x"}``; a selector matching only the empty string is refused, as Prometheus's
"match[] must contain at least one non-empty matcher"); ``start`` / ``end`` are RFC 3339 or Unix
seconds (default: all the store holds); ``limit`` caps the answer and adds the warning
``results truncated due to limit``. Every error is ``{"status": "error", "errorType":
"bad_data", "error": ...}`` with 400. GET and POST (form) both answer, as Grafana posts forms.

The series index (``QueryDeps.catalog``, the sample store) is single-threaded and these handlers
run on the event loop: each call is a posting-list walk, bounded by ``tsdb.max_series``; a time
range copies the matching series' samples in range (:meth:`SampleStore.select`).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.deps import query_deps
from monitor.api.query import error
from monitor.errors import QueryError
from monitor.promql.nodes import VectorSel, compile_expr, parse_expr
from model.labels import Labels
from model.matchers import Matcher
from model.timestamps import parse_api_time

__all__ = ["ROUTES", "parse_match", "success"]

TRUNCATED = "results truncated due to limit"


def success(data: Any, warnings: list[str] | None = None) -> JSONResponse:
    """Return Prometheus's success envelope (``warnings`` only when there are some)."""
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body)


class _BadData(Exception):
    pass


def parse_match(selector: str) -> list[Matcher]:
    """Parse one ``match[]`` series selector into matchers.

    :raises ValueError: not a selector (``parse error: ...``), or every matcher matches ``""``.
    """
    try:
        node = compile_expr(parse_expr(selector))
    except QueryError as e:
        raise ValueError(str(e)) from None
    if not isinstance(node, VectorSel) or node.or_matchers:
        raise ValueError(f"invalid parameter \"match[]\": {selector!r} is not a series selector")
    if all(m.matches("") for m in node.matchers):
        raise ValueError("match[] must contain at least one non-empty matcher")
    return list(node.matchers)


async def _params(request: Request) -> tuple[dict[str, str], list[str]]:
    """Return the single-valued parameters and the ``match[]`` list (query string and form)."""
    params = dict(request.query_params)
    matches = request.query_params.getlist("match[]")
    if request.method == "POST":
        await request.body()  # read (bounded: 413 past the limit) whatever its content type
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
        matches += [str(v) for v in form.getlist("match[]")]
    return params, matches


def _range(p: dict[str, str]) -> tuple[int, int] | None:
    """Return ``(mint, maxt)`` in ms, or ``None`` for all time."""
    try:
        name = "start"
        start = parse_api_time(p.get("start") or None, -math.inf)
        name = "end"
        end = parse_api_time(p.get("end") or None, math.inf)
    except ValueError as e:
        raise _BadData(f'invalid parameter "{name}": {e}') from None
    if end < start:
        raise _BadData("end timestamp must not be before start time")
    if start == -math.inf and end == math.inf:
        return None
    lo = -(2**62) if start == -math.inf else int(start * 1000)
    hi = 2**62 if end == math.inf else int(end * 1000)
    return lo, hi


def _limit(p: dict[str, str]) -> int:
    text = p.get("limit") or "0"
    try:
        n = int(text)
    except ValueError:
        raise _BadData(f'invalid parameter "limit": cannot parse "{text}" to a valid limit') from None
    if n < 0:
        raise _BadData('invalid parameter "limit": limit must be non-negative')
    return n


def _matchers(matches: list[str]) -> list[list[Matcher]]:
    out = []
    for m in matches:
        try:
            out.append(parse_match(m))
        except ValueError as e:
            raise _BadData(str(e)) from None
    return out


def _series(request: Request, selectors: list[list[Matcher]], window: tuple[int, int] | None) -> list[Labels]:
    """Every series matching any selector (all series without one), in ``window``, sorted."""
    catalog = query_deps(request).catalog
    assert catalog is not None
    found: set[Labels] = set()
    for matchers in selectors or [[]]:
        if window is None:
            found.update(catalog.series(matchers))
        else:
            found.update(s.labels for s in catalog.select(matchers, window[0], window[1]))
    return sorted(found)


def _truncate(items: list[Any], limit: int) -> tuple[list[Any], list[str]]:
    if limit and len(items) > limit:
        return items[:limit], [TRUNCATED]
    return items, []


async def labels(request: Request) -> Response:
    """``GET|POST /api/v1/labels``: ``match[]``, ``start``, ``end``, ``limit`` -> sorted label names."""
    try:
        p, matches = await _params(request)
        window, limit, selectors = _range(p), _limit(p), _matchers(matches)
    except _BadData as e:
        return error("bad_data", str(e), 400)
    catalog = query_deps(request).catalog
    assert catalog is not None
    if window is None and not selectors:
        names = catalog.label_names()
    else:
        names = sorted({k for lbl in _series(request, selectors, window) for k, _ in lbl})
    data, warnings = _truncate(names, limit)
    return success(data, warnings)


async def label_values(request: Request) -> Response:
    """``GET /api/v1/label/{name}/values``: ``match[]``, ``start``, ``end``, ``limit`` -> sorted values."""
    name = request.path_params["name"]
    if name.startswith("U__"):  # Prometheus 3: UTF-8 names escaped as U__<hex>_ sequences
        name = _unescape(name)
    if not name or not name.isprintable():
        return error("bad_data", f'invalid label name: "{name}"', 400)
    try:
        p, matches = await _params(request)
        window, limit, selectors = _range(p), _limit(p), _matchers(matches)
    except _BadData as e:
        return error("bad_data", str(e), 400)
    catalog = query_deps(request).catalog
    assert catalog is not None
    if window is None and not selectors:
        values = catalog.label_values(name)
    else:
        values = sorted({v for lbl in _series(request, selectors, window) if (v := lbl.get(name))})
    data, warnings = _truncate(values, limit)
    return success(data, warnings)


def _unescape(name: str) -> str:
    """Undo Prometheus's ``U__`` escaping (``U__a_2e_b`` -> ``a.b``; ``__`` is ``_``)."""
    body, out, i = name[3:], [], 0
    while i < len(body):
        if body.startswith("__", i):
            out.append("_")
            i += 2
        elif body[i] == "_":
            j = body.find("_", i + 1)
            if j < 0:
                return name
            try:
                out.append(chr(int(body[i + 1:j], 16)))
            except (ValueError, OverflowError):
                return name
            i = j + 1
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


async def series(request: Request) -> Response:
    """``GET|POST /api/v1/series``: ``match[]`` (required), ``start``, ``end``, ``limit`` -> label sets."""
    try:
        p, matches = await _params(request)
        if not matches:
            raise _BadData("no match[] parameter provided")
        window, limit, selectors = _range(p), _limit(p), _matchers(matches)
    except _BadData as e:
        return error("bad_data", str(e), 400)
    data, warnings = _truncate([dict(lbl) for lbl in _series(request, selectors, window)], limit)
    return success(data, warnings)


async def metadata(request: Request) -> Response:
    """``GET /api/v1/metadata``: ``metric``, ``limit``, ``limit_per_metric`` ->
    ``{name: [{"type", "help", "unit"}]}`` of the families the daemon knows: the scrape targets' (each
    one's last good scrape; distinct entries of one name across targets listed once each) and its own."""
    p = dict(request.query_params)
    try:
        limit = _limit(p)
        per_metric = _limit({"limit": p.get("limit_per_metric", "0")})
    except _BadData as e:
        return error("bad_data", str(e), 400)
    families = query_deps(request).metadata()
    wanted = p.get("metric")
    out: dict[str, list[dict[str, str]]] = {}
    for name in sorted(families):
        if wanted and name != wanted:
            continue
        if limit and len(out) >= limit:
            break
        entries = families[name]
        out[name] = entries[:per_metric] if per_metric else entries
    return success(out)


async def targets_metadata(request: Request) -> Response:
    """``GET /api/v1/targets/metadata``: ``match_target`` (a selector over the target labels, e.g.
    ``{job="api"}``; default all), ``metric``, ``limit`` -> ``[{"target": {labels}, "metric", "type",
    "help", "unit"}]`` from each target's last good scrape, as Prometheus's ``targetMetadata``
    (``metric`` is left out of each entry when the ``metric`` parameter names it)."""
    p = dict(request.query_params)
    try:
        limit = _limit(p)
        matchers = _matchers([p["match_target"]])[0] if p.get("match_target") else []
    except _BadData as e:
        return error("bad_data", str(e), 400)
    wanted = p.get("metric")
    out: list[dict[str, Any]] = []
    for target, families in query_deps(request).target_metadata():
        if not all(m.matches(target.get(m.name, "")) for m in matchers):
            continue
        for name in sorted(families):
            if (wanted and name != wanted) or (limit and len(out) >= limit):
                continue
            out.append({"target": target, **({} if wanted else {"metric": name}), **families[name]})
    return success(out)


async def query_exemplars(request: Request) -> Response:
    """``GET|POST /api/v1/query_exemplars``: ``query``, ``start``, ``end`` -> ``[]`` (no exemplars
    are stored); the query is still parsed, so a bad one is ``bad_data``."""
    p, _ = await _params(request)
    if not p.get("query"):
        return error("bad_data", 'invalid parameter "query": missing query', 400)
    try:
        _range(p)
        parse_expr(p["query"])
    except _BadData as e:
        return error("bad_data", str(e), 400)
    except QueryError as e:
        return error("bad_data", str(e), 400)
    return success([])


ROUTES = [
    Route("/api/v1/labels", labels, methods=["GET", "POST"]),
    Route("/api/v1/label/{name}/values", label_values, methods=["GET"]),
    Route("/api/v1/series", series, methods=["GET", "POST"]),
    Route("/api/v1/metadata", metadata, methods=["GET"]),
    Route("/api/v1/targets/metadata", targets_metadata, methods=["GET"]),
    Route("/api/v1/query_exemplars", query_exemplars, methods=["GET", "POST"]),
]
