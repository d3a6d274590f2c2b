"""Fewer commits: one transaction for many writes (:func:`transaction_of`, :class:`GroupCommit`).

Each state-store call is a transaction of its own, and with SQLite each statement is a trip to
aiosqlite's thread; a storm of notifications written or marked one statement at a time spends
its time in those trips. Two ways to share a commit:

- :func:`transaction_of` — one task's writes in one transaction (the store's
  :meth:`~monitor.store.sql.SQLStore.transaction`): a group flush writes its numbers, outbox rows
  and notification-log entries this way;
- :class:`GroupCommit` — the writes of *concurrent* tasks in shared transactions (group commit,
  as databases do for their log): the outbox worker's sends finish one by one, and each marks its
  row sent; whoever writes first takes everyone's writes queued meanwhile into its transaction.
  A lone write costs what it cost before (one transaction); under load, one commit serves many.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["transaction_of", "GroupCommit"]


def transaction_of(store: Any) -> Any:
    """Return the store's batch context (``store.transaction()``), or a no-op context for a
    store without one (a test double)."""
    batch = getattr(store, "transaction", None)
    return batch() if batch is not None else contextlib.nullcontext()


class GroupCommit:
    """Run writes of concurrent tasks in shared store transactions.

    :param store: the state store (``transaction()``).
    :param limit: the most writes in one transaction.

    ``await commits.run(write)`` returns once ``write()`` (an async callable doing store calls) is
    committed, or raises what made its transaction fail (every write of that transaction gets the
    error; none of them is kept). Writes run in the order they were queued.

    Example::

        commits = GroupCommit(store)
        await commits.run(lambda: store.mark_sent(row_id, now, meta))
    """

    def __init__(self, store: Any, *, limit: int = 200) -> None:
        self.store = store
        self.limit = limit
        self._queue: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Queue ``write`` and return once it is committed (see the class docstring).

        The writes run in one writer task (so they join its transaction); a caller cancelled
        while waiting does not cancel its write.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((write, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="store:group-commit")
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.limit], self._queue[self.limit:]
            try:
                async with transaction_of(self.store):
                    for write, _ in batch:
                        await write()
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
