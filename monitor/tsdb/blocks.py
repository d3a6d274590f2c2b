"""Block files: closed chunks written once, so a checkpoint rewrites only the heads.

``block.NNNNNNNN`` holds the closed chunks (:mod:`monitor.tsdb.chunks`) that were only in memory
when the checkpoint at WAL segment ``NNNNNNNN`` ran. A block never changes after it is written; the
checkpoint lists the blocks that still hold live chunks (:mod:`monitor.tsdb.checkpoint`), and one
whose chunks have all expired is deleted at the next checkpoint, so disk use follows retention.
Prometheus's persistent blocks (``tsdb/block.go``) are the model; ours are per checkpoint, not per
2 h of time, and hold encoded chunks as the memory does.

A block is a msgpack stream (the ``msgpack`` library's encoding; our own layout):

1. a header map ``{"format": 1, "block": N}``;
2. one array per series ``[sid, [name, value, ...], mints, maxts, ns, chunks]``: the first three
   int64 little-endian arrays (per chunk: oldest and newest timestamp, ms, and sample count),
   ``chunks`` a list of the chunks' bytes, oldest first;
3. a trailer map ``{"series": count, "chunks": count}``; a file without it is incomplete.

It is written to ``block.N.tmp``, fsynced, renamed and the directory fsynced before the
checkpoint that lists it is written: a listed block is complete. Chunk encodings carry no checksum
of their own; zlib's Adler-32 inside each catches a corrupt chunk at read (the query fails with
``zlib.error``), msgpack framing and the trailer a damaged file at open (:class:`BlockError`).
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgpack

from model.labels import Labels
from .chunks import from_le_bytes, to_le_bytes
from .wal import fsync_dir

__all__ = ["BlockError", "BlockRecord", "write_block", "read_block", "block_path", "list_blocks"]

FORMAT = 1
_NAME = re.compile(r"^block\.(\d{8})$")

#: One series' chunks in a block: ``(sid, labels, mints, maxts, ns, chunks)``.
BlockRecord = tuple[int, Labels, array, array, array, list[bytes]]


class BlockError(Exception):
    """A block file is missing, incomplete or corrupt."""


def block_path(directory: Path, block: int) -> Path:
    """Return the path of block ``block``."""
    return directory / f"block.{block:08d}"


def list_blocks(directory: Path) -> dict[int, Path]:
    """Return the block files in ``directory`` by number (``.tmp`` files excluded)."""
    return {int(m.group(1)): p for p in directory.iterdir() if (m := _NAME.match(p.name))}


def remove_blocks(directory: Path, keep: Sequence[int]) -> None:
    """Delete block files not in ``keep`` and ``block.*.tmp`` files a kill left behind."""
    wanted = set(keep)
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if (m and int(m.group(1)) not in wanted) or (p.name.startswith("block.") and p.name.endswith(".tmp")):
            p.unlink(missing_ok=True)


def write_block(directory: Path, block: int, records: Sequence[BlockRecord]) -> int:
    """Write block ``block`` (tmp, fsync, rename, fsync the directory); return its size, bytes.

    File I/O only (no store access): may run in a worker thread on what the event loop collected.

    :raises OSError: it could not be written (the ``.tmp`` file is removed).
    """
    path = block_path(directory, block)
    tmp = path.with_name(path.name + ".tmp")
    packer = msgpack.Packer()
    chunks = 0
    try:
        with open(tmp, "wb") as f:
            f.write(packer.pack({"format": FORMAT, "block": block}))
            for sid, labels, mints, maxts, ns, data in records:
                flat = [x for pair in labels for x in pair]
                f.write(packer.pack([sid, flat, to_le_bytes(mints), to_le_bytes(maxts), to_le_bytes(ns), data]))
                chunks += len(data)
            f.write(packer.pack({"series": len(records), "chunks": chunks}))
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return size


def read_block(path: Path) -> Iterator[BlockRecord]:
    """Yield the series records of a block file.

    :raises BlockError: missing, not a block, truncated or corrupt (after yielding the records
        before the damage).
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BlockError(f"{path}: {e.strerror or e}") from e
    with f:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31)
        count = 0
        try:
            header = next(unpacker)
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise BlockError(f"{path}: unknown block format {header!r:.80}")
            for item in unpacker:
                if isinstance(item, dict):
                    if item.get("series") != count:
                        raise BlockError(f"{path}: trailer says {item.get('series')} series, read {count}")
                    return
                sid, flat, mints_b, maxts_b, ns_b, data = item
                mints, maxts, ns = from_le_bytes("q", mints_b), from_le_bytes("q", maxts_b), from_le_bytes("q", ns_b)
                if not len(mints) == len(maxts) == len(ns) == len(data):
                    raise BlockError(f"{path}: series {sid}: chunk lists of different lengths")
                labels = tuple.__new__(Labels, tuple(zip(flat[::2], flat[1::2])))
                count += 1
                yield sid, labels, mints, maxts, ns, data
        except BlockError:
            raise
        except (StopIteration, ValueError, TypeError, msgpack.UnpackException) as e:
            raise BlockError(f"{path}: corrupt after {count} series: {e}") from e
        raise BlockError(f"{path}: truncated after {count} series (no trailer)")
