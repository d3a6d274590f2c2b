"""PromQL result values: instant vectors, range vectors (matrices), scalars and strings.

Shapes follow Prometheus ``promql/value.go``. Timestamps are integer **milliseconds** since the
Unix epoch; values are ``float`` (NaN and ±Inf allowed).

* :class:`Sample` — one element of an instant vector: ``(labels, t, v)``.
* :class:`Vector` — a list of :class:`Sample`, at most one per label set.
* :class:`Series` — one series of a range vector: ``(labels, points)``, points ``[(t, v), ...]``
  in ascending time order.
* :class:`Matrix` — a list of :class:`Series` (the result of a range query or a range selector).
* :class:`Scalar` / :class:`String` — a timestamped float or string.
"""

from __future__ import annotations

from typing import NamedTuple

from model.labels import Labels


class Sample(NamedTuple):
    """One element of an instant vector.

    :param labels: the series' label set (``__name__`` included unless dropped).
    :param t: the evaluation timestamp in ms (the sample's own timestamp for ``timestamp()``).
    :param v: the value.
    """

    labels: Labels
    t: int
    v: float


class Vector(list):
    """An instant vector: a list of :class:`Sample` with distinct label sets."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Vector({list.__repr__(self)})"


class Series(NamedTuple):
    """One series of a range vector.

    :param labels: the label set.
    :param points: ``[(t_ms, value), ...]`` in ascending time order.
    """

    labels: Labels
    points: list[tuple[int, float]]


class Matrix(list):
    """A range vector: a list of :class:`Series` with distinct label sets."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Matrix({list.__repr__(self)})"


class Scalar(NamedTuple):
    """A scalar result: value ``v`` at ``t`` (ms)."""

    t: int
    v: float


class String(NamedTuple):
    """A string result: value ``v`` at ``t`` (ms)."""

    t: int
    v: str


Value = Vector | Matrix | Scalar | String
