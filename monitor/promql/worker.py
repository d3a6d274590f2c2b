"""The query worker process: ad-hoc PromQL evaluated outside the daemon's process, its samples
read from the daemon's store through a pipe.

A worker *thread* of the daemon shares the GIL with the event loop: while it evaluates, every
return of the loop from a system call (each socket read and write, each ``select``) waits up to
the switch interval (5 ms) for the GIL. Under two CPU-bound queries the loop ran at a fraction
of its speed: ``/health`` p50 64 ms, jobs starting up to 0.5 s late, a 5,000-alert intake taking
60 s instead of 1 s (``benchmarks/hostile_combined.py``). A process has a GIL of its own, can be
killed at its deadline whatever C call it is in, and its crash is not the daemon's.

The wire (a ``multiprocessing.connection.Connection`` over a socket pair, pickled messages):

* daemon → worker: ``(method, args, timeout, render)`` — ``Engine.<method>(*args)`` with the
  engine's cooperative ``timeout`` (seconds or ``None``), then ``render(value)`` if given (a
  module-level function, pickled by name);
* worker → daemon, while it evaluates: ``("series", matchers)`` or ``("select", matchers, mint,
  maxt)``, matchers as ``(name, op, value)`` triples; the daemon answers ``("part", items)``
  zero or more times then ``("end", items)`` (or ``("error", kind, message)``);
* worker → daemon, at the end: ``("ok", result)`` or ``("error", kind, message)`` with ``kind``
  ``timeout`` (the cooperative deadline), ``samples`` (``max_samples``), ``query`` (another
  :class:`~monitor.errors.QueryError`) or the name of an unexpected exception.

The worker exits when the daemon's end of the pipe closes (the daemon stopped or was killed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from monitor.errors import QueryError
from monitor.promql.engine import Engine
from monitor.promql.limits import QueryTimeoutError, TooManySamplesError
from model.matchers import Matcher

__all__ = ["WorkerProcess", "plain_matchers", "serve"]

Triple = tuple[str, str, str]

#: How much lower than the daemon's a worker's CPU priority is (``nice``): on a busy machine the
#: scheduler gives the event loop (probes, rules, pages) the CPU before a user's query.
WORKER_NICENESS = 10


def plain_matchers(matchers: Sequence[Matcher]) -> list[Triple]:
    """Return matchers as ``(name, op, value)`` triples (a compiled regex does not pickle)."""
    return [(m.name, m.op, m.value) for m in matchers]


class PipeStore:
    """The store as the worker sees it: ``series`` and ``select`` asked of the daemon."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _ask(self, *request: Any) -> list[Any]:
        self.conn.send(request)
        out: list[Any] = []
        while True:
            msg = self.conn.recv()
            if msg[0] == "error":
                raise QueryTimeoutError(0.0) if msg[1] == "timeout" else QueryError(msg[2])
            out.extend(msg[1])
            if msg[0] == "end":
                return out

    def series(self, matchers: Sequence[Matcher] = ()) -> list[Any]:
        """``SampleStore.series`` of the daemon's store."""
        return self._ask("series", plain_matchers(matchers))

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Any]:
        """``SampleStore.select`` of the daemon's store."""
        return self._ask("select", plain_matchers(matchers), mint, maxt)


def serve(conn: Connection, engine_args: dict[str, Any]) -> None:
    """Answer queries on ``conn`` until it closes (the worker process's main loop)."""
    engine = Engine(PipeStore(conn), result_cache_samples=0, timeout=None, **engine_args)
    while True:
        try:
            method, args, timeout, render = conn.recv()
        except (EOFError, OSError):
            return
        engine.timeout = timeout
        value = None
        try:
            value = getattr(engine, method)(*args)
            reply: tuple[Any, ...] = ("ok", value if render is None else render(value))
        except QueryTimeoutError as e:
            reply = ("error", "timeout", str(e))
        except TooManySamplesError as e:
            reply = ("error", "samples", str(e))
        except QueryError as e:
            reply = ("error", "query", str(e))
        except Exception as e:  # noqa: BLE001 - reported to the daemon, the worker goes on
            reply = ("error", type(e).__name__, str(e))
        del value
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class WorkerProcess:
    """One worker process and the daemon's end of its pipe (used by one thread at a time).

    :param engine_args: the worker's :class:`~monitor.promql.engine.Engine` arguments
        (``max_series``, ``max_samples``, ...; picklable).
    :raises OSError: the process could not be started.
    """

    def __init__(self, engine_args: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # where `monitor` and `model` are
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.promql.worker", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send(engine_args)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def terminate(self) -> None:
        """Kill the process, whatever it is doing (from any thread: the thread using the pipe
        then sees it end)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()

    def kill(self) -> None:
        """Kill the process and close the pipe (by the thread using it)."""
        self.terminate()
        if not self.conn.closed:
            self.conn.close()

    def run(self, method: str, args: tuple[Any, ...], timeout: float | None, render: Callable[[Any], Any] | None,
            deadline: float, answer: Callable[[tuple[Any, ...]], None], now: Callable[[], float]) -> Any:
        """Run one query; serve its store reads with ``answer(request)``; return its result.

        :param deadline: ``now()`` value after which the worker is killed (its cooperative
            deadline, ``timeout``, should have ended it before).
        :raises QueryTimeoutError: the deadline passed (the process is killed) or the worker's
            own deadline fired.
        :raises QueryError: the query failed, or the worker died (it is replaced next time).
        """
        try:
            return self._run(method, args, timeout, render, deadline, answer, now)
        except (EOFError, OSError):  # the pipe broke: the process died or was terminated
            self.kill()
            raise QueryError("the query worker process exited") from None

    def _run(self, method: str, args: tuple[Any, ...], timeout: float | None, render: Callable[[Any], Any] | None,
             deadline: float, answer: Callable[[tuple[Any, ...]], None], now: Callable[[], float]) -> Any:
        self.conn.send((method, args, timeout, render))
        while True:
            left = None if deadline == float("inf") else deadline - now()
            if (left is not None and left <= 0) or not self.conn.poll(left):
                self.kill()
                raise QueryTimeoutError(timeout or 0.0)
            msg = self.conn.recv()
            if msg[0] == "ok":
                return msg[1]
            if msg[0] == "error":
                if msg[1] == "timeout":
                    raise QueryTimeoutError(timeout or 0.0)
                if msg[1] == "samples":
                    err = TooManySamplesError(0)
                    err.args = (msg[2],)  # the worker's message, limit included
                    raise err
                raise QueryError(msg[2] if msg[1] == "query" else f"evaluation failed: {msg[1]}: {msg[2]}")
            answer(msg)


def main(argv: list[str]) -> None:
    """Run the worker process: ``python -m monitor.promql.worker FD`` (FD: its end of the socket pair)."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)  # the daemon's event loop comes first for the CPU
    conn = Connection(int(argv[1]))
    try:
        engine_args = conn.recv()
    except (EOFError, OSError):
        return
    serve(conn, engine_args)


if __name__ == "__main__":
    main(sys.argv)
