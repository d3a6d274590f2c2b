"""The PromQL evaluator: one query's expression tree evaluated over the sample store.

Semantics follow Prometheus v3.5 ``promql/engine.go`` (``evaluator``), or v2.53 with
``compat="2"`` (``rules.promql_compat: "2"``): instant selectors look back ``lookback_ms``
(5 m) and stop at staleness markers (``vectorSelectorSingle``); range selectors take the
samples in ``(t - range, t]`` (2.x: ``[t - range, t]``), staleness markers dropped
(``matrixIterSlice``), and the lookback window is left-open likewise; ``offset`` and ``@``
(incl. ``start()``/``end()``) shift the evaluation time of a selector or subquery; subqueries
evaluate their inner expression at absolute multiples of their step after (2.x: from) the
window start (``SubqueryExpr`` in ``eval``).

Range queries are evaluated step by step, but every selector reads the store once per query,
over the union of the times it will need (``FindMinMaxTime``), and then slides over that data
with binary search. In instant queries the evaluator shares the results of function calls and
aggregations through the engine's :class:`~monitor.promql.cache.ResultCache`, and the
per-series results of range functions (``rate`` etc.) through its
:class:`~monitor.promql.memo.RangeMemos`, so ``rate(x{a="1"}[5m])`` and ``rate(x[5m])``
compute each series' rate once (see :meth:`Evaluator.range_columns`). Aggregations read range
functions as columns (labels, values), so ``sum(rate(x[5m]))`` makes no object per series.

The evaluator evaluates operands and arguments itself and hands their values to
:mod:`~monitor.promql.functions`, :mod:`~monitor.promql.aggregations` and
:mod:`~monitor.promql.binops`, which never see it (Prometheus ``FunctionCall``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.aggregations import SAMPLE_AGGREGATIONS, aggregate, aggregate_samples
from monitor.promql.binops import apply_binary
from monitor.promql.cache import GroupKeyMemo, NamelessLabels, ResultCache
from monitor.promql.compat import functions_for
from monitor.promql.functions import CallContext, RangeKernel
from monitor.promql.info import combine as info_combine
from monitor.promql.info import plan as info_plan
from monitor.promql.limits import QueryLimits
from monitor.promql.memo import ABSENT, RangeMemos
from monitor.promql.value import (
    RangeArg, Sample, check_duplicate_labels, check_duplicates, drop_name, mark_name,
)
from model.labels import Labels
from monitor.tsdb.series import is_stale


class Evaluator:
    """Evaluate one query's expression tree at the steps of its time range.

    One per query (made by :class:`~monitor.promql.engine.Engine`): it holds the query's time
    range, the data each selector reads (fetched once per query), its subquery steps and its
    limits, and borrows the engine's caches. Construction records the time span every
    selector needs (``FindMinMaxTime``); then :meth:`eval` is called once per step.

    :param store: the sample store (``select(matchers, mint, maxt)``; ``series(matchers)`` if
        it can list series without samples).
    :param root: the compiled expression (:func:`monitor.promql.nodes.compile_expr`).
    :param start: first evaluation time (ms); ``@ start()`` resolves to it.
    :param end: last evaluation time (ms); ``@ end()`` resolves to it. ``start == end`` for an
        instant query.
    :param lookback_ms: how far back an instant selector looks for a sample (ms).
    :param subquery_step_ms: step of subqueries written ``[range:]`` (ms).
    :param limits: this query's :class:`~monitor.promql.limits.QueryLimits`.
    :param nameless: the engine's :class:`~monitor.promql.cache.NamelessLabels`.
    :param group_keys: the engine's :class:`~monitor.promql.cache.GroupKeyMemo`.
    :param result_cache: the engine's :class:`~monitor.promql.cache.ResultCache`, or ``None``
        to share no results (range queries, cache disabled).
    :param range_memos: the engine's :class:`~monitor.promql.memo.RangeMemos`, or ``None``
        (as ``result_cache``).
    :param compat: ``"3"``: windows exclude their start and 3.x functions apply
        (:func:`monitor.promql.compat.functions_for`); ``"2"``: 2.53's.
    :param delayed_name_removal: mark names instead of dropping them (``mark_name``); the
        engine removes the marked ones from the result (``promql-delayed-name-removal``).
        ``nameless`` must then mark too.
    :raises RecursionError: for a tree nested too deeply (the engine reports it).

    Usage::

        ev = Evaluator(store, root, t, t, lookback_ms=300_000, subquery_step_ms=60_000,
                       limits=QueryLimits(10_000, 50_000_000, None), nameless=NamelessLabels(),
                       group_keys=GroupKeyMemo())
        ev.eval(root, t)      # float | str | list[Sample] | RangeArg
    """

    def __init__(self, store: Any, root: n.Node, start: int, end: int, *, lookback_ms: int,
                 subquery_step_ms: int, limits: QueryLimits, nameless: NamelessLabels,
                 group_keys: GroupKeyMemo, result_cache: ResultCache | None = None,
                 range_memos: RangeMemos | None = None, compat: str = "3",
                 delayed_name_removal: bool = False) -> None:
        self.store = store
        self.delayed_name_removal = delayed_name_removal
        self.drop_name = mark_name if delayed_name_removal else drop_name
        self.left_open = compat != "2"
        self.functions = functions_for(compat)
        self.start = start
        self.end = end
        self.lookback = lookback_ms
        self.subquery_step_ms = subquery_step_ms
        self.limits = limits
        self.nameless = nameless
        self.group_keys = group_keys
        self.result_cache = result_cache
        self.range_memos = range_memos
        # Keyed by the selector's matchers: `rate(x[5m]) / x` reads the store for x once.
        self.bounds: dict[str, list[int]] = {}
        self.data: dict[tuple[str, bool], list[tuple[Labels, Labels, Any, Any]]] = {}
        self.subquery_cache: dict[tuple[int, int], list[Sample]] = {}
        self._subquery_depth = 0  # subqueries being evaluated, one inside the other
        self._collect(root, start, end)

    def release(self) -> None:
        """Free what the query kept (selected series, subquery steps) one entry at a time.

        Dropping an evaluator frees its caches in one C-level cascade that holds the GIL: 250 ms
        after a subquery of 3 million samples. A worker thread (:mod:`monitor.promql.adhoc`)
        calls this instead, so the event loop gets the GIL between entries.
        """
        for cache in (self.subquery_cache, self.data):
            pop = cache.popitem
            while cache:
                pop()

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
        assert isinstance(arg_node, n.MatrixSel)  # a memo is only made for a range selector
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
            fn = self.functions.get(node.name)
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
                return self._cached(self.result_cache, node, t, self.eval_call)
            return self.eval_call(node, t)
        if isinstance(node, n.Binary):
            return apply_binary(node, self.eval(node.lhs, t), self.eval(node.rhs, t), self.delayed_name_removal)
        if isinstance(node, n.Aggregate):
            if node.cache_key is not None and self.result_cache is not None:
                return self._cached(self.result_cache, node, t, self.eval_aggregate)
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
            drop = self.drop_name
            out = [Sample(drop(s.labels), s.t, -s.v) for s in v]
            check_duplicates(out)
            return out
        if isinstance(node, n.StringLit):
            return node.v
        raise QueryError(f"unsupported expression {type(node).__name__}")

    @staticmethod
    def _cached(cache: ResultCache, node: n.Call | n.Aggregate, t: int, compute: Any) -> list[Sample]:
        """Return ``compute(node, t)`` through the result cache (key: ``(node.cache_key, t)``)."""
        key = (node.cache_key, t)
        hit = cache.get(key)  # type: ignore[arg-type]
        if hit is not None:
            return hit
        res = compute(node, t)
        cache.put(key, node.names, res)  # type: ignore[arg-type]
        return res

    def select_instant(self, sel: n.VectorSel, t: int, keep_time: bool = False) -> list[Sample]:
        """Instant vector selection (``vectorSelectorSingle``): the latest sample in
        ``(ref - lookback, ref]`` (2.x: ``[ref - lookback, ref]``) with ``ref = t - offset``
        (``t`` replaced by ``@``), unless it is a staleness marker. Sample time is ``t`` (the
        sample's own time if ``keep_time``)."""
        if sel.at is not None:
            t = self.at_time(sel.at, t)
        ref = t - sel.offset
        oldest = ref - self.lookback + (1 if self.left_open else 0)
        out: list[Sample] = []
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
        """Range selection (``matrixIterSlice``): samples in ``(ref - range, ref]`` (2.x:
        ``[ref - range, ref]``); the returned window start stays ``ref - range``."""
        sel = node.vs
        lo_t, ref = self.range_window(node, t)
        first = lo_t + 1 if self.left_open else lo_t
        out: list[tuple[Labels, Labels, Any, Any]] = []
        append = out.append
        for item in self.series_of(sel, True):
            ts = item[2]
            if ts[0] >= first and ts[-1] <= ref:  # the usual instant-query case: all of it
                append(item)
                continue
            lo = bisect_left(ts, first)
            hi = bisect_right(ts, ref, lo)
            if hi > lo:
                append((item[0], item[1], ts[lo:hi], item[3][lo:hi]))
        return RangeArg(out, lo_t, ref, node.range)

    def eval_subquery(self, node: n.Subquery, t: int) -> RangeArg:
        """Evaluate a subquery at ``t``: the inner expression at every multiple of the step in
        ``(t - offset - range, t - offset]`` (2.x: ``[...]``) (engine.go ``SubqueryExpr``)."""
        if node.at is not None:
            t = self.at_time(node.at, t)
        end = t - node.offset
        step = node.step or self.subquery_step_ms
        begin = end - node.range
        first = -((-begin) // step) * step
        if self.left_open and first == begin:
            first += step
        self.limits.check_subquery(first, end, step)  # before evaluating anything: [1y:1ms] fails here
        # Points as C arrays (16 bytes each, not ~70 as Python ints and floats in lists): a
        # subquery of millions of steps neither fills the memory nor gives the garbage collector
        # and the final free millions of objects to walk.
        acc: dict[Labels, tuple[array[int], array[float]]] = {}
        points = 0
        self._subquery_depth += 1
        try:
            for st in range(first, end + 1, step):
                vec = self.subquery_step(node, st)
                points += len(vec)
                self.limits.need_samples(points)  # this subquery's result, while it is built
                for s in vec:
                    e = acc.get(s.labels)
                    if e is None:
                        acc[s.labels] = (array("q", (st,)), array("d", (s.v,)))
                    else:
                        e[0].append(st)
                        e[1].append(s.v)
        finally:
            self._subquery_depth -= 1
        drop = self.drop_name
        return RangeArg([(lb, drop(lb), ts, vs) for lb, (ts, vs) in acc.items()], begin, end, node.range)

    def subquery_step(self, node: n.Subquery, st: int) -> list[Sample]:
        """Return a subquery's inner vector at step ``st``, after checking the deadline.

        When the same step can be asked for again — the steps of a range query, or a subquery
        inside another one, have overlapping windows — it is evaluated once per query (kept in
        ``subquery_cache`` and counted towards ``max_samples``). The outermost subquery of an
        instant query asks for each step once: nothing is kept (``[1h:1ms]`` kept 3.6 million
        vectors, about 300 bytes each, for nothing).
        """
        self.limits.check_deadline()
        if self.start == self.end and self._subquery_depth == 1:
            return self.eval(node.expr, st)
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
        if node.name == "info":
            return self.eval_info(node, t)
        fn = self.functions.get(node.name)
        if fn is None:
            raise QueryError(f"function {node.name!r} is not supported")
        if isinstance(fn, RangeKernel):
            labels, values = self.range_columns(node, t, fn.kernel, fn.keep_name)
            if not fn.keep_name:
                check_duplicate_labels(labels)
            new = tuple.__new__
            return [new(Sample, (lb, t, v)) for lb, v in zip(labels, values)]
        return fn(self.eval_args(node, t), node, CallContext(t, self.limits, self.drop_name))

    def eval_info(self, node: n.Call, t: int) -> list[Sample]:
        """Evaluate ``info(v [, {selector}])`` at ``t`` (:mod:`monitor.promql.info`): the info
        series are read from the store as an instant selector reads (lookback, staleness)."""
        base = self.eval(node.args[0], t)
        selector = None
        if len(node.args) > 1:
            sel = node.args[1]
            while isinstance(sel, n.Paren):
                sel = sel.expr
            if not isinstance(sel, n.VectorSel) or sel.or_matchers or sel.offset or sel.at is not None:
                raise QueryError("info(): the second argument must be a label selector such as {k=~\".+\"}")
            selector = list(sel.matchers)
        p = info_plan(base, selector)
        found: list[tuple[Labels, int]] = []
        if p.select is not None:
            oldest = t - self.lookback + (1 if self.left_open else 0)
            for labels, ts, vs in self.store.select(p.select, oldest, t):
                i = len(ts) - 1
                if i < 0 or (vs[i] != vs[i] and is_stale(vs[i])):
                    continue
                found.append((labels, ts[i]))
            self.limits.check_selected(len(found), "info()")
        return info_combine(base, found, p, t)

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
