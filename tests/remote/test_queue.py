"""The remote-write queue on disk, the wire format, and the sample store's tee."""

from __future__ import annotations

from array import array

from model.labels import Labels
from monitor.remote.protocol import decode, decompress, compress, encode
from monitor.remote.queue import RemoteQueue
from monitor.tsdb.store import SampleStore
from monitor.tsdb.series import STALE_NAN, is_stale

A = Labels.of({"__name__": "up", "job": "a"})
B = Labels.of({"__name__": "up", "job": "b"})
TABLE = {1: A, 2: B}


def _append(q: RemoteQueue, n: int, t0: int = 1000) -> None:
    ids = array("q", [1 + (i % 2) for i in range(n)])
    ts = array("q", [t0 + i for i in range(n)])
    vs = array("d", [float(i) for i in range(n)])
    q.append(ids, ts, vs, TABLE.get)


def _all(q: RemoteQueue) -> list[tuple[Labels, int, float]]:
    out = []
    for b in q.peek(10**9):
        for labels, ts, vs in b.series():
            out += [(labels, t, v) for t, v in zip(ts, vs)]
    return sorted(out, key=lambda x: x[1])


def test_protocol_round_trip_keeps_labels_order_and_stale_markers():
    body = encode([(A, [1, 2], [1.0, STALE_NAN]), (B, [3], [0.5])])
    got = decode(decompress(compress(body)))
    assert got[0][0] == {"__name__": "up", "job": "a"} and got[1][1] == [(3, 0.5)]
    assert got[0][1][0] == (1, 1.0) and is_stale(got[0][1][1][1])


def test_batches_are_split_and_read_back_after_a_restart(tmp_path):
    q = RemoteQueue(tmp_path, batch_samples=3)
    q.open()
    _append(q, 10)
    assert len(q.peek(10**9)) == 4 and q.samples == 10
    q.ack(q.peek(3)[0].seq)  # the first batch (3 samples) was sent
    q.close()
    again = RemoteQueue(tmp_path, batch_samples=3)
    assert again.open() == 7
    assert [t for _, t, _ in _all(again)] == list(range(1003, 1010))
    assert {lbl for lbl, _, _ in _all(again)} == {A, B}
    _append(again, 2, t0=2000)  # sequence numbers go on after the recovered ones
    seqs = [b.seq for b in again.peek(10**9)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    again.close()


def test_acknowledged_segments_are_deleted(tmp_path):
    q = RemoteQueue(tmp_path, batch_samples=100, segment_bytes=2000)
    q.open()
    for i in range(30):
        _append(q, 100, t0=i * 1000)
    assert len(q._wal.segments()) > 3
    q.ack(q.peek(10**9)[-1].seq)
    _append(q, 1, t0=10**6)  # the write cuts a full segment; the acked ones go
    assert len(q._wal.segments()) <= 2
    q.close()
    again = RemoteQueue(tmp_path)
    assert again.open() == 1


def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path):
    q = RemoteQueue(tmp_path, batch_samples=100, max_bytes=1 << 16)
    q.open()
    for i in range(100):
        _append(q, 100, t0=i * 1000)
    assert q.bytes <= 1 << 16
    assert q.dropped_samples_total > 0
    assert q.dropped_samples_total + q.samples == 100 * 100
    newest = max(t for _, t, _ in _all(q))
    assert newest == 99 * 1000 + 99  # the newest are kept
    q.close()
    again = RemoteQueue(tmp_path, batch_samples=100, max_bytes=1 << 16)
    assert again.open() == q.samples  # the drops are remembered


def test_in_memory_queue(tmp_path):
    q = RemoteQueue(None)
    assert q.open() == 0
    _append(q, 5)
    assert q.samples == 5 and q.disk_bytes() == 0


def test_the_store_tees_every_append_path_at_flush_in_memory():
    store = SampleStore()
    got: list[tuple[Labels, int, float]] = []
    store.set_tee(lambda ids, ts, vs, labels_of: got.extend(
        (labels_of(i), t, v) for i, t, v in zip(ids, ts, vs)))
    store.append(A, 1000, 1.0)
    store.append_batch([(A, 2000, 2.0), (B, 2000, 3.0)])  # the fast path and a new series
    store.mark_stale(B, 3000)
    assert got == []  # nothing before the flush
    store.flush()
    assert got[:3] == [(A, 1000, 1.0), (A, 2000, 2.0), (B, 2000, 3.0)]
    assert got[3][0] == B and is_stale(got[3][2])
    store.append(A, 2000, 2.0)  # an identical duplicate is not a new sample
    store.flush()
    assert len(got) == 4


def test_the_durable_store_tees_after_the_wal_and_not_replayed_samples(tmp_path):
    store = SampleStore()
    store.open(tmp_path / "tsdb")
    got: list[tuple[Labels, int, float]] = []
    store.set_tee(lambda ids, ts, vs, labels_of: got.extend(
        (labels_of(i), t, v) for i, t, v in zip(ids, ts, vs)))
    store.append(A, 1000, 1.0)
    store.flush()
    store.close()  # close flushes too
    store.append(A, 2000, 2.0)  # after close: in memory, still teed
    store.flush()
    assert got == [(A, 1000, 1.0), (A, 2000, 2.0)]
    reopened = SampleStore()
    more: list[int] = []
    reopened.set_tee(lambda ids, ts, vs, labels_of: more.extend(ts))
    reopened.open(tmp_path / "tsdb")
    reopened.flush()
    assert more == []  # replay is not sent again: the queue kept what was not sent
    reopened.append(A, 3000, 3.0)
    reopened.flush()
    assert more == [3000]
    reopened.close()
