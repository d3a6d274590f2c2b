"""The PromQL evaluator: instant and range queries over the sample store.

Semantics follow Prometheus v2.53 ``promql/engine.go``: instant selectors look back
``lookback_delta_ms`` (5 m) and stop at staleness markers (``vectorSelectorSingle``); range
selectors take the samples in ``[t - range, t]``, both ends included, staleness markers
dropped (``matrixIterSlice``); ``offset`` and ``@`` (incl. ``start()``/``end()``) shift the
evaluation time of a selector or subquery; subqueries evaluate their inner expression at
absolute multiples of their step (``SubqueryExpr`` in ``eval``).

Range queries are evaluated step by step, but every selector reads the store once per query,
over the union of the times it will need (``FindMinMaxTime``), and then slides over that data
with binary search. Instant queries (rule evaluations) share the results of function calls
and aggregations through a small per-engine cache keyed by (expression, time), and the
per-series results of range functions (``rate`` etc.) through a memo keyed by (function,
window) and series, so ``rate(x{a="1"}[5m])`` and ``rate(x[5m])`` compute each series' rate
once (see :meth:`_Query.range_columns`). Both are dropped as soon as the store reports new
samples for a metric they read; call :meth:`Engine.clear_cache` after deleting data from the
store (``SampleStore.clear``), which does not notify. Aggregations read range functions as
columns (labels, values), so ``sum(rate(x[5m]))`` makes no object per series.

Usage::

    engine = Engine(store)
    engine.instant_query('sum(rate(http_requests_total[5m]))', t_ms)   # -> Vector
    engine.range_query('up', start_ms, end_ms, 15_000)                  # -> Matrix
"""

from __future__ import annotations

import weakref
from bisect import bisect_left, bisect_right
from typing import Any

import promql_parser as pp

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.aggregations import SAMPLE_AGGREGATIONS, aggregate, aggregate_samples
from monitor.promql.binops import apply_binary
from monitor.promql.cache import GroupKeyMemo, NamelessLabels, ResultCache
from monitor.promql.functions import FUNCTION_CALLS, CallContext, RangeKernel
from monitor.promql.limits import QueryLimits
from monitor.promql.memo import ABSENT, RangeMemos
from monitor.promql.value import (Matrix, RangeArg, Sample, Scalar, Series, String, Value, Vector,
                                  check_duplicate_labels, check_duplicates, drop_name)
from monitor.tsdb.series import Labels, is_stale


