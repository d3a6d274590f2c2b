"""``GET /api/v1/probes``: the last result of every probe, with its error and recent history."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from probes.base import ProbeResult

if TYPE_CHECKING:
    from monitor.daemon.wiring import Daemon


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


def routes(daemon: "Daemon") -> list[Route]:
    """Return the probe routes bound to ``daemon``."""

    async def list_probes(request: Request) -> JSONResponse:
        runner = daemon.probes
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

    return [Route("/api/v1/probes", list_probes)]
