"""On-call overrides made through the API: the ``oncall_overrides`` table (migration 20).

A mixin of :class:`~monitor.store.sql.SQLStore` (both backends). The configured overrides
(``alerting.schedules.<name>.overrides``) stay in the config; these are the ones people create
and remove at runtime, merged after the configured ones by
:meth:`monitor.escalation.schedule.Schedule.with_overrides` (so a stored override wins where
they overlap, and among stored ones the newer). Removing one keeps its row (``removed_at``,
``removed_by``): the history stays readable; the audit log records both actions (the API writes
it in the same transaction).

Times are unix seconds; rows are dicts with the column names as keys.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from monitor.errors import NotFoundError

if TYPE_CHECKING:
    from monitor.store.sql import Conn

Row = dict[str, Any]

__all__ = ["OverrideQueries", "OverrideStore"]


class OverrideStore(Protocol):
    """The override calls (what the API and the daemon's refresh need)."""

    async def create_override(self, schedule: str, person: str, starts_at: float, ends_at: float,
                              created_by: str, now: float, *, comment: str = "") -> Row:
        """Store an override and return its row (with its ``id``).

        :raises ValueError: ``ends_at <= starts_at``.
        """
        ...

    async def list_overrides(self, schedule: str | None = None, *, ending_after: float | None = None) -> list[Row]:
        """Return the overrides not removed (of one schedule, or all), oldest first (``id`` order).

        :param ending_after: only those with ``ends_at > ending_after`` (the current and future ones).
        """
        ...

    async def remove_override(self, override_id: int, removed_by: str, now: float) -> Row:
        """Mark an override removed and return its row as it was.

        :raises NotFoundError: no such override, or already removed.
        """
        ...

    def transaction(self) -> Any:
        """Return the store's batch context (see :meth:`monitor.store.base.Store.transaction`)."""
        ...

    async def audit(self, actor: str, action: str, at: float, *, target: str = "", source: str = "",
                    detail: Any = None) -> int:
        """Append an audit-log row (see :meth:`monitor.store.base.Store.audit`)."""
        ...


_COLUMNS = "id, schedule, person, starts_at, ends_at, created_by, created_at, comment"


class OverrideQueries:
    """The ``oncall_overrides`` queries, mixed into :class:`~monitor.store.sql.SQLStore`."""

    if TYPE_CHECKING:
        def _tx(self) -> AbstractAsyncContextManager[Conn]: ...
        def _stmt(self) -> AbstractAsyncContextManager[Conn]: ...

    async def create_override(self, schedule: str, person: str, starts_at: float, ends_at: float,
                              created_by: str, now: float, *, comment: str = "") -> Row:
        if float(ends_at) <= float(starts_at):
            raise ValueError("an override must end after it starts")
        async with self._stmt() as c:
            row = await c.fetchrow(
                "INSERT INTO oncall_overrides (schedule, person, starts_at, ends_at, created_by, created_at, comment) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
                schedule, person, float(starts_at), float(ends_at), created_by, float(now), comment)
        assert row is not None
        return dict(row)

    async def list_overrides(self, schedule: str | None = None, *, ending_after: float | None = None) -> list[Row]:
        after = -1.0 if ending_after is None else float(ending_after)
        async with self._stmt() as c:
            if schedule is None:
                rows = await c.fetch(f"SELECT {_COLUMNS} FROM oncall_overrides WHERE removed_at IS NULL "
                                     "AND ends_at > $1 ORDER BY id", after)
            else:
                rows = await c.fetch(f"SELECT {_COLUMNS} FROM oncall_overrides WHERE removed_at IS NULL "
                                     "AND schedule = $1 AND ends_at > $2 ORDER BY id", schedule, after)
        return [dict(r) for r in rows]

    async def remove_override(self, override_id: int, removed_by: str, now: float) -> Row:
        async with self._stmt() as c:
            row = await c.fetchrow(f"UPDATE oncall_overrides SET removed_at = $2, removed_by = $3 "
                                   f"WHERE id = $1 AND removed_at IS NULL RETURNING {_COLUMNS}",
                                   int(override_id), float(now), removed_by)
        if row is None:
            raise NotFoundError("override", str(override_id))
        return dict(row)
