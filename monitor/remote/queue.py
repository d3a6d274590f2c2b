"""The remote-write queue: samples waiting to be sent, on disk so an outage or a restart loses none.

One queue per ``remote_write`` entry, in its own directory, written with the sample store's
segment log (:class:`monitor.tsdb.wal.WAL`: numbered segments of CRC-checked records, a torn
tail cut off at open). Records:

- ``BATCH`` (1): msgpack ``[seq, labels, ids, timestamps, values]`` — ``labels`` the batch's own
  table of series (flat ``[name, value, ...]`` lists), then three little-endian arrays (int32
  index into the table, int64 ms, float64) of at most ``batch_samples`` samples, in append order;
- ``ACK`` (2): msgpack ``seq`` — every batch up to ``seq`` was sent (or given up: dropped as the
  queue was full, or refused by the store with a 4xx), so it is not sent again after a restart.

At open the batches not acknowledged are read back and sent first. A segment is deleted once
every batch in it is acknowledged (and it is not the one being written).

Fsync policy: :meth:`RemoteQueue.append` hands each record to the operating system at once,
so a kill -9 loses nothing appended; :meth:`RemoteQueue.fsync_handle` returns the fsync the
daemon runs off the loop after each store flush (``tsdb.sync_interval``, default 1 s), so a
power loss loses at most that interval. An acknowledgement lost to a crash means a batch is sent
twice, which the stores accept (the same sample again is a no-op in Prometheus, VictoriaMetrics
and Mimir).

Bounded: the unacknowledged batches' payload is at most ``max_bytes``; appending beyond it
drops the oldest batches (counted in :attr:`RemoteQueue.dropped_samples_total`). Batches are
kept in memory too (their encoded payload, about 50 bytes a sample with the batch's label
table), so ``max_bytes`` also bounds the memory the queue takes.

Not thread-safe: one event loop appends and sends; only the fsync function may run elsewhere.
"""

from __future__ import annotations

import logging
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgpack

from model.labels import Labels
from monitor.tsdb.wal import WAL

__all__ = ["Batch", "RemoteQueue", "BATCH", "ACK"]

log = logging.getLogger(__name__)

BATCH, ACK = 1, 2
_LITTLE = sys.byteorder == "little"


def _le(a: array) -> bytes:
    if not _LITTLE:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _arr(typecode: str, data: bytes) -> array:
    a = array(typecode)
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


#: Label sets by their flat form, both ways (a series is queued every flush; emptied when large).
_BY_FLAT: dict[tuple[str, ...], Labels] = {}
_FLAT: dict[Labels, list[str]] = {}
_CACHE_SIZE = 200_000


def _labels(flat: tuple[str, ...]) -> Labels:
    got = _BY_FLAT.get(flat)
    if got is None:
        if len(_BY_FLAT) >= _CACHE_SIZE:
            _BY_FLAT.clear()
        got = _BY_FLAT[flat] = tuple.__new__(Labels, tuple(zip(flat[::2], flat[1::2])))
    return got


def _flat(labels: Labels) -> list[str]:
    got = _FLAT.get(labels)
    if got is None:
        if len(_FLAT) >= _CACHE_SIZE:
            _FLAT.clear()
        got = _FLAT[labels] = [x for pair in labels for x in pair]
    return got


@dataclass
class Batch:
    """One queued batch.

    :ivar seq: its sequence number (ascending, across restarts).
    :ivar payload: its ``BATCH`` record payload (decode with :meth:`series`).
    :ivar samples: how many samples it holds.
    :ivar segment: the queue segment it is stored in (0 in memory only).
    :ivar enqueued_at: when it was appended (Unix seconds; at open: when it was read back).
    :ivar max_t: its newest sample's timestamp, ms.
    """

    seq: int
    payload: bytes
    samples: int
    segment: int
    enqueued_at: float
    max_t: int

    def series(self) -> list[tuple[Labels, array, array]]:
        """Return the batch grouped by series: ``(labels, timestamps_ms, values)``, each series'
        samples in append (timestamp) order."""
        _seq, flat, ids_b, ts_b, vs_b = msgpack.unpackb(self.payload, use_list=False)
        ids, ts, vs = _arr("i", ids_b), _arr("q", ts_b), _arr("d", vs_b)
        out: list[tuple[Labels, array, array]] = [(_labels(f), array("q"), array("d")) for f in flat]
        for i, t, v in zip(ids, ts, vs):
            s = out[i]
            s[1].append(t)
            s[2].append(v)
        return out


