"""monitor.store: durable state (alerts, acks, escalations, silences, audit, outbox).

:func:`open_store` builds and opens the backend named by the ``state:`` config section.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from monitor.config.receivers import StateConfig
from monitor.store.base import Store
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "PostgresStore", "open_store", "make_store"]


def make_store(config: StateConfig, *, clock: Callable[[], float] = time.time) -> SQLiteStore | PostgresStore:
    """Build (but do not open) the store ``config`` names."""
    if config.backend == "postgres":
        assert config.dsn is not None  # enforced by StateConfig
        return PostgresStore(config.dsn.get_secret_value(), schema=config.schema_, clock=clock)
    return SQLiteStore(config.path, clock=clock)


async def open_store(config: StateConfig, *, clock: Callable[[], float] = time.time) -> SQLiteStore | PostgresStore:
    """Build the store ``config`` names, open it and migrate it to the latest schema.

    :raises StoreError: the database cannot be reached or migrated.
    """
    store = make_store(config, clock=clock)
    await store.open()
    return store
