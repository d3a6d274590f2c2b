"""Batched writes, on SQLite and PostgreSQL: one task's calls in one transaction
(``store.transaction()``), writes of concurrent tasks in shared commits (``GroupCommit``), the
after-commit callback that wakes the outbox worker, and the many-rows methods."""

from __future__ import annotations

import asyncio

import pytest

from monitor.errors import StoreError
from monitor.store.batching import GroupCommit

T = 1_000.0


def commits(store) -> list[int]:
    """Count the transactions the store begins from now on (``[n]``)."""
    count = [0]
    begin = store._begin

    def counting():
        count[0] += 1
        return begin()

    store._begin = counting
    return count


async def test_a_batch_is_one_transaction_all_or_none(store):
    async with store.transaction():
        assert await store.enqueue("k1", "ops", "webhook[0]", {"n": 1}, T + 60, T)
        await store.kv_set("nflog:g", {"seq": 1}, T)
        assert await store.kv_get("nflog:g") == {"seq": 1}  # the batch reads its own writes
    assert [r["dedup_key"] for r in await store.list_outbox()] == ["k1"]

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction():
            assert await store.enqueue("k2", "ops", "webhook[0]", {"n": 2}, T + 60, T)
            await store.kv_set("nflog:g", {"seq": 2}, T)
            raise Boom
    assert [r["dedup_key"] for r in await store.list_outbox()] == ["k1"]  # nothing of it kept
    assert await store.kv_get("nflog:g") == {"seq": 1}


async def test_nested_batches_join_and_other_tasks_do_not(store):
    count = commits(store)
    seen: list[object] = []
    async with store.transaction():
        async with store.transaction():
            await store.kv_set("a", 1, T)
        await store.kv_set("b", 2, T)
        assert count[0] == 1  # the inner batch and both calls joined the outer transaction

        async def other() -> None:  # another task: its own transaction, after ours commits
            seen.append(await store.kv_get("a"))

        if store.dialect == "postgres":  # PostgreSQL: another connection, our writes not visible yet
            await asyncio.create_task(other())
            assert seen == [None]
    assert count[0] == 1
    assert await store.kv_get("b") == 2


async def test_after_commit_runs_once_committed_never_on_rollback(store):
    called: list[str] = []
    store.after_commit(lambda: called.append("outside"))  # no batch: at once
    assert called == ["outside"]
    async with store.transaction():
        await store.kv_set("x", 1, T)
        store.after_commit(lambda: called.append("inside"))
        assert called == ["outside"]  # not yet: the write is not visible to other connections
    assert called == ["outside", "inside"]
    with pytest.raises(RuntimeError):
        async with store.transaction():
            store.after_commit(lambda: called.append("rolled back"))
            raise RuntimeError("no")
    assert called == ["outside", "inside"]


async def test_many_rows_methods(store):
    await store.kv_set_many([("nflog:a", {"seq": 0}), ("nflog:b", {"seq": 3}), ("nflog:a", {"seq": 1})], T)
    assert await store.kv_scan("nflog:") == {"nflog:a": {"seq": 1}, "nflog:b": {"seq": 3}}
    await store.append_timelines([("fp1", T, "notification_sent", {"n": 1}), ("fp2", T + 1, "x", None)])
    [line] = await store.list_timeline("fp1")
    assert (line["event"], line["detail"]) == ("notification_sent", {"n": 1})
    assert (await store.list_timeline("fp2"))[0]["detail"] == {}


async def test_group_commit_shares_transactions_and_hands_errors_to_their_callers(store):
    count = commits(store)
    calls: list[int] = []

    async def write_many(items: list[tuple[str, int]]) -> None:
        calls.append(len(items))
        if ("bad", 0) in items:
            raise StoreError("disk full")
        await store.kv_set_many(items, T)

    group: GroupCommit[tuple[str, int]] = GroupCommit(store, write_many)
    await asyncio.gather(*(group.add((f"k{i}", i)) for i in range(20)))
    assert calls == [20] and count[0] == 1  # added together: one batch, one transaction
    assert await store.kv_scan("k") == {f"k{i}": i for i in range(20)}

    results = await asyncio.gather(group.add(("bad", 0)), group.add(("after", 1)), return_exceptions=True)
    # the same batch: none of it kept, the error handed to both callers
    assert [type(r) for r in results] == [StoreError, StoreError] and await store.kv_get("after") is None
    await group.add(("later", 1))  # a failed batch does not stop later ones
    assert await store.kv_get("later") == 1


async def test_outbox_marks_and_refs_many(store):
    assert await store.enqueue("k1", "ops", "slack[0]", {"n": 1}, T + 60, T)
    assert await store.enqueue("k2", "ops", "slack[0]", {"n": 2}, T + 60, T)
    rows = await store.claim_due(T)
    await store.mark_sent_many([(r["id"], T + 1, {"ts": str(r["id"])}) for r in rows])
    assert {(r["status"], r["attempts"], r["sent_at"]) for r in await store.list_outbox()} == {("sent", 1, T + 1)}
    await store.put_message_refs([("fp1", "ops/slack[0]", "", {"channel": "C1", "ts": "1.0"}, T),
                                  ("fp1", "ops/slack[0]", "", {"channel": "C1", "ts": "2.0"}, T + 1)])
    assert await store.get_message_ref("fp1", "ops/slack[0]", "") == {"channel": "C1", "ts": "2.0"}
