"""SQLite state store (the default): one file, WAL journal, one connection via aiosqlite.

WAL lets readers (``codebook-monitor`` CLI commands) read while the daemon writes
(https://www.sqlite.org/wal.html); ``synchronous=NORMAL`` is durable across application
crashes in WAL mode, which is what a restart needs. One connection serialised by an
:class:`asyncio.Lock`; every method is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction, or one
statement in autocommit mode when it is one statement (each aiosqlite call is a trip to its thread).

Leadership: one daemon per file. The leader holds an exclusive ``flock`` on ``<file>.leader``
(released by the kernel when the process dies, kill -9 included); a second daemon started on the
same file does not get it, stays a follower (probes and rules run, nothing is routed or sent) and
says so in its log and ``/health``, instead of both paging. Several replicas need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
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

log = logging.getLogger("monitor.store")

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
        self._leader_fd: int | None = None
        self._warned_follower = False

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
        await self.release_leadership()
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

    @property
    def leader_lock_path(self) -> Path:
        """The file whose ``flock`` makes a daemon the leader: ``<state file>.leader``."""
        return self.path.with_name(self.path.name + ".leader")

    async def try_acquire_leadership(self) -> bool:
        """Return ``True`` if this store holds the file's leader lock (taking it if free).

        A second daemon on the same file gets ``False`` (and one warning naming the holder's
        pid) until the first one stops or dies.
        """
        if self._leader_fd is not None:
            return True
        if str(self.path) == ":memory:":
            return True
        path = self.leader_lock_path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the leader lock {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            if not self._warned_follower:
                self._warned_follower = True
                log.warning("another daemon%s leads the SQLite state store %s: this one stays a follower "
                            "(it probes and evaluates, but routes and sends nothing). One SQLite file serves one "
                            "daemon; replicas need a PostgreSQL state store.",
                            f" (pid {holder})" if holder else "", self.path)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._leader_fd = fd
        self._warned_follower = False
        return True

    async def release_leadership(self) -> None:
        """Release the leader lock (idempotent)."""
        fd, self._leader_fd = self._leader_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
