"""PromQL functions, one explicit table: ``FUNCTION_CALLS[name]``.

Functions never see the evaluator: as in Prometheus ``promql/functions.go`` (``FunctionCall``,
``FunctionCalls``), the evaluator evaluates a call's arguments first and hands over their
values. Each entry of :data:`FUNCTION_CALLS` is one of

* a :data:`FunctionCall` ``fn(args, call, ctx) -> value``: ``args`` are the evaluated arguments
  in order (``float`` for a scalar, ``str`` for a string, ``list[Sample]`` for an instant vector,
  :class:`~monitor.promql.value.RangeArg` for a range vector), ``call`` the
  :class:`~monitor.promql.nodes.Call` node (``absent()`` reads its argument's matchers), ``ctx``
  a :class:`CallContext` (evaluation time, query limits; Prometheus ``EvalNodeHelper``);
* a :class:`RangeKernel`: a function of one range vector computed series by series
  (``rate``, ``*_over_time``, ...). The evaluator applies the kernel to each series' window, as
  Prometheus's evaluator calls range-vector functions with one series at a time (``rangeEval``
  over ``matrixIterSlice`` in ``promql/engine.go``), and may memoise the per-series results
  (``Evaluator.range_columns``).

Semantics follow Prometheus v2.53 ``promql/functions.go`` (function names cited per entry);
range-vector kernels live in :mod:`monitor.promql.rangefuncs`. All functions except
``last_over_time``, ``label_replace``, ``label_join`` and the ``sort*`` family drop the metric
name. Results that end up with two identical label sets are an error, as in Prometheus
("vector cannot contain metrics with the same labelset").
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql import rangefuncs as rf
from monitor.promql.limits import QueryLimits
from monitor.promql.quantile import bucket_quantile, parse_le, quantile
from monitor.promql.regex import compile_anchored, expand
from monitor.promql.value import RangeArg, Sample, check_duplicates, div, drop_name, valid_label_name
from model.labels import METRIC_NAME, Labels


class CallContext(NamedTuple):
    """What a function gets besides its arguments (Prometheus ``EvalNodeHelper``).

    :param t: the evaluation timestamp (ms).
    :param limits: the query's limits (deadline, samples held), for functions with long loops.
    :param drop_name: how a function drops ``__name__`` from a label set: ``value.drop_name``,
        or ``value.mark_name`` under delayed name removal (``promql-delayed-name-removal``).
    """

    t: int
    limits: QueryLimits
    drop_name: Callable[[Labels], Labels] = drop_name


#: ``fn(args, call, ctx) -> float | str | list[Sample]``; see the module docstring.
FunctionCall = Callable[[list[Any], n.Call, CallContext], Any]


class RangeKernel(NamedTuple):
    """A function of one range vector, computed series by series by the evaluator.

    :param kernel: ``kernel(ts, vs, arg) -> float | None`` over one series' window: ``ts`` (ms,
        ascending), ``vs`` (floats, no staleness markers), ``arg`` the whole
        :class:`~monitor.promql.value.RangeArg` (for the window bounds); ``None`` means no
        output element for the series.
    :param keep_name: keep ``__name__`` in the output labels (``last_over_time``); otherwise
        it is dropped and two series left with the same labels are an error.
    """

    kernel: Callable[[list[int], list[float], RangeArg], float | None]
    keep_name: bool = False


def _values_fn(kernel: Callable[[list[float]], float], keep_name: bool = False) -> RangeKernel:
    return RangeKernel(lambda ts, vs, arg: kernel(vs), keep_name)


def _rate_fn(is_counter: bool, is_rate: bool) -> RangeKernel:
    """``funcRate``/``funcIncrease``/``funcDelta`` via ``extrapolatedRate``."""
    er = rf.extrapolated_rate

    def kernel(ts: list[int], vs: list[float], arg: RangeArg) -> float | None:
        return er(ts, vs, arg.start, arg.end, arg.range, is_counter, is_rate)

    return RangeKernel(kernel)


def _predict_linear(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcPredictLinear``: regression value ``duration`` seconds after ``t``."""
    arg, duration = args
    t = ctx.t
    out = []
    for _, nameless, ts, vs in arg.series:
        if len(vs) < 2:
            continue
        slope, intercept = rf.linear_regression(ts, vs, t)
        out.append(Sample(nameless, t, slope * duration + intercept))
    check_duplicates(out)
    return out


def _deriv(ts: list[int], vs: list[float], arg: RangeArg) -> float | None:
    """``funcDeriv``: per-second slope of the regression line (two samples at least)."""
    if len(vs) < 2:
        return None
    return rf.linear_regression(ts, vs, ts[0])[0]


