"""Kahan-Neumaier compensated summation, as Prometheus sums floats.

Source: Prometheus v2.53 ``promql/functions.go`` ``kahanSumInc``, used by ``sum``/``avg``
(:mod:`monitor.promql.aggregations`) and by ``sum_over_time``, ``avg_over_time``,
``stdvar_over_time`` and ``linearRegression`` (:mod:`monitor.promql.rangefuncs`).
"""

from __future__ import annotations

import math


def kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    """One step of Kahan-Neumaier summation (``kahanSumInc``): return the new ``(sum, c)``."""
    t = s + inc
    if math.isinf(t):
        c = 0.0
    elif abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c
