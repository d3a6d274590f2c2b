"""Incremental checkpoints: closed chunks are written once, to block files; a checkpoint rewrites
only the heads; blocks whose chunks expired are deleted; reopening gives back every sample."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import msgpack

from model.labels import Labels
from monitor.tsdb import SampleStore, is_stale
from monitor.tsdb.blocks import list_blocks

T0 = 1_796_428_800_000
MIN = 60_000
SERIES = [Labels.of(__name__="slo:x", i=str(i)) for i in range(20)]


def dump(store: SampleStore) -> dict[Labels, list[tuple[int, float | str]]]:
    def v(x: float) -> float | str:
        return ("stale" if is_stale(x) else "nan") if math.isnan(x) else x
    return {sl.labels: [(t, v(x)) for t, x in zip(sl.timestamps, sl.values)]
            for sl in store.select([], -(2**62), 2**62)}


def make(retention_seconds: float | None = None) -> SampleStore:
    return SampleStore(retention_seconds=retention_seconds, chunk_samples=30, head_ms=60 * MIN)


def fill(store: SampleStore, start: int, stop: int, every: int = 60) -> None:
    """Append minutes ``[start, stop)``: a sweep each 10 min, a checkpoint each ``every`` min."""
    for m in range(start, stop):
        t = T0 + m * MIN
        store.append_batch([(lb, t, m * 10.0 + i) for i, lb in enumerate(SERIES)])
        store.flush()
        if m % 10 == 0:
            store.gc(t)
        if m % every == every - 1:
            asyncio.run(store.checkpoint(now_ms=t))


def test_hourly_checkpoints_write_the_new_chunks_once_and_reopen_whole(tmp_path: Path) -> None:
    store = make()
    store.open(tmp_path, now_ms=T0)
    fill(store, 0, 600)
    sizes = []
    for hour in range(600, 900, 60):  # five more hourly checkpoints: each writes about an hour
        fill(store, hour, hour + 60)
        sizes.append(store.last_checkpoint_bytes)
    assert len(list_blocks(tmp_path)) >= 10
    total = store.disk_bytes()
    # Each hourly checkpoint writes its heads and an hour of chunks, not the 15 hours held.
    assert max(sizes) < total / 4, (sizes, total)
    expected = dump(store)
    assert all(s.cold is not None and len(s.cold) >= 20 for s in store._by_id.values())
    store.close()
    again = make()
    again.open(tmp_path, now_ms=T0 + 900 * MIN)
    assert dump(again) == expected and again.sample_count == 20 * 900
    assert 0.85 <= again.estimated_memory_bytes / again.memory_bytes() <= 1.15  # chunks loaded from blocks count
    # Appends continue; the next checkpoint and restart keep everything.
    fill(again, 900, 960)
    expected = dump(again)
    again.close()
    third = make()
    third.open(tmp_path, now_ms=T0 + 960 * MIN)
    assert dump(third) == expected
    third.close()


def test_blocks_whose_chunks_expired_are_deleted_so_disk_stays_bounded(tmp_path: Path) -> None:
    store = make(retention_seconds=3 * 3600)
    store.open(tmp_path, now_ms=T0)
    fill(store, 0, 300)
    early = set(list_blocks(tmp_path))
    fill(store, 300, 1200)
    left = set(list_blocks(tmp_path))
    assert early and not (early & left), "blocks of expired chunks are gone"
    assert len(left) <= 5
    n = store.sample_count
    assert n <= 20 * (180 + 60 + 30)
    expected = dump(store)
    store.close()
    again = make(retention_seconds=3 * 3600)
    again.open(tmp_path, now_ms=T0 + 1190 * MIN)  # the last sweep's clock
    assert dump(again) == expected and again.sample_count == n


def test_an_unlisted_block_is_deleted_and_a_corrupt_one_set_aside(tmp_path: Path) -> None:
    store = make()
    store.open(tmp_path, now_ms=T0)
    fill(store, 0, 300)
    expected = dump(store)
    store.close()
    # A block a kill left before its checkpoint was written: not listed, deleted at open.
    (tmp_path / "block.99999999").write_bytes(b"junk")
    again = make()
    again.open(tmp_path, now_ms=T0 + 300 * MIN)
    assert not (tmp_path / "block.99999999").exists() and dump(again) == expected
    again.close()
    # A damaged listed block: the store opens, keeps the chunks before the damage, sets it aside.
    victim = max(list_blocks(tmp_path).items())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    third = make()
    third.open(tmp_path, now_ms=T0 + 300 * MIN)
    assert victim.with_name(victim.name + ".corrupt").exists()
    got = dump(third)
    assert set(got) == set(expected)
    assert all(set(got[k]) <= set(expected[k]) for k in got)
    # Its chunks that were read are written again at the next checkpoint.
    asyncio.run(third.checkpoint(now_ms=T0 + 301 * MIN))
    kept = dump(third)
    third.close()
    fourth = make()
    fourth.open(tmp_path, now_ms=T0 + 301 * MIN)
    assert dump(fourth) == kept
    fourth.close()


def test_a_sweep_during_a_checkpoint_closes_no_chunk(tmp_path: Path) -> None:
    store = make()
    store.open(tmp_path, now_ms=T0)
    fill(store, 0, 200, every=10_000)

    async def run() -> None:
        task = asyncio.create_task(store.checkpoint(now_ms=T0 + 200 * MIN))
        await asyncio.sleep(0)
        assert store._checkpointing
        before = sum(len(s.cold or ()) for s in store._by_id.values())
        store.gc(T0 + 10**9)  # everything would be due
        assert sum(len(s.cold or ()) for s in store._by_id.values()) == before
        await task
    asyncio.run(run())
    expected = dump(store)
    store.close()
    again = make()
    again.open(tmp_path, now_ms=T0 + 200 * MIN)
    assert dump(again) == expected


def test_a_format_1_checkpoint_of_the_first_release_is_read(tmp_path: Path) -> None:
    import zlib
    from array import array
    ts = array("q", [T0 + k * MIN for k in range(5)])
    deltas = array("q", [MIN] * 4)
    vs = array("d", [1.0, 2.0, 3.0, 4.0, 5.0])
    pack = msgpack.packb
    (tmp_path / "wal").mkdir()
    (tmp_path / "checkpoint.00000003").write_bytes(
        pack({"format": 1, "segment": 3, "time_ms": T0}) + pack([0, ["__name__", "up"], 5, ts[0],
                                                                  zlib.compress(deltas.tobytes()),
                                                                  zlib.compress(vs.tobytes())])
        + pack({"series": 1, "samples": 5}))
    store = make()
    store.open(tmp_path, now_ms=T0)
    assert dump(store) == {Labels.of(__name__="up"): [(t, v) for t, v in zip(ts, vs)]}
    store.close()


def test_a_corrupt_checkpoint_keeps_the_blocks_and_reopens_a_head_from_the_last_chunk(tmp_path: Path) -> None:
    store = make()
    store.open(tmp_path, now_ms=T0)
    fill(store, 0, 300)
    head_first = {lb: store._by_labels[lb].ts[store._by_labels[lb].start] for lb in SERIES}
    in_blocks = {lb: [(t, v) for t, v in samples if t < head_first[lb]] for lb, samples in dump(store).items()}
    assert all(len(w) >= 150 for w in in_blocks.values())
    store.close()
    [checkpoint] = tmp_path.glob("checkpoint.*")
    checkpoint.write_bytes(checkpoint.read_bytes()[:40])
    again = make()
    again.open(tmp_path, now_ms=T0 + 300 * MIN)
    got = dump(again)
    # Every chunk of the blocks is back (the WAL before the checkpoint is gone, as before blocks).
    assert all(set(in_blocks[lb]) <= set(got[lb]) for lb in SERIES)
    s = again._by_labels[SERIES[0]]
    assert len(s.ts) > s.start  # a head to append to, taken back from the last chunk
    last = got[SERIES[0]][-1][0]
    assert not again.append(SERIES[0], last - MIN, 1.0)
    assert again.append(SERIES[0], last + MIN, 1.0)
    again.close()
