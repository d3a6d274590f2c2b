"""What the web console reads beside probes, alerts and SLOs (:class:`~monitor.api.deps.ConsoleDeps`): who
is on call now and the next maintenance window, computed from the running configuration, and the console
users kept in the state store.
"""

from __future__ import annotations

from typing import Any

from monitor.alerting.maintenance import TimeIntervals
from monitor.escalation.schedule import OnCallLookup, who_is_on_call
from monitor.notify.maintenance_notices import occurrence_at, occurrence_end, occurrence_starts
from monitor.store.users import read_users

#: How far ahead the next maintenance window is looked for (seconds): 35 days.
MAINTENANCE_HORIZON = 35 * 86400.0

_cache: dict[str, tuple[Any, int, Any]] = {}


def oncall_now(config: Any, now: float) -> list[dict[str, Any]]:
    """Return ``[{"schedule", "person"}]``: who each configured schedule has on call at ``now``
    (``person`` ``None`` when nobody), in schedule-name order."""
    lookup = OnCallLookup.from_config(config.alerting)
    return [{"schedule": name, "person": who_is_on_call(s, now)} for name, s in sorted(lookup.schedules.items())]


def next_maintenance(config: Any, now: float) -> dict[str, Any] | None:
    """Return the maintenance window in effect at ``now`` or starting next within
    :data:`MAINTENANCE_HORIZON`: ``{"name", "start", "end"}`` (Unix seconds; a window in effect has
    ``start <= now``), or ``None``. Computed once per configuration and minute."""
    cached = _cache.get("maintenance")
    minute = int(now // 60)
    if cached is not None and cached[0] is config and cached[1] == minute:
        found: dict[str, Any] | None = cached[2]
        return found
    alerting = config.alerting
    periods = {ti.name: list(ti.time_intervals) for ti in alerting.time_intervals}
    intervals = TimeIntervals(periods)
    best: dict[str, Any] | None = None
    for w in alerting.maintenance_windows:
        names = list(w.time_intervals)
        if intervals.active(names, now):
            # in effect: its real start and end, as /status.json has them (a window open for over a
            # week, whose start is not looked for, shows from now)
            start, end = occurrence_at(periods, names, now) or (now, occurrence_end(periods, names, now))
            cand = {"name": w.name, "start": start, "end": end}
        else:
            starts = occurrence_starts(periods, names, now, MAINTENANCE_HORIZON)
            if not starts:
                continue
            cand = {"name": w.name, "start": starts[0], "end": occurrence_end(periods, names, starts[0])}
        if best is None or cand["start"] < best["start"]:
            best = cand
    _cache["maintenance"] = (config, minute, best)
    return best


async def stored_users(store: Any) -> dict[str, dict[str, Any]]:
    """Return the console users kept in ``store`` (:func:`monitor.store.users.read_users`); none while
    no store is open."""
    return {} if store is None else await read_users(store)


__all__ = ["MAINTENANCE_HORIZON", "next_maintenance", "oncall_now", "stored_users"]
