"""Series identity: label sets, fingerprints, matchers and the staleness marker.

A series is identified by its label set, the metric name included as ``__name__``
(Prometheus ``model/labels/labels.go``). Timestamps everywhere in ``tsdb`` and ``promql``
are integer **milliseconds** since the Unix epoch, as in Prometheus.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

METRIC_NAME = "__name__"

#: Prometheus's staleness marker: a NaN with a distinct bit pattern
#: (``model/value/value.go``, ``StaleNaN = 0x7ff0000000000002``). A plain NaN is a real value.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale(v: float) -> bool:
    """Return ``True`` if ``v`` is the staleness marker (not merely any NaN)."""
    return v != v and struct.pack("<d", v) == _STALE_BYTES


_STALE_BYTES = struct.pack("<Q", STALE_NAN_BITS)


class Labels(tuple):
    """An immutable, sorted label set: a tuple of ``(name, value)`` pairs.

    Empty values are dropped, as Prometheus treats an empty label as absent.

    >>> lbl = Labels.of({"__name__": "up", "job": "api"})
    >>> lbl.name, lbl.get("job"), lbl.get("missing")
    ('up', 'api', '')
    """

    __slots__ = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str] | Iterable[tuple[str, str]] = (), **kw: str) -> "Labels":
        """Build a label set from a mapping or pairs (plus keyword labels)."""
        d = dict(mapping.items() if isinstance(mapping, Mapping) else mapping)
        d.update(kw)
        return cls.__new__(cls, tuple(sorted((k, str(v)) for k, v in d.items() if v != "")))

    @property
    def name(self) -> str:
        """The metric name (``__name__``), or ``""``."""
        return self.get(METRIC_NAME)

    def get(self, name: str, default: str = "") -> str:
        """Return the value of label ``name``, or ``default``."""
        for k, v in self:
            if k == name:
                return v
        return default

    def as_dict(self) -> dict[str, str]:
        """Return the labels as a new dict."""
        return dict(self)

    def without(self, *names: str) -> "Labels":
        """Return a copy without the given label names."""
        drop = set(names)
        return tuple.__new__(Labels, tuple(p for p in self if p[0] not in drop))

    def keep(self, *names: str) -> "Labels":
        """Return a copy with only the given label names."""
        keep = set(names)
        return tuple.__new__(Labels, tuple(p for p in self if p[0] in keep))

    def without_name(self) -> "Labels":
        """Return a copy without ``__name__``."""
        return self.without(METRIC_NAME)

    def merge(self, other: Mapping[str, str]) -> "Labels":
        """Return a copy with ``other`` set on top (an empty value removes the label)."""
        d = dict(self)
        d.update(other)
        return Labels.of(d)

    def fingerprint(self) -> str:
        """Return a stable 16-hex-digit fingerprint of the label set (blake2b-64 of the sorted pairs).

        Stable across processes and restarts, so it can key durable state.
        """
        h = hashlib.blake2b(digest_size=8)
        for k, v in self:
            h.update(k.encode())
            h.update(b"\xff")
            h.update(v.encode())
            h.update(b"\xff")
        return h.hexdigest()

    def __repr__(self) -> str:
        name = self.name
        rest = ", ".join(f'{k}="{v}"' for k, v in self if k != METRIC_NAME)
        return f"{name}{{{rest}}}"

    __str__ = __repr__


MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher: ``name op value`` with op one of ``=``, ``!=``, ``=~``, ``!~``.

    Regexes are fully anchored, as in Prometheus (``model/labels/matcher.go``). A label that is
    absent has the value ``""``.

    :raises ValueError: on an unknown op or an invalid regex.
    """

    name: str
    op: str
    value: str
    _re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in MATCH_OPS:
            raise ValueError(f"unknown matcher op {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_re", re.compile(self.value, re.DOTALL))
            except re.error as e:
                raise ValueError(f"invalid regex {self.value!r}: {e}") from None

    def matches(self, value: str) -> bool:
        """Return whether a label value (``""`` when absent) satisfies this matcher."""
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        m = self._re.fullmatch(value) is not None  # type: ignore[union-attr]
        return m if op == "=~" else not m

    def matches_labels(self, labels: Labels) -> bool:
        """Return whether a label set satisfies this matcher."""
        return self.matches(labels.get(self.name))

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def nan_equal(a: float, b: float) -> bool:
    """Compare two sample values treating NaN as equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))
