"""Daily uptime per status-page component: the ``uptime_daily`` table (migration 22).

A mixin of :class:`~monitor.store.sql.SQLStore` (both backends). One row per component and UTC
day (``YYYY-MM-DD``): ``checks`` (probe runs) and ``ok`` (successful runs). Writers add counts
(:meth:`UptimeQueries.add_uptime` increments, so replicas that run different probes add up);
90 days of a handful of components is a few hundred rows, read in one query.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.store.sql import Conn

Row = dict[str, Any]

__all__ = ["UptimeQueries", "UptimeStore"]


class UptimeStore(Protocol):
    """The uptime calls (the daemon's recorder and the status page)."""

    async def add_uptime(self, counts: list[tuple[str, str, int, int]], now: float) -> None:
        """Add ``[(component, day, checks, ok)]`` to the day's counts, in one transaction."""
        ...

    async def list_uptime(self, since_day: str) -> list[Row]:
        """Return ``{"component", "day", "checks", "ok"}`` rows of the days ``>= since_day``, by day."""
        ...


class UptimeQueries:
    """The ``uptime_daily`` queries, mixed into :class:`~monitor.store.sql.SQLStore`."""

    if TYPE_CHECKING:
        def _tx(self) -> AbstractAsyncContextManager[Conn]: ...
        def _stmt(self) -> AbstractAsyncContextManager[Conn]: ...

    async def add_uptime(self, counts: list[tuple[str, str, int, int]], now: float) -> None:
        if not counts:
            return
        async with self._tx() as c:
            await c.executemany(
                "INSERT INTO uptime_daily (component, day, checks, ok, updated_at) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (component, day) DO UPDATE SET checks = uptime_daily.checks + excluded.checks, "
                "ok = uptime_daily.ok + excluded.ok, updated_at = excluded.updated_at",
                [(comp, day, int(checks), int(ok), float(now)) for comp, day, checks, ok in counts])

    async def list_uptime(self, since_day: str) -> list[Row]:
        async with self._stmt() as c:
            rows = await c.fetch("SELECT component, day, checks, ok FROM uptime_daily WHERE day >= $1 "
                                 "ORDER BY day, component", since_day)
        return [{"component": r["component"], "day": r["day"], "checks": int(r["checks"]), "ok": int(r["ok"])}
                for r in rows]
