"""Durability of the sample store: WAL records, replay at open, flush, fsync, checkpoints.

:class:`Durable` is the part of :class:`monitor.tsdb.store.SampleStore` that talks to disk. A
store made without :meth:`Durable.open` is purely in memory and none of this runs.

Directory layout (``tsdb.path``)::

    lock                     flock(2)-held while a process has the store open
    block.00000017 ...       closed chunks, each written once by the checkpoint at that segment (blocks.py)
    checkpoint.00000041      every series' head at the cut of segment 41, and the live blocks (checkpoint.py)
    wal/00000042 ...         records appended since (wal.py)

WAL records (payloads; the framing and CRC are :mod:`monitor.tsdb.wal`'s):

- ``SERIES`` (1): msgpack ``[[sid, [name, value, ...]], ...]`` — new series and their ids;
- ``SAMPLES`` (2): msgpack ``[ids, timestamps, values]``, three little-endian arrays (int64,
  int64 ms, float64): sample ``i`` of series ``ids[i]``, in append order;
- ``CLEAR`` (3): empty — every series was dropped (:meth:`SampleStore.clear`).

What is logged: every accepted append also goes to three pending arrays (series id, timestamp,
value: about 100 ns a sample); :meth:`Durable.flush` writes them as one ``SAMPLES`` record (after a
``SERIES`` record for the series created since). When a downsampled series replaces its last
sample (:mod:`monitor.tsdb.retention`), the replacement is logged like any append and replay
applies the same replacement. With a tee set (:meth:`Durable.set_tee`: remote write), each flush
also hands the same arrays to it, after the WAL write — in memory too, where nothing else is
logged; replayed samples are not handed on.

Fsync policy: the daemon calls :meth:`Durable.flush` every ``tsdb.sync_interval`` (default 1 s)
and runs the fsync it returns in a worker thread. A sample is *acknowledged* once a flush after
its append returned: a kill -9 then loses nothing acknowledged (the record is in the operating
system's page cache), and once that flush's fsync ran, neither does a power loss. At most the
last interval of samples is lost to a crash. :meth:`Durable.close` flushes and fsyncs.

Checkpoints (Prometheus's ``tsdb/wlog/checkpoint.go`` idea, over the in-memory state rather than
the log), incremental: :meth:`Durable.checkpoint` cuts the WAL at segment N; writes the closed
chunks not yet on disk to ``block.N`` (from a worker thread: fsync, rename, directory fsync);
copies every series' head on the event loop a slice at a time and writes them from a worker
thread to ``checkpoint.N``, whose trailer names the blocks holding live chunks; renames it into
place; then deletes segments up to N, the older checkpoint and the blocks it no longer names
(all their chunks expired). A kill at any point leaves either the old checkpoint (with its blocks
and the WAL after it; a newer unnamed block is deleted at open) or the new one complete. No chunk
is closed while a checkpoint runs (:meth:`SampleStore.gc` waits), so its copy of the heads and
its block are disjoint and whole. Disk use is thus one checkpoint, the live blocks and the WAL
written since. Replay is idempotent (a sample already held is a no-op, an older one is
dropped), so samples appended while the copy runs, which land both in the checkpoint and in
segment N+1, replay to the same state.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import msgpack

from model.labels import Labels
from monitor.errors import StoreError
from .blocks import BlockError, BlockRecord, block_path, list_blocks, read_block, remove_blocks, write_block
from .checkpoint import CheckpointError, CheckpointWriter, latest_checkpoint, read_checkpoint, remove_stale
from .chunks import CHUNK_OVERHEAD_BYTES, COLD_BYTES, Cold, decode, from_le_bytes, to_le_bytes
from .index import SeriesIndex, _Series
from .wal import WAL

__all__ = ["Durable", "ReplayStats", "Tee", "SERIES", "SAMPLES", "CLEAR"]

log = logging.getLogger(__name__)

SERIES, SAMPLES, CLEAR = 1, 2, 3
#: Samples copied per step of a checkpoint (on the loop, between thread hand-offs): ~16 MB.
CHECKPOINT_CHUNK_SAMPLES = 1_000_000


@dataclass
class ReplayStats:
    """What :meth:`Durable.open` found on disk.

    :ivar checkpoint_series: series loaded from the checkpoint (0 without one).
    :ivar checkpoint_samples: samples loaded from it.
    :ivar wal_records: intact WAL records replayed.
    :ivar wal_samples: samples in them (some may have been dropped as already held or expired).
    :ivar repaired: torn or corrupt records cut off (a kill -9 leaves at most one).
    :ivar seconds: wall time of the whole replay.
    """

    checkpoint_series: int = 0
    checkpoint_samples: int = 0
    wal_records: int = 0
    wal_samples: int = 0
    repaired: int = 0
    seconds: float = 0.0


def _flat(labels: Labels) -> list[str]:
    return [x for pair in labels for x in pair]


def _labels(flat: list[str]) -> Labels:
    return tuple.__new__(Labels, tuple(zip(flat[::2], flat[1::2])))


def _noop() -> None:
    return None


#: ``tee(ids, timestamps_ms, values, labels_of)``: see :meth:`Durable.set_tee`.
Tee = Callable[[array, array, array, Callable[[int], "Labels | None"]], None]


class Durable(SeriesIndex):
    """The disk side of the sample store (a base of ``SampleStore``; see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._sample_count = 0
        self.out_of_order_total = 0
        self.rejected_series_total = 0
        self.appended_total = 0
        self.path: Path | None = None
        self._wal: WAL | None = None
        self._lock_fd: int | None = None
        self._checkpointing = False
        self._last_checkpoint_ms = 0
        self._wal_bytes_at_checkpoint = 0
        # Accepted samples not yet in the WAL: (series ids, timestamps, values); None in memory.
        self._log: tuple[array, array, array] | None = None
        #: WAL writes that failed (disk full, I/O error); their samples are retried at the next flush.
        self.wal_errors_total = 0
        #: The last checkpoint's wall time, seconds, and bytes written (0 before the first).
        self.last_checkpoint_seconds = 0.0
        self.last_checkpoint_bytes = 0
        # Block files on disk by number: their size, bytes.
        self._block_bytes: dict[int, int] = {}
        # Gets every accepted sample at each flush (remote write): see ``set_tee``.
        self._tee: Tee | None = None

    # Provided by SampleStore.
    def _add(self, s: _Series, t: int, v: float) -> bool | None:
        raise NotImplementedError

    def gc(self, now_ms: int, max_chunks: int | None = 0) -> int:
        """Apply retention, close chunks (see ``SampleStore.gc``)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Drop everything (see ``SampleStore.clear``)."""
        raise NotImplementedError

    @property
    def durable(self) -> bool:
        """Whether the store writes a WAL (``open`` was called and ``close`` was not)."""
        return self._wal is not None

    # ------------------------------------------------------------------ open and replay

    def open(self, path: str | os.PathLike[str], *, now_ms: int | None = None,
             segment_bytes: int = 32 << 20) -> ReplayStats:
        """Load the store from ``path`` (checkpoint, then WAL), apply retention, start logging.

        Call it once, on an empty store, before anything appends. Listeners are not called for
        replayed samples. Torn or corrupt WAL tails are cut off and logged, never fatal; a
        corrupt checkpoint is renamed ``*.corrupt`` and logged (its series up to the damage are
        kept).

        :param path: the store's directory (created if missing).
        :param now_ms: the current time for retention, int ms (default: the clock).
        :param segment_bytes: WAL segment size, bytes.
        :return: what was found (:class:`ReplayStats`).
        :raises StoreError: the directory cannot be created or written, or another process
            has it open.
        :raises RuntimeError: the store is already open or holds samples.
        """
        if self._wal is not None or self._by_id:
            raise RuntimeError("SampleStore.open: the store is already open or holds samples")
        t0 = time.monotonic()
        now = int(time.time() * 1000) if now_ms is None else now_ms
        directory = Path(path)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock(directory)
            wal = WAL(directory / "wal", segment_bytes)
        except OSError as e:
            self.close()  # releases the lock, if taken
            raise StoreError(f"sample store {directory}: {e.strerror or e}") from e
        stats = ReplayStats()
        counters = (self.out_of_order_total, self.rejected_series_total, self.appended_total)
        pending, self._log = self._log, None  # replayed samples reach neither the WAL nor the tee
        try:
            after = self._load_checkpoint(directory, stats)
            self._replay_wal(wal, after, stats)
            self.out_of_order_total, self.rejected_series_total, self.appended_total = counters
            stats.repaired = wal.repaired_total
            self.gc(now, max_chunks=None)
            wal.start()
        except BaseException as e:
            self.close()  # releases the lock
            if isinstance(e, OSError):
                raise StoreError(f"sample store {directory}: {e.strerror or e}") from e
            raise
        self.path, self._wal = directory, wal
        self._track_new = True
        self._log = pending if pending is not None else (array("q"), array("q"), array("d"))
        if not self._last_checkpoint_ms:
            self._last_checkpoint_ms = now
        self._wal_bytes_at_checkpoint = 0
        stats.seconds = time.monotonic() - t0
        log.info("sample store opened", extra={
            "path": str(directory), "series": self.series_count, "samples": self._sample_count,
            "checkpoint_samples": stats.checkpoint_samples, "wal_records": stats.wal_records,
            "repaired": stats.repaired, "seconds": round(stats.seconds, 3)})
        return stats

    def _lock(self, directory: Path) -> None:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"sample store {directory} is in use by another process (lock held)") from None
        self._lock_fd = fd

    def _load_checkpoint(self, directory: Path, stats: ReplayStats) -> int:
        """Load the newest checkpoint and the blocks it names; return the last WAL segment it
        covers (0 without one). Blocks it does not name (a kill before their checkpoint was
        written) are deleted: the previous checkpoint and the WAL still hold their samples."""
        found = latest_checkpoint(directory)
        remove_stale(directory, found[1] if found else None)
        if found is None:
            remove_blocks(directory, ())
            return 0
        segment, path = found
        try:
            header, records, trailer = read_checkpoint(path)
            self._last_checkpoint_ms = int(header.get("time_ms") or 0)
            for sid, labels, ts, vs in records:
                s = self._by_labels.get(labels) or self._create(labels, sid)
                if len(s.ts):
                    continue
                s.ts, s.vs = ts, vs
                self._slots += len(ts)
                self._sample_count += len(ts)
                stats.checkpoint_series += 1
                stats.checkpoint_samples += len(ts)
            blocks = sorted(int(b) for b in trailer["blocks"])
        except CheckpointError as e:
            log.error("sample store: corrupt checkpoint set aside; loading every block and replaying the WAL left",
                      extra={"path": str(path), "error": str(e)})
            path.rename(path.with_name(path.name + ".corrupt"))
            self._load_blocks(directory, sorted(list_blocks(directory)), stats)
            return 0
        remove_blocks(directory, blocks)
        self._load_blocks(directory, blocks, stats)
        return segment

    def _load_blocks(self, directory: Path, blocks: list[int], stats: ReplayStats) -> None:
        """Attach the chunks of ``blocks`` (ascending) to their series (created if missing)."""
        found: dict[int, list[tuple[int, int, int, bytes, int]]] = {}
        for b in blocks:
            p = block_path(directory, b)
            records: list[BlockRecord] = []
            try:
                for rec in read_block(p):
                    records.append(rec)
                self._block_bytes[b] = p.stat().st_size
                mark = b
            except BlockError as e:
                # Keep what was read, as chunks only in memory: the next checkpoint rewrites them.
                log.error("sample store: corrupt block set aside; its chunks up to the damage are kept",
                          extra={"path": str(p), "error": str(e)})
                if p.exists():
                    p.rename(p.with_name(p.name + ".corrupt"))
                mark = 0
            for sid, labels, mints, maxts, ns, data in records:
                s = self._by_labels.get(labels)
                if s is None:  # not ``or``: a series without head samples is falsy (``__len__``)
                    s = self._create(labels, sid)
                found.setdefault(s.sid, []).extend(zip(mints, maxts, ns, data, [mark] * len(data)))
        # Per series, oldest first (a re-written damaged block's chunks are older than later blocks').
        for sid, chunks in found.items():
            s = self._by_id[sid]
            chunks.sort(key=itemgetter(0))
            c = s.cold
            if c is None:
                c = s.cold = Cold()
                self._cold_bytes += COLD_BYTES
            head_first = s.ts[s.start] if len(s.ts) > s.start else 1 << 62
            for mint, maxt, n, chunk, mark in chunks:
                if (len(c) and mint <= c.maxt[-1]) or maxt >= head_first:
                    continue  # overlaps what is held (never written so; a safeguard)
                c.add(chunk, mint, maxt, n, mark)
                self._cold_bytes += len(chunk) + CHUNK_OVERHEAD_BYTES
                self._sample_count += n
                stats.checkpoint_samples += n
                if mark:
                    self._block_live[mark] = self._block_live.get(mark, 0) + 1
            if not len(c):
                s.cold = None
                self._cold_bytes -= COLD_BYTES
        for s in self._by_id.values():
            c = s.cold
            if c is not None and len(s.ts) == s.start:  # chunks but no head (a lost checkpoint)
                self._reopen_last_chunk(s, c)

    def _reopen_last_chunk(self, s: _Series, c: Cold) -> None:
        """Move the newest chunk of ``s`` back into its (empty) head, so appends find a last sample."""
        ts, vs = decode(c.data[-1])
        i = bisect_left(ts, c.mint[-1])
        self._cold_bytes -= len(c.data[-1]) + CHUNK_OVERHEAD_BYTES
        if c.block[-1]:
            self._block_live[c.block[-1]] -= 1
        del c.mint[-1], c.maxt[-1], c.n[-1], c.data[-1], c.block[-1]
        s.ts, s.vs, s.start = ts[i:], vs[i:], 0
        self._slots += len(ts) - i
        if not len(c):
            s.cold = None
            self._cold_bytes -= COLD_BYTES

    def _replay_wal(self, wal: WAL, after: int, stats: ReplayStats) -> None:
        by_sid: dict[int, _Series] = dict(self._by_id)
        add = self._add
        for _segment, rtype, payload in wal.records(after):
            stats.wal_records += 1
            if rtype == SERIES:
                for sid, flat in msgpack.unpackb(payload):
                    labels = _labels(flat)
                    s = self._by_labels.get(labels)
                    if s is None:
                        s = self._create(labels, sid)
                        if s.sid != sid:  # its id was taken: the next flush records the new one
                            self._new_series.append(s)
                    by_sid[sid] = s
                    self._next_id = max(self._next_id, sid + 1)
            elif rtype == SAMPLES:
                ids_b, ts_b, vs_b = msgpack.unpackb(payload)
                ts, vs = from_le_bytes("q", ts_b), from_le_bytes("d", vs_b)
                get = by_sid.get
                for sid, t, v in zip(from_le_bytes("q", ids_b), ts, vs):
                    s = get(sid)
                    if s is not None:
                        add(s, t, v)
                stats.wal_samples += len(ts)
            elif rtype == CLEAR:
                self.clear()
                by_sid.clear()

    # ------------------------------------------------------------------ logging

    def flush(self) -> Callable[[], None]:
        """Write the samples appended since the last flush (and new series) to the WAL.

        One or two ``os.write`` calls. A failed write (disk full) is logged and counted in
        :attr:`wal_errors_total`; its samples stay pending and go out with the next flush.

        :return: a function that fsyncs what was written; run it in a worker thread
            (``await asyncio.to_thread(store.flush())``). A no-op for an in-memory store.
        """
        wal, log_ = self._wal, self._log
        if log_ is None:
            return _noop
        if wal is None:  # in memory, with a tee
            if log_[0]:
                self._log = (array("q"), array("q"), array("d"))
                self._call_tee(log_)
            return _noop
        try:
            if self._new_series:
                new, self._new_series = self._new_series, []
                try:
                    wal.write(SERIES, msgpack.packb([[s.sid, _flat(s.labels)] for s in new]))
                except OSError:
                    self._new_series = new + self._new_series
                    raise
            if log_[0]:
                self._log = (array("q"), array("q"), array("d"))
                try:
                    wal.write(SAMPLES, msgpack.packb([to_le_bytes(a) for a in log_]))
                except OSError:
                    self._log = (log_[0] + self._log[0], log_[1] + self._log[1], log_[2] + self._log[2])
                    raise
                self._call_tee(log_)
        except OSError as e:
            self.wal_errors_total += 1
            log.error("sample store: WAL write failed; retrying at the next flush",
                      extra={"path": str(self.path), "error": str(e)})
            return _noop
        return wal.fsync_handle()

    def set_tee(self, tee: Tee | None) -> None:
        """Hand every sample accepted from now on to ``tee`` at each :meth:`flush` (remote write).

        ``tee(ids, timestamps, values, labels_of)`` gets the flushed samples in append order
        (series ids, int ms, float64: three equal-length arrays) and ``labels_of(id)``, the label
        set of a series id (``None`` if it is gone). It runs on the loop, inside ``flush``, after
        the WAL write (a durable store) and must not append. Every append path logs here (the
        single place all samples pass), so probes, scrapes, rule results and self metrics all
        reach it. An in-memory store keeps the pending arrays only while a tee is set; the owner
        then calls :meth:`flush` periodically. ``None`` removes the tee.
        """
        self._tee = tee
        if tee is not None and self._log is None:
            self._log = (array("q"), array("q"), array("d"))
        elif tee is None and self._wal is None:
            self._log = None

    def _call_tee(self, log_: tuple[array, array, array]) -> None:
        tee = self._tee
        if tee is None or not log_[0]:
            return
        try:
            tee(log_[0], log_[1], log_[2], self._labels_of)
        except Exception:  # noqa: BLE001 - remote write must never break the store
            log.exception("sample store: tee failed")

    def _labels_of(self, sid: int) -> Labels | None:
        s = self._by_id.get(sid)
        return s.labels if s is not None else None

    def _log_sample(self, sid: int, t: int, v: float) -> None:
        """Queue one accepted sample for the next :meth:`flush` (durable stores only)."""
        log_ = self._log
        if log_ is not None:
            log_[0].append(sid)
            log_[1].append(t)
            log_[2].append(v)

    def sync(self) -> None:
        """Flush and fsync, here and now (tests, benchmarks, shutdown)."""
        self.flush()()

    def _log_clear(self) -> None:
        if self._wal is not None:
            # What was pending is cleared too: it need not reach the log.
            self._new_series = []
            self._log = (array("q"), array("q"), array("d"))
            try:
                self._wal.write(CLEAR, b"")
            except OSError as e:
                self.wal_errors_total += 1
                log.error("sample store: WAL write failed", extra={"path": str(self.path), "error": str(e)})

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_due(self, now_ms: int, interval_seconds: float, wal_bytes: int = 256 << 20) -> bool:
        """Return whether a checkpoint is due: ``interval_seconds`` since the last one (across
        restarts: the checkpoint records its time), or ``wal_bytes`` of WAL written since."""
        if self._wal is None or self._checkpointing:
            return False
        return (now_ms - self._last_checkpoint_ms >= interval_seconds * 1000
                or self._wal_written() - self._wal_bytes_at_checkpoint >= wal_bytes)

    def _wal_written(self) -> int:
        return self._wal.written_total if self._wal is not None else 0

    async def checkpoint(self, now_ms: int | None = None) -> Path | None:
        """Write a checkpoint and delete the WAL segments and the checkpoint it supersedes.

        Runs on the event loop that appends; the encoding and writing happen in worker
        threads, a chunk of ~1 M samples at a time, so appends go on meanwhile.

        :return: the new checkpoint's path, or ``None`` (in-memory store, or one already running).
        :raises OSError: the checkpoint could not be written (the WAL is kept; nothing is lost).
        """
        wal, directory = self._wal, self.path
        if wal is None or directory is None or self._checkpointing:
            return None
        self._checkpointing = True
        now = int(time.time() * 1000) if now_ms is None else now_ms
        t0 = time.monotonic()
        try:
            self.flush()
            segment = wal.cut()
            new_chunks = self._unwritten_chunks()
            block_size = 0
            if new_chunks:
                block_size = await asyncio.to_thread(write_block, directory, segment, new_chunks)
            writer = CheckpointWriter(directory, segment, now)
            try:
                series = list(self._by_id.values())
                i = 0
                while i < len(series):
                    chunk, budget = [], CHECKPOINT_CHUNK_SAMPLES
                    while i < len(series) and budget > 0:
                        s = series[i]
                        i += 1
                        if len(s):
                            chunk.append((s.sid, s.labels, s.ts[s.start:], s.vs[s.start:]))
                            budget -= len(s)
                    await asyncio.to_thread(writer.write_series, chunk)
                blocks = sorted(b for b, n in self._block_live.items() if n > 0)
                if new_chunks:
                    blocks.append(segment)
                path = await asyncio.to_thread(writer.commit, blocks)
            except BaseException:
                writer.abort()
                if new_chunks:
                    remove_blocks(directory, list(self._block_bytes))
                raise
            if new_chunks:
                self._block_bytes[segment] = block_size
                self._mark_written(segment)
            remove_stale(directory, path)
            for b in [b for b in self._block_bytes if b not in blocks]:
                del self._block_bytes[b]
                self._block_live.pop(b, None)
            remove_blocks(directory, blocks)
            wal.delete_through(segment)
            self._last_checkpoint_ms = now
            self._wal_bytes_at_checkpoint = wal.written_total
            self.last_checkpoint_seconds = time.monotonic() - t0
            self.last_checkpoint_bytes = path.stat().st_size + block_size
            log.info("sample store checkpoint written", extra={
                "path": str(path), "series": writer.series, "samples": writer.samples,
                "block_chunks": sum(len(r[5]) for r in new_chunks), "bytes": self.last_checkpoint_bytes,
                "seconds": round(self.last_checkpoint_seconds, 3)})
            return path
        finally:
            self._checkpointing = False

    def _unwritten_chunks(self) -> list[BlockRecord]:
        """Collect the closed chunks not yet in a block file (references: chunks are immutable)."""
        out: list[BlockRecord] = []
        for s in self._by_id.values():
            c = s.cold
            if c is None or not c.block.count(0):
                continue
            ks = [k for k, b in enumerate(c.block) if not b]
            out.append((s.sid, s.labels, array("q", [c.mint[k] for k in ks]), array("q", [c.maxt[k] for k in ks]),
                        array("q", [c.n[k] for k in ks]), [c.data[k] for k in ks]))
        return out

    def _mark_written(self, block: int) -> None:
        """Record that every chunk only in memory is now in block ``block`` (no chunk is closed
        while a checkpoint runs, so they are the ones it wrote, less any that expired since)."""
        live = 0
        for s in self._by_id.values():
            c = s.cold
            if c is None or not c.block.count(0):
                continue
            bl = c.block
            for k in range(len(bl)):
                if not bl[k]:
                    bl[k] = block
                    live += 1
        self._block_live[block] = live

    # ------------------------------------------------------------------ sizes and closing

    def disk_bytes(self) -> int:
        """Return the bytes the store holds on disk (checkpoint, blocks and WAL), 0 in memory."""
        if self.path is None or self._wal is None:
            return 0
        found = latest_checkpoint(self.path)
        return ((found[1].stat().st_size if found else 0) + self._wal.size_bytes()
                + sum(self._block_bytes.values()))

    def close(self) -> None:
        """Flush, fsync and close the WAL, release the lock (idempotent; no-op in memory)."""
        if self._wal is not None:
            try:
                self.sync()
            finally:
                self._wal.close()
                self._wal = None
                self._log = None if self._tee is None else (array("q"), array("q"), array("d"))
                self._track_new = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
