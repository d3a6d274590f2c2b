"""Closed chunks: a series' older samples, encoded compactly in memory and on disk.

A series keeps its recent samples in plain arrays (the *head*, :mod:`monitor.tsdb.index`) so
appends stay a pair of ``array.append`` calls; the store's retention sweep moves runs of
:data:`CHUNK_SAMPLES` samples older than the head span into *closed chunks*, immutable ``bytes``
decoded on read. The idea is Prometheus's (``tsdb/chunkenc``: a head chunk, then closed ones of
120 samples), the encoding is not Gorilla's bit stream (``chunkenc/xor.go``), which needs a
Python-level loop per sample to decode; it is what measured best of the stdlib-only options tried
(2026-12-05, the SLO bench's 600 random-walk series x 30 days, zlib over 240-sample chunks: 6.6
B/sample raw, 5.8 byte-shuffled, no better with an XOR of consecutive values first; constant and
integer-valued series take under 1 B/sample):

- timestamps: a regular chunk (every step equal, the usual case for probes, scrapes and
  downsampled series) is ``first`` and ``step`` only; otherwise the ``n - 1`` differences as
  int64, byte-shuffled and zlib-compressed;
- values: split into byte planes (byte ``k`` of every value together, as Blosc's shuffle filter
  does, so sign/exponent bytes compress). A chunk that compresses well as a whole (at most
  :data:`_WHOLE_MAX` bytes a sample: constant, integer-valued, mostly-zero series) is the planes
  in a row, zlib-compressed (level 6); otherwise each plane is zlib-compressed only if that saves
  a tenth, else kept raw: the low mantissa bytes of full-precision values are noise that zlib
  cannot shrink and is slow to inflate (decoding 240 such values: 3 us instead of 19). Every bit
  pattern is kept, staleness markers included.

Layout of one chunk (little-endian): ``<q first_t ms> <q step ms, 0: irregular> <i n> <i len of
the timestamp part>``, the timestamp part, the value part: ``<B 0>`` and the zlib stream of the
planes in a row, or ``<B 1> <B mask: bit k set when plane k is compressed> <8H plane lengths>``
and the eight planes.

A series' closed chunks are a :class:`Cold`: parallel arrays, one entry per chunk, oldest first,
all older than the head's samples.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from functools import lru_cache
from itertools import accumulate
from operator import sub

__all__ = ["CHUNK_SAMPLES", "HEAD_MS", "CHUNK_OVERHEAD_BYTES", "COLD_BYTES", "Cold", "encode", "decode",
           "decode_timestamps"]

#: Samples per closed chunk (a chunk holds 4 h of a 1 m series).
CHUNK_SAMPLES = 240
#: Samples younger than this (ms, against the retention sweep's clock) stay in the head.
HEAD_MS = 2 * 3600 * 1000
_HEADER = struct.Struct("<qqii")
_LEVEL = 6
_WHOLE_MAX = 2
_PLANES = struct.Struct("<BB8H")
_LITTLE = sys.byteorder == "little"
#: Memory of one chunk beyond its encoded bytes: the bytes object and its slots in the arrays/list.
CHUNK_OVERHEAD_BYTES = sys.getsizeof(b"") + 8 + 4 * 8


def _shuffle(raw: bytes) -> bytes:
    return b"".join([raw[k::8] for k in range(8)])


def _unshuffle(data: bytes) -> bytes:
    m = len(data) // 8
    out = bytearray(len(data))
    for k in range(8):
        out[k::8] = data[k * m:(k + 1) * m]
    return bytes(out)


def to_le_bytes(a: array) -> bytes:
    """Return the bytes of ``a`` in little-endian order (the on-disk order)."""
    if not _LITTLE:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def from_le_bytes(typecode: str, data: bytes | bytearray) -> array:
    """Return an ``array(typecode)`` of little-endian ``data``."""
    a = array(typecode)
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


def encode(ts: array, vs: array) -> bytes:
    """Encode ``n >= 1`` samples (``array('q')`` ascending ms, ``array('d')``) as one chunk."""
    n = len(ts)
    first = ts[0]
    step = ts[1] - first if n > 1 else 0
    if n > 1 and step > 0 and ts == array("q", range(first, first + step * n, step)):
        tpart = b""
    else:
        step = 0
        tpart = zlib.compress(_shuffle(to_le_bytes(array("q", map(sub, ts[1:], ts[:-1])))), _LEVEL) if n > 1 else b""
    return _HEADER.pack(first, step, n, len(tpart)) + tpart + _encode_values(to_le_bytes(vs), n)


def _encode_values(raw: bytes, n: int) -> bytes:
    whole = zlib.compress(_shuffle(raw), _LEVEL)
    if len(whole) <= _WHOLE_MAX * n:
        return b"\0" + whole
    mask = 0
    planes = []
    for k in range(8):
        plane = raw[k::8]
        z = zlib.compress(plane, _LEVEL)
        if len(z) * 10 < len(plane) * 9:
            mask |= 1 << k
            plane = z
        planes.append(plane)
    return _PLANES.pack(1, mask, *map(len, planes)) + b"".join(planes)


def _decode_values(part: bytes, n: int) -> array:
    if part[0] == 0:
        return from_le_bytes("d", _unshuffle(zlib.decompress(part[1:])))
    _, mask, *lengths = _PLANES.unpack_from(part)
    out = bytearray(8 * n)
    pos = _PLANES.size
    inflate = zlib.decompress
    for k in range(8):
        end = pos + lengths[k]
        out[k::8] = inflate(part[pos:end]) if mask >> k & 1 else part[pos:end]
        pos = end
    return from_le_bytes("d", out)


@lru_cache(maxsize=16)
def _lanes(n: int) -> tuple[int, int]:
    """``(sum 2**(64 i), sum i * 2**(64 i))`` for ``i < n``: ``first * R + step * S`` is the bytes
    of ``n`` regular int64 timestamps, built by two big-int products (3x faster than ``range``)."""
    return sum(1 << (64 * i) for i in range(n)), sum(i << (64 * i) for i in range(n))


def decode_timestamps(chunk: bytes) -> array:
    """Return a chunk's timestamps (``array('q')``, ms)."""
    first, step, n, tlen = _HEADER.unpack_from(chunk)
    if step:
        if first < 0 or not _LITTLE:
            return array("q", range(first, first + step * n, step))
        r, s = _lanes(n)
        out = array("q")
        out.frombytes((first * r + step * s).to_bytes(8 * n, "little"))
        return out
    if n == 1:
        return array("q", [first])
    deltas = from_le_bytes("q", _unshuffle(zlib.decompress(chunk[_HEADER.size:_HEADER.size + tlen])))
    return array("q", accumulate(deltas, initial=first))


