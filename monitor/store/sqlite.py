"""SQLite state store (the default): one file, WAL journal, one connection via aiosqlite.

WAL lets readers (``codebook-monitor`` CLI commands) read while the daemon writes
(https://www.sqlite.org/wal.html); ``synchronous=NORMAL`` is durable across application
crashes in WAL mode, which is what a restart needs. One connection serialised by an
:class:`asyncio.Lock`; every method is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction, or one
statement in autocommit mode when it is one statement (each aiosqlite call is a trip to its thread).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from monitor.errors import StoreError
from monitor.store.sql import Row, SQLStore

_PARAM = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _sqlite_sql(sql: str) -> str:
    """``$1`` -> ``?1`` (the statements are a fixed set: converted once each)."""
    return _PARAM.sub(r"?\1", sql)


class _SQLiteConn:
    """Each call is one trip to aiosqlite's thread (a query's rows come back with it)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def execute(self, sql: str, *args: Any) -> None:
        await self.db.execute(_sqlite_sql(sql), args)

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        await self.db.executemany(_sqlite_sql(sql), args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self.db.execute_fetchall(_sqlite_sql(sql), args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class SQLiteStore(SQLStore):
    """The state store in one SQLite file.

    :param path: the database file (created with its folder if missing).
    :param clock: unix-seconds clock, only for ``schema_migrations.applied_at``.

    >>> store = SQLiteStore("monitor-state.db")      # doctest: +SKIP
    >>> await store.open()                           # doctest: +SKIP
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, clock=time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(str(self.path), isolation_level=None)
            self._db.row_factory = sqlite3.Row
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            await self.close()  # aiosqlite's worker thread would otherwise keep the process alive
            raise StoreError(f"cannot open SQLite state store {self.path}: {exc}") from exc
        try:
            await self._migrate(self._clock())
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[_SQLiteConn]:
        if self._db is None:
            raise StoreError("state store is not open")
        async with self._lock:
            try:
                try:
                    await self._db.execute("BEGIN IMMEDIATE")
                    yield _SQLiteConn(self._db)
                    await self._db.execute("COMMIT")
                except BaseException:
                    # Also when the caller was cancelled while BEGIN or COMMIT was awaited: the
                    # worker thread runs them anyway, so without this ROLLBACK (queued after them)
                    # the connection would stay inside a transaction and every later BEGIN fail.
                    await self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite state store: {exc}") from exc

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[_SQLiteConn]:
        # isolation_level=None: a statement outside BEGIN is its own transaction (one trip).
        if self._db is None:
            raise StoreError("state store is not open")
        async with self._lock:
            try:
                yield _SQLiteConn(self._db)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite state store: {exc}") from exc

    async def _rollback(self) -> None:
        assert self._db is not None
        try:
            await asyncio.shield(self._db.execute("ROLLBACK"))
        except sqlite3.OperationalError:
            pass  # no transaction was active (BEGIN failed, or SQLite rolled back by itself)

    async def try_acquire_leadership(self) -> bool:
        """One process owns the file: always the leader."""
        return True

    async def release_leadership(self) -> None:
        """Nothing to release."""
