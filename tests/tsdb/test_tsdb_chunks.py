"""Closed chunks (``monitor.tsdb.chunks``): samples older than the head span are encoded in memory
and read back bit for bit; retention drops and trims them; the memory they take."""

from __future__ import annotations

import math
import random
import struct
from array import array

from model.labels import Labels
from model.matchers import Matcher
from monitor.tsdb import STALE_NAN, SampleStore
from monitor.tsdb.chunks import decode, encode
from monitor.tsdb.retention import RetentionRule

T0 = 1_796_428_800_000
MIN = 60_000


def bits(vs) -> list[int]:  # type: ignore[no-untyped-def]
    return [struct.unpack("<Q", struct.pack("<d", v))[0] for v in vs]


def test_encode_decode_keeps_every_bit_regular_irregular_and_single():
    rng = random.Random(7)
    vs = array("d", [rng.random() for _ in range(240)])
    vs[3], vs[4], vs[5] = STALE_NAN, math.nan, -0.0
    regular = array("q", range(T0, T0 + 240 * MIN, MIN))
    irregular = array("q", sorted(rng.sample(range(T0, T0 + 10**8), 240)))
    for ts in (regular, irregular):
        dts, dvs = decode(encode(ts, vs))
        assert dts == ts and bits(dvs) == bits(vs)
    assert len(encode(regular, vs)) < len(encode(irregular, vs))  # a regular chunk stores no timestamps
    one = decode(encode(array("q", [T0]), array("d", [2.5])))
    assert list(one[0]) == [T0] and list(one[1]) == [2.5]


def make(**kw) -> SampleStore:  # type: ignore[no-untyped-def]
    return SampleStore(retention_seconds=None, chunk_samples=10, head_ms=30 * MIN, **kw)


def test_reads_across_chunks_and_head_match_what_was_appended():
    store = make(retention_rules=[RetentionRule.parse('{__name__=~"slo:.*"}', retention=86400, resolution=60)])
    rng = random.Random(1)
    reg, irr, slo = Labels.of(__name__="reg"), Labels.of(__name__="irr"), Labels.of(__name__="slo:x")
    want: dict[str, list[tuple[int, float]]] = {"reg": [], "irr": [], "slo:x": []}
    t_irr = T0
    for m in range(200):
        t = T0 + m * MIN
        v = rng.random()
        t_irr += rng.randrange(1, 90_000)
        store.append_batch([(reg, t, v), (irr, t_irr, -v), (slo, t + 5_000, v), (slo, t + 50_000, 2 * v)])
        want["reg"].append((t, v))
        want["irr"].append((t_irr, -v))
        want["slo:x"].append((t + 50_000, 2 * v))  # one sample per 1 m step: the step's last
        if m % 7 == 0:
            store.gc(t)
    store.gc(T0 + 200 * MIN)
    assert all(store._by_labels[lb].cold is not None for lb in (reg, irr, slo))
    assert store.sample_count == 600
    for _ in range(300):
        a = T0 + rng.randrange(-MIN, 210 * MIN)
        b = a + rng.randrange(0, 100 * MIN)
        got = {sl.labels.name: list(zip(sl.timestamps, sl.values)) for sl in store.select([], a, b)}
        exp = {k: [(t, v) for t, v in w if a <= t <= b] for k, w in want.items()}
        assert got == {k: w for k, w in exp.items() if w}
        [sl] = store.select_series([irr], a, b) or [None]
        assert (list(zip(sl.timestamps, sl.values)) if sl else []) == exp["irr"]
        # Instant selection finds the latest sample at or before t inside the lookback, chunks too.
        inst = {lb.name: (t, v) for lb, t, v in store.instant([Matcher("__name__", "=", "reg")], b, 5 * MIN)}
        before = [(t, v) for t, v in want["reg"] if b - 5 * MIN < t <= b]
        assert inst == ({"reg": before[-1]} if before else {})
    # Appends go on at the head; older timestamps stay rejected.
    assert store.append(reg, T0 + 500 * MIN, 1.0) and not store.append(reg, T0 + 3 * MIN, 1.0)


def test_retention_drops_whole_chunks_and_trims_the_one_it_falls_in():
    store = SampleStore(retention_seconds=3600, chunk_samples=10, head_ms=5 * MIN)
    series = [Labels.of(__name__="up", i=str(i)) for i in range(50)]
    for m in range(120):
        store.append_batch([(lb, T0 + m * MIN, float(m)) for lb in series])
        store.gc(T0 + m * MIN)
    now = T0 + 119 * MIN
    kept = [float(m) for m in range(120) if T0 + m * MIN >= now - 3_600_000]
    assert all(s.cold is not None for s in store._by_id.values())
    for sl in store.select([], 0, 2**62):
        assert list(sl.values) == kept
    assert store.sample_count == 50 * len(kept) == 50 * 61
    assert 0.85 <= store.estimated_memory_bytes / store.memory_bytes() <= 1.15
    store.gc(now + 10**9)
    assert store.series_count == 0 and store.sample_count == 0 and store.estimated_memory_bytes == 0


def test_closed_chunks_take_a_few_bytes_a_sample():
    store = SampleStore(retention_seconds=None)
    const, ints, walk = Labels.of(__name__="c"), Labels.of(__name__="i"), Labels.of(__name__="w")
    rng = random.Random(3)
    w = 0.001
    for m in range(7 * 1440):
        w = max(0.0, w + rng.gauss(0, 0.0002))
        store.append_batch([(const, T0 + m * MIN, 0.999), (ints, T0 + m * MIN, float(m // 60)),
                            (walk, T0 + m * MIN, w)])
    before = store.estimated_memory_bytes
    store.gc(T0 + 7 * 1440 * MIN, max_chunks=None)
    sizes = {lb.name: store._by_labels[lb].cold.bytes_held() / (7 * 1440) for lb in (const, ints, walk)}
    # against 17 B/sample in the head: constant and integer-valued series take ~0.5, full-entropy ones ~7
    assert sizes["c"] < 1 and sizes["i"] < 1 and sizes["w"] < 8, sizes
    assert store.estimated_memory_bytes < before / 4
    assert 0.85 <= store.estimated_memory_bytes / store.memory_bytes() <= 1.15


def test_gc_closes_at_most_max_chunks_a_call():
    store = SampleStore(retention_seconds=None, chunk_samples=10, head_ms=0)
    for i in range(5):
        for m in range(101):
            store.append(Labels.of(__name__="m", i=str(i)), T0 + m * MIN, 1.0)
    store.gc(T0 + 10**9, max_chunks=7)
    assert sum(len(s.cold) for s in store._by_id.values() if s.cold) == 7
    store.gc(T0 + 10**9, max_chunks=None)
    assert sum(len(s.cold) for s in store._by_id.values() if s.cold) == 50  # one sample stays in each head
    assert store.sample_count == 505
