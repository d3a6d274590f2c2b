"""Read-only views of the alerts the pipeline holds (implements :class:`monitor.alerting.ports.AlertViews`).

- :meth:`AlertViews.alerts_api`: Alertmanager v2 ``gettableAlert`` (``api/v2/api.go``
  ``getAlertsHandler``) — muted alerts included with their markers — plus ``receivers`` (route
  order) and our ``escalation`` status;
- :meth:`AlertViews.timeline`: the alert's timeline entries (escalation steps, acknowledgements
  and resolves with who and their comment, pauses, deliveries), oldest first, with RFC 3339 times;
- :func:`format_timeline`: those entries as the text ``codebook-monitor timeline`` prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from model.timestamps import rfc3339
from monitor.alerting.pipeline import AlertPipeline
from monitor.errors import NotFoundError

__all__ = ["AlertViews", "EscalationStatus", "format_timeline"]


class EscalationStatus(Protocol):
    """The escalation status of an alert (``monitor.escalation.runner.EscalationRunner.status``)."""

    def status(self, fingerprint: str) -> dict[str, Any]:
        """Return the walk's status as the API shows it."""
        ...


class AlertViews:
    """Views over the pipeline, the escalation walks and the store.

    :param store: the state store (``list_timeline``, ``get_alert``).
    :param pipeline: the running pipeline (held alerts with markers, receivers).
    :param escalations: the escalation status of each alert.
    :param clock: Unix-seconds clock.
    """

    def __init__(self, store: Any, pipeline: AlertPipeline, escalations: EscalationStatus, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pipeline = pipeline
        self.escalations = escalations
        self.clock = clock

    def alerts_api(self, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts in the v2 ``gettableAlert`` shape (muted ones included, with markers), plus
        ``receivers`` and our ``escalation`` status. Resolved alerts are left out, as Alertmanager's
        ``GET /api/v2/alerts`` does (their timeline stays readable)."""
        now = self.clock() if now is None else now
        out = []
        for a in self.pipeline.marked(now):
            if a.resolved(now):
                continue
            d = a.to_api(now)
            d["receivers"] = [{"name": r} for r in self.pipeline.receivers_for(a.labels)]
            d["escalation"] = self.escalations.status(a.fingerprint)
            out.append(d)
        return out

    async def timeline(self, fingerprint: str) -> list[dict[str, Any]]:
        """Return the alert's timeline entries, oldest first: ``[{"at", "time", "event", "detail"}]``.

        :raises NotFoundError: unknown alert.
        """
        rows = await self.store.list_timeline(fingerprint)
        if not rows and await self.store.get_alert(fingerprint) is None:
            raise NotFoundError("alert", fingerprint)
        return [{"at": r["at"], "time": rfc3339(r["at"]), "event": r["event"], "detail": r.get("detail")}
                for r in rows]


def _readable(key: str, value: Any) -> Any:
    """Return an instant (a ``*_at`` / ``*_deadline`` field, Unix seconds) as RFC 3339, others as given."""
    if (key.endswith("_at") or key.endswith("deadline")) and isinstance(value, (int, float)) \
            and not isinstance(value, bool) and 0 < value < 253402300800:
        return rfc3339(float(value))
    return value


def format_timeline(rows: list[dict[str, Any]]) -> str:
    """Format :meth:`AlertViews.timeline` entries, one line each: time, event, level, person, then
    the comment or detail (acknowledgements and resolves show the person's ``--comment``) and any
    other fields as ``key=value``.

    >>> format_timeline([{"time": "2026-11-30T10:00:20.000Z", "event": "resolved",
    ...                   "detail": {"level": None, "person": "alice", "detail": "restarted the pool"}}])
    '2026-11-30T10:00:20.000Z  resolved          alice  restarted the pool'

    Instants in the detail (``ack_deadline``, ``retry_at``: Unix seconds) print as RFC 3339.
    """
    lines = []
    for r in rows:
        d = r.get("detail")
        d = dict(d) if isinstance(d, dict) else ({"detail": d} if d else {})
        level = d.pop("level", None)
        parts = [r["time"], f"{r['event']:<16}"]
        if level is not None:
            parts.append(f"L{int(level) + 1}")
        if d.get("person"):
            parts.append(str(d.pop("person")))
        d.pop("person", None)
        text = d.pop("detail", "")
        if text:
            parts.append(str(text))
        parts.extend(f"{k}={_readable(k, v)}" for k, v in sorted(d.items()) if v not in (None, ""))
        lines.append("  ".join(parts))
    return "\n".join(lines) if lines else "no timeline entries"
