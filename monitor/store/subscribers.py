"""Status page subscribers: the ``status_subscribers`` table (migration 23).

A mixin of :class:`~monitor.store.sql.SQLStore` (both backends). A subscriber is ``(kind,
target)`` — ``("email", "ops@acme.example")`` — unique; ``status`` is ``pending`` (until the
confirmation link is used), ``confirmed`` or ``unsubscribed``. ``confirm_sent_at`` is set when
the leader has written the confirmation email to the outbox (so it is written once).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from monitor.errors import NotFoundError

if TYPE_CHECKING:
    from monitor.store.sql import Conn

Row = dict[str, Any]

__all__ = ["SubscriberQueries", "SubscriberStore"]


class SubscriberStore(Protocol):
    """The subscriber calls (the public API and the leader's notices)."""

    async def add_subscriber(self, kind: str, target: str, now: float) -> tuple[Row, bool]:
        """Add a pending subscriber, or return the existing one; ``(row, created)``.

        An unsubscribed one subscribing again becomes pending again (a new confirmation is sent).
        """
        ...

    async def count_subscribers(self) -> int:
        """Return how many subscribers are pending or confirmed."""
        ...

    async def get_subscriber(self, subscriber_id: int) -> Row:
        """Return a subscriber. :raises NotFoundError: no such subscriber."""
        ...

    async def set_subscriber_status(self, subscriber_id: int, status: str, now: float) -> Row:
        """Set ``status`` (``confirmed`` or ``unsubscribed``) with its time; return the row.

        :raises NotFoundError: no such subscriber.
        """
        ...

    async def list_subscribers(self, status: str, *, confirm_unsent: bool = False) -> list[Row]:
        """Return the subscribers with ``status`` (only those whose confirmation was not sent when asked)."""
        ...

    async def mark_confirm_sent(self, subscriber_id: int, now: float) -> None:
        """Record that the confirmation email was written to the outbox."""
        ...


class SubscriberQueries:
    """The ``status_subscribers`` queries, mixed into :class:`~monitor.store.sql.SQLStore`."""

    if TYPE_CHECKING:
        def _tx(self) -> AbstractAsyncContextManager[Conn]: ...
        def _stmt(self) -> AbstractAsyncContextManager[Conn]: ...

    async def add_subscriber(self, kind: str, target: str, now: float) -> tuple[Row, bool]:
        async with self._tx() as c:
            row = await c.fetchrow("SELECT * FROM status_subscribers WHERE kind = $1 AND target = $2", kind, target)
            if row is not None and row["status"] != "unsubscribed":
                return dict(row), False
            if row is not None:
                again = await c.fetchrow("UPDATE status_subscribers SET status = 'pending', created_at = $2, "
                                         "confirm_sent_at = NULL, confirmed_at = NULL, unsubscribed_at = NULL "
                                         "WHERE id = $1 RETURNING *", int(row["id"]), float(now))
                assert again is not None
                return dict(again), True
            new = await c.fetchrow("INSERT INTO status_subscribers (kind, target, status, created_at) "
                                   "VALUES ($1, $2, 'pending', $3) RETURNING *", kind, target, float(now))
            assert new is not None
            return dict(new), True

    async def count_subscribers(self) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT COUNT(*) AS n FROM status_subscribers WHERE status != 'unsubscribed'")
        return int(row["n"]) if row else 0

    async def get_subscriber(self, subscriber_id: int) -> Row:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT * FROM status_subscribers WHERE id = $1", int(subscriber_id))
        if row is None:
            raise NotFoundError("subscriber", str(subscriber_id))
        return dict(row)

    async def set_subscriber_status(self, subscriber_id: int, status: str, now: float) -> Row:
        column = {"confirmed": "confirmed_at", "unsubscribed": "unsubscribed_at"}[status]
        async with self._stmt() as c:
            row = await c.fetchrow(f"UPDATE status_subscribers SET status = $2, {column} = $3 WHERE id = $1 "
                                   "RETURNING *", int(subscriber_id), status, float(now))
        if row is None:
            raise NotFoundError("subscriber", str(subscriber_id))
        return dict(row)

    async def list_subscribers(self, status: str, *, confirm_unsent: bool = False) -> list[Row]:
        extra = " AND confirm_sent_at IS NULL" if confirm_unsent else ""
        async with self._stmt() as c:
            rows = await c.fetch(f"SELECT * FROM status_subscribers WHERE status = $1{extra} ORDER BY id", status)
        return [dict(r) for r in rows]

    async def mark_confirm_sent(self, subscriber_id: int, now: float) -> None:
        async with self._stmt() as c:
            await c.execute("UPDATE status_subscribers SET confirm_sent_at = $2 WHERE id = $1",
                            int(subscriber_id), float(now))