def decode(chunk: bytes) -> tuple[array, array]:
    """Return a chunk's ``(timestamps, values)`` arrays (``'q'`` ms, ``'d'``).

    :raises zlib.error: the chunk is corrupt.
    """
    n, tlen = _HEADER.unpack_from(chunk)[2:]
    return decode_timestamps(chunk), _decode_values(chunk[_HEADER.size + tlen:], n)


def chunk_size(chunk: bytes) -> int:
    """Return the number of samples a chunk holds (from its header)."""
    return int(_HEADER.unpack_from(chunk)[2])


class Cold:
    """The closed chunks of one series, oldest first, as parallel arrays.

    :ivar mint: per chunk, the oldest *live* timestamp, ms (retention raises the first one's).
    :ivar maxt: per chunk, its newest timestamp, ms.
    :ivar n: per chunk, its live samples (those at or after ``mint``).
    :ivar data: per chunk, its encoding (:func:`encode`).
    :ivar block: per chunk, the block file holding it (its number), 0 while only in memory.
    """

    __slots__ = ("mint", "maxt", "n", "data", "block")

    def __init__(self) -> None:
        self.mint = array("q")
        self.maxt = array("q")
        self.n = array("q")
        self.data: list[bytes] = []
        self.block = array("q")

    def add(self, chunk: bytes, mint: int, maxt: int, n: int, block: int = 0) -> None:
        """Append a chunk newer than every chunk held."""
        self.mint.append(mint)
        self.maxt.append(maxt)
        self.n.append(n)
        self.data.append(chunk)
        self.block.append(block)

    def drop_first(self, k: int) -> None:
        """Forget the ``k`` oldest chunks."""
        del self.mint[:k], self.maxt[:k], self.n[:k], self.data[:k], self.block[:k]

    def __len__(self) -> int:
        return len(self.data)

    def read(self, mint: int, maxt: int, ts: array, vs: array) -> None:
        """Append the live samples with ``mint <= t <= maxt`` (ms) to ``ts`` and ``vs``."""
        i = bisect_left(self.maxt, mint)
        j = bisect_right(self.mint, maxt)
        for k in range(i, j):
            cts, cvs = decode(self.data[k])
            lo = bisect_left(cts, max(mint, self.mint[k]))
            hi = len(cts) if cts[-1] <= maxt else bisect_right(cts, maxt, lo)
            if lo == 0 and hi == len(cts):
                ts.extend(cts)
                vs.extend(cvs)
            else:
                ts.extend(cts[lo:hi])
                vs.extend(cvs[lo:hi])

    def at(self, t: int) -> tuple[int, float] | None:
        """Return the latest live sample at or before ``t`` (ms), or ``None``."""
        k = bisect_right(self.mint, t) - 1
        if k < 0:
            return None
        cts, cvs = decode(self.data[k])
        i = bisect_right(cts, t) - 1
        return (cts[i], cvs[i]) if i >= 0 and cts[i] >= self.mint[k] else None

    def bytes_held(self) -> int:
        """Return the memory of the chunks (encodings and per-chunk overhead), bytes."""
        return sum(map(len, self.data)) + CHUNK_OVERHEAD_BYTES * len(self.data)


#: Memory of a series' :class:`Cold` beyond its chunks: the object, its four arrays and list.
COLD_BYTES = sys.getsizeof(Cold()) + 4 * sys.getsizeof(array("q")) + sys.getsizeof([])
