"""Fewer commits: one transaction for many writes (:func:`transaction_of`, :class:`GroupCommit`).

Each state-store call is a transaction of its own, and with SQLite each statement is a trip to
aiosqlite's thread; a storm of notifications written or marked one statement at a time spends
its time in those trips. Two ways to share a commit:

- :func:`transaction_of` — one task's writes in one transaction (the store's
  :meth:`~monitor.store.sql.SQLStore.transaction`): a group flush writes its numbers, outbox rows
  and notification-log entries this way;
- :class:`GroupCommit` — the writes of *concurrent* tasks in shared transactions (group commit,
  as databases do for their log): the outbox worker's sends finish one by one, and each marks its
  row sent; the items queued meanwhile are written together, with one statement
  (``executemany``) in one transaction. A lone write costs what it cost before; under load, one
  commit and one trip serve many, and the connection is held for a trip, not for one per item.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["transaction_of", "GroupCommit"]

T = TypeVar("T")


def transaction_of(store: Any) -> Any:
    """Return the store's batch context (``store.transaction()``), or a no-op context for a
    store without one (a test double)."""
    batch = getattr(store, "transaction", None)
    return batch() if batch is not None else contextlib.nullcontext()


class GroupCommit(Generic[T]):
    """Write the items of concurrent tasks together: one transaction, one ``write_many`` call.

    :param store: the state store (``transaction()``).
    :param write_many: ``async (items) -> None``: writes a batch of items (an ``executemany``:
        one trip to the database for the batch, however many items).
    :param limit: the most items in one batch.

    ``await commits.add(item)`` returns once ``item`` is committed, or raises what made its
    batch fail (every caller of that batch gets the error; none of its items is kept). Items are
    written in the order they were added, by one writer task, a batch at a time: the items added
    while a batch is written go in the next one.

    Example::

        marks = GroupCommit(store, lambda rows: store.mark_sent_many(rows))
        await marks.add((row_id, now, meta))
    """

    def __init__(self, store: Any, write_many: Callable[[list[T]], Awaitable[Any]], *, limit: int = 500) -> None:
        self.store = store
        self.write_many = write_many
        self.limit = limit
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        """Queue ``item`` and return once it is committed (see the class docstring).

        A caller cancelled while waiting does not cancel the write.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="store:group-commit")
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.limit], self._queue[self.limit:]
            try:
                async with transaction_of(self.store):
                    await self.write_many([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:  # cancelled (shutdown): nothing of this batch is committed
                for _, done in batch + self._queue:
                    if not done.done():
                        done.set_exception(RuntimeError("group commit cancelled"))
                self._queue = []
                raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
