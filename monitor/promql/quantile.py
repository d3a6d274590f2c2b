"""Quantiles: the ``quantile`` aggregation / ``quantile_over_time`` and classic-histogram
``histogram_quantile`` (Prometheus v2.53 ``promql/quantile.go``: ``quantile``,
``bucketQuantile``, ``coalesceBuckets``, ``ensureMonotonic``)."""

from __future__ import annotations

import math


def quantile(q: float, vals: list[float]) -> float:
    """φ-quantile by linear interpolation (``quantile`` in ``promql/quantile.go``).

    :return: NaN for no values or φ NaN; -Inf for φ < 0; +Inf for φ > 1.
    """
    if not vals or q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vs = sorted(vals, key=lambda v: (v == v, v if v == v else 0.0))
    cnt = len(vs)
    rank = q * (cnt - 1)
    lower = max(0, math.floor(rank))
    upper = min(cnt - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vs[lower] * (1 - weight) + vs[upper] * weight



def bucket_quantile(phi: float, buckets: list[tuple[float, float]]) -> float:
    """``bucketQuantile`` (promql/quantile.go) over ``[(upper_bound, cumulative_count)]``.

    NaN without a +Inf bucket or with fewer than two buckets or no observations; buckets
    are sorted, duplicates merged, counts made monotonic (``ensureMonotonic``); the result is
    interpolated linearly inside the bucket, the lowest bucket starting at 0 if its bound > 0.
    """
    if phi != phi:
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for ub, c in buckets:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    hi = -math.inf
    for bucket in merged:
        if bucket[1] > hi:
            hi = bucket[1]
        elif bucket[1] < hi:
            bucket[1] = hi
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = phi * observations
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    if count == 0:  # only when phi == 0 and the lowest bucket is empty: Go's 0/0
        return math.nan
    return start + (end - start) * (rank / count)


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """``BucketFraction`` (Prometheus 3 ``promql/quantile.go``): the estimated fraction of
    observations in ``[lower, upper]`` of classic buckets ``[(upper_bound, cumulative_count)]``,
    interpolated linearly inside a bucket (the lowest one starting at 0 if its bound is > 0).

    :return: NaN without a +Inf bucket, without observations or for a NaN bound; 0 when
        ``lower >= upper``.
    """
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for ub, c in buckets:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    count = merged[-1][1]
    if count == 0 or lower != lower or upper != upper:
        return math.nan
    if lower >= upper:
        return 0.0
    rank = 0.0
    ranks: list[float | None] = [None, None]  # lower, upper
    for i, (ub, c) in enumerate(merged):
        lb = merged[i - 1][0] if i else (0.0 if ub > 0 else -math.inf)
        for j, v in enumerate((lower, upper)):
            if ranks[j] is None:
                if lb >= v:
                    ranks[j] = rank
                elif ub > v:
                    ranks[j] = rank if math.isinf(lb) else rank + (c - rank) * (v - lb) / (ub - lb)
        if ranks[0] is not None and ranks[1] is not None:
            break
        rank = c
    lo = count if ranks[0] is None or ranks[0] > count else ranks[0]
    hi = count if ranks[1] is None or ranks[1] > count else ranks[1]
    return (hi - lo) / count


def parse_le(s: str) -> float | None:
    """Parse an ``le`` label value (``strconv.ParseFloat``); ``None`` if it is not a number."""
    try:
        return float(s)
    except ValueError:
        return None
