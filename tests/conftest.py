"""Shared fixtures: the real PostgreSQL (a fresh schema per test that asks for one), state configs."""

from __future__ import annotations

import os
import uuid

import pytest

DATABASE_URL = os.environ.get("MONITOR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def database_url() -> str:
    """The DSN of the test PostgreSQL (``MONITOR_TEST_DATABASE_URL``)."""
    return DATABASE_URL


@pytest.fixture
async def pg_schema(database_url):
    """Create a uniquely named schema, yield ``(dsn, schema)``, drop it afterwards.

    Connections that should use it set ``server_settings={"search_path": schema}``.
    """
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield database_url, schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def sqlite_store(tmp_path):
    """An opened SQLite state store in a temp dir (``tmp_path / "state.db"``), closed afterwards."""
    from monitor.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def state_config(request, tmp_path):
    """The ``state:`` section, once per backend: SQLite in a temp dir, or a fresh PostgreSQL schema."""
    from monitor.config.model import StateConfig

    if request.param == "sqlite":
        return StateConfig.model_validate({"backend": "sqlite", "path": str(tmp_path / "state.db")})
    dsn, schema = request.getfixturevalue("pg_schema")
    return StateConfig.model_validate({"backend": "postgres", "dsn": dsn, "schema": schema})