def _holt_winters(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcHoltWinters``: smoothing factor and trend factor must be in (0, 1)."""
    arg, sf, tf = args
    t = ctx.t
    if not 0 < sf < 1:
        raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    out = []
    for _, nameless, ts, vs in arg.series:
        v = rf.holt_winters(vs, sf, tf)
        if v is not None:
            out.append(Sample(nameless, t, v))
    check_duplicates(out)
    return out


def _quantile_over_time(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcQuantileOverTime``."""
    phi, arg = args
    t = ctx.t
    out = [Sample(nameless, t, quantile(phi, list(vs))) for _, nameless, ts, vs in arg.series if vs]
    check_duplicates(out)
    return out


def _math_fn(f: Callable[[float], float]):
    """Element-wise math (``funcAbs``, ``funcCeil``, ... via ``simpleFunc``), name dropped."""

    def safe(v: float) -> float:
        try:
            return f(v)
        except OverflowError:
            return math.inf
        except (ValueError, ZeroDivisionError):
            return math.nan

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        t = ctx.t
        out = [Sample(ctx.drop_name(s.labels), t, safe(s.v)) for s in args[0]]
        check_duplicates(out)
        return out

    return fn


def _ln(v: float) -> float:
    if v == 0:
        return -math.inf
    if v < 0 or v != v:
        return math.nan
    return math.inf if math.isinf(v) else math.log(v)


def _log_base(base: float):
    return lambda v: _ln(v) / math.log(base) if v > 0 and not math.isinf(v) else _ln(v)


def _sgn(v: float) -> float:
    if v > 0:
        return 1.0
    if v < 0:
        return -1.0
    return v  # 0 or NaN


def _round(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcRound``: round half up to the nearest multiple of ``to_nearest`` (default 1)."""
    vec = args[0]
    to_nearest = args[1] if len(args) > 1 else 1.0
    t = ctx.t
    inv = div(1.0, to_nearest)
    out = []
    for s in vec:
        x = s.v * inv + 0.5
        out.append(Sample(ctx.drop_name(s.labels), t, div(float(math.floor(x)) if math.isfinite(x) else x, inv)))
    check_duplicates(out)
    return out


def _go_max(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    return max(a, b)


def _go_min(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    return min(a, b)


def _clamp(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcClamp``: empty when ``max < min``."""
    vec, lo, hi = args
    if hi < lo:
        return []
    t = ctx.t
    out = [Sample(ctx.drop_name(s.labels), t, _go_max(lo, _go_min(hi, s.v))) for s in vec]
    check_duplicates(out)
    return out


def _clamp_side(is_max: bool):
    """``funcClampMax`` / ``funcClampMin``."""

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        vec, bound = args
        t = ctx.t
        f = _go_min if is_max else _go_max
        out = [Sample(ctx.drop_name(s.labels), t, f(bound, s.v)) for s in vec]
        check_duplicates(out)
        return out

    return fn


def _time(args: list[Any], call: n.Call, ctx: CallContext) -> float:
    """``funcTime``: evaluation time in seconds."""
    return ctx.t / 1000


def _pi(args: list[Any], call: n.Call, ctx: CallContext) -> float:
    return math.pi


def _vector(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcVector``: the scalar as a one-element vector with no labels."""
    return [Sample(Labels(), ctx.t, args[0])]


def _scalar(args: list[Any], call: n.Call, ctx: CallContext) -> float:
    """``funcScalar``: the single element's value, else NaN."""
    vec = args[0]
    return vec[0].v if len(vec) == 1 else math.nan


def _timestamp(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcTimestamp``: each sample's timestamp in seconds. For a selector argument the
    evaluator passes the samples with their own timestamps (engine.go
    ``rangeEvalTimestampFunctionOverVectorSelector``), otherwise they carry ``t``."""
    t = ctx.t
    out = [Sample(ctx.drop_name(s.labels), t, s.t / 1000) for s in args[0]]
    check_duplicates(out)
    return out


def _absent_labels(arg: n.Node) -> Labels:
    """``createLabelsForAbsentFunction``: equality matchers' labels, unless a name repeats."""
    if isinstance(arg, n.MatrixSel):
        arg = arg.vs
    if not isinstance(arg, n.VectorSel):
        return Labels()
    d: dict[str, str] = {}
    has: set[str] = set()
    for m in arg.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.op == "=" and m.name not in has:
            d[m.name] = m.value
            has.add(m.name)
        else:
            d.pop(m.name, None)
    return Labels.of(d)


def _absent(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcAbsent``."""
    if args[0]:
        return []
    return [Sample(_absent_labels(call.args[0]), ctx.t, 1.0)]


def _absent_over_time(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcAbsentOverTime``."""
    if args[0].series:
        return []
    return [Sample(_absent_labels(call.args[0]), ctx.t, 1.0)]


def bucket_groups(vec: list[Sample], drop: Callable[[Labels], Labels] = drop_name,
                  ) -> list[tuple[Labels, list[tuple[float, float]]]]:
    """Group classic-histogram bucket samples by their labels without ``le`` (the metric name
    included): ``[(result labels without the name, [(upper bound, count), ...]), ...]``; samples
    whose ``le`` is missing or not a number are skipped (``histogram_quantile``/``_fraction``)."""
    groups: dict[Labels, tuple[Labels, list[tuple[float, float]]]] = {}
    for s in vec:
        ub = parse_le(s.labels.get("le"))
        if ub is None:
            continue
        key = s.labels.without("le")
        g = groups.get(key)
        if g is None:
            groups[key] = (drop(key), [(ub, s.v)])
        else:
            g[1].append((ub, s.v))
    return list(groups.values())


def _histogram_quantile(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcHistogramQuantile`` over classic buckets (``le`` label), grouped by all other
    labels including the metric name; the name is dropped from the result."""
    phi, vec = args
    out = [Sample(lb, ctx.t, bucket_quantile(phi, bs)) for lb, bs in bucket_groups(vec, ctx.drop_name)]
    check_duplicates(out)
    return out


def _label_replace(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcLabelReplace``: set ``dst`` from ``replacement`` when ``regex`` matches ``src``
    (fully anchored); an empty result removes ``dst``."""
    vec, dst, repl, src, regex = args
    t = ctx.t
    rx = compile_anchored(regex, "label_replace")
    if not valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for s in vec:
        m = rx.match(s.labels.get(src))
        if m is None:
            out.append(s)
            continue
        res = expand(repl, m)
        d = dict(s.labels)
        d.pop(dst, None)
        if res:
            d[dst] = res
        out.append(Sample(Labels.of(d), t, s.v))
    check_duplicates(out)
    return out


def _label_join(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
    """``funcLabelJoin``: ``dst`` = the ``src`` labels' values joined by ``sep``."""
    vec, dst, sep, *srcs = args
    t = ctx.t
    for name in srcs:
        if not valid_label_name(name):
            raise QueryError(f"invalid source label name in label_join(): {name}")
    if not valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    out = []
    for s in vec:
        val = sep.join(s.labels.get(name) for name in srcs)
        d = dict(s.labels)
        d.pop(dst, None)
        if val:
            d[dst] = val
        out.append(Sample(Labels.of(d), t, s.v))
    check_duplicates(out)
    return out


def _sort(desc: bool):
    """``funcSort`` / ``funcSortDesc``: by value, NaN last."""

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        vec = args[0]
        nums = [s for s in vec if s.v == s.v]
        nans = [s for s in vec if s.v != s.v]
        return sorted(nums, key=lambda s: s.v, reverse=desc) + nans

    return fn


_CHUNK = re.compile(r"\d+|\D+")


def _natless(a: str, b: str) -> bool:
    """``natsort.Compare`` (facette/natsort): numeric chunks compare as integers."""
    ca, cb = _CHUNK.findall(a), _CHUNK.findall(b)
    for i, x in enumerate(ca):
        if i >= len(cb):
            return False
        y = cb[i]
        if x.isdigit() and y.isdigit():
            xi, yi = int(x), int(y)
            if xi == yi:
                if i == len(ca) - 1:
                    return True
                if i == len(cb) - 1:
                    return False
                continue
            return xi < yi
        if x == y:
            if i == len(ca) - 1:
                return True
            if i == len(cb) - 1:
                return False
            continue
        return x < y
    return False


def _sort_by_label(desc: bool):
    """``funcSortByLabel`` / ``funcSortByLabelDesc`` (v2.53): sort by value first (``sort`` or
    ``sort_desc``), then stably by the natural order of the given labels."""
    by_value = _sort(desc)

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        vec = by_value(args, call, ctx)
        names = args[1:]

        def cmp(a: Sample, b: Sample) -> int:
            for name in names:
                x, y = a.labels.get(name), b.labels.get(name)
                if x == y:
                    continue
                r = -1 if _natless(x, y) else 1
                return -r if desc else r
            return 0

        return sorted(vec, key=functools.cmp_to_key(cmp))

    return fn


def _date_fn(f: Callable[[datetime], float]):
    """``dateWrapper``: apply ``f`` to each value read as Unix seconds (UTC); without an
    argument, to ``time()``."""

    def fn(args: list[Any], call: n.Call, ctx: CallContext) -> list[Sample]:
        t = ctx.t
        vec = args[0] if args else [Sample(Labels(), t, t / 1000)]
        out = []
        for s in vec:
            if s.v != s.v or math.isinf(s.v):
                out.append(Sample(ctx.drop_name(s.labels), t, math.nan))
                continue
            try:
                d = datetime.fromtimestamp(int(s.v), tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                out.append(Sample(ctx.drop_name(s.labels), t, math.nan))
                continue
            out.append(Sample(ctx.drop_name(s.labels), t, float(f(d))))
        check_duplicates(out)
        return out

    return fn


def _rad(v: float) -> float:
    return v * math.pi / 180


def _deg(v: float) -> float:
    return v * 180 / math.pi


#: Every supported function by name (Prometheus ``FunctionCalls``).
FUNCTION_CALLS: dict[str, FunctionCall | RangeKernel] = {
    # promql/functions.go extrapolatedRate / instantValue
    "rate": _rate_fn(True, True),
    "increase": _rate_fn(True, False),
    "delta": _rate_fn(False, False),
    "irate": RangeKernel(lambda ts, vs, a: rf.instant_value(ts, vs, True)),
    "idelta": RangeKernel(lambda ts, vs, a: rf.instant_value(ts, vs, False)),
    "deriv": RangeKernel(_deriv),
    "predict_linear": _predict_linear,
    "holt_winters": _holt_winters,
    "resets": _values_fn(rf.resets),
    "changes": _values_fn(rf.changes),
    # aggrOverTime family
    "avg_over_time": _values_fn(rf.avg_over_time),
    "sum_over_time": _values_fn(rf.sum_over_time),
    "count_over_time": _values_fn(lambda vs: float(len(vs))),
    "min_over_time": _values_fn(rf.min_over_time),
    "max_over_time": _values_fn(rf.max_over_time),
    "last_over_time": _values_fn(lambda vs: vs[-1], keep_name=True),
    "present_over_time": _values_fn(lambda vs: 1.0),
    "stddev_over_time": _values_fn(rf.stddev_over_time),
    "stdvar_over_time": _values_fn(rf.stdvar_over_time),
    "mad_over_time": _values_fn(rf.mad_over_time),
    "quantile_over_time": _quantile_over_time,
    "absent_over_time": _absent_over_time,
    "absent": _absent,
    # simpleFunc math
    "abs": _math_fn(abs),
    "ceil": _math_fn(lambda v: float(math.ceil(v)) if math.isfinite(v) else v),
    "floor": _math_fn(lambda v: float(math.floor(v)) if math.isfinite(v) else v),
    "exp": _math_fn(math.exp),
    "sqrt": _math_fn(lambda v: math.sqrt(v) if v >= 0 else math.nan),
    "ln": _math_fn(_ln),
    "log2": _math_fn(_log_base(2)),
    "log10": _math_fn(_log_base(10)),
    "sgn": _math_fn(_sgn),
    "sin": _math_fn(math.sin), "cos": _math_fn(math.cos), "tan": _math_fn(math.tan),
    "asin": _math_fn(math.asin), "acos": _math_fn(math.acos), "atan": _math_fn(math.atan),
    "sinh": _math_fn(math.sinh), "cosh": _math_fn(math.cosh), "tanh": _math_fn(math.tanh),
    "asinh": _math_fn(math.asinh), "acosh": _math_fn(math.acosh), "atanh": _math_fn(math.atanh),
    "rad": _math_fn(_rad), "deg": _math_fn(_deg),
    "pi": _pi,
    "round": _round,
    "clamp": _clamp,
    "clamp_min": _clamp_side(False),
    "clamp_max": _clamp_side(True),
    "time": _time,
    "timestamp": _timestamp,
    "vector": _vector,
    "scalar": _scalar,
    "histogram_quantile": _histogram_quantile,
    "label_replace": _label_replace,
    "label_join": _label_join,
    "sort": _sort(False),
    "sort_desc": _sort(True),
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
    # dateWrapper
    "day_of_month": _date_fn(lambda d: d.day),
    "day_of_week": _date_fn(lambda d: (d.weekday() + 1) % 7),
    "day_of_year": _date_fn(lambda d: d.timetuple().tm_yday),
    "days_in_month": _date_fn(lambda d: calendar.monthrange(d.year, d.month)[1]),
    "hour": _date_fn(lambda d: d.hour),
    "minute": _date_fn(lambda d: d.minute),
    "month": _date_fn(lambda d: d.month),
    "year": _date_fn(lambda d: d.year),
}
