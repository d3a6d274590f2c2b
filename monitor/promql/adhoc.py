"""Ad-hoc PromQL queries (the HTTP query API) run off the event loop, in a small bounded pool
of worker processes.

The paging path — probe schedule, rule evaluation, alerting, outbox — runs on the daemon's one
asyncio loop. A user's query (``sum(count_over_time(up[1h:1ms]))`` took 8 s) must not hold that
loop, so :class:`AdHocQueries` evaluates it elsewhere, as Prometheus bounds its query engine
(``--query.max-concurrency``, ``--query.timeout``; ``promql/engine.go``):

* **Concurrency**: ``workers`` threads (default 2), each driving one worker process
  (:mod:`monitor.promql.worker`, started on first use), and at most ``max_concurrency`` queries
  admitted at once (running or queued, default 4). Past that a query is refused at once with
  :class:`~monitor.promql.limits.QueryOverloadError` (HTTP 503 ``unavailable``) instead of
  queueing without bound.
* **Deadline**: ``timeout`` seconds from admission. The engine's cooperative deadline
  (:mod:`monitor.promql.limits`) fires inside the worker with the time left; the caller stops
  waiting at the deadline (``asyncio.wait_for``) and gets
  :class:`~monitor.promql.limits.QueryTimeoutError` (HTTP 503 ``timeout``). A worker still busy
  :data:`KILL_GRACE` seconds later (a single long C call) is killed and replaced, so abandoned
  work keeps its slot at most that long.
* **Why processes**: a worker *thread* shares the GIL with the loop; every return of the loop
  from a system call then waited up to the switch interval (5 ms) for it. Under two heavy
  queries ``/health`` took 64 ms at the median, jobs started up to 0.5 s late and a 5,000-alert
  intake took 60 s instead of 1 s (``benchmarks/hostile_combined.py``). A worker process has its
  own GIL, runs at a lower CPU priority, can be killed in any C call, and its crash fails only
  its query. Its memory is its own (about 60 MB each, counted by the benchmark).
* **The store** stays in the daemon and single-threaded (no lock on the append path). A worker
  asks for what its selectors need; the worker's thread reads it through :class:`LoopStore`,
  which runs each read *on the loop* (``loop.call_soon_threadsafe``) — the series list first,
  then the samples in chunks of :data:`SELECT_CHUNK` series, so the loop serves other work
  between chunks — and sends it on chunk by chunk. Results are rendered (JSON) in the worker.

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
from monitor.promql.limits import QueryOverloadError, QueryTimeoutError
from monitor.promql.value import Matrix, Value
from monitor.promql.worker import WorkerProcess
from model.matchers import Matcher

__all__ = ["KILL_GRACE", "AdHocQueries", "LoopStore", "SELECT_CHUNK"]

#: Seconds past a query's deadline after which its worker process is killed (its own
#: cooperative deadline normally ends it first).
KILL_GRACE = 1.0

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
            out.extend(self.select_chunk(labels[i:i + SELECT_CHUNK], mint, maxt))
        return out

    def select_chunk(self, labels: Sequence[Any], mint: int, maxt: int) -> list[Any]:
        """``SampleStore.select_series`` on the loop, for one chunk of series."""
        return self._on_loop(self.store.select_series, labels, mint, maxt)


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
        self._procs: set[WorkerProcess] = set()  # every worker process started, for close()
        self._procs_lock = threading.Lock()
        self._admitted = 0  # admitted queries not finished yet (read by tests and metrics)

    @property
    def in_flight(self) -> int:
        """Queries admitted and not finished (abandoned ones included until their worker stops)."""
        return self._admitted

    def close(self) -> None:
        """Stop taking queries; queued ones are cancelled, running ones are ended (their worker
        processes killed)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._procs_lock:
            procs, self._procs = self._procs, set()
        for proc in procs:
            proc.terminate()

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

    def _worker(self) -> WorkerProcess:
        """Return this thread's worker process (started on first use, and again after a kill)."""
        proc: WorkerProcess | None = getattr(self._local, "worker", None)
        if proc is None or not proc.alive():
            proc = self._local.worker = WorkerProcess(self._engine_args)
            with self._procs_lock:
                self._procs = {p for p in self._procs if p.alive()} | {proc}
        return proc

    def _work(self, loop: asyncio.AbstractEventLoop, deadline: float, render: Callable[[Any], Any] | None,
              method: str, args: tuple[Any, ...]) -> Any:
        """Run one query in this thread's worker process, under the time left until
        ``deadline``, and ``render`` its value there, if given; serve its store reads on the
        loop meanwhile. The process is killed :data:`KILL_GRACE` seconds past the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QueryTimeoutError(self.timeout or 0.0)
        view = LoopStore(self.store, loop, self.max_series)
        view.deadline = deadline
        proc = self._worker()

        def answer(request: tuple[Any, ...]) -> None:
            try:
                matchers = [Matcher(*m) for m in request[1]]
                if request[0] == "series":
                    proc.conn.send(("end", view.series(matchers)))
                    return
                labels = view.series(matchers)
                if len(labels) > self.max_series:  # rejected by its count, no samples copied
                    proc.conn.send(("end", [(lb, (), ()) for lb in labels]))
                    return
                for i in range(0, len(labels), SELECT_CHUNK):
                    proc.conn.send(("part", view.select_chunk(labels[i:i + SELECT_CHUNK], *request[2:])))
                proc.conn.send(("end", []))
            except QueryTimeoutError:
                proc.conn.send(("error", "timeout", ""))
            except QueryError as e:
                proc.conn.send(("error", "query", str(e)))

        try:
            return proc.run(method, args, remaining if deadline != float("inf") else None, render,
                            deadline + KILL_GRACE, answer, time.monotonic)
        except QueryTimeoutError:
            raise QueryTimeoutError(self.timeout or 0.0) from None
