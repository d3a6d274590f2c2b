"""Checkpoints: the heads of the sample store and the list of its blocks, so the WAL segments
they cover can go.

``checkpoint.NNNNNNNN`` holds, as the store was when WAL segment ``NNNNNNNN`` was cut, every
series' head samples (those not yet in closed chunks) and names the block files
(:mod:`monitor.tsdb.blocks`) holding the closed chunks: replay loads both, then the segments
numbered above it. Closed chunks are written once, to a block, so a checkpoint rewrites only the
heads (about two hours of each series). It is a msgpack stream (the ``msgpack`` library's
encoding; our own layout):

1. a header map ``{"format": 2, "segment": N, "time_ms": t}``;
2. one array per series ``[sid, [name, value, name, value, ...], n, first_t, deltas, values]``:
   ``n`` head samples, ``first_t`` int milliseconds, ``deltas`` the ``n - 1`` timestamp
   differences as little-endian int64 and ``values`` the ``n`` float64 values, each
   zlib-compressed (level 1: differences of a regular series are one repeated number);
3. a trailer map ``{"series": count, "samples": count, "blocks": [N, ...]}``; a file without it
   is incomplete. Format 1 (the first release: every sample in the file, no blocks) is still read.

It is written to ``checkpoint.N.tmp``, fsynced, renamed into place and the directory fsynced, so a
checkpoint file is complete or absent; ``.tmp`` files left by a kill are deleted at the next
open. zlib's Adler-32 and the trailer catch corruption (:class:`CheckpointError`).
"""

from __future__ import annotations

import os
import re
import zlib
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from operator import sub
from pathlib import Path
from typing import Any

import msgpack

from model.labels import Labels
from .chunks import from_le_bytes, to_le_bytes
from .wal import fsync_dir

__all__ = ["CheckpointError", "CheckpointWriter", "latest_checkpoint", "read_checkpoint"]

FORMAT = 2
_READABLE = (1, 2)
_NAME = re.compile(r"^checkpoint\.(\d{8})$")
_LEVEL = 1

#: One series as a checkpoint holds it: ``(sid, labels, timestamps, values)``.
SeriesRecord = tuple[int, Labels, array, array]


class CheckpointError(Exception):
    """A checkpoint file is incomplete or corrupt."""


def checkpoint_path(directory: Path, segment: int) -> Path:
    """Return the path of the checkpoint that covers WAL segments up to ``segment``."""
    return directory / f"checkpoint.{segment:08d}"


def latest_checkpoint(directory: Path) -> tuple[int, Path] | None:
    """Return ``(segment, path)`` of the newest checkpoint in ``directory``, or ``None``."""
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return max(found) if found else None


def remove_stale(directory: Path, keep: Path | None) -> None:
    """Delete checkpoints other than ``keep`` and ``.tmp`` files a kill left behind."""
    for p in directory.iterdir():
        if p != keep and (_NAME.match(p.name) or (p.name.startswith("checkpoint.") and p.name.endswith(".tmp"))):
            p.unlink(missing_ok=True)


class CheckpointWriter:
    """Write one checkpoint: :meth:`write_series` any number of times, then :meth:`commit`.

    The methods do file I/O and compression only (no store access), so they may run in a worker
    thread on copies the event loop made.

    :param directory: the store's directory.
    :param segment: the last WAL segment the checkpoint covers.
    :param time_ms: when it was taken, int milliseconds since the epoch.
    """

    def __init__(self, directory: Path, segment: int, time_ms: int) -> None:
        self.directory = directory
        self.path = checkpoint_path(directory, segment)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self._f = open(self.tmp, "wb")
        self._packer = msgpack.Packer()
        self.series = 0
        self.samples = 0
        self._f.write(self._packer.pack({"format": FORMAT, "segment": segment, "time_ms": time_ms}))

    def write_series(self, records: Sequence[SeriesRecord]) -> None:
        """Append series (``(sid, labels, timestamps, values)``, ascending timestamps, n >= 1)."""
        pack = self._packer.pack
        out = []
        for sid, labels, ts, vs in records:
            n = len(ts)
            if n == 0:
                continue
            deltas = array("q", map(sub, ts[1:], ts[:-1]))
            flat = [x for pair in labels for x in pair]
            out.append(pack([sid, flat, n, ts[0], zlib.compress(to_le_bytes(deltas), _LEVEL),
                             zlib.compress(to_le_bytes(vs), _LEVEL)]))
            self.series += 1
            self.samples += n
        self._f.write(b"".join(out))

    def commit(self, blocks: Sequence[int] = ()) -> Path:
        """Write the trailer (naming ``blocks``), fsync, rename into place, fsync the directory;
        return the path."""
        self._f.write(self._packer.pack({"series": self.series, "samples": self.samples, "blocks": list(blocks)}))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.directory)
        return self.path

    def abort(self) -> None:
        """Close and delete the unfinished file."""
        self._f.close()
        self.tmp.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], Iterator[SeriesRecord], dict[str, Any]]:
    """Open a checkpoint: return its header, an iterator over its series, and its trailer (a
    dict filled once the iterator is exhausted: ``blocks`` the block numbers it names).

    :raises CheckpointError: not a checkpoint of a known format; the iterator raises it too
        when the file is truncated or corrupt (after yielding the series before the damage).
    """
    f = open(path, "rb")
    unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31)
    try:
        header = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException) as e:
        f.close()
        raise CheckpointError(f"{path}: no header: {e}") from e
    if not isinstance(header, dict) or header.get("format") not in _READABLE:
        f.close()
        raise CheckpointError(f"{path}: unknown checkpoint format {header!r:.80}")
    trailer: dict[str, Any] = {}
    return header, _series(path, f, unpacker, trailer), trailer


def _series(path: Path, f: Any, unpacker: msgpack.Unpacker, trailer: dict[str, Any]) -> Iterator[SeriesRecord]:
    count = 0
    with f:
        try:
            for item in unpacker:
                if isinstance(item, dict):
                    if item.get("series") != count:
                        raise CheckpointError(f"{path}: trailer says {item.get('series')} series, read {count}")
                    trailer.update(item)
                    trailer.setdefault("blocks", [])
                    return
                sid, flat, n, first, deltas, values = item
                ts = array("q", accumulate(from_le_bytes("q", zlib.decompress(deltas)), initial=first))
                vs = from_le_bytes("d", zlib.decompress(values))
                if len(ts) != n or len(vs) != n:
                    raise CheckpointError(f"{path}: series {sid} has {len(ts)}/{len(vs)} samples, expected {n}")
                labels = tuple.__new__(Labels, tuple(zip(flat[::2], flat[1::2])))
                count += 1
                yield sid, labels, ts, vs
        except CheckpointError:
            raise
        except (ValueError, TypeError, zlib.error, msgpack.UnpackException) as e:
            raise CheckpointError(f"{path}: corrupt after {count} series: {e}") from e
        raise CheckpointError(f"{path}: truncated after {count} series (no trailer)")
