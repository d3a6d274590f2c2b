"""On-call overrides in the state store (SQLite and PostgreSQL): create, list, remove, survive a restart."""

from __future__ import annotations

import pytest

from monitor.errors import NotFoundError
from monitor.store import migrations


async def test_overrides_round_trip_and_survive_a_restart(backend):
    store = await backend.open()
    assert await store.schema_version() == migrations.LATEST
    a = await store.create_override("primary", "bob", 1_000.0, 5_000.0, "alice", 900.0, comment="swap")
    b = await store.create_override("secondary", "carol", 2_000.0, 3_000.0, "alice", 901.0)
    assert a["id"] != b["id"] and a["comment"] == "swap" and a["created_by"] == "alice"
    assert [r["id"] for r in await store.list_overrides()] == [a["id"], b["id"]]
    assert [r["person"] for r in await store.list_overrides("primary")] == ["bob"]
    assert [r["person"] for r in await store.list_overrides(ending_after=4_000.0)] == ["bob"]

    again = await backend.open()  # a restart
    removed = await again.remove_override(a["id"], "dave", 950.0)
    assert removed["person"] == "bob"
    assert [r["id"] for r in await again.list_overrides()] == [b["id"]]
    with pytest.raises(NotFoundError):
        await again.remove_override(a["id"], "dave", 951.0)  # already removed
    with pytest.raises(NotFoundError):
        await again.remove_override(999_999, "dave", 951.0)
    await backend.close_all()


async def test_override_must_end_after_it_starts(store):
    with pytest.raises(ValueError):
        await store.create_override("primary", "bob", 2_000.0, 2_000.0, "alice", 900.0)


async def test_override_and_its_audit_commit_together(store):
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_override("primary", "bob", 1_000.0, 5_000.0, "alice", 900.0)
            await store.audit("alice", "oncall.override.create", 900.0, target="schedule:primary")
            raise RuntimeError("boom")
    assert await store.list_overrides() == []
    assert await store.list_audit(target="schedule:primary") == []
