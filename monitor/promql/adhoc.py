"""Ad-hoc PromQL queries (the HTTP query API) run off the event loop, in a small bounded pool.

The paging path — probe schedule, rule evaluation, alerting, outbox — runs on the daemon's one
asyncio loop. A user's query (``sum(count_over_time(up[1h:1ms]))`` took 8 s) must not hold that
loop, so :class:`AdHocQueries` evaluates it in a worker thread, as Prometheus bounds its query
engine (``--query.max-concurrency``, ``--query.timeout``; ``promql/engine.go``):

* **Concurrency**: a ``ThreadPoolExecutor`` of ``workers`` threads (default 2) and at most
  ``max_concurrency`` queries admitted at once (running or queued, default 4). Past that a query
  is refused at once with :class:`~monitor.promql.limits.QueryOverloadError` (HTTP 503
  ``unavailable``) instead of queueing without bound.
* **Deadline**: ``timeout`` seconds from admission. The engine's cooperative deadline
  (:mod:`monitor.promql.limits`) fires inside the worker with the time left; the caller stops
  waiting at the deadline (``asyncio.wait_for``) and gets
  :class:`~monitor.promql.limits.QueryTimeoutError` (HTTP 503 ``timeout``). Abandoned work keeps
  its slot until the worker notices its deadline, so abandoned queries cannot pile up.
* **Thread safety**: the sample store stays single-threaded (no lock on the append path). A
  worker reads it through :class:`LoopStore`, which runs each read *on the loop*
  (``loop.call_soon_threadsafe``) and waits for the copy: the series list first, then the
  samples in chunks of :data:`SELECT_CHUNK` series, so the loop serves other work between
  chunks. Each worker thread has its own :class:`~monitor.promql.engine.Engine` (compiled
  queries, label memos; no result cache), so nothing of the rule evaluator's engine is shared.
* **The GIL**: a CPU-bound worker still lets the loop run every ``sys.getswitchinterval()``
  (5 ms); parsing is bounded (:mod:`monitor.promql.bounds`) so promql_parser never holds the
  GIL for long, and regexes compile with RE2 in milliseconds. What remains are single C calls
  that hold it throughout, and two grow with a query's size: Python's cyclic garbage collector
  (a full collection walks every live container — the millions of samples a big subquery
  holds: loop stalls of 0.3-5 s) and freeing those samples in one cascade (250 ms for 3 million).
  So the collector is paused while ad-hoc queries run (:func:`paused_gc`: reference counting
  still frees everything not in a cycle) and workers free a query's data entry by entry
  (``Engine(release_incrementally=True)``). Measured on ``sum(count_over_time(up[10m:1ms]))``
  (3 million samples): loop gaps p99 312 ms / max 472 ms before, 24 ms / 195 ms with the
  collector paused, and no gap over 100 ms once freed incrementally.

Usage::

    queries = AdHocQueries(store, max_series=10_000, max_samples=50_000_000, timeout=120.0)
    value = await queries.instant_query("sum(rate(x[5m]))", t_ms)       # in a coroutine
    body = await queries.instant_query("up", t_ms, render=encode)        # encode() in the worker
    matrix = await queries.range_query("up", start_ms, end_ms, 15_000)
    queries.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from monitor.errors import QueryError
from monitor.gcpause import paused_gc
from monitor.promql.engine import Engine
from monitor.promql.limits import QueryOverloadError, QueryTimeoutError
from monitor.promql.value import Matrix, Value

__all__ = ["AdHocQueries", "LoopStore", "SELECT_CHUNK", "paused_gc"]

#: Series copied per trip to the loop (one chunk of 1 h of 15 s samples: ~0.1 ms of loop time).
SELECT_CHUNK = 256

T = TypeVar("T")

class LoopStore:
    """The sample store as a worker thread sees it: every read runs on the event loop.

    Implements what the evaluator reads (``select``; ``series``), each call a round trip to
    ``loop`` that waits at most until ``deadline`` (``time.monotonic()``; set per query by
    :class:`AdHocQueries`). A selection of more than ``max_series`` series returns them without
    samples (none are copied), and the evaluator rejects it by its count.

    :param store: the ``SampleStore`` (used on ``loop`` only).
    :param loop: the loop that owns the store.
    :param max_series: the engine's ``max_series``.
    """

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop, max_series: int) -> None:
        self.store = store
        self.loop = loop
        self.max_series = max_series
        self.deadline = float("inf")

    def _on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and return its result (raise its exception).

        :raises QueryTimeoutError: the deadline passed while waiting.
        :raises QueryError: the loop is closed.
        """
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting worker
                fut.set_exception(e)

        try:
            self.loop.call_soon_threadsafe(run)
        except RuntimeError:
            raise QueryError("the daemon is shutting down") from None
        remaining = self.deadline - time.monotonic()
        try:
            return fut.result(timeout=max(remaining, 0.0) if remaining != float("inf") else None)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise QueryTimeoutError(0.0) from None

    def series(self, matchers: Sequence[Any] = ()) -> list[Any]:
        """``SampleStore.series`` on the loop."""
        return self._on_loop(self.store.series, list(matchers))

    def select(self, matchers: Sequence[Any], mint: int, maxt: int) -> list[Any]:
        """``SampleStore.select`` on the loop, :data:`SELECT_CHUNK` series per trip."""
        labels = self.series(matchers)
        if len(labels) > self.max_series:
            return [(lb, (), ()) for lb in labels]
        out: list[Any] = []
        for i in range(0, len(labels), SELECT_CHUNK):
            out.extend(self._on_loop(self.store.select_series, labels[i:i + SELECT_CHUNK], mint, maxt))
        return out


