"""Prometheus 2 vs 3 PromQL: which functions a query may call, and the 3.x-only functions.

``rules.promql_compat`` picks the semantics (``"3"``, the default, or ``"2"``) and
``rules.enable_features`` the feature flags, named as Prometheus's ``--enable-feature``
(``promql/parser/functions.go`` ``Experimental``, ``parser.ExperimentalDurationExpr``):

* ``promql-experimental-functions``: ``double_exponential_smoothing``, ``sort_by_label``,
  ``sort_by_label_desc``, ``mad_over_time``, ``ts_of_min_over_time``, ``ts_of_max_over_time``,
  ``ts_of_last_over_time``, ``limitk``, ``limit_ratio``, ``info`` (3.x; under compat 2 only
  ``sort_by_label``/``sort_by_label_desc`` are experimental, as in 2.53).
* ``promql-duration-expr``: arithmetic in ranges, steps and offsets (``x[5m+1m]``).
* ``promql-delayed-name-removal`` (3.x only): operations that drop ``__name__`` mark it instead
  and the engine removes it when the query ends, so ``label_replace``/``label_join`` and
  ``by (__name__)`` can still read it (``EngineOpts.EnableDelayedNameRemoval``; see
  :mod:`monitor.promql.value`). Vector matching then ignores only ``__name__``, not
  ``__type__``/``__unit__`` (``signatureFunc``).

Prometheus 3 removed ``holt_winters`` (renamed ``double_exponential_smoothing``, experimental);
under compat 2 ``holt_winters`` exists and ``double_exponential_smoothing`` does not.
``sort_by_label`` changed in 3 (no sort by value first; ties broken by the whole label set,
``funcSortByLabel`` in v3.5 ``promql/functions.go``).
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.functions import (
    FUNCTION_CALLS, CallContext, FunctionCall, RangeKernel, _holt_winters, _natless, _values_fn, bucket_groups,
)
from monitor.promql.kahan import kahan_inc
from monitor.promql.quantile import bucket_fraction
from monitor.promql.value import Sample, check_duplicates
from model.matchers import Matcher

EXPERIMENTAL_FUNCTIONS = "promql-experimental-functions"
DURATION_EXPR = "promql-duration-expr"
DELAYED_NAME_REMOVAL = "promql-delayed-name-removal"
#: Every feature flag ``rules.enable_features`` accepts.
KNOWN_FEATURES = frozenset({EXPERIMENTAL_FUNCTIONS, DURATION_EXPR, DELAYED_NAME_REMOVAL})
#: Flags Prometheus 2.53 does not have (rejected under ``promql_compat: "2"``).
V3_ONLY_FEATURES = frozenset({DELAYED_NAME_REMOVAL})

_EXPERIMENTAL_V3 = frozenset({"double_exponential_smoothing", "sort_by_label", "sort_by_label_desc",
                              "mad_over_time", "ts_of_min_over_time", "ts_of_max_over_time",
                              "ts_of_last_over_time", "limitk", "limit_ratio", "info"})
_EXPERIMENTAL_V2 = frozenset({"sort_by_label", "sort_by_label_desc"})
_ONLY_V2 = frozenset({"holt_winters"})
_ONLY_V3 = frozenset({"double_exponential_smoothing", "ts_of_min_over_time", "ts_of_max_over_time",
                      "ts_of_last_over_time", "limitk", "limit_ratio", "info"})


def check_query(root: n.Node, compat: str, features: frozenset[str]) -> None:
    """Reject functions and aggregations that ``compat`` does not know or ``features`` does
    not enable (Prometheus: ``unknown function with name``, ``function ... is not enabled``).

    :raises QueryError: naming the function and, when disabled, the feature flag.
    """
    unknown = _ONLY_V3 if compat == "2" else _ONLY_V2
    experimental = _EXPERIMENTAL_V2 if compat == "2" else _EXPERIMENTAL_V3
    for node in n.iter_nodes(root):
        if isinstance(node, n.Call):
            name = node.name
        elif isinstance(node, n.Aggregate):
            name = node.op
        else:
            continue
        if name in unknown:
            hint = " (Prometheus 3 renamed it double_exponential_smoothing)" if name == "holt_winters" else ""
            raise QueryError(f"parse error: unknown function with name {name!r} under promql_compat "
                             f"{compat!r}{hint}")
        if name in experimental and EXPERIMENTAL_FUNCTIONS not in features:
            raise QueryError(f"parse error: function {name!r} is not enabled: add {EXPERIMENTAL_FUNCTIONS!r} "
                             "to rules.enable_features")


_ADAPTED: weakref.WeakSet[n.Node] = weakref.WeakSet()  # trees already adapted to compat "2"


def apply_compat(root: n.Node, compat: str) -> n.Node:
    """Adapt a compiled tree to ``compat`` in place, once: under ``"2"`` regex matchers no longer
    let ``.`` match a newline (2.x anchored them as ``^(?:re)$``; 3.x as ``^(?s:re)$``).
    ``label_replace`` keeps the 3.x form.

    :return: ``root``.
    """
    if compat != "2" or root in _ADAPTED:
        return root
    for node in n.iter_nodes(root):
        if isinstance(node, n.VectorSel):
            node.matchers = [_no_dotall(m) for m in node.matchers]
            node.or_matchers = [[_no_dotall(m) for m in group] for group in node.or_matchers]
            node.__post_init__()  # the key names the matchers
    _ADAPTED.add(root)
    return root


def _no_dotall(m: Matcher) -> Matcher:
    return Matcher(m.name, m.op, f"(?-s:{m.value})") if m.op in ("=~", "!~") else m


def _sort_by_label_v3(desc: bool) -> FunctionCall:
    """``funcSortByLabel`` / ``funcSortByLabelDesc`` (v3.5): by the natural order of the given
    labels, then by the whole label set; no sort by value."""

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        names = args[1:]
        sign = -1 if desc else 1

        def cmp(a: Sample, b: Sample) -> int:
            for name in names:
                x, y = a.labels.get(name), b.labels.get(name)
                if x == y:
                    continue
                return sign * (-1 if _natless(x, y) else 1)
            if a.labels == b.labels:
                return 0
            return sign * (-1 if a.labels < b.labels else 1)

        return sorted(args[0], key=functools.cmp_to_key(cmp))

    return fn


def _ts_of(pick: Any) -> RangeKernel:
    """``funcTsOfMinOverTime`` etc.: the time (s) of the sample ``pick(vs)`` chooses."""

    def kernel(ts: list[int], vs: list[float], arg: Any) -> float | None:
        return ts[pick(vs)] / 1000 if vs else None

    return RangeKernel(kernel)


def _last_extreme(better: Any) -> Any:
    """Index of the last sample ``better`` than (or equal to) every earlier one; a NaN so far
    is always replaced (``compareOverTime`` with ``<=``/``>=``)."""

    def pick(vs: list[float]) -> int:
        best, at = vs[0], 0
        for i, v in enumerate(vs):
            if better(v, best) or best != best:
                best, at = v, i
        return at

    return pick


def _histogram_fraction(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcHistogramFraction`` over classic buckets (``le``), grouped as ``histogram_quantile``."""
    lower, upper, vec = args
    out = [Sample(lb, ctx.t, bucket_fraction(lower, upper, bs)) for lb, bs in bucket_groups(vec, ctx.drop_name)]
    check_duplicates(out)
    return out


