"""``GET /api/v1/probes``: the last result of every probe, with its error and recent history."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor.api.deps import query_deps
from probes.base import ProbeResult


def result_json(result: ProbeResult) -> dict[str, Any]:
    """Render one probe result as JSON-ready data (times in RFC 3339, durations in seconds)."""
    return {
        "success": result.success,
        "error": result.error,
        "duration_seconds": round(result.duration_seconds, 6),
        "finished_at": datetime.fromtimestamp(result.finished_at, timezone.utc).isoformat(timespec="milliseconds"),
        "details": result.details,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in result.samples],
        "logs": result.logs,
    }


async def list_probes(request: Request) -> JSONResponse:
    """``GET /api/v1/probes``: every configured probe with its settings, last result and recent history."""
    runner = query_deps(request).probes()
    data = []
    for name, s in runner.settings.items():
        last = runner.last.get(name)
        data.append({
            "name": name, "kind": s.kind, "target": s.target(),
            "interval_seconds": s.interval, "timeout_seconds": s.timeout,
            "last": result_json(last) if last else None,
            "history": [{"success": r.success, "error": r.error, "duration_seconds": round(r.duration_seconds, 6)}
                        for r in runner.history.get(name, ())],
        })
    return JSONResponse({"status": "success", "data": data})


ROUTES = [Route("/api/v1/probes", list_probes)]
