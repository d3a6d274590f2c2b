"""PostgreSQL state store (for two replicas): asyncpg pool, optional schema, advisory-lock leader.

Tables live in ``schema`` when given (set as ``search_path`` on every pooled connection, so
the same SQL runs unqualified; the schema is created if missing). Outbox claims use
``FOR UPDATE SKIP LOCKED`` so two replicas never claim the same row
(https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE).

Leadership: :meth:`PostgresStore.try_acquire_leadership` takes a session-level
``pg_try_advisory_lock(key)`` (https://www.postgresql.org/docs/current/functions-admin.html,
"Advisory Lock Functions") on a dedicated connection kept open while leading; if the leader
dies its connection drops and the lock is freed for the other replica.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from monitor.errors import StoreError
from monitor.store.sql import Row, SQLStore

#: Advisory lock key for leadership: a constant from "codebook-monitor" (crc32), any bigint works.
LEADER_LOCK_KEY = 0x2C0DEB00C


def _safe_dsn(dsn: str) -> str:
    """Drop the password from a DSN for error messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return "<dsn>"


class _PgConn:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self.conn.execute(sql, *args)

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        await self.conn.executemany(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self.conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        r = await self.conn.fetchrow(sql, *args)
        return None if r is None else dict(r)


def scoped_lock_key(key: int, schema: str | None) -> int:
    """Return the advisory lock key for ``schema`` (``key`` itself without a schema).

    The result stays a positive signed 64-bit integer (``pg_try_advisory_lock(bigint)``).
    """
    if not schema:
        return key
    return (key ^ (zlib.crc32(schema.encode()) << 8)) & 0x7FFF_FFFF_FFFF_FFFF


class PostgresStore(SQLStore):
    """The state store in PostgreSQL.

    :param dsn: e.g. ``postgresql://monitor:...@db:5432/monitor`` (a secret; never logged).
    :param schema: schema to hold the tables (``search_path``), or ``None`` for the default.
    :param clock: unix-seconds clock for ``schema_migrations.applied_at``.
    :param lock_key: the advisory lock key for leadership; by default derived from ``schema``,
        so deployments (or test runs) that share one database but not a schema never contend.
    """

    dialect = "postgres"
    _CLAIM_LOCK = "FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, *, schema: str | None = None, clock=time.time,
                 lock_key: int | None = None, min_size: int = 1, max_size: int = 5) -> None:
        self._dsn = dsn
        self.schema = schema
        self._clock = clock
        self.lock_key = lock_key if lock_key is not None else scoped_lock_key(LEADER_LOCK_KEY, schema)
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._leader: asyncpg.Connection | None = None

    def _settings(self) -> dict[str, str]:
        return {"search_path": f'"{self.schema}"'} if self.schema else {}

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            if self.schema:
                conn = await asyncpg.connect(self._dsn)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                finally:
                    await conn.close()
            self._pool = await asyncpg.create_pool(self._dsn, min_size=self._sizes[0],
                                                   max_size=self._sizes[1], server_settings=self._settings())
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot open PostgreSQL state store {_safe_dsn(self._dsn)}: "
                             f"{type(exc).__name__}: {exc}") from None
        async with self._pool.acquire() as conn:
            # Two replicas starting together must not both migrate.
            await conn.execute("SELECT pg_advisory_lock($1)", self.lock_key + 1)
            try:
                await self._migrate(self._clock())
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", self.lock_key + 1)

    async def close(self) -> None:
        await self.release_leadership()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[_PgConn]:
        if self._pool is None:
            raise StoreError("state store is not open")
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PgConn(conn)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL state store: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"PostgreSQL state store: connection lost: {exc}") from exc

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[_PgConn]:
        # one statement, no BEGIN/COMMIT round trips (PostgreSQL commits it by itself)
        if self._pool is None:
            raise StoreError("state store is not open")
        try:
            async with self._pool.acquire() as conn:
                yield _PgConn(conn)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL state store: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"PostgreSQL state store: connection lost: {exc}") from exc

    async def try_acquire_leadership(self) -> bool:
        if self._leader is not None and not self._leader.is_closed():
            return True
        self._leader = None
        try:
            conn = await asyncpg.connect(self._dsn, server_settings=self._settings())
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"leader election: cannot connect to {_safe_dsn(self._dsn)}: "
                             f"{type(exc).__name__}") from None
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
            self._leader = conn
            return True
        await conn.close()
        return False

    async def release_leadership(self) -> None:
        if self._leader is not None:
            conn, self._leader = self._leader, None
            if not conn.is_closed():
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1)", self.lock_key)
                finally:
                    await conn.close()
