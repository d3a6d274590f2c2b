"""Sample-store vocabulary beyond the shared ``model``: the staleness marker and NaN equality.

A series is identified by its label set (:class:`model.labels.Labels`). Timestamps everywhere in ``tsdb`` and ``promql``
are integer **milliseconds** since the Unix epoch, as in Prometheus.
"""

from __future__ import annotations

import math
import struct

#: Prometheus's staleness marker: a NaN with a distinct bit pattern
#: (``model/value/value.go``, ``StaleNaN = 0x7ff0000000000002``). A plain NaN is a real value.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale(v: float) -> bool:
    """Return ``True`` if ``v`` is the staleness marker (not merely any NaN)."""
    return v != v and struct.pack("<d", v) == _STALE_BYTES


_STALE_BYTES = struct.pack("<Q", STALE_NAN_BITS)


def nan_equal(a: float, b: float) -> bool:
    """Compare two sample values treating NaN as equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))
