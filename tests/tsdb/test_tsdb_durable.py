"""The durable sample store: WAL replay, torn tails, checkpoints, the lock, and what survives."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from model.labels import Labels
from model.matchers import Matcher
from monitor.errors import StoreError
from monitor.tsdb import STALE_NAN, SampleStore, is_stale
from monitor.tsdb.retention import RetentionRule
from monitor.tsdb.wal import HEADER, WAL

T0 = 1_700_000_000_000
MIN = 60_000


def L(name: str, **labels: str) -> Labels:  # noqa: N802
    return Labels.of(labels, __name__=name)


def dump(store: SampleStore) -> dict[Labels, list[tuple[int, float]]]:
    """Every series with its samples (NaNs as strings so that they compare)."""
    def v(x: float) -> float | str:
        return ("stale" if is_stale(x) else "nan") if math.isnan(x) else x
    return {sl.labels: [(t, v(x)) for t, x in zip(sl.timestamps, sl.values)]
            for sl in store.select([], -(2**62), 2**62)}


def reopen(path: Path, now_ms: int = T0 + 10 * MIN, **kw) -> SampleStore:
    store = SampleStore(**kw)
    store.open(path, now_ms=now_ms)
    return store


def test_samples_survive_close_and_reopen(tmp_path):
    s1 = SampleStore(retention_seconds=None)
    s1.open(tmp_path, now_ms=T0)
    for k in range(100):
        s1.append_batch([(L("up", job=f"j{i}"), T0 + k * 1000, float(k * i)) for i in range(20)])
    s1.append(L("x"), T0, math.nan)
    s1.append(L("x"), T0 + 1, STALE_NAN)
    expected = dump(s1)
    s1.close()
    s2 = reopen(tmp_path, retention_seconds=None)
    assert dump(s2) == expected
    assert s2.sample_count == 2002 and s2.out_of_order_total == 0
    # Appends go on after a replay, new series too, and survive the next restart.
    assert s2.append(L("up", job="j1"), T0 + 200_000, 5.0)
    assert s2.append(L("new"), T0 + 200_000, 1.0)
    expected = dump(s2)
    s2.close()
    assert dump(reopen(tmp_path, retention_seconds=None)) == expected


def test_unflushed_samples_are_lost_and_flushed_ones_kept_without_close(tmp_path):
    s1 = SampleStore()
    s1.open(tmp_path, now_ms=T0)
    s1.append(L("a"), T0, 1.0)
    s1.flush()  # acknowledged: in the OS, no fsync needed against a process kill
    s1.append(L("a"), T0 + 1000, 2.0)
    s1.append(L("b"), T0 + 1000, 3.0)
    # No close: as after kill -9 (the lock goes with the process; here we release it by hand).
    os.close(s1._lock_fd)  # noqa: SLF001
    s2 = reopen(tmp_path, now_ms=T0)
    assert dump(s2) == {L("a"): [(T0, 1.0)]}


def test_torn_tail_is_truncated_and_the_store_opens(tmp_path):
    s1 = SampleStore()
    s1.open(tmp_path, now_ms=T0)
    for k in range(10):
        s1.append(L("a"), T0 + k * 1000, float(k))
        s1.flush()
    s1.close()
    [segment] = sorted((tmp_path / "wal").iterdir())
    size = segment.stat().st_size
    with open(segment, "r+b") as f:  # a record cut in the middle of its payload
        f.truncate(size - 5)
    s2 = reopen(tmp_path, now_ms=T0)
    assert [t for t, _ in dump(s2)[L("a")]] == [T0 + k * 1000 for k in range(9)]
    assert segment.stat().st_size < size - 5  # the torn record is gone from the file
    s2.append(L("a"), T0 + 20_000, 20.0)
    s2.close()
    assert dump(reopen(tmp_path, now_ms=T0))[L("a")][-2:] == [(T0 + 8000, 8.0), (T0 + 20_000, 20.0)]


def test_a_corrupt_record_fails_its_crc_and_later_segments_still_replay(tmp_path):
    s1 = SampleStore()
    s1.open(tmp_path, now_ms=T0, segment_bytes=1)  # every flush in a segment of its own
    for k in range(5):
        s1.append(L("a"), T0 + k * 1000, float(k))
        s1.flush()
    s1.close()
    segments = sorted((tmp_path / "wal").iterdir(), key=lambda p: p.name)
    # Flip a payload byte of the record holding sample 2 (the series record is in the first).
    victim = next(p for p in segments if p.stat().st_size and b"\x00" in p.read_bytes()[HEADER.size:]
                  and p != segments[0])
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    s2 = reopen(tmp_path, now_ms=T0)
    got = [t for t, _ in dump(s2)[L("a")]]
    assert len(got) == 4 and got == sorted(got)


def test_checkpoint_replaces_the_segments_it_covers(tmp_path):
    async def run() -> None:
        s1 = SampleStore(retention_seconds=None)
        s1.open(tmp_path, now_ms=T0, segment_bytes=4096)
        for k in range(300):
            s1.append_batch([(L("m", i=str(i)), T0 + k * 15_000, float(k + i)) for i in range(10)])
            s1.flush()
        before = sorted(p.name for p in (tmp_path / "wal").iterdir())
        assert len(before) > 3
        path = await s1.checkpoint(now_ms=T0 + 300 * 15_000)
        assert path is not None and path.exists()
        after = sorted(p.name for p in (tmp_path / "wal").iterdir())
        assert len(after) == 1 and after[0] > before[-1]  # only the segment opened by the cut
        s1.append(L("m", i="0"), T0 + 10**7, 1.0)  # after the checkpoint: in the WAL
        expected = dump(s1)
        s1.close()
        s2 = SampleStore(retention_seconds=None)
        stats = s2.open(tmp_path, now_ms=T0)
        assert stats.checkpoint_series == 10 and stats.checkpoint_samples == 3000
        assert dump(s2) == expected
        assert s2.disk_bytes() > 0
        s2.close()

    import asyncio
    asyncio.run(run())


def test_a_kill_during_a_checkpoint_leaves_a_tmp_file_that_is_ignored(tmp_path):
    s1 = SampleStore(retention_seconds=None)
    s1.open(tmp_path, now_ms=T0)
    s1.append(L("a"), T0, 1.0)
    s1.close()
    (tmp_path / "checkpoint.00000001.tmp").write_bytes(b"\x93garbage")
    s2 = reopen(tmp_path, retention_seconds=None)
    assert dump(s2) == {L("a"): [(T0, 1.0)]}
    assert not (tmp_path / "checkpoint.00000001.tmp").exists()


def test_a_corrupt_checkpoint_is_set_aside_and_the_store_opens(tmp_path):
    import asyncio
    s1 = SampleStore(retention_seconds=None)
    s1.open(tmp_path, now_ms=T0)
    for i in range(50):
        s1.append(L("a", i=str(i)), T0, 1.0)
    path = asyncio.run(s1.checkpoint(now_ms=T0))
    s1.append(L("b"), T0, 2.0)
    s1.close()
    assert path is not None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    s2 = reopen(tmp_path, retention_seconds=None)
    assert L("b") in dump(s2)
    assert path.with_name(path.name + ".corrupt").exists()


def test_one_process_at_a_time(tmp_path):
    s1 = SampleStore()
    s1.open(tmp_path)
    with pytest.raises(StoreError, match="in use by another process"):
        SampleStore().open(tmp_path)
    s1.close()
    s2 = SampleStore()
    s2.open(tmp_path)  # released by close
    s2.close()


def test_a_failed_open_releases_the_lock(tmp_path):
    (tmp_path / "wal").write_text("not a directory")
    with pytest.raises(StoreError, match="sample store"):
        SampleStore().open(tmp_path)
    (tmp_path / "wal").unlink()
    store = SampleStore()
    store.open(tmp_path)
    store.close()


def test_unwritable_path_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="sample store"):
        SampleStore().open(tmp_path / "file" / "sub")


def test_retention_applies_at_open(tmp_path):
    s1 = SampleStore(retention_seconds=600)
    s1.open(tmp_path, now_ms=T0)
    s1.append(L("old"), T0, 1.0)
    s1.append(L("new"), T0 + 20 * MIN, 1.0)
    s1.close()
    s2 = SampleStore(retention_seconds=600)
    s2.open(tmp_path, now_ms=T0 + 25 * MIN)
    assert list(dump(s2)) == [L("new")]


def test_clear_is_logged(tmp_path):
    s1 = SampleStore()
    s1.open(tmp_path, now_ms=T0)
    s1.append(L("a"), T0, 1.0)
    s1.flush()
    s1.clear()
    s1.append(L("b"), T0, 2.0)
    s1.close()
    assert dump(reopen(tmp_path, now_ms=T0)) == {L("b"): [(T0, 2.0)]}


def test_series_dropped_by_retention_and_recreated_replay_under_their_new_id(tmp_path):
    s1 = SampleStore(retention_seconds=60)
    s1.open(tmp_path, now_ms=T0)
    s1.append(L("a"), T0, 1.0)
    s1.flush()
    s1.gc(T0 + 2 * MIN)  # dropped
    s1.append(L("b"), T0 + 2 * MIN, 2.0)
    s1.append(L("a"), T0 + 2 * MIN, 3.0)  # recreated with a new id
    s1.close()
    got = dump(reopen(tmp_path, retention_seconds=60, now_ms=T0 + 2 * MIN))
    assert got == {L("a"): [(T0 + 2 * MIN, 3.0)], L("b"): [(T0 + 2 * MIN, 2.0)]}


def test_a_failed_wal_write_keeps_its_samples_for_the_next_flush(tmp_path):
    store = SampleStore()
    store.open(tmp_path, now_ms=T0)
    store.append(L("a"), T0, 1.0)
    store.flush()
    store.append(L("a"), T0 + 1000, 2.0)
    store.append(L("b"), T0 + 1000, 3.0)
    # The segment's descriptor turns read-only, as a failing disk would refuse the write.
    readonly = os.open(tmp_path / "lock", os.O_RDONLY)
    os.dup2(readonly, store._wal._fd)  # noqa: SLF001
    os.close(readonly)
    store.flush()
    assert store.wal_errors_total == 1
    store.append(L("a"), T0 + 2000, 4.0)
    store.flush()  # a new segment: the pending samples and the new one go out
    assert store.wal_errors_total == 1
    store.close()
    assert dump(reopen(tmp_path, now_ms=T0)) == {
        L("a"): [(T0, 1.0), (T0 + 1000, 2.0), (T0 + 2000, 4.0)], L("b"): [(T0 + 1000, 3.0)]}


def test_flushes_whose_fsync_is_never_run_hold_no_descriptor(tmp_path):
    store = SampleStore()
    store.open(tmp_path, now_ms=T0)
    before = len(os.listdir("/proc/self/fd"))
    for k in range(200):
        store.append(L("a"), T0 + k, 1.0)
        store.flush()  # the fsync function dropped
    assert len(os.listdir("/proc/self/fd")) <= before
    fsync = store.flush()
    store.close()
    fsync()  # after close: nothing to do, no error


def test_wal_reads_back_what_it_wrote_across_segments(tmp_path):
    w = WAL(tmp_path, segment_bytes=20)
    w.start()
    for i in range(5):
        w.write(2, bytes([i]) * 10)
    w.close()
    assert [(t, p) for _, t, p in WAL(tmp_path).records(0)] == [(2, bytes([i]) * 10) for i in range(5)]
    assert len(WAL(tmp_path).segments()) >= 3


# ---------------------------------------------------------------- retention rules, downsampling

SLO = RetentionRule.parse('{__name__=~"slo:.*"}', retention=35 * 86400, resolution=60)


def test_rule_gives_matching_series_their_retention_and_others_the_default():
    store = SampleStore(retention_seconds=7200, retention_rules=[SLO])
    for k in range(0, 3 * 3600, 60):  # 3 h, one sample a minute
        store.append(L("slo:sli_error:ratio_rate5m", sloth_slo="api"), T0 + k * 1000, 0.01)
        store.append(L("probe_success", probe="api"), T0 + k * 1000, 1.0)
    store.gc(T0 + 3 * 3600 * 1000)
    got = dump(store)
    assert len(got[L("slo:sli_error:ratio_rate5m", sloth_slo="api")]) == 180
    assert len(got[L("probe_success", probe="api")]) == 120  # the last 2 h: cutoff included
    store.gc(T0 + 36 * 86400 * 1000)
    assert store.series_count == 0


def test_downsampled_series_keeps_the_last_sample_of_each_step():
    store = SampleStore(retention_rules=[SLO])
    s = L("slo:sli_error:ratio_rate5m")
    for k in range(12):  # every 15 s for 3 minutes
        assert store.append(s, T0 + k * 15_000, float(k))
    # Steps are whole minutes since the epoch (T0 itself is 20 s into one).
    steps = {}
    for k in range(12):
        steps[(T0 + k * 15_000) // MIN] = (T0 + k * 15_000, float(k))
    assert dump(store)[s] == sorted(steps.values())
    # The latest value is always visible to an instant query.
    [(lbl, t, v)] = store.instant([Matcher("__name__", "=", s.name)], T0 + 11 * 15_000)
    assert (t, v) == (T0 + 11 * 15_000, 11.0)
    # Out of order and duplicates behave as for any series.
    assert not store.append(s, T0, 5.0)
    assert store.append(s, T0 + 11 * 15_000, 11.0)
    assert store.sample_count == len(steps)


def test_downsampled_series_survives_replay_with_the_same_samples(tmp_path):
    s1 = SampleStore(retention_rules=[SLO])
    s1.open(tmp_path, now_ms=T0)
    s = L("slo:objective:ratio")
    for k in range(40):
        s1.append_batch([(s, T0 + k * 15_000, 0.999 + k)])
        if k % 3 == 0:
            s1.flush()  # some replacements land in the WAL after their step was logged
    expected = dump(s1)
    s1.close()
    s2 = SampleStore(retention_rules=[SLO])
    s2.open(tmp_path, now_ms=T0)
    assert dump(s2) == expected


def test_rule_parse_errors():
    with pytest.raises(ValueError, match="bad matcher"):
        RetentionRule.parse("{__name__=~", 60)
    with pytest.raises(ValueError, match="must have a matcher"):
        RetentionRule.parse('{job=~".*"}', 60)
    with pytest.raises(ValueError, match="resolution"):
        RetentionRule.parse('{job="a"}', 60, 120)
