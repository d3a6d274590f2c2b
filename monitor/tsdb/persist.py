"""Durability of the sample store: WAL records, replay at open, flush, fsync, checkpoints.

:class:`Durable` is the part of :class:`monitor.tsdb.store.SampleStore` that talks to disk. A
store made without :meth:`Durable.open` is purely in memory and none of this runs.

Directory layout (``tsdb.path``)::

    lock                     flock(2)-held while a process has the store open
    checkpoint.00000041      every series and sample up to the cut of segment 41 (checkpoint.py)
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
applies the same replacement.

Fsync policy: the daemon calls :meth:`Durable.flush` every ``tsdb.sync_interval`` (default 1 s)
and runs the fsync it returns in a worker thread. A sample is *acknowledged* once a flush after
its append returned: a kill -9 then loses nothing acknowledged (the record is in the operating
system's page cache), and once that flush's fsync ran, neither does a power loss. At most the
last interval of samples is lost to a crash. :meth:`Durable.close` flushes and fsyncs.

Checkpoints (Prometheus's ``tsdb/wlog/checkpoint.go`` idea, over the in-memory state rather than
the log): :meth:`Durable.checkpoint` cuts the WAL at segment N, copies the series on the event
loop a chunk at a time, writes them from a worker thread, renames the file into place and
deletes segments up to N and the older checkpoint. Disk use is thus one checkpoint plus the WAL
written since it. Replay is idempotent (a sample already held is a no-op, an older one is
dropped), so samples appended while the copy runs, which land both in the checkpoint and in
segment N+1, replay to the same state.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgpack

from model.labels import Labels
from monitor.errors import StoreError
from .checkpoint import CheckpointError, CheckpointWriter, latest_checkpoint, read_checkpoint, remove_stale
from .index import SeriesIndex, _Series
from .wal import WAL

__all__ = ["Durable", "ReplayStats", "SERIES", "SAMPLES", "CLEAR"]

log = logging.getLogger(__name__)

SERIES, SAMPLES, CLEAR = 1, 2, 3
_LITTLE = sys.byteorder == "little"
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


def _le_bytes(a: array) -> bytes:
    if not _LITTLE:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _le_array(typecode: str, data: bytes) -> array:
    a = array(typecode)
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


def _flat(labels: Labels) -> list[str]:
    return [x for pair in labels for x in pair]


def _labels(flat: list[str]) -> Labels:
    return tuple.__new__(Labels, tuple(zip(flat[::2], flat[1::2])))


def _noop() -> None:
    return None


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

    # Provided by SampleStore.
    def _add(self, s: _Series, t: int, v: float) -> bool | None:
        raise NotImplementedError

    def gc(self, now_ms: int) -> int:
        """Apply retention (see ``SampleStore.gc``)."""
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
        try:
            after = self._load_checkpoint(directory, stats)
            self._replay_wal(wal, after, stats)
            self.out_of_order_total, self.rejected_series_total, self.appended_total = counters
            stats.repaired = wal.repaired_total
            self.gc(now)
            wal.start()
        except BaseException as e:
            self.close()  # releases the lock
            if isinstance(e, OSError):
                raise StoreError(f"sample store {directory}: {e.strerror or e}") from e
            raise
        self.path, self._wal = directory, wal
        self._track_new = True
        self._log = (array("q"), array("q"), array("d"))
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
        """Load the newest checkpoint; return the last WAL segment it covers (0 without one)."""
        found = latest_checkpoint(directory)
        remove_stale(directory, found[1] if found else None)
        if found is None:
            return 0
        segment, path = found
        try:
            header, records = read_checkpoint(path)
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
        except CheckpointError as e:
            log.error("sample store: corrupt checkpoint set aside; replaying the WAL left",
                      extra={"path": str(path), "error": str(e)})
            path.rename(path.with_name(path.name + ".corrupt"))
            return 0
        return segment

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
                ts, vs = _le_array("q", ts_b), _le_array("d", vs_b)
                get = by_sid.get
                for sid, t, v in zip(_le_array("q", ids_b), ts, vs):
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
        if wal is None or log_ is None:
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
                    wal.write(SAMPLES, msgpack.packb([_le_bytes(a) for a in log_]))
                except OSError:
                    self._log = (log_[0] + self._log[0], log_[1] + self._log[1], log_[2] + self._log[2])
                    raise
        except OSError as e:
            self.wal_errors_total += 1
            log.error("sample store: WAL write failed; retrying at the next flush",
                      extra={"path": str(self.path), "error": str(e)})
            return _noop
        return wal.fsync_handle()

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
                path = await asyncio.to_thread(writer.commit)
            except BaseException:
                writer.abort()
                raise
            remove_stale(directory, path)
            wal.delete_through(segment)
            self._last_checkpoint_ms = now
            self._wal_bytes_at_checkpoint = wal.written_total
            self.last_checkpoint_seconds = time.monotonic() - t0
            self.last_checkpoint_bytes = path.stat().st_size
            log.info("sample store checkpoint written", extra={
                "path": str(path), "series": writer.series, "samples": writer.samples})
            return path
        finally:
            self._checkpointing = False

    # ------------------------------------------------------------------ sizes and closing

    def disk_bytes(self) -> int:
        """Return the bytes the store holds on disk (checkpoint and WAL), 0 in memory."""
        if self.path is None or self._wal is None:
            return 0
        found = latest_checkpoint(self.path)
        return (found[1].stat().st_size if found else 0) + self._wal.size_bytes()

    def close(self) -> None:
        """Flush, fsync and close the WAL, release the lock (idempotent; no-op in memory)."""
        if self._wal is not None:
            try:
                self.sync()
            finally:
                self._wal.close()
                self._wal = None
                self._log = None
                self._track_new = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
