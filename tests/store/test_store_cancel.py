"""A store call cancelled at any moment (a reload or shutdown cancelling a task mid-transaction)
leaves the store usable: found by the API fuzzer, where rapid reloads wedged the SQLite store in
"cannot start a transaction within a transaction" and every later call failed."""

from __future__ import annotations

import asyncio
import random


async def test_cancelling_calls_at_random_moments_leaves_the_store_usable(store):
    rng = random.Random(7)
    for i in range(200):
        task = asyncio.create_task(store.kv_set("k", {"i": i}, now=1.0))
        await asyncio.sleep(rng.random() * 0.002)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await store.kv_set("k", {"i": "last"}, now=2.0)
    assert await store.kv_get("k") == {"i": "last"}
    assert await store.claim_once("slack-replay", "after", 3.0, 10.0)
