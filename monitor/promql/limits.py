"""Per-query limits of the PromQL engine: series per selector, samples held in memory and an
evaluation deadline.

After Prometheus ``promql/engine.go``: ``--query.max-samples`` (``ErrTooManySamples``, "query
processing would load too many samples into memory in query execution") and
``--query.timeout`` (``ErrQueryTimeout``, "query timed out in expression evaluation").

What counts towards ``max_samples`` (:class:`QueryLimits`):

* samples loaded from the store by selectors (``Evaluator.series_of``);
* the vectors a subquery evaluates at its steps (kept for the whole query in
  ``Evaluator.subquery_cache``), plus, while a subquery's result is built, its points;
* the points of a range query's result, step by step.

A subquery's step count is known before any evaluation (:func:`subquery_steps`), so
``max_over_time(vector(1)[1y:1ms])`` (3.15e10 steps) is rejected before it allocates anything.
The deadline is checked cooperatively: at every range-query step and subquery step, and every
:data:`TICK` series in per-series loops (:meth:`QueryLimits.tick`). Both errors are
:class:`~monitor.errors.QueryError` subclasses, so callers that catch ``QueryError`` (rule
evaluation) keep working; the HTTP API maps them to 422 ``execution`` and 503 ``timeout``
(and :class:`QueryOverloadError`, from the ad-hoc query pool, to 503 ``unavailable``).
"""

from __future__ import annotations

import math
import time

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


class QueryOverloadError(QueryError):
    """Too many ad-hoc queries at once (HTTP 503 ``unavailable``): Prometheus's
    ``--query.max-concurrency``, refused at once instead of queued (:mod:`monitor.promql.adhoc`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"too many concurrent queries: {limit} are running or waiting, the limit; "
                         "try again later")


def subquery_steps(first: int, end: int, step: int) -> int:
    """Count the evaluation steps ``first, first + step, ... <= end`` of a subquery (0 if none)."""
    if step <= 0:
        raise QueryError("zero or negative subquery resolution step widths are not accepted")
    return 0 if end < first else (end - first) // step + 1


class QueryLimits:
    """The limits of one query: series per selector, samples held, and the deadline.

    One per query, made when it starts (the deadline runs from then); the evaluator and the
    functions it calls share it. ``samples`` counts what the query holds (see the module
    docstring); ``deadline`` is a ``time.monotonic()`` value (``inf`` without a timeout).

    :param max_series: most series one selector may select.
    :param max_samples: most samples the query may hold at once.
    :param timeout: seconds the query may run; ``None`` or ``<= 0``: no deadline.

    Usage::

        limits = QueryLimits(10_000, 50_000_000, 120.0)
        for i, item in enumerate(series):
            limits.tick(i)               # QueryTimeoutError once past the deadline
        limits.add_samples(len(points))  # TooManySamplesError beyond max_samples
    """

    __slots__ = ("max_series", "max_samples", "timeout", "samples", "deadline")

    def __init__(self, max_series: int, max_samples: int, timeout: float | None) -> None:
        self.max_series = max_series
        self.max_samples = max_samples
        self.timeout = timeout
        self.samples = 0
        self.deadline = time.monotonic() + timeout if timeout is not None and timeout > 0 else math.inf

    def check_deadline(self) -> None:
        """Raise :class:`QueryTimeoutError` once the query's deadline has passed."""
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError(self.timeout or 0.0)

    def tick(self, i: int) -> None:
        """Check the deadline on every :data:`TICK`-th item ``i`` of a per-series loop."""
        if not i & (TICK - 1) and time.monotonic() > self.deadline:
            raise QueryTimeoutError(self.timeout or 0.0)

    def add_samples(self, count: int, what: str = "") -> None:
        """Count ``count`` more samples held for the rest of the query; raise beyond the limit."""
        self.samples += count
        if self.samples > self.max_samples:
            raise TooManySamplesError(self.max_samples, what or f"{self.samples} samples")

    def need_samples(self, count: int, what: str = "") -> None:
        """Raise if ``count`` more samples, held for a while, would exceed the limit."""
        if self.samples + count > self.max_samples:
            raise TooManySamplesError(self.max_samples, what or f"{self.samples + count} samples")

    def check_selected(self, n_series: int, selector: str) -> None:
        """Raise once a selector (PromQL text ``selector``) selects more than ``max_series``
        series, or the query has loaded more than ``max_samples`` samples."""
        if n_series > self.max_series:
            raise QueryError(
                f"query selects {n_series} series for {selector}, more than the limit of "
                f"{self.max_series} series (max_series)")
        self.need_samples(0, f"{self.samples} samples loaded")

    def check_subquery(self, first: int, end: int, step: int) -> int:
        """Return the step count of a subquery, rejecting it up front when the steps alone
        (one point each, at least) cannot fit in the samples limit."""
        steps = subquery_steps(first, end, step)
        self.need_samples(steps, f"subquery of {steps} steps")
        return steps
