"""``claim_once``: the Slack replay cache's storage. A claim survives a restart, expires after its
TTL, is won by exactly one of two concurrent callers (two replicas on one PostgreSQL), and old
claims of the namespace are purged."""

from __future__ import annotations

import asyncio

import pytest

T0 = 1_800_000_000.0


async def test_a_key_is_claimed_once_until_it_expires_and_across_a_restart(backend, store):
    assert await store.claim_once("slack-replay", "v0=abc", T0, 600.0) is True
    assert await store.claim_once("slack-replay", "v0=abc", T0 + 1, 600.0) is False
    assert await store.claim_once("slack-replay", "v0=other", T0 + 1, 600.0) is True
    await store.close()
    restarted = await backend.open()
    assert await restarted.claim_once("slack-replay", "v0=abc", T0 + 599, 600.0) is False
    assert await restarted.claim_once("slack-replay", "v0=abc", T0 + 600, 600.0) is True  # expired: new claim
    assert await restarted.claim_once("slack-replay", "v0=abc", T0 + 601, 600.0) is False


async def test_old_claims_of_the_namespace_are_purged_and_other_keys_untouched(store):
    await store.kv_set("slack-replayx", {"keep": True}, T0 - 10_000)  # not in the namespace
    for i in range(5):
        assert await store.claim_once("slack-replay", f"sig{i}", T0, 600.0)
    assert await store.claim_once("slack-replay", "new", T0 + 601, 600.0)
    for i in range(5):
        assert await store.kv_get(f"slack-replay:sig{i}") is None
    assert await store.kv_get("slack-replay:new") == {"expires_at": T0 + 601 + 600.0}
    assert await store.kv_get("slack-replayx") == {"keep": True}


async def test_one_of_two_concurrent_claims_wins(backend, store):
    other = await backend.open()
    results = await asyncio.gather(*(s.claim_once("slack-replay", "v0=same", T0, 600.0)
                                     for s in (store, other, store, other)))
    assert sorted(results) == [False, False, False, True]


async def test_a_namespace_with_a_colon_is_refused(store):
    with pytest.raises(ValueError):
        await store.claim_once("a:b", "k", T0, 1.0)
