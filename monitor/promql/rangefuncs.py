"""Functions over range vectors: rate/increase/delta, irate/idelta, deriv, predict_linear,
resets, changes, holt_winters and the ``*_over_time`` family.

Sources: Prometheus v2.53 ``promql/functions.go`` (``extrapolatedRate``, ``instantValue``,
``linearRegression``, ``funcHoltWinters``, ``aggrOverTime`` and the ``func*OverTime`` functions).
Every function here receives one series window: ``ts`` (ms, ascending) and ``vs`` (floats,
staleness markers already removed), plus the window bounds, and returns a float or ``None``
(no output element).
"""

from __future__ import annotations

import math

from monitor.promql.kahan import kahan_inc
from monitor.promql.quantile import quantile


def extrapolated_rate(ts: list[int], vs: list[float], range_start: int, range_end: int,
                      range_ms: int, is_counter: bool, is_rate: bool) -> float | None:
    """``extrapolatedRate``: rate/increase/delta with counter resets and extrapolation to the
    window edges (by at most half an average sample interval, and not below zero for counters).

    :return: per-second rate when ``is_rate``; ``None`` with fewer than two samples.
    """
    n = len(vs)
    if n < 2:
        return None
    first_t, last_t = ts[0], ts[-1]
    first_v = vs[0]
    result = vs[-1] - first_v
    if is_counter:
        # A reset is a decrease: without NaNs (sum() tells) the values are free of resets iff
        # sorting leaves them alone, a C-speed test; otherwise walk them as Prometheus does.
        vals = list(vs)
        total = sum(vals)
        if result < 0 or total != total or vals != sorted(vals):
            prev = first_v
            for cur in vals:
                if cur < prev:
                    result += prev
                prev = cur
    duration_to_start = (first_t - range_start) / 1000
    duration_to_end = (range_end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg_between = sampled / (n - 1)
    threshold = avg_between * 1.1
    if duration_to_start >= threshold:
        duration_to_start = avg_between / 2
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    if duration_to_end >= threshold:
        duration_to_end = avg_between / 2
    factor = (sampled + duration_to_start + duration_to_end) / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def instant_value(ts: list[int], vs: list[float], is_rate: bool) -> float | None:
    """``instantValue``: irate/idelta from the last two samples (irate handles a reset)."""
    if len(vs) < 2:
        return None
    last, prev = vs[-1], vs[-2]
    if is_rate and last < prev:
        result = last
    else:
        result = last - prev
    interval = ts[-1] - ts[-2]
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def linear_regression(ts: list[int], vs: list[float], intercept_time: int) -> tuple[float, float]:
    """``linearRegression``: least-squares ``(slope per second, intercept at intercept_time)``
    with Kahan sums; a constant series gives slope 0 (NaN if the constant is infinite)."""
    n = 0.0
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    init_y = vs[0]
    const_y = True
    for i, (t, y) in enumerate(zip(ts, vs)):
        if const_y and i > 0 and y != init_y:
            const_y = False
        n += 1
        x = (t - intercept_time) / 1e3
        sx, cx = kahan_inc(x, sx, cx)
        sy, cy = kahan_inc(y, sy, cy)
        sxy, cxy = kahan_inc(x * y, sxy, cxy)
        sx2, cx2 = kahan_inc(x * x, sx2, cx2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sx += cx
    sy += cy
    sxy += cxy
    sx2 += cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    try:
        slope = cov / var
    except ZeroDivisionError:
        slope = math.nan if cov == 0 or cov != cov else math.copysign(math.inf, cov)
    intercept = sy / n - slope * sx / n
    return slope, intercept


def holt_winters(vs: list[float], sf: float, tf: float) -> float | None:
    """``funcHoltWinters``: double exponential smoothing; ``None`` with fewer than two points."""
    if len(vs) < 2:
        return None
    s0 = 0.0
    s1 = vs[0]
    b = vs[1] - vs[0]
    for i in range(1, len(vs)):
        x = sf * vs[i]
        if i - 1 != 0:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def avg_over_time(vs: list[float]) -> float:
    """``funcAvgOverTime``: incremental Kahan mean, robust against overflow and infinities."""
    mean = c = 0.0
    count = 0
    for v in vs:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = kahan_inc(v / count - mean / count, mean, c)
    if math.isinf(mean):
        return mean
    return mean + c


def sum_over_time(vs: list[float]) -> float:
    """``funcSumOverTime``: Kahan-Neumaier sum."""
    s = c = 0.0
    for v in vs:
        s, c = kahan_inc(v, s, c)
    return s if math.isinf(s) else s + c


def min_over_time(vs: list[float]) -> float:
    """``funcMinOverTime``: NaN only if every value is NaN."""
    m = vs[0]
    for v in vs:
        if v < m or m != m:
            m = v
    return m


def max_over_time(vs: list[float]) -> float:
    """``funcMaxOverTime``: NaN only if every value is NaN."""
    m = vs[0]
    for v in vs:
        if v > m or m != m:
            m = v
    return m


def stdvar_over_time(vs: list[float]) -> float:
    """``funcStdvarOverTime``: population variance (Welford with Kahan sums)."""
    count = 0.0
    mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def stddev_over_time(vs: list[float]) -> float:
    """``funcStddevOverTime``: square root of :func:`stdvar_over_time`."""
    return math.sqrt(stdvar_over_time(vs))


def mad_over_time(vs: list[float]) -> float:
    """``funcMadOverTime``: median absolute deviation from the median."""
    med = quantile(0.5, vs)
    return quantile(0.5, [abs(v - med) for v in vs])


def changes(vs: list[float]) -> float:
    """``funcChanges``: number of value changes (NaN to NaN is no change)."""
    count = 0
    prev = vs[0]
    for cur in vs[1:]:
        if cur != prev and not (cur != cur and prev != prev):
            count += 1
        prev = cur
    return float(count)


def resets(vs: list[float]) -> float:
    """``funcResets``: number of decreases (counter resets)."""
    count = 0
    prev = vs[0]
    for cur in vs[1:]:
        if cur < prev:
            count += 1
        prev = cur
    return float(count)