def avg_over_time_v3(vs: list[float]) -> float:
    """``funcAvgOverTime`` (v3.5): Kahan sum divided by the count, switching to an incremental
    mean only once the sum overflows."""
    total, c, mean = vs[0], 0.0, 0.0
    incremental = False
    for i, v in enumerate(vs[1:]):
        count = float(i + 2)
        if not incremental:
            new_sum, new_c = kahan_inc(v, total, c)
            if not math.isinf(new_sum):
                total, c = new_sum, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = kahan_inc(v / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / len(vs) + c / len(vs)


def _holt_winters_v3(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcDoubleExponentialSmoothing``: ``holt_winters`` under its 3.x name."""
    return _holt_winters(args, call, ctx)


#: Functions of Prometheus 3 (and their 3.x forms), keyed by name; see :func:`functions_for`.
V3_FUNCTIONS: dict[str, FunctionCall | RangeKernel] = {
    "double_exponential_smoothing": _holt_winters_v3,
    "histogram_fraction": _histogram_fraction,
    "avg_over_time": _values_fn(avg_over_time_v3),
    "sort_by_label": _sort_by_label_v3(False),
    "sort_by_label_desc": _sort_by_label_v3(True),
    "ts_of_min_over_time": _ts_of(_last_extreme(lambda v, best: v <= best)),
    "ts_of_max_over_time": _ts_of(_last_extreme(lambda v, best: v >= best)),
    "ts_of_last_over_time": _ts_of(lambda vs: len(vs) - 1),
}


def functions_for(compat: str) -> dict[str, FunctionCall | RangeKernel]:
    """Return the function table of ``compat`` (``"2"``: 2.53's; ``"3"``: with the 3.x ones)."""
    return FUNCTION_CALLS if compat == "2" else _V3_TABLE


_V3_TABLE = {**FUNCTION_CALLS, **V3_FUNCTIONS}
