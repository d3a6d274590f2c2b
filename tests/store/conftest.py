"""One state-store suite, two backends: every test taking ``store`` runs on SQLite and PostgreSQL.

``reopen()`` closes the store and opens a fresh one on the same file / schema: a restart.
"""

from __future__ import annotations

import pytest

from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SQLiteStore


class Backend:
    """Builds stores of one kind over one database (so a test can 'restart')."""

    def __init__(self, kind: str, tmp_path, pg=None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.pg = pg
        self.opened: list = []

    def make(self):
        if self.kind == "sqlite":
            return SQLiteStore(self.tmp_path / "state.db", clock=lambda: 1_000.0)
        dsn, schema = self.pg
        return PostgresStore(dsn, schema=schema, clock=lambda: 1_000.0)

    async def open(self):
        store = self.make()
        await store.open()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for s in self.opened:
            await s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """A :class:`Backend` for SQLite (tmp file) or PostgreSQL (a fresh ``pg_schema``)."""
    pg = request.getfixturevalue("pg_schema") if request.param == "postgres" else None
    return Backend(request.param, tmp_path, pg)


@pytest.fixture
async def store(backend):
    """An opened, migrated store of the current backend (every store opened is closed after)."""
    yield await backend.open()
    await backend.close_all()