class AdHocQueries:
    """Evaluate user PromQL in a bounded thread pool with an enforced deadline.

    :param store: the ``SampleStore`` (read on the loop only, through :class:`LoopStore`).
    :param workers: worker threads (queries evaluated at once).
    :param max_concurrency: queries admitted at once, running or waiting for a worker; more is
        :class:`QueryOverloadError` (503 ``unavailable``).
    :param timeout: seconds a query may take from admission (``None``: no limit); then
        :class:`QueryTimeoutError` (503 ``timeout``).
    :param engine_args: passed to each worker's :class:`Engine` (``max_series``,
        ``max_samples``, ``lookback_delta_ms``, ``default_subquery_step_ms``).
    """

    def __init__(self, store: Any, *, workers: int = 2, max_concurrency: int = 4, timeout: float | None = 120.0,
                 max_series: int = 10_000, **engine_args: Any) -> None:
        self.store = store
        self.workers = workers
        self.max_concurrency = max(max_concurrency, workers)
        self.timeout = timeout
        self.max_series = max_series
        self._engine_args = dict(engine_args, max_series=max_series)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promql-query")
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._local = threading.local()
        self._admitted = 0  # admitted queries not finished yet (read by tests and metrics)

    @property
    def in_flight(self) -> int:
        """Queries admitted and not finished (abandoned ones included until their worker stops)."""
        return self._admitted

    def close(self) -> None:
        """Stop taking queries; queued ones are cancelled, running ones end at their deadline."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def instant_query(self, query: str, t_ms: int, *, render: Callable[[Value], Any] | None = None) -> Any:
        """``Engine.instant_query`` in a worker.

        :param render: applied to the value in the worker (e.g. JSON encoding), whose result is
            returned instead: big results are then never encoded or freed on the loop.
        :raises QueryError: as the engine, plus :class:`QueryOverloadError` and
            :class:`QueryTimeoutError`.
        """
        return await self._submit(render, "instant_query", query, t_ms)

    async def range_query(self, query: str, start_ms: int, end_ms: int, step_ms: int, *,
                          render: Callable[[Matrix], Any] | None = None) -> Any:
        """``Engine.range_query`` in a worker (``render`` as in :meth:`instant_query`).

        :raises QueryError: as :meth:`instant_query`.
        """
        return await self._submit(render, "range_query", query, start_ms, end_ms, step_ms)

    async def _submit(self, render: Callable[[Any], Any] | None, method: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        if not self._slots.acquire(blocking=False):
            raise QueryOverloadError(self.max_concurrency)
        self._admitted += 1
        timeout = self.timeout if self.timeout is not None and self.timeout > 0 else None
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        try:
            cfut = self._pool.submit(self._work, loop, deadline, render, method, args)
        except RuntimeError:  # shut down
            self._release()
            raise QueryError("the daemon is shutting down") from None
        cfut.add_done_callback(lambda _: self._release_from(loop))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(cfut, loop=loop), timeout)
        except asyncio.TimeoutError:
            raise QueryTimeoutError(timeout or 0.0) from None

    def _release(self) -> None:
        self._admitted -= 1
        self._slots.release()

    def _release_from(self, loop: asyncio.AbstractEventLoop) -> None:
        """Free a query's slot when its work ends (called in the worker thread, or on the loop
        when the work was cancelled before it started): ``_admitted`` is the loop's."""
        try:
            loop.call_soon_threadsafe(self._release)
        except RuntimeError:  # the loop is closed: nobody counts any more
            self._slots.release()

    def _engine(self, loop: asyncio.AbstractEventLoop) -> tuple[Engine, LoopStore]:
        """Return this worker thread's engine and store view (made on first use)."""
        got: tuple[Engine, LoopStore] | None = getattr(self._local, "engine", None)
        if got is None or got[1].loop is not loop:
            view = LoopStore(self.store, loop, self.max_series)
            got = (Engine(view, result_cache_samples=0, timeout=None, release_incrementally=True,
                          **self._engine_args), view)
            self._local.engine = got
        return got

    def _work(self, loop: asyncio.AbstractEventLoop, deadline: float, render: Callable[[Any], Any] | None,
              method: str, args: tuple[Any, ...]) -> Any:
        """Run one query in a worker thread, under the time left until ``deadline``; then
        ``render`` its value, if given."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QueryTimeoutError(self.timeout or 0.0)
        engine, view = self._engine(loop)
        view.deadline = deadline
        engine.timeout = remaining if deadline != float("inf") else None
        try:
            with paused_gc():
                value = getattr(engine, method)(*args)
                return value if render is None else render(value)
        except QueryTimeoutError:
            raise QueryTimeoutError(self.timeout or 0.0) from None
