"""The write-ahead log: append-only numbered segment files of CRC-checked records.

Layout, under the store's directory::

    wal/00000001  wal/00000002 ...   segments, each at most ``segment_bytes`` (default 32 MiB)

A record is a 9-byte header and a payload::

    length  uint32 little-endian   bytes of payload
    crc     uint32 little-endian   CRC-32 (zlib) of the type byte and the payload
    type    uint8                  SERIES, SAMPLES or CLEAR (see monitor.tsdb.persist)
    payload length bytes

Our own format, shaped like Prometheus's WAL (``tsdb/wlog/wlog.go``: numbered segments,
CRC per record, repair by truncation) without its 32 KiB pages: a process killed with -9 leaves
at worst one torn record at the end of the segment it was writing, and :meth:`WAL.records`
truncates a segment at its first short or CRC-mismatched record, logs it, and goes on with the
next segment (samples there are later in time, so per-series order still holds). Nothing in a
segment is ever rewritten; the store deletes whole segments once a checkpoint holds their
samples (:meth:`WAL.delete_through`).

Durability: :meth:`WAL.write` hands each record to the operating system at once (one
``os.write``), so a kill -9 of the process loses nothing written; :meth:`WAL.fsync_handle`
returns a function that fsyncs the current segment (run it off the event loop), after which a
power loss loses nothing written before it. A segment is fsynced when it is cut.

Not thread-safe: one writer, on the daemon's event loop; only the function returned by
:meth:`WAL.fsync_handle` may run in another thread.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["WAL", "HEADER"]

log = logging.getLogger(__name__)

#: ``(length, crc32, type)`` before every payload.
HEADER = struct.Struct("<IIB")
_SEGMENT = re.compile(r"^\d{8}$")
#: A record larger than this is corruption, not data (the largest real one is one flush).
MAX_RECORD_BYTES = 1 << 30


def segment_name(n: int) -> str:
    """Return the file name of segment ``n`` (``00000042``)."""
    return f"{n:08d}"


def fsync_dir(path: Path) -> None:
    """Fsync a directory so that files created, renamed or deleted in it stay so after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WAL:
    """Append records to numbered segments in ``directory``; read them back, repairing torn tails.

    :param directory: the ``wal/`` directory (created if missing).
    :param segment_bytes: a segment is cut (closed, fsynced, the next one opened) once it
        holds at least this many bytes.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> w = WAL(d); w.start(); w.write(2, b"abc"); w.close()
    >>> list(WAL(d).records(0))
    [(1, 2, b'abc')]
    """

    def __init__(self, directory: Path, segment_bytes: int = 32 << 20) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._fd_lock = threading.Lock()  # taken to swap _fd, and by fsync_handle's function to dup it
        self._closed = False
        self._segment = 0
        self._size = 0
        #: Records dropped by repair since this object was made (torn or corrupt tails).
        self.repaired_total = 0
        #: Bytes written by this object (all segments).
        self.written_total = 0
        self.dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def segments(self) -> list[int]:
        """Return the numbers of the segments on disk, ascending."""
        return sorted(int(p.name) for p in self.dir.iterdir() if _SEGMENT.match(p.name))

    def records(self, after: int) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(segment, type, payload)`` of every intact record in segments numbered above ``after``.

        A segment whose tail is short or fails its CRC is truncated at the first bad record
        (logged at WARNING for the last segment, where a kill leaves it, ERROR elsewhere).
        """
        segments = [n for n in self.segments() if n > after]
        for i, n in enumerate(segments):
            path = self.dir / segment_name(n)
            data = path.read_bytes()
            pos = 0
            end = len(data)
            while pos < end:
                if end - pos < HEADER.size:
                    break
                length, crc, rtype = HEADER.unpack_from(data, pos)
                start = pos + HEADER.size
                if length > MAX_RECORD_BYTES or start + length > end:
                    break
                payload = data[start:start + length]
                if zlib.crc32(payload, zlib.crc32(bytes((rtype,)))) != crc:
                    break
                yield n, rtype, payload
                pos = start + length
            if pos < end:
                self.repaired_total += 1
                level = logging.WARNING if i == len(segments) - 1 else logging.ERROR
                log.log(level, "wal: truncating a torn or corrupt record", extra={
                    "segment": str(path), "offset": pos, "dropped_bytes": end - pos})
                with open(path, "r+b") as f:
                    f.truncate(pos)
                    f.flush()
                    os.fsync(f.fileno())

    # ------------------------------------------------------------------ writing

    @property
    def segment(self) -> int:
        """The number of the segment being written (0 before :meth:`start`)."""
        return self._segment

    def start(self) -> None:
        """Open a new segment after the last one on disk (a replayed segment is never appended to)."""
        existing = self.segments()
        self._open(existing[-1] + 1 if existing else 1)

    def _open(self, n: int) -> None:
        path = self.dir / segment_name(n)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with self._fd_lock:
            self._fd = fd
        self._segment = n
        self._size = os.fstat(fd).st_size
        fsync_dir(self.dir)

    def write(self, rtype: int, payload: bytes) -> None:
        """Append one record to the current segment (cut first when it is full).

        :raises OSError: the write failed (disk full, I/O error); the segment is cut so that a
            partly written record stays at a segment's end, where replay truncates it.
        """
        if not self._segment or self._closed:
            raise RuntimeError("WAL.write before start() or after close()")
        if self._fd is None:
            self._open(self._segment + 1)  # a cut whose next segment could not be created
        elif self._size >= self.segment_bytes:
            self.cut()
        fd = self._fd
        assert fd is not None  # _open set it or raised
        crc = zlib.crc32(payload, zlib.crc32(bytes((rtype,))))
        buf = memoryview(HEADER.pack(len(payload), crc, rtype) + payload)
        try:
            while buf:
                n = os.write(fd, buf)
                buf = buf[n:]
        except OSError:
            self.cut()
            raise
        self._size += HEADER.size + len(payload)
        self.written_total += HEADER.size + len(payload)

    def cut(self) -> int:
        """Close the current segment (fsynced) and open the next one.

        :return: the number of the segment just closed.
        :raises OSError: fsyncing the old segment or creating the new one failed (the next
            :meth:`write` tries to create it again).
        """
        if not self._segment or self._closed:
            raise RuntimeError("WAL.cut before start() or after close()")
        closed = self._segment
        with self._fd_lock:
            fd, self._fd = self._fd, None
        try:
            if fd is not None:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        finally:  # even when the old segment failed to sync: later records go to a new one
            self._open(closed + 1)
        return closed

    def fsync_handle(self) -> Callable[[], None]:
        """Return a function that fsyncs what was written so far to the current segment.

        The function may run in a worker thread while this WAL goes on writing and cutting on the
        loop: it fsyncs a duplicate of the descriptor, taken under a lock the loop holds only to
        swap descriptors (a segment cut meanwhile was fsynced by the cut). Dropping the function
        without calling it holds nothing open.
        """
        def fsync() -> None:
            with self._fd_lock:
                fd = None if self._fd is None else os.dup(self._fd)
            if fd is None:
                return
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return fsync

    def delete_through(self, n: int) -> int:
        """Delete the segments numbered ``n`` and below (a checkpoint holds their samples).

        :return: the number of segments deleted.
        """
        gone = 0
        for m in self.segments():
            if m <= n and m != self._segment:
                (self.dir / segment_name(m)).unlink(missing_ok=True)
                gone += 1
        if gone:
            fsync_dir(self.dir)
        return gone

    def size_bytes(self) -> int:
        """Return the bytes of every segment on disk."""
        return sum((self.dir / segment_name(n)).stat().st_size for n in self.segments())

    def close(self) -> None:
        """Fsync and close the current segment (idempotent); no writes after it."""
        self._closed = True
        with self._fd_lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