class _Query:
    """State of one query: its time range, per-selector data and limits (samples, deadline)."""

    def __init__(self, engine: "Engine", root: n.Node, start: int, end: int) -> None:
        self.engine = engine
        self.root = root
        self.start = start
        self.end = end
        self.lookback = engine.lookback_delta_ms
        # Keyed by the selector's matchers: `rate(x[5m]) / x` reads the store for x once.
        self.bounds: dict[str, list[int]] = {}
        self.data: dict[tuple[str, bool], list[tuple[Labels, Labels, Any, Any]]] = {}
        self.limits = QueryLimits(engine.max_series, engine.max_samples, engine.timeout)
        self.subquery_cache: dict[tuple[int, int], list[Sample]] = {}
        self.store = engine.store
        self.nameless = engine.nameless
        self.group_keys = engine.group_keys
        # Only instant queries (rule evaluations) share results through the engine's cache.
        shared = start == end and engine.result_cache.limit > 0
        self.result_cache = engine.result_cache if shared else None
        self.range_memos = engine.range_memos if shared else None
        self._collect(root, start, end)

    # -- preparation -------------------------------------------------------------------------

    def at_time(self, at: n.At, t: int) -> int:
        """Resolve an ``@`` modifier to ms (``start()``/``end()`` are the top-level query's)."""
        if at.kind == "start":
            return self.start
        if at.kind == "end":
            return self.end
        return at.t

    def _widen(self, sel: n.VectorSel, lo: int, hi: int) -> None:
        b = self.bounds.get(sel.key)
        if b is None:
            self.bounds[sel.key] = [lo, hi]
        else:
            b[0] = min(b[0], lo)
            b[1] = max(b[1], hi)

    def _collect(self, node: n.Node, s: int, e: int) -> None:
        """Record the time span each selector needs when ``node`` is evaluated in ``[s, e]``."""
        if isinstance(node, n.VectorSel):
            if node.at is not None:
                s = e = self.at_time(node.at, s)
            self._widen(node, s - node.offset - self.lookback, e - node.offset)
        elif isinstance(node, n.MatrixSel):
            vs = node.vs
            if vs.at is not None:
                s = e = self.at_time(vs.at, s)
            self._widen(vs, s - vs.offset - node.range, e - vs.offset)
        elif isinstance(node, n.Subquery):
            if node.at is not None:
                s = e = self.at_time(node.at, s)
            self._collect(node.expr, s - node.offset - node.range, e - node.offset)
        elif isinstance(node, (n.Paren, n.Neg)):
            self._collect(node.expr, s, e)
        elif isinstance(node, n.Call):
            for a in node.args:
                self._collect(a, s, e)
        elif isinstance(node, n.Aggregate):
            if node.param is not None:
                self._collect(node.param, s, e)
            self._collect(node.expr, s, e)
        elif isinstance(node, n.Binary):
            self._collect(node.lhs, s, e)
            self._collect(node.rhs, s, e)

    def series_of(self, sel: n.VectorSel, drop_stale: bool) -> list[tuple[Labels, Labels, Any, Any]]:
        """Fetch (once) the series of a selector over its whole needed span.

        :return: ``[(labels, labels_without_name, timestamps, values)]`` sorted by labels;
            staleness markers removed when ``drop_stale`` (range selectors).
        :raises QueryError: beyond ``max_series`` series or ``max_samples`` samples.
        """
        key = (sel.key, drop_stale)
        got = self.data.get(key)
        if got is not None:
            return got
        lo, hi = self.bounds.get(sel.key, (self.start, self.end))
        store = self.store
        groups = sel.or_matchers or [sel.matchers]
        got = []
        append = got.append
        nameless, known = self.nameless, self.nameless.known.get
        samples = 0
        limits = self.limits
        tick = limits.tick
        seen: set[Labels] | None = set() if len(groups) > 1 else None
        for matchers in groups:
            for labels, ts, vs in store.select(matchers, lo, hi):
                tick(len(got))
                if seen is not None:
                    if labels in seen:
                        continue
                    seen.add(labels)
                # sum() (C speed) is NaN iff a NaN is present (or +Inf meets -Inf, a false
                # positive that only costs the exact check below).
                if drop_stale:
                    total = sum(vs)
                    if total != total:
                        keep = [i for i, v in enumerate(vs) if not (v != v and is_stale(v))]
                        if len(keep) != len(vs):
                            ts = [ts[i] for i in keep]
                            vs = [vs[i] for i in keep]
                        if not ts:
                            continue
                append((labels, known(labels) or nameless(labels), ts, vs))
                samples += len(ts)
        limits.samples += samples
        limits.check_selected(len(got), sel.text)
        if len(groups) > 1:
            got.sort(key=lambda item: item[0])
        self.data[key] = got
        return got

    def range_columns(self, node: n.Call, t: int, kernel: Any,
                      keep_name: bool = False) -> tuple[list[Labels], list[float]]:
        """Apply a range-function kernel ``kernel(ts, vs, arg) -> float | None`` to each
        series of ``node.args[0]`` at ``t``; ``None`` means no output element.

        :return: ``(labels, values)`` of the series with a result, in label order; labels are
            the series' own if ``keep_name``, else without ``__name__`` (duplicates are the
            caller's to reject). Columns rather than samples: an aggregation over them (the
            usual ``sum(rate(...))``) then allocates no object per series.

        Results are memoised per series when the argument is a store selector of a shareable
        call in an instant query: ``rate(x{a="1"}[5m])`` and ``rate(x[5m])`` in the rules of
        one group need the same per-series rates. A memo (:class:`RangeMemo`) is kept per
        (metric names, function, window start, end, range) and dropped with the engine's
        result cache when new samples of the metric arrive. When every series the selector
        matches (``SampleStore.series``) is in the memo, no samples are loaded at all (so
        none count towards ``max_samples``; ``max_series`` still applies), and the columns
        are kept for the next evaluation of the same selector.
        """
        arg_node = node.args[0]
        memo = None
        if self.range_memos is not None and node.cache_key is not None and isinstance(arg_node, n.MatrixSel):
            lo_t, ref = self.range_window(arg_node, t)
            memo = self.range_memos.window((node.names, node.name, lo_t, ref, arg_node.range))
        out_labels: list[Labels] = []
        out_values: list[float] = []
        append, append_v = out_labels.append, out_values.append
        tick = self.limits.tick
        if memo is None:
            arg = self.eval(arg_node, t)
            for i, (labels, nameless, ts, vs) in enumerate(arg.series):
                tick(i)
                v = kernel(ts, vs, arg)
                if v is not None:
                    append(labels if keep_name else nameless)
                    append_v(v)
            return out_labels, out_values
        sel = arg_node.vs
        values = memo.values
        missing: list[Labels] = []
        series = getattr(self.store, "series", None)
        if series is not None and not sel.or_matchers:
            done = memo.columns.get((sel.key, keep_name))
            if done is not None:  # the same selector again (under another aggregation)
                self.limits.check_selected(done[2], sel.text)
                return list(done[0]), list(done[1])
            selected = series(sel.matchers)  # label-sorted like select(), no samples read
            missing = [lb for lb in selected if lb not in values]
            if not missing:
                nameless, known = self.nameless, self.nameless.known.get
                n_series = 0
                for labels in selected:
                    v = values[labels]
                    if v is ABSENT:
                        continue
                    n_series += 1
                    if v is not None:
                        append(labels if keep_name else known(labels) or nameless(labels))
                        append_v(v)
                self.limits.check_selected(n_series, sel.text)
                memo.columns[sel.key, keep_name] = (out_labels, out_values, n_series)
                return list(out_labels), list(out_values)
        arg = self.eval(arg_node, t)
        get = values.get
        for i, (labels, nameless, ts, vs) in enumerate(arg.series):
            tick(i)
            v = get(labels, ABSENT)
            if v is ABSENT:
                v = values[labels] = kernel(ts, vs, arg)
            if v is not None:
                append(labels if keep_name else nameless)
                append_v(v)
        for labels in missing:
            if labels not in values:  # no samples in the window
                values[labels] = ABSENT
        return out_labels, out_values

    def eval_columns(self, node: n.Node, t: int) -> tuple[list[Labels], list[float]]:
        """Evaluate an instant-vector expression at ``t`` as ``(labels, values)`` columns.

        A range function over a selector (``rate(x[5m])``) is computed straight into columns
        (see :meth:`range_columns`), unless its samples are in the result cache already.
        """
        while isinstance(node, n.Paren):
            node = node.expr
        if isinstance(node, n.Call):
            fn = FUNCTION_CALLS.get(node.name)
            if isinstance(fn, RangeKernel):
                hit = None
                if node.cache_key is not None and self.result_cache is not None:
                    hit = self.result_cache.get((node.cache_key, t))
                if hit is None:
                    labels, values = self.range_columns(node, t, fn.kernel, fn.keep_name)
                    if not fn.keep_name:
                        check_duplicate_labels(labels)
                    return labels, values
        vec = self.eval(node, t)
        return [s.labels for s in vec], [s.v for s in vec]

    # -- evaluation --------------------------------------------------------------------------

    def eval(self, node: n.Node, t: int) -> Any:
        """Evaluate ``node`` at ``t`` (ms).

        :return: ``float`` for scalars, ``str`` for strings, ``list[Sample]`` for instant
            vectors, :class:`RangeArg` for range vectors.
        """
        if isinstance(node, n.Call):
            if node.cache_key is not None and self.result_cache is not None:
                return self.cached(node, t, self.eval_call)
            return self.eval_call(node, t)
        if isinstance(node, n.Binary):
            return apply_binary(node, self.eval(node.lhs, t), self.eval(node.rhs, t))
        if isinstance(node, n.Aggregate):
            if node.cache_key is not None and self.result_cache is not None:
                return self.cached(node, t, self.eval_aggregate)
            return self.eval_aggregate(node, t)
        if isinstance(node, n.VectorSel):
            return self.select_instant(node, t)
        if isinstance(node, n.NumberLit):
            return node.v
        if isinstance(node, n.Paren):
            return self.eval(node.expr, t)
        if isinstance(node, n.MatrixSel):
            return self.select_range(node, t)
        if isinstance(node, n.Subquery):
            return self.eval_subquery(node, t)
        if isinstance(node, n.Neg):
            v = self.eval(node.expr, t)
            if node.type == n.SCALAR:
                return -v
            out = [Sample(drop_name(s.labels), s.t, -s.v) for s in v]
            check_duplicates(out)
            return out
        if isinstance(node, n.StringLit):
            return node.v
        raise QueryError(f"unsupported expression {type(node).__name__}")

    def cached(self, node: n.Call | n.Aggregate, t: int, compute: Any) -> list[Sample]:
        """Return ``compute(node, t)`` through the engine's result cache."""
        key = (node.cache_key, t)
        cache = self.result_cache
        hit = cache.get(key)  # type: ignore[union-attr]
        if hit is not None:
            return hit
        res = compute(node, t)
        cache.put(key, node.names, res)  # type: ignore[union-attr]
        return res

    def select_instant(self, sel: n.VectorSel, t: int, keep_time: bool = False) -> list[Sample]:
        """Instant vector selection (``vectorSelectorSingle``): the latest sample in
        ``[ref - lookback, ref]`` with ``ref = t - offset`` (``t`` replaced by ``@``), unless it
        is a staleness marker. Sample time is ``t`` (the sample's own time if ``keep_time``)."""
        if sel.at is not None:
            t = self.at_time(sel.at, t)
        ref = t - sel.offset
        oldest = ref - self.lookback
        out = []
        append = out.append
        for labels, _, ts, vs in self.series_of(sel, False):
            i = bisect_right(ts, ref) - 1
            if i < 0 or ts[i] < oldest:
                continue
            v = vs[i]
            if v != v and is_stale(v):
                continue
            append(Sample(labels, ts[i] if keep_time else t, v))
        return out

    def range_window(self, node: n.MatrixSel, t: int) -> tuple[int, int]:
        """Return the window ``(ref - range, ref)`` of a range selector at ``t``, with
        ``ref = t - offset`` (``t`` replaced by ``@``)."""
        sel = node.vs
        if sel.at is not None:
            t = self.at_time(sel.at, t)
        ref = t - sel.offset
        return ref - node.range, ref

    def select_range(self, node: n.MatrixSel, t: int) -> RangeArg:
        """Range selection (``matrixIterSlice``): samples in ``[ref - range, ref]``."""
        sel = node.vs
        lo_t, ref = self.range_window(node, t)
        out = []
        append = out.append
        for item in self.series_of(sel, True):
            ts = item[2]
            if ts[0] >= lo_t and ts[-1] <= ref:  # the usual instant-query case: all of it
                append(item)
                continue
            lo = bisect_left(ts, lo_t)
            hi = bisect_right(ts, ref, lo)
            if hi > lo:
                append((item[0], item[1], ts[lo:hi], item[3][lo:hi]))
        return RangeArg(out, lo_t, ref, node.range)

    def eval_subquery(self, node: n.Subquery, t: int) -> RangeArg:
        """Evaluate a subquery at ``t``: the inner expression at every multiple of the step in
        ``[t - offset - range, t - offset]`` (engine.go ``SubqueryExpr``)."""
        if node.at is not None:
            t = self.at_time(node.at, t)
        end = t - node.offset
        step = node.step or self.engine.default_subquery_step_ms
        begin = end - node.range
        first = -((-begin) // step) * step
        self.limits.check_subquery(first, end, step)  # before evaluating anything: [1y:1ms] fails here
        acc: dict[Labels, tuple[list[int], list[float]]] = {}
        points = 0
        for st in range(first, end + 1, step):
            vec = self.subquery_step(node, st)
            points += len(vec)
            self.limits.need_samples(points)  # this subquery's result, while it is built
            for s in vec:
                e = acc.get(s.labels)
                if e is None:
                    acc[s.labels] = ([st], [s.v])
                else:
                    e[0].append(st)
                    e[1].append(s.v)
        return RangeArg([(lb, drop_name(lb), ts, vs) for lb, (ts, vs) in acc.items()], begin, end, node.range)

    def subquery_step(self, node: n.Subquery, st: int) -> list[Sample]:
        """Return a subquery's inner vector at step ``st``, evaluated once per query (kept in
        ``subquery_cache`` and counted towards ``max_samples``), after checking the deadline."""
        self.limits.check_deadline()
        key = (id(node), st)
        cache = self.subquery_cache
        vec = cache.get(key)
        if vec is None:
            vec = cache[key] = self.eval(node.expr, st)
            self.limits.add_samples(len(vec))
        return vec

    def eval_call(self, node: n.Call, t: int) -> Any:
        """Evaluate a function call at ``t``: a :class:`RangeKernel` series by series (see
        :meth:`range_columns`), any other function on its evaluated arguments."""
        fn = FUNCTION_CALLS.get(node.name)
        if fn is None:
            raise QueryError(f"function {node.name!r} is not supported")
        if isinstance(fn, RangeKernel):
            labels, values = self.range_columns(node, t, fn.kernel, fn.keep_name)
            if not fn.keep_name:
                check_duplicate_labels(labels)
            new = tuple.__new__
            return [new(Sample, (lb, t, v)) for lb, v in zip(labels, values)]
        return fn(self.eval_args(node, t), node, CallContext(t, self.limits))

    def eval_args(self, node: n.Call, t: int) -> list[Any]:
        """Evaluate a call's arguments at ``t``, in order.

        ``timestamp()`` of a selector gets the samples with their own timestamps (engine.go
        ``rangeEvalTimestampFunctionOverVectorSelector``), parentheses around it unwrapped.
        """
        if node.name == "timestamp":
            arg = node.args[0]
            while isinstance(arg, n.Paren):
                arg = arg.expr
            if isinstance(arg, n.VectorSel):
                return [self.select_instant(arg, t, keep_time=True)]
        return [self.eval(a, t) for a in node.args]

    def eval_aggregate(self, node: n.Aggregate, t: int) -> list[Sample]:
        """Evaluate an aggregation at ``t``: the parameter first, then the operand (as columns
        unless the operator needs whole samples)."""
        param = self.eval(node.param, t) if node.param is not None else None
        if node.op in SAMPLE_AGGREGATIONS:
            return aggregate_samples(node, self.eval(node.expr, t), param, t)
        labels, values = self.eval_columns(node.expr, t)
        return aggregate(node, labels, values, param, t, self.group_keys)


class Engine:
    """Evaluate PromQL over a sample store.

    :param store: a ``SampleStore`` (``select(matchers, mint, maxt) -> [SeriesSlice]``).
    :param lookback_delta_ms: how far back an instant selector looks for a sample (ms).
    :param max_series: most series one selector may select; more is a :class:`QueryError`.
    :param max_samples: most samples one query may hold (see :mod:`monitor.promql.limits`).
    :param timeout: seconds one query may run (``None``: no limit); then ``QueryTimeoutError``.
    :param default_subquery_step_ms: step of subqueries written ``[range:]`` (Prometheus uses
        the global evaluation interval).
    :param result_cache_samples: how many result samples of calls and aggregations to keep
        for reuse by later queries at the same evaluation time (0 disables the cache).
    """

    def __init__(self, store: Any, *, lookback_delta_ms: int = 300_000, max_series: int = 10_000,
                 max_samples: int = 50_000_000, default_subquery_step_ms: int = 60_000,
                 result_cache_samples: int = 200_000, timeout: float | None = 120.0) -> None:
        self.store = store
        self.lookback_delta_ms = lookback_delta_ms
        self.max_series = max_series
        self.max_samples = max_samples
        self.timeout = timeout
        self.default_subquery_step_ms = default_subquery_step_ms
        cache_limit = result_cache_samples if hasattr(store, "add_listener") else 0
        #: Results of calls and aggregations by (PromQL text, t), shared between instant queries.
        self.result_cache = ResultCache(cache_limit)
        #: Per-series results of range functions (rate etc.); see _Query.range_columns.
        self.range_memos = RangeMemos(cache_limit)
        #: Label sets without __name__, one object per set.
        self.nameless = NamelessLabels()
        #: Group labels per grouping clause and input label set (aggregations.group_keys).
        self.group_keys = GroupKeyMemo()
        self._compiled: dict[str, n.Node] = {}  # query text -> compiled tree (immutable)
        if cache_limit:
            ref = weakref.WeakMethod(self._invalidate)

            def listener(names: set[str]) -> None:
                fn = ref()
                if fn is None:
                    store.remove_listener(listener)
                else:
                    fn(names)

            store.add_listener(listener)

    def _invalidate(self, names: set[str]) -> None:
        """Drop cached results that read any of ``names`` (or unknown metric names)."""
        self.range_memos.invalidate(names)
        self.result_cache.invalidate(names)

    def clear_cache(self) -> None:
        """Forget every cached result (call after removing data from the store)."""
        self.result_cache.clear()
        self.range_memos.clear()

    def _compile(self, query: str | pp.Expr | n.Node) -> n.Node:
        if isinstance(query, n.Node):
            return query
        if isinstance(query, str):
            node = self._compiled.get(query)
            if node is not None:
                return node
            node = n.compile_expr(n.parse_expr(query))
            if len(self._compiled) >= 4096:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[query] = node
            return node
        if not isinstance(query, pp.Expr):
            raise QueryError(f"query must be a string or a parsed expression, got {type(query).__name__}")
        try:
            return n.compile_expr(query)
        except QueryError:
            raise
        except RecursionError:
            raise QueryError("query is nested too deeply") from None
        except Exception as e:  # noqa: BLE001 - a malformed AST must not crash the caller
            raise QueryError(f"cannot compile query: {e}") from None

    def instant_query(self, query: str | pp.Expr, t_ms: int) -> Value:
        """Evaluate ``query`` at ``t_ms``.

        :return: a :class:`Vector`, :class:`Scalar`, :class:`String` or (for a range selector
            or subquery at the top) :class:`Matrix`.
        :raises QueryError: on bad syntax, bad types, limits exceeded or evaluation errors.
        """
        root = self._compile(query)
        t_ms = int(t_ms)
        q = self._new_query(root, t_ms, t_ms)
        res = self._run(q, root, t_ms)
        if root.type == n.SCALAR:
            return Scalar(t_ms, res)
        if root.type == n.STRING:
            return String(t_ms, res)
        if root.type == n.MATRIX:
            return Matrix(Series(lb, list(zip(ts, vs))) for lb, _, ts, vs in res.series)
        return Vector(res)

    def range_query(self, query: str | pp.Expr, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        """Evaluate ``query`` at ``start_ms, start_ms + step_ms, ... <= end_ms``.

        :return: a :class:`Matrix`, one :class:`Series` per label set, sorted by labels; a
            scalar expression gives one series with no labels.
        :raises QueryError: for a string or range-vector expression, a bad range, or any
            evaluation error.
        """
        root = self._compile(query)
        start_ms, end_ms, step_ms = int(start_ms), int(end_ms), int(step_ms)
        if step_ms <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise QueryError("end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms > 11_000:
            raise QueryError("exceeded maximum resolution of 11,000 points per timeseries")
        if root.type not in (n.SCALAR, n.VECTOR):
            raise QueryError(f"invalid expression type \"{root.type}\" for range query, must be scalar or instant vector")
        q = self._new_query(root, start_ms, end_ms)
        acc: dict[Labels, list[tuple[int, float]]] = {}
        empty = Labels()
        for t in range(start_ms, end_ms + 1, step_ms):
            q.limits.check_deadline()
            res = self._run(q, root, t)
            q.limits.add_samples(1 if root.type == n.SCALAR else len(res))  # kept until the query ends
            if root.type == n.SCALAR:
                acc.setdefault(empty, []).append((t, res))
                continue
            for s in res:
                pts = acc.get(s.labels)
                if pts is None:
                    acc[s.labels] = [(t, s.v)]
                else:
                    pts.append((t, s.v))
        return Matrix(Series(lb, pts) for lb, pts in sorted(acc.items()))

    def _new_query(self, root: n.Node, start: int, end: int) -> _Query:
        try:
            return _Query(self, root, start, end)
        except RecursionError:
            raise QueryError("query is nested too deeply") from None

    @staticmethod
    def _run(q: _Query, root: n.Node, t: int) -> Any:
        try:
            return q.eval(root, t)
        except QueryError:
            raise
        except RecursionError:
            raise QueryError("query is nested too deeply") from None
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError) as e:
            raise QueryError(f"evaluation failed: {type(e).__name__}: {e}") from None

