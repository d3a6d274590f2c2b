"""Per-query limits of the PromQL engine: samples held in memory and an evaluation deadline.

After Prometheus ``promql/engine.go``: ``--query.max-samples`` (``ErrTooManySamples``, "query
processing would load too many samples into memory in query execution") and
``--query.timeout`` (``ErrQueryTimeout``, "query timed out in expression evaluation").

What counts towards ``max_samples`` (:class:`QueryLimits`):

* samples loaded from the store by selectors (``_Query.series_of``);
* the vectors a subquery evaluates at its steps (kept for the whole query in
  ``_Query.subquery_cache``), plus, while a subquery's result is built, its points;
* the points of a range query's result, step by step.

A subquery's step count is known before any evaluation (:func:`subquery_steps`), so
``max_over_time(vector(1)[1y:1ms])`` (3.15e10 steps) is rejected before it allocates anything.
The deadline is checked cooperatively: at every range-query step and subquery step, and every
:data:`TICK` series in per-series loops (:meth:`QueryLimits.tick`). Both errors are
:class:`~monitor.errors.QueryError` subclasses, so callers that catch ``QueryError`` (rule
evaluation) keep working; the HTTP API maps them to 422 ``execution`` and 503 ``timeout``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from monitor.errors import QueryError

#: Prometheus's messages (``promql.ErrTooManySamples``, ``promql.ErrQueryTimeout``).
TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
TIMED_OUT = "query timed out in expression evaluation"

#: Per-series loops check the deadline once every TICK series (a power of two).
TICK = 1024


class TooManySamplesError(QueryError):
    """A query would hold more than ``max_samples`` samples in memory (HTTP 422 ``execution``)."""

    def __init__(self, limit: int, what: str = "") -> None:
        self.limit = limit
        detail = f"{what}, " if what else ""
        super().__init__(f"{TOO_MANY_SAMPLES} ({detail}limit {limit} samples, max_samples)")


class QueryTimeoutError(QueryError):
    """A query ran past its deadline (HTTP 503 ``timeout``)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"{TIMED_OUT} (timeout {timeout:g}s)")


def subquery_steps(first: int, end: int, step: int) -> int:
    """Number of evaluation steps ``first, first + step, ... <= end`` of a subquery (0 if none)."""
    if step <= 0:
        raise QueryError("zero or negative subquery resolution step widths are not accepted")
    return 0 if end < first else (end - first) // step + 1


class QueryLimits:
    """Mixin of ``_Query``: the samples counter (``self.samples``) and the deadline.

    The host sets ``self.engine`` (with ``max_samples`` and ``timeout``) before calling
    :meth:`_init_limits`.
    """

    samples: int
    deadline: float

    def _init_limits(self) -> None:
        self.samples = 0
        timeout = self.engine.timeout  # type: ignore[attr-defined]
        self.deadline = time.monotonic() + timeout if timeout is not None and timeout > 0 else math.inf

    def check_deadline(self) -> None:
        """Raise :class:`QueryTimeoutError` once the query's deadline has passed."""
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError(self.engine.timeout)  # type: ignore[attr-defined]

    def tick(self, i: int) -> None:
        """Check the deadline on every :data:`TICK`-th item ``i`` of a per-series loop."""
        if not i & (TICK - 1) and time.monotonic() > self.deadline:
            raise QueryTimeoutError(self.engine.timeout)  # type: ignore[attr-defined]

    def add_samples(self, count: int, what: str = "") -> None:
        """Count ``count`` more samples held for the rest of the query; raise beyond the limit."""
        self.samples += count
        limit = self.engine.max_samples  # type: ignore[attr-defined]
        if self.samples > limit:
            raise TooManySamplesError(limit, what or f"{self.samples} samples")

    def need_samples(self, count: int, what: str = "") -> None:
        """Raise if ``count`` more samples, held for a while, would exceed the limit."""
        limit = self.engine.max_samples  # type: ignore[attr-defined]
        if self.samples + count > limit:
            raise TooManySamplesError(limit, what or f"{self.samples + count} samples")

    def subquery_step(self, node: Any, st: int) -> list[Any]:
        """Return a subquery's inner vector at step ``st``, evaluated once per query (kept in
        ``subquery_cache`` and counted), after checking the deadline."""
        self.check_deadline()
        key = (id(node), st)
        cache = self.subquery_cache  # type: ignore[attr-defined]
        vec = cache.get(key)
        if vec is None:
            vec = cache[key] = self.eval(node.expr, st)  # type: ignore[attr-defined]
            self.add_samples(len(vec))
        return vec

    def check_subquery(self, first: int, end: int, step: int) -> int:
        """Return the step count of a subquery, rejecting it up front when the steps alone
        (one point each, at least) cannot fit in the samples limit."""
        steps = subquery_steps(first, end, step)
        self.need_samples(steps, f"subquery of {steps} steps")
        return steps
