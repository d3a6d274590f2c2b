"""Binary operators: arithmetic, comparison (with ``bool``), set operators and vector matching.

Follows Prometheus v2.53 ``promql/engine.go``: ``scalarBinop``, ``vectorElemBinop``,
``VectorscalarBinop``, ``VectorBinop`` (one-to-one, ``group_left``/``group_right``, the
duplicate-series errors), ``VectorAnd``/``VectorOr``/``VectorUnless``, ``resultMetric`` and
``signatureFunc``. Division by zero gives ±Inf or NaN as IEEE 754 (Go) does.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.value import TYPE_AND_UNIT, Sample, check_duplicates, div, drop_name, mark_name
from model.labels import METRIC_NAME, Labels

_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
_COMPARISON = {"==", "!=", ">", "<", ">=", "<="}


def _mod(a: float, b: float) -> float:
    """Go ``math.Mod``: result has the sign of ``a``; NaN for ``b == 0`` or infinite ``a``."""
    try:
        return math.fmod(a, b)
    except (ValueError, ZeroDivisionError):
        return math.nan


def _pow(a: float, b: float) -> float:
    """Go ``math.Pow`` semantics (no exceptions: overflow is ±Inf, bad domain NaN)."""
    try:
        return math.pow(a, b)
    except OverflowError:
        if a < 0 and b == int(b) and int(b) % 2 == 1:
            return -math.inf
        return math.inf
    except (ValueError, ZeroDivisionError):
        if a == 0 and b < 0:
            if b == int(b) and int(b) % 2 == 1:
                return math.copysign(math.inf, a)
            return math.inf
        return math.nan


def _sub(a: float, b: float) -> float:
    return a - b


def _add(a: float, b: float) -> float:
    return a + b


def _mul(a: float, b: float) -> float:
    return a * b


ARITH: dict[str, Callable[[float, float], float]] = {
    "+": _add, "-": _sub, "*": _mul, "/": div, "%": _mod, "^": _pow, "atan2": math.atan2,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


def scalar_binop(op: str, a: float, b: float) -> float:
    """``scalarBinop``: arithmetic, or 0/1 for comparisons (scalar comparisons need ``bool``)."""
    f = ARITH.get(op)
    if f is not None:
        return f(a, b)
    return 1.0 if COMPARE[op](a, b) else 0.0


def apply_binary(node: n.Binary, lhs: Any, rhs: Any, delayed_name_removal: bool = False) -> Any:
    """Apply the operator of a :class:`~monitor.promql.nodes.Binary` node to its evaluated
    operands (``float`` for a scalar, ``list[Sample]`` for an instant vector).

    :param delayed_name_removal: ``promql-delayed-name-removal``: vector/scalar operations and
        ``bool`` comparisons mark the name (``mark_name``) instead of dropping it, and vector
        matching ignores ``__name__`` only (Prometheus 3.5 ``signatureFunc``); vector/vector
        arithmetic drops it at once in either mode (``resultMetric``).
    """
    op = node.op
    lt, rt = node.lhs.type, node.rhs.type
    if lt == n.SCALAR and rt == n.SCALAR:
        return scalar_binop(op, lhs, rhs)
    sig = _signature(node, delayed_name_removal) if lt == n.VECTOR and rt == n.VECTOR else _no_signature
    if op == "and":
        return _vector_and(sig, lhs, rhs)
    if op == "or":
        return _vector_or(sig, lhs, rhs)
    if op == "unless":
        return _vector_unless(sig, lhs, rhs)
    drop = mark_name if delayed_name_removal else drop_name
    if lt == n.VECTOR and rt == n.VECTOR:
        out = _vector_binop(node, sig, lhs, rhs, drop)
    elif lt == n.VECTOR:
        out = _vector_scalar(op, lhs, rhs, False, node.return_bool, drop)
    else:
        out = _vector_scalar(op, rhs, lhs, True, node.return_bool, drop)
    check_duplicates(out)
    return out


def _vector_scalar(op: str, vec: list[Sample], scalar: float, swap: bool, return_bool: bool,
                   drop_name: Callable[[Labels], Labels]) -> list[Sample]:
    """``VectorscalarBinop``; ``swap`` when the scalar is the left operand."""
    out = []
    f = ARITH.get(op)
    if f is not None:
        if swap:
            for s in vec:
                out.append(Sample(drop_name(s.labels), s.t, f(scalar, s.v)))
        else:
            for s in vec:
                out.append(Sample(drop_name(s.labels), s.t, f(s.v, scalar)))
        return out
    cmp = COMPARE[op]
    for s in vec:
        keep = cmp(scalar, s.v) if swap else cmp(s.v, scalar)
        if return_bool:
            out.append(Sample(drop_name(s.labels), s.t, 1.0 if keep else 0.0))
        elif keep:
            out.append(s)
    return out


def _no_signature(lb: Labels) -> tuple:
    raise AssertionError("vector/scalar operations match no labels")


def _signature(node: n.Binary, delayed_name_removal: bool = False) -> Callable[[Labels], tuple]:
    """``signatureFunc``: the matching key of a label set (``on`` keeps, ``ignoring`` drops
    the listed labels, the metric name and ``__type__``/``__unit__``; under delayed name
    removal, where those two are still on a marked series, only the metric name)."""
    names = frozenset(node.matching)
    if node.on:
        return lambda lb: tuple(p for p in lb if p[0] in names)
    drop = names | ({METRIC_NAME} if delayed_name_removal else {METRIC_NAME, *TYPE_AND_UNIT})
    return lambda lb: tuple(p for p in lb if p[0] not in drop)


def _vector_binop(node: n.Binary, sig: Callable[[Labels], tuple], lhs: list[Sample], rhs: list[Sample],
                  drop_name: Callable[[Labels], Labels]) -> list[Sample]:
    """``VectorBinop`` for one-to-one and many-to-one / one-to-many matching."""
    if not lhs or not rhs:
        return []
    op = node.op
    card = node.card
    if card == "one-to-many":
        lhs, rhs = rhs, lhs
    right: dict[tuple, Sample] = {}
    for r in rhs:
        k = sig(r.labels)
        dup = right.get(k)
        if dup is not None:
            side = "left" if card == "one-to-many" else "right"
            raise QueryError(
                f"found duplicate series for the match group {_fmt(k)} on the {side} hand-side of the "
                f"operation: [{r.labels}, {dup.labels}];many-to-many matching not allowed: "
                "matching labels must be unique on one side")
        right[k] = r
    arith = ARITH.get(op)
    cmp = COMPARE.get(op)
    drops_name = op in _ARITHMETIC
    return_bool = node.return_bool
    matched: dict[tuple, Any] = {}
    out = []
    for ls in lhs:
        k = sig(ls.labels)
        rs = right.get(k)
        if rs is None:
            continue
        fl, fr = ls.v, rs.v
        if card == "one-to-many":
            fl, fr = fr, fl
        if arith is not None:
            value, keep = arith(fl, fr), True
        else:
            assert cmp is not None  # an operator is arithmetic or a comparison
            value, keep = fl, cmp(fl, fr)
        if return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = _result_metric(ls.labels, rs.labels, node, drops_name)
        if return_bool:
            metric = drop_name(metric)
        if card == "one-to-one":
            if k in matched:
                raise QueryError("multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)")
            matched[k] = None
        else:
            seen = matched.get(k)
            if seen is None:
                seen = matched[k] = set()
            elif metric in seen:
                raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
            seen.add(metric)
        out.append(Sample(metric, ls.t, value))
    return out


def _fmt(k: tuple) -> str:
    return "{" + ", ".join(f'{a}="{b}"' for a, b in k) + "}"


def _result_metric(lhs: Labels, rhs: Labels, node: n.Binary, drops_name: bool) -> Labels:
    """``resultMetric``: the output labels of a matched pair."""
    d = dict(lhs)
    if drops_name:
        for name in (METRIC_NAME, *TYPE_AND_UNIT):
            d.pop(name, None)
    if node.card == "one-to-one":
        if node.on:
            keep = set(node.matching)
            d = {k: v for k, v in d.items() if k in keep}
        else:
            for name in node.matching:
                d.pop(name, None)
    for name in node.include:
        v = rhs.get(name)
        if v:
            d[name] = v
        else:
            d.pop(name, None)
    return Labels.of(d)


def _vector_and(sig: Callable[[Labels], tuple], lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    """``VectorAnd``: lhs elements with a match on the right."""
    if not lhs or not rhs:
        return []
    keys = {sig(s.labels) for s in rhs}
    return [s for s in lhs if sig(s.labels) in keys]


def _vector_or(sig: Callable[[Labels], tuple], lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    """``VectorOr``: every lhs element, plus rhs elements whose signature is not on the left."""
    if not lhs:
        return list(rhs)
    if not rhs:
        return list(lhs)
    keys = {sig(s.labels) for s in lhs}
    return list(lhs) + [s for s in rhs if sig(s.labels) not in keys]


def _vector_unless(sig: Callable[[Labels], tuple], lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    """``VectorUnless``: lhs elements without a match on the right."""
    if not lhs or not rhs:
        return list(lhs)
    keys = {sig(s.labels) for s in rhs}
    return [s for s in lhs if sig(s.labels) not in keys]
