"""What the public status page shows, computed once for ``/status`` and ``/status.json``.

- **Components**: ``status_page.components`` (or one per probe kind: API, Database, Pinecone, LLM
  provider). Current state from the last result of each of its probes — ``operational`` (all
  pass), ``degraded`` (some fail, or an open incident names the component), ``major_outage``
  (all fail), ``unknown`` (no result yet on this replica). 90 daily bars (UTC days, oldest
  first) from ``uptime_daily`` (``monitor.daemon.uptime``): the share of probe runs that passed.
- **Incidents**: open ones and those resolved in the last 7 days, with their *public* updates
  only (internal notes never leave the API), newest first. The title is a *public* one
  (:func:`public_title`), never the incident's own title (the alert's summary, internal text).
- **Maintenance**: windows with client ``notices`` (the ones announced to clients) starting
  within 24 h (the guide's rule: a banner from 24 h before) or in progress.

Nothing here names a person, an alert label or an internal note. Times are RFC 3339 UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from monitor.notify.maintenance_notices import occurrence_end, occurrence_starts

__all__ = ["StatusPageDeps", "status_data", "public_title", "DAYS", "BANNER_AHEAD", "uptime_color"]

DAYS = 90
#: How long before a maintenance occurrence its banner shows (seconds): the guide's 24 h.
BANNER_AHEAD = 86400.0
RECENT_INCIDENTS = 7 * 86400.0


@dataclass(frozen=True)
class StatusPageDeps:
    """What the status page reads.

    :ivar config: returns the running :class:`~monitor.config.model.Config`.
    :ivar probes: returns the running probes (``last`` results by name), or ``None``.
    :ivar store: returns the open state store, or ``None`` before it is open (then no history).
    :ivar clock: Unix-seconds clock.
    """

    config: Callable[[], Any]
    probes: Callable[[], Any]
    store: Callable[[], Any]
    clock: Callable[[], float]


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(float(t), timezone.utc).isoformat()


def uptime_color(uptime: float | None) -> str:
    """Return a bar's colour for a day's uptime (a fraction), grey without data."""
    if uptime is None:
        return "#c8ccd2"
    if uptime >= 0.999:
        return "#2e9e5b"
    if uptime >= 0.99:
        return "#9bc53d"
    if uptime >= 0.95:
        return "#f0a202"
    return "#d64545"


def _current(probe_names: list[str], last: Mapping[str, Any]) -> str:
    results = [last[p] for p in probe_names if p in last]
    if not results:
        return "unknown"
    failing = sum(1 for r in results if not r.success)
    return "operational" if failing == 0 else "major_outage" if failing == len(results) else "degraded"


def public_title(components: list[str], updates: list[dict[str, Any]], outage: bool) -> str:
    """Return an incident's public title: the ``title`` of its latest public update that set one
    (``POST /api/v1/incidents/{id}/updates`` with ``title``), else its components and
    ``degraded`` (``outage`` when ``outage``: open, and every named component is in ``major_outage``),
    e.g. ``"Database outage"``; ``"Service degraded"`` when it names no component.

    :param updates: the public update rows, oldest first (``detail`` a dict or ``None``).
    """
    for u in reversed(updates):
        title = (u.get("detail") or {}).get("title")
        if isinstance(title, str) and title.strip():
            return title.strip()
    return f"{', '.join(components) or 'Service'} {'outage' if outage else 'degraded'}"


async def status_data(deps: StatusPageDeps) -> dict[str, Any]:
    """Return the page's data (the ``/status.json`` document)."""
    config, now = deps.config(), deps.clock()
    store = deps.store()
    today = datetime.fromtimestamp(now, timezone.utc).date()
    days = [(today - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    incidents: list[dict[str, Any]] = []
    if store is not None:
        for r in await store.list_uptime(days[0]):
            counts[(r["component"], r["day"])] = (r["checks"], r["ok"])
        rows = await store.list_incidents(opened_after=now - 90 * 86400, limit=200)
        for r in rows:
            if r["status"] != "open" and (r["resolved_at"] or 0) < now - RECENT_INCIDENTS:
                continue
            updates = await store.list_incident_events(int(r["id"]), public_only=True)
            incidents.append({
                "id": int(r["id"]), "title": "", "status": r["public_status"], "_updates": updates,
                "open": r["status"] == "open", "components": r["components"],
                "started_at": _iso(r["opened_at"]), "resolved_at": _iso(r["resolved_at"]),
                "updates": [{"at": _iso(u["at"]), "status": (u["detail"] or {}).get("status", ""), "text": u["text"]}
                            for u in reversed(updates)]})
    probes = deps.probes()
    last: Mapping[str, Any] = getattr(probes, "last", {}) or {}
    affected = {c for i in incidents if i["open"] for c in i["components"]}
    components = []
    for name, probe_names in config.status_page.resolved({p.name: p.kind for p in config.probes}):
        bars = []
        total_checks = total_ok = 0
        for d in days:
            checks, ok = counts.get((name, d), (0, 0))
            total_checks += checks
            total_ok += ok
            bars.append({"day": d, "checks": checks, "uptime": ok / checks if checks else None})
        state = _current(probe_names, last)
        if state == "operational" and (name in affected or name.lower() in {a.lower() for a in affected}):
            state = "degraded"
        components.append({"name": name, "status": state, "days": bars,
                           "uptime": total_ok / total_checks if total_checks else None})
    states = {c["name"].lower(): c["status"] for c in components}
    for i in incidents:
        outage = i["open"] and bool(i["components"]) and \
            all(states.get(c.lower()) == "major_outage" for c in i["components"])
        i["title"] = public_title(list(i["components"]), i.pop("_updates"), outage)
    return {"title": config.status_page.title, "updated_at": _iso(now), "components": components,
            "incidents": incidents, "maintenance": _maintenance(config, now)}


def _maintenance(config: Any, now: float) -> list[dict[str, Any]]:
    alerting = config.alerting
    periods = {ti.name: list(ti.time_intervals) for ti in alerting.time_intervals}
    out = []
    for w in alerting.maintenance_windows:
        if w.notices is None:
            continue  # not announced to clients: not public either
        message = w.notices.message or w.comment or ""
        # in progress: an occurrence that started within the last week and has not ended
        for start in occurrence_starts(periods, w.time_intervals, now - 7 * 86400, 7 * 86400 + BANNER_AHEAD):
            end = occurrence_end(periods, w.time_intervals, start)
            if end <= now:
                continue
            out.append({"name": w.name, "message": message, "starts_at": _iso(start), "ends_at": _iso(end),
                        "in_progress": start <= now})
            break
    return out
