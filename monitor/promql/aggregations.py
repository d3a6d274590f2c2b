"""Aggregation operators: sum, avg, min, max, count, group, stddev, stdvar, quantile,
count_values, topk and bottomk, with ``by``/``without`` grouping.

Follows Prometheus v2.53 ``promql/engine.go`` (``aggregation``, ``aggregationK``,
``aggregationCountValues``, ``generateGroupingLabels``) and ``promql/quantile.go``
(``quantile``). Output groups come in order of first appearance; sums use Kahan-Neumaier
summation (``kahanSumInc`` in ``promql/functions.go``).
"""

from __future__ import annotations

import math

import xxhash
from typing import Any, Callable

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.cache import GroupKeyMemo
from monitor.promql.kahan import kahan_inc
from monitor.promql.quantile import quantile
from monitor.promql.value import Sample, valid_label_name
from model.labels import METRIC_NAME, Labels


def format_float(v: float) -> str:
    """Format like Go ``strconv.FormatFloat(v, 'f', -1, 64)`` (shortest, no exponent)."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(v)
    if "e" in r or "E" in r:
        from decimal import Decimal

        r = format(Decimal(r), "f")
    if "." in r:
        r = r.rstrip("0").rstrip(".")
    if r == "-0":
        r = "-0"
    return r


def _grouping_key(node: n.Aggregate):
    """Return ``labels -> group labels`` (``generateGroupingLabels``)."""
    names = frozenset(node.grouping)
    if node.without:
        drop = names | {METRIC_NAME}
        return lambda lb: tuple.__new__(Labels, tuple(p for p in lb if p[0] not in drop))
    if names:
        return lambda lb: tuple.__new__(Labels, tuple(p for p in lb if p[0] in names))
    empty = Labels()
    return lambda lb: empty


def group_keys(memos: GroupKeyMemo, node: n.Aggregate, labels: list[Labels]) -> list[Labels] | None:
    """Return the group labels of each label set in ``labels``, or ``None`` when there is
    one group (no ``by`` labels and no ``without``).

    A label set's group labels depend on the grouping clause alone, so they are memoised per
    clause in ``memos`` (the engine's; rules aggregate the same series every round).
    """
    if not node.without and not node.grouping:
        return None
    if not node.without and METRIC_NAME in node.grouping:
        # by (__name__): a name marked for delayed removal (value.mark_name) equals the plain
        # one, so a memo would hand one query's group labels, mark and all, to another.
        key = _grouping_key(node)
        return [key(lb) for lb in labels]
    memo = memos.clause(node.without, frozenset(node.grouping))
    get = memo.get
    key = _grouping_key(node)
    out: list[Labels] = []
    append = out.append
    for lb in labels:
        k = get(lb)
        if k is None:
            k = key(lb)
            # One object per group (many series share it): the memo holds group labels
            # under their own key too.
            k = memo[lb] = memo.setdefault(k, k)
        append(k)
    return out


#: Aggregations of whole samples (:func:`aggregate_samples`); the others reduce values by
#: group (:func:`aggregate`).
SAMPLE_AGGREGATIONS = frozenset({"topk", "bottomk", "count_values", "limitk", "limit_ratio"})


def aggregate_samples(node: n.Aggregate, vec: list[Sample], param: Any, t: int) -> list[Sample]:
    """Apply ``topk``/``bottomk`` (``param``: k) or ``count_values`` (``param``: the label name)
    to the evaluated vector ``vec`` at ``t`` (ms)."""
    if node.op == "count_values":
        return _count_values(node, vec, param, t)
    if node.op == "limit_ratio":
        return _limit_ratio(node, vec, param, t)
    return _topk(node, vec, param, t)


def aggregate(node: n.Aggregate, labels: list[Labels], values: list[float], param: Any, t: int,
              memos: GroupKeyMemo) -> list[Sample]:
    """Apply a reducing aggregation (``sum``, ``avg``, ... ``quantile``) at ``t`` (ms).

    :param labels: the input vector's label sets, as a column.
    :param values: the input vector's values, in the same order.
    :param param: the evaluated parameter (``quantile``'s φ), else ``None``.
    :param memos: the engine's group-key memo (see :func:`group_keys`).
    :return: one sample per group, groups in order of first appearance.
    """
    op = node.op
    if op == "quantile" and not values:
        return []
    if op not in _REDUCERS and op != "sum":
        raise QueryError(f"aggregation {op!r} is not supported")
    keys = group_keys(memos, node, labels)
    if keys is None:
        groups: dict[Labels, list[float]] = {Labels(): values} if values else {}
    else:
        groups = {}
        for k, v in zip(keys, values):
            g = groups.get(k)
            if g is None:
                groups[k] = [v]
            else:
                g.append(v)
    if op == "sum":
        return [Sample(k, t, _kahan_sum(vals)) for k, vals in groups.items()]
    if op == "quantile":
        return [Sample(k, t, quantile(param, vals)) for k, vals in groups.items()]
    fn = _REDUCERS[op]
    assert fn is not None  # "quantile", the only op without a reducer, is handled above
    return [Sample(k, t, fn(vals)) for k, vals in groups.items()]


def _kahan_sum(vs: list[float]) -> float:
    """Kahan-Neumaier sum of ``vs`` in order (``kahanSumInc``, inlined: the hot path of
    ``sum(rate(...))``)."""
    s = vs[0]
    c = 0.0
    for x in vs[1:]:
        tot = s + x
        if tot - tot != 0.0:  # inf or nan
            if math.isinf(tot):
                c = 0.0
        elif abs(s) >= abs(x):
            c += (s - tot) + x
        else:
            c += (x - tot) + s
        s = tot
    return s if math.isinf(s) else s + c


def _avg(vals: list[float]) -> float:
    """Incremental mean as ``aggregation`` AVG (robust against overflow and infinities)."""
    mean = 0.0
    count = 0
    for v in vals:
        count += 1
        if count == 1:
            mean = v
            continue
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean += v / count - mean / count
    return mean


def _simple_avg(vals: list[float]) -> float:
    s, c = 0.0, 0.0
    for v in vals:
        s, c = kahan_inc(v, s, c)
    total = s if math.isinf(s) else s + c
    if not math.isinf(total) and not math.isnan(total):
        return total / len(vals)
    return _avg(vals)


def _min(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m > v or m != m:
            m = v
    return m


def _max(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m < v or m != m:
            m = v
    return m


def _stdvar(vals: list[float]) -> float:
    count = 0
    mean = 0.0
    acc = 0.0
    for v in vals:
        count += 1
        delta = v - mean
        mean += delta / count
        acc += delta * (v - mean)
    return acc / count


def _stddev(vals: list[float]) -> float:
    return math.sqrt(_stdvar(vals))


# "quantile" has no reducer (it takes a parameter); it is listed as a supported op.
_REDUCERS: dict[str, Callable[[list[float]], float] | None] = {
    "avg": _simple_avg,
    "min": _min,
    "max": _max,
    "count": lambda vals: float(len(vals)),
    "group": lambda vals: 1.0,
    "stddev": _stddev,
    "stdvar": _stdvar,
    "quantile": None,
}


def _topk(node: n.Aggregate, vec: list[Sample], param: float, t: int) -> list[Sample]:
    """``aggregationK``: the k largest (smallest) samples per group, labels kept, NaN last."""
    if param != param:
        raise QueryError(f"Parameter value is NaN for {node.op}")
    if param >= 2**63 or param <= -(2**63):
        raise QueryError(f"Scalar value {param} overflows int64")
    k = int(param)
    if k < 1 or not vec:
        return []
    key = _grouping_key(node)
    groups: dict[Labels, list[Sample]] = {}
    for s in vec:
        groups.setdefault(key(s.labels), []).append(s)
    top = node.op == "topk"
    out: list[Sample] = []
    if node.op == "limitk":  # the first k of each group, in input order (Prometheus 3)
        for members in groups.values():
            out.extend(Sample(s.labels, t, s.v) for s in members[:k])
        return out
    for members in groups.values():
        if top:
            ordered = sorted(members, key=lambda s: (s.v != s.v, -s.v if s.v == s.v else 0.0))
        else:
            ordered = sorted(members, key=lambda s: (s.v != s.v, s.v if s.v == s.v else 0.0))
        out.extend(Sample(s.labels, t, s.v) for s in ordered[:k])
    return out


def _limit_ratio(node: n.Aggregate, vec: list[Sample], ratio: float, t: int) -> list[Sample]:
    r"""``limit_ratio`` (Prometheus 3 ``AddRatioSample``): keep a series when its label hash
    (xxHash64 of ``name\xffvalue\xff...``, as ``Labels.Hash``) over 2^64-1 is below ``ratio``,
    or for a negative ratio at least ``1 + ratio``; ``|ratio|`` above 1 counts as 1. The same
    series are kept at every step, and ``limit_ratio(r, x)`` and ``limit_ratio(r - 1, x)`` split
    ``x`` in two."""
    if ratio != ratio:
        raise QueryError(f"Ratio value is NaN for {node.op}")
    ratio = max(-1.0, min(1.0, ratio))
    key = _grouping_key(node)
    groups: dict[Labels, list[Sample]] = {}
    for s in vec:
        offset = label_hash(s.labels) / 0xFFFF_FFFF_FFFF_FFFF
        if (ratio >= 0 and offset < ratio) or (ratio < 0 and offset >= 1.0 + ratio):
            groups.setdefault(key(s.labels), []).append(Sample(s.labels, t, s.v))
    return [s for members in groups.values() for s in members]


def label_hash(labels: Labels) -> int:
    """Prometheus ``labels.Labels.Hash``: xxHash64 of every ``name 0xff value 0xff``."""
    return xxhash.xxh64_intdigest(b"".join(k.encode() + b"\xff" + v.encode() + b"\xff" for k, v in labels))


def _count_values(node: n.Aggregate, vec: list[Sample], label: str, t: int) -> list[Sample]:
    """``aggregationCountValues``: count samples per (group, value) with the value in ``label``."""
    if not valid_label_name(label):
        raise QueryError(f"invalid label name {label!r}")
    names = set(node.grouping)
    counts: dict[Labels, int] = {}
    for s in vec:
        d = dict(s.labels)
        d[label] = format_float(s.v)
        if node.without:
            d.pop(METRIC_NAME, None)
            for g in names:
                d.pop(g, None)
        else:
            d = {k: v for k, v in d.items() if k in names or k == label}
        lb = Labels.of(d)
        counts[lb] = counts.get(lb, 0) + 1
    return [Sample(k, t, float(c)) for k, c in counts.items()]