class RemoteQueue:
    """Batches of samples waiting for one remote-write endpoint (see the module docstring).

    :param directory: where the queue's segments live (created if missing); ``None`` keeps the
        queue in memory only (lost at a restart; still bounded).
    :param max_bytes: most payload bytes held (drop-oldest beyond).
    :param batch_samples: most samples in one batch (one request sends one or more batches).
    :param segment_bytes: queue segment size, bytes.
    :param clock: wall-clock seconds (for the queue's age).
    """

    def __init__(self, directory: Path | None, *, max_bytes: int = 256 << 20, batch_samples: int = 2000,
                 segment_bytes: int = 16 << 20, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.batch_samples = batch_samples
        self.segment_bytes = segment_bytes
        self.clock = clock
        self._wal: WAL | None = None
        self._batches: deque[Batch] = deque()
        self._bytes = 0
        self._samples = 0
        self._seq = 0
        self._acked = 0
        # Per segment on disk, the newest batch seq it holds.
        self._segment_max: dict[int, int] = {}
        #: Samples dropped because the queue was full (oldest first).
        self.dropped_samples_total = 0
        #: Samples appended (enqueued) since the start.
        self.enqueued_samples_total = 0
        #: Batches read back at open.
        self.recovered_batches = 0
        #: The newest sample timestamp appended, ms (0 before any).
        self.highest_appended_ms = 0

    # ------------------------------------------------------------------ open / close

    def open(self) -> int:
        """Read back the batches not acknowledged; start a new segment for appends.

        :return: the number of samples recovered.
        :raises OSError: the directory cannot be created or read.
        """
        if self.directory is None:
            return 0
        wal = WAL(self.directory, self.segment_bytes)
        pending: dict[int, Batch] = {}
        acked = 0
        now = self.clock()
        for segment, rtype, payload in wal.records(0):
            if rtype == BATCH:
                seq, _flat, ids_b, ts_b, _vs = msgpack.unpackb(payload)
                ts = _arr("q", ts_b)
                pending[seq] = Batch(seq, payload, len(ids_b) // 4, segment, now, max(ts) if ts else 0)
                self._segment_max[segment] = max(self._segment_max.get(segment, 0), seq)
                self._seq = max(self._seq, seq)
            elif rtype == ACK:
                acked = max(acked, int(msgpack.unpackb(payload)))
        self._acked = acked
        self._seq = max(self._seq, acked)
        for seq in sorted(pending):
            if seq > acked:
                b = pending[seq]
                self._batches.append(b)
                self._bytes += len(b.payload)
                self._samples += b.samples
                self.highest_appended_ms = max(self.highest_appended_ms, b.max_t)
        self.recovered_batches = len(self._batches)
        wal.start()
        self._wal = wal
        self._delete_acked_segments()
        if self._batches:
            log.info("remote write queue recovered", extra={"path": str(self.directory),
                                                            "batches": len(self._batches), "samples": self._samples})
        return self._samples

    def close(self) -> None:
        """Fsync and close the segment being written (idempotent)."""
        if self._wal is not None:
            self._wal.close()
            self._wal = None

    def fsync_handle(self) -> Callable[[], None]:
        """Return a function that fsyncs the queue's records so far (run it off the loop)."""
        if self._wal is None:
            return lambda: None
        return self._wal.fsync_handle()

    # ------------------------------------------------------------------ appending

    def append(self, ids: Sequence[int], ts: Sequence[int], vs: Sequence[float],
               labels_of: Callable[[int], Labels | None]) -> int:
        """Queue samples, in batches of at most ``batch_samples``.

        :param ids: series ids, one per sample (the sample store's).
        :param ts: timestamps, int ms. :param vs: values (float64).
        :param labels_of: the label set of a series id (``None``: gone; its samples are skipped).
        :return: samples queued.
        """
        n = len(ids)
        queued = 0
        for start in range(0, n, self.batch_samples):
            end = min(n, start + self.batch_samples)
            table: dict[int, int] = {}
            flat: list[list[str]] = []
            bid, bts, bvs = array("i"), array("q"), array("d")
            for k in range(start, end):
                sid = ids[k]
                j = table.get(sid)
                if j is None:
                    labels = labels_of(sid)
                    if labels is None:
                        continue
                    j = table[sid] = len(flat)
                    flat.append(_flat(labels))
                bid.append(j)
                bts.append(ts[k])
                bvs.append(vs[k])
            if bid:
                self._append_batch(flat, bid, bts, bvs)
                queued += len(bid)
        return queued

    def _append_batch(self, flat: list[list[str]], ids: array, ts: array, vs: array) -> None:
        self._seq += 1
        payload = msgpack.packb([self._seq, flat, _le(ids), _le(ts), _le(vs)])
        segment = 0
        if self._wal is not None:
            try:
                self._wal.write(BATCH, payload)
                segment = self._wal.segment
                self._segment_max[segment] = self._seq
            except OSError as e:  # disk full: keep it in memory; counted as a drop only if it is dropped
                log.error("remote write queue: write failed; batch kept in memory only",
                          extra={"path": str(self.directory), "error": str(e)})
        max_t = max(ts)
        self._batches.append(Batch(self._seq, payload, len(ids), segment, self.clock(), max_t))
        self._bytes += len(payload)
        self._samples += len(ids)
        self.enqueued_samples_total += len(ids)
        self.highest_appended_ms = max(self.highest_appended_ms, max_t)
        while self._bytes > self.max_bytes and len(self._batches) > 1:
            old = self._batches[0]
            self.dropped_samples_total += old.samples
            self.ack(old.seq)
            log.warning("remote write queue full: oldest batch dropped",
                        extra={"path": str(self.directory), "samples": old.samples, "max_bytes": self.max_bytes})

    # ------------------------------------------------------------------ sending

    def peek(self, max_samples: int) -> list[Batch]:
        """Return the oldest batches holding at most ``max_samples`` samples (always at least
        one batch when any is queued)."""
        out: list[Batch] = []
        n = 0
        for b in self._batches:
            if out and n + b.samples > max_samples:
                break
            out.append(b)
            n += b.samples
        return out

    def ack(self, seq: int) -> None:
        """Mark every batch up to ``seq`` as done (sent, dropped or refused): never sent again."""
        while self._batches and self._batches[0].seq <= seq:
            b = self._batches.popleft()
            self._bytes -= len(b.payload)
            self._samples -= b.samples
        if seq <= self._acked:
            return
        self._acked = seq
        if self._wal is not None:
            try:
                self._wal.write(ACK, msgpack.packb(seq))
            except OSError as e:  # the batches may be sent again after a restart: harmless
                log.error("remote write queue: ack write failed", extra={"path": str(self.directory),
                                                                        "error": str(e)})
            self._delete_acked_segments()

    def _delete_acked_segments(self) -> None:
        wal = self._wal
        if wal is None:
            return
        done = [s for s, m in self._segment_max.items() if m <= self._acked and s != wal.segment]
        if done:
            oldest_pending = self._batches[0].segment if self._batches else None
            for s in sorted(done):
                if oldest_pending is not None and oldest_pending and s >= oldest_pending:
                    break
                wal.delete_through(s)
                del self._segment_max[s]

    # ------------------------------------------------------------------ state

    @property
    def samples(self) -> int:
        """Samples waiting."""
        return self._samples

    @property
    def bytes(self) -> int:
        """Payload bytes waiting."""
        return self._bytes

    def oldest_age(self) -> float:
        """Seconds since the oldest waiting batch was appended (0 when empty)."""
        return max(0.0, self.clock() - self._batches[0].enqueued_at) if self._batches else 0.0

    def disk_bytes(self) -> int:
        """Bytes of the queue's segments on disk (0 in memory)."""
        return self._wal.size_bytes() if self._wal is not None else 0
