"""The PromQL engine: query entry points, per-query limits and the caches shared by queries.

:meth:`Engine.instant_query` and :meth:`Engine.range_query` compile the query text (kept per
text), make a :class:`~monitor.promql.limits.QueryLimits` and an
:class:`~monitor.promql.evaluator.Evaluator` per query, run it at each step and shape the
result (``promql/engine.go`` ``Engine.exec``, ``execEvalStmt``).

The engine owns what outlives one query: the :class:`~monitor.promql.cache.ResultCache`
(results of calls and aggregations by (expression, time)), the
:class:`~monitor.promql.memo.RangeMemos` (per-series range-function results), and the label
memos (:class:`~monitor.promql.cache.NamelessLabels`,
:class:`~monitor.promql.cache.GroupKeyMemo`). Only instant queries (rule evaluations) share
results; both result stores are dropped as soon as the store reports new samples for a metric
they read. Call :meth:`Engine.clear_cache` after deleting data from the store
(``SampleStore.clear``), which does not notify.

Usage::

    engine = Engine(store)
    engine.instant_query('sum(rate(http_requests_total[5m]))', t_ms)   # -> Vector
    engine.range_query('up', start_ms, end_ms, 15_000)                  # -> Matrix
"""

from __future__ import annotations

import weakref
from typing import Any

import promql_parser as pp

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.cache import GroupKeyMemo, NamelessLabels, ResultCache
from monitor.promql.compat import (
    DELAYED_NAME_REMOVAL, DURATION_EXPR, KNOWN_FEATURES, V3_ONLY_FEATURES, apply_compat, check_query,
)
from monitor.promql.durations import rewrite_durations
from monitor.promql.evaluator import Evaluator
from monitor.promql.limits import QueryLimits
from monitor.promql.memo import RangeMemos
from monitor.promql.value import (
    Matrix, Sample, Scalar, Series, String, Value, Vector, drop_name, mark_name, remove_marked_names,
)
from model.labels import Labels

