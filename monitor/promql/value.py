"""PromQL result values: instant vectors, range vectors (matrices), scalars and strings.

Shapes follow Prometheus ``promql/value.go``. Timestamps are integer **milliseconds** since the
Unix epoch; values are ``float`` (NaN and ±Inf allowed).

* :class:`Sample` — one element of an instant vector: ``(labels, t, v)``.
* :class:`Vector` — a list of :class:`Sample`, at most one per label set.
* :class:`Series` — one series of a range vector: ``(labels, points)``, points ``[(t, v), ...]``
  in ascending time order.
* :class:`Matrix` — a list of :class:`Series` (the result of a range query or a range selector).
* :class:`Scalar` / :class:`String` — a timestamped float or string.
* :class:`RangeArg` — a range vector inside the evaluator, at one evaluation step (what a
  range-vector function receives).

And the rules every vector keeps: at most one sample per label set (:func:`check_duplicates`,
``Vector.ContainsSameLabelset`` in ``promql/value.go``), valid label names
(:func:`valid_label_name`, ``model.LabelName.IsValid``), and :func:`drop_name` for the
operations that drop the metric name.

Delayed name removal (Prometheus 3 ``--enable-feature=promql-delayed-name-removal``,
``EngineOpts.EnableDelayedNameRemoval``): the operations that drop the name instead mark it
(:func:`mark_name`: the ``__name__`` value becomes a :class:`DroppedName`, a ``str`` equal to the
plain one), so ``label_replace``, ``label_join`` and ``by (__name__)`` still see it; the engine
removes marked names when the query ends (:func:`remove_marked_names`, ``cleanupMetricLabels``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from monitor.errors import QueryError
from model.labels import LABEL_NAME_RE, METRIC_NAME, Labels


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


class RangeArg(NamedTuple):
    """A range vector at one evaluation step.

    :param series: ``[(labels, labels_without_name, ts, vs), ...]``; ``ts`` in ms ascending
        (a sequence of int), ``vs`` the float values, no staleness markers.
    :param start: window start (ms, inclusive), after ``offset``/``@``.
    :param end: window end (ms, inclusive).
    :param range: the selector's range (ms).
    """

    series: list[tuple[Labels, Labels, Sequence[int], Sequence[float]]]
    start: int
    end: int
    range: int


def check_duplicates(vec: list[Sample]) -> None:
    """Raise if two samples share a label set (engine.go ``ContainsSameLabelset``)."""
    if len(vec) > 1 and len({s.labels for s in vec}) != len(vec):
        raise QueryError("vector cannot contain metrics with the same labelset")


def check_duplicate_labels(labels: list[Labels]) -> None:
    """:func:`check_duplicates` for a vector held as columns."""
    if len(labels) > 1 and len(set(labels)) != len(labels):
        raise QueryError("vector cannot contain metrics with the same labelset")


#: Dropped with the name (Prometheus 3.5 ``type-and-unit-labels``: ``DropReserved``).
TYPE_AND_UNIT = ("__type__", "__unit__")
_DROPPED_WITH_NAME = frozenset({METRIC_NAME, *TYPE_AND_UNIT})


def drop_name(lb: Labels) -> Labels:
    """Return ``lb`` without ``__name__``, and without ``__type__``/``__unit__`` (metadata
    labels that describe the name, dropped with it as Prometheus 3.5 ``type-and-unit-labels``
    does). Labels sort by name, so only those up to ``__unit__`` (upper-case and ``__*``
    names) are looked at; usually ``__name__`` comes first and a lower-case name follows."""
    if lb and lb[0][0] == METRIC_NAME and (len(lb) < 2 or lb[1][0] > "__unit__"):
        return tuple.__new__(Labels, lb[1:])
    for k, _ in lb:
        if k > "__unit__":
            return lb
        if k in _DROPPED_WITH_NAME:
            return tuple.__new__(Labels, tuple(kv for kv in lb if kv[0] not in _DROPPED_WITH_NAME))
    return lb



class DroppedName(str):
    """A ``__name__`` value to remove when the query ends (Prometheus ``Sample.DropName``).

    Equal to (and hashing as) the plain name, so matching, grouping and duplicate checks see
    the name as Prometheus does while the removal is delayed. A value built from it
    (``label_replace``/``label_join`` output) is a plain ``str``: setting ``__name__`` that way
    keeps the name, as Prometheus resets ``DropName`` when the destination is ``__name__``.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return self  # Labels.of(...) calls str() on values: keep the mark


def mark_name(lb: Labels) -> Labels:
    """Return ``lb`` with its ``__name__`` value marked as a :class:`DroppedName` (``lb``
    itself when it has no name or the name is marked already)."""
    for i, (k, v) in enumerate(lb):
        if k == METRIC_NAME:
            if isinstance(v, DroppedName):
                return lb
            return tuple.__new__(Labels, (*lb[:i], (k, DroppedName(v)), *lb[i + 1:]))
        if k > METRIC_NAME:
            return lb
    return lb


def has_marked_name(lb: Labels) -> bool:
    """Return whether ``lb`` holds a ``__name__`` marked by :func:`mark_name`."""
    for k, v in lb:
        if k == METRIC_NAME:
            return isinstance(v, DroppedName)
        if k > METRIC_NAME:
            return False
    return False


def remove_marked_names(labels: list[Labels]) -> list[Labels]:
    """Apply the delayed removal to a result's label sets: a marked name goes (with
    ``__type__``/``__unit__``, :func:`drop_name`); then the label sets must be distinct
    (``cleanupMetricLabels``).

    :raises QueryError: ``vector cannot contain metrics with the same labelset``.
    """
    out = [drop_name(lb) if has_marked_name(lb) else lb for lb in labels]
    check_duplicate_labels(out)
    return out


def valid_label_name(name: str) -> bool:
    """Return whether ``name`` is a valid Prometheus label name (:data:`model.labels.LABEL_NAME_RE`)."""
    return LABEL_NAME_RE.match(name) is not None


def div(a: float, b: float) -> float:
    """Divide as Go's float64 does: ``x/0`` is ``±Inf`` by the signs, ``0/0`` and ``NaN/0`` are ``NaN``."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
