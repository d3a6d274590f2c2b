"""Label sets and their fingerprints (Prometheus ``model/labels/labels.go``).

A series or an alert is identified by its label set, the metric name included as ``__name__``.
The fingerprint (:meth:`Labels.fingerprint`, blake2b-64 of the sorted pairs, 16 hex digits)
is the one fingerprint of the project: it keys durable state (alerts, escalations, acks), so
it must never change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

__all__ = ["Labels", "METRIC_NAME", "LABEL_NAME_RE", "METRIC_NAME_RE", "common_labels"]

METRIC_NAME = "__name__"
#: Label sets whose fingerprint is kept (:func:`_fingerprint`): a few times the alerts a maximal
#: intake holds (5,000), so the alerts a Prometheus re-sends every evaluation are hashed once.
FINGERPRINT_CACHE_SIZE = 1 << 15
#: Legacy Prometheus label name syntax (``model.LabelNameRE``); use with ``match`` (anchored by ``\Z``, so
#: a trailing newline does not pass as ``$`` would let it).
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: Legacy Prometheus metric name syntax (``model.MetricNameRE``).
METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


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

        Stable across processes and restarts, so it can key durable state. Computed once per
        distinct label set while it is among the :data:`FINGERPRINT_CACHE_SIZE` most recently
        used (an equal label set built anew, as every intake POST does, hits the cache):
        label sets are immutable, so a kept value never goes stale.
        """
        return _fingerprint(self)

    def __repr__(self) -> str:
        name = self.name
        rest = ", ".join(f'{k}="{v}"' for k, v in self if k != METRIC_NAME)
        return f"{name}{{{rest}}}"

    __str__ = __repr__


@lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)
def _fingerprint(labels: Labels) -> str:
    """Return the blake2b-64 fingerprint of ``labels`` (:meth:`Labels.fingerprint`, which caches it)."""
    h = hashlib.blake2b(digest_size=8)
    for k, v in labels:
        h.update(k.encode())
        h.update(b"\xff")
        h.update(v.encode())
        h.update(b"\xff")
    return h.hexdigest()


def common_labels(sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Return the pairs every mapping in ``sets`` shares (Alertmanager ``commonLabels`` /
    ``commonAnnotations``); ``{}`` for no mapping."""
    it = iter(sets)
    first = next(it, None)
    if first is None:
        return {}
    out = dict(first)
    for d in it:
        out = {k: v for k, v in out.items() if d.get(k) == v}
    return out