#: ``rules.promql_compat``: ``"3"`` (Prometheus 3.x semantics, the default) or ``"2"`` (2.53).
COMPAT_LEVELS = frozenset({"2", "3"})


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
    :param release_incrementally: free each query's working data entry by entry when it ends
        (``Evaluator.release``), for engines in worker threads that share the GIL with the loop.
    :param compat: ``"3"`` (default) for Prometheus 3 semantics, ``"2"`` for 2.53's: range
        selectors and the lookback window closed on the left (``[t - range, t]``), regex ``.``
        not matching newlines, ``holt_winters`` instead of ``double_exponential_smoothing``.
    :param features: enabled feature flags, named as Prometheus's ``--enable-feature``
        (``promql-experimental-functions``, ``promql-duration-expr``,
        ``promql-delayed-name-removal``; see :mod:`monitor.promql.compat`).
    :raises ValueError: for an unknown ``compat`` or feature flag, or a 3.x-only flag under
        ``compat="2"``.
    """

    def __init__(self, store: Any, *, lookback_delta_ms: int = 300_000, max_series: int = 10_000,
                 max_samples: int = 50_000_000, default_subquery_step_ms: int = 60_000,
                 result_cache_samples: int = 200_000, timeout: float | None = 120.0,
                 release_incrementally: bool = False, compat: str = "3",
                 features: frozenset[str] = frozenset()) -> None:
        if compat not in COMPAT_LEVELS:
            raise ValueError(f"promql_compat must be one of {sorted(COMPAT_LEVELS)}, not {compat!r}")
        if not KNOWN_FEATURES.issuperset(features):
            raise ValueError(f"unknown feature flags {sorted(set(features) - KNOWN_FEATURES)}")
        if compat == "2" and V3_ONLY_FEATURES & set(features):
            raise ValueError(f"feature flags {sorted(V3_ONLY_FEATURES & set(features))} need promql_compat \"3\"")
        self.store = store
        self.compat = compat
        self.features = frozenset(features)
        #: ``promql-delayed-name-removal``: names are marked, and removed when a query ends.
        self.delayed_name_removal = DELAYED_NAME_REMOVAL in self.features
        self.release_incrementally = release_incrementally
        self.lookback_delta_ms = lookback_delta_ms
        self.max_series = max_series
        self.max_samples = max_samples
        self.timeout = timeout
        self.default_subquery_step_ms = default_subquery_step_ms
        cache_limit = result_cache_samples if hasattr(store, "add_listener") else 0
        #: Results of calls and aggregations by (PromQL text, t), shared between instant queries.
        self.result_cache = ResultCache(cache_limit)
        #: Per-series results of range functions (rate etc.); see Evaluator.range_columns.
        self.range_memos = RangeMemos(cache_limit)
        #: Label sets without __name__ (with it marked, under delayed removal), one object per set.
        self.nameless = NamelessLabels(drop=mark_name if self.delayed_name_removal else drop_name)
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
            return apply_compat(query, self.compat)
        if isinstance(query, str):
            node = self._compiled.get(query)
            if node is not None:
                return node
            text = rewrite_durations(query) if DURATION_EXPR in self.features else query
            node = n.compile_expr(n.parse_expr(text))
            check_query(node, self.compat, self.features)
            apply_compat(node, self.compat)
            if len(self._compiled) >= 4096:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[query] = node
            return node
        if not isinstance(query, pp.Expr):
            raise QueryError(f"query must be a string or a parsed expression, got {type(query).__name__}")
        try:
            node = n.compile_expr(query)
            check_query(node, self.compat, self.features)
            return apply_compat(node, self.compat)
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
        try:
            res = self._run(q, root, t_ms)
        finally:
            if self.release_incrementally:
                q.release()
        if root.type == n.SCALAR:
            return Scalar(t_ms, res)
        if root.type == n.STRING:
            return String(t_ms, res)
        if root.type == n.MATRIX:
            if self.delayed_name_removal:
                names = remove_marked_names([lb for lb, _, _, _ in res.series])
                return Matrix(Series(lb, list(zip(ts, vs))) for lb, (_, _, ts, vs) in zip(names, res.series))
            return Matrix(Series(lb, list(zip(ts, vs))) for lb, _, ts, vs in res.series)
        if self.delayed_name_removal:
            names = remove_marked_names([s.labels for s in res])
            return Vector(Sample(lb, s.t, s.v) for lb, s in zip(names, res))
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
            raise QueryError(f"invalid expression type \"{root.type}\" for range query, "
                             "must be scalar or instant vector")
        q = self._new_query(root, start_ms, end_ms)
        acc: dict[Labels, list[tuple[int, float]]] = {}
        empty = Labels()
        try:
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
        finally:
            if self.release_incrementally:
                q.release()
        if self.delayed_name_removal and acc:
            names = remove_marked_names(list(acc))
            return Matrix(sorted(Series(lb, pts) for lb, pts in zip(names, acc.values())))
        return Matrix(Series(lb, pts) for lb, pts in sorted(acc.items()))

    def _new_query(self, root: n.Node, start: int, end: int) -> Evaluator:
        """Return the evaluator of one query over ``[start, end]`` (ms), with its own limits and
        the engine's caches (result sharing for instant queries only)."""
        shared = start == end and self.result_cache.limit > 0
        try:
            return Evaluator(
                self.store, root, start, end, lookback_ms=self.lookback_delta_ms,
                subquery_step_ms=self.default_subquery_step_ms,
                limits=QueryLimits(self.max_series, self.max_samples, self.timeout),
                nameless=self.nameless, group_keys=self.group_keys,
                result_cache=self.result_cache if shared else None,
                range_memos=self.range_memos if shared else None, compat=self.compat,
                delayed_name_removal=self.delayed_name_removal)
        except RecursionError:
            raise QueryError("query is nested too deeply") from None

    @staticmethod
    def _run(q: Evaluator, root: n.Node, t: int) -> Any:
        try:
            return q.eval(root, t)
        except QueryError:
            raise
        except RecursionError:
            raise QueryError("query is nested too deeply") from None
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError) as e:
            raise QueryError(f"evaluation failed: {type(e).__name__}: {e}") from None

