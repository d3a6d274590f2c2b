"""Serve an ASGI app with uvicorn inside the host's event loop (the examples' shared server code).

:func:`examples.sample_backend.serve` and :func:`examples.notify_sinks.start` both run their
Starlette app this way, inside the caller's loop (the daemon's ``demo`` command, the tests)::

    running = await start_app(app, "127.0.0.1", 8000, name="the sample backend")
    ... running.url ...
    await running.stop()

The server leaves the process's signal handlers to its host, and the socket is bound here, not by
uvicorn, which answers a bind error with ``sys.exit()`` (that would end the host's event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers to its host."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: D401 - uvicorn hook
        yield


def bind(host: str, port: int) -> socket.socket:
    """Return a listening-ready TCP socket bound to ``host:port``.

    Created with ``IPPROTO_TCP`` so that asyncio sets ``TCP_NODELAY`` on accepted connections
    (it checks ``sock.proto``); with proto 0 every response with a body waits ~40 ms for the
    client's delayed ACK (Nagle), which would distort delivery timings.

    :raises OSError: the address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve_guarded(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run ``server`` on ``sock``, turning uvicorn's ``sys.exit()`` on failure into an exception."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn stopped with exit code {exc.code}") from None
    finally:
        sock.close()


@dataclass
class RunningServer:
    """An ASGI app served by uvicorn inside the caller's event loop.

    :ivar server: the uvicorn server.
    :ivar task: the task running ``server.serve()``.
    :ivar app: the ASGI app.
    :ivar host: the bound host.
    :ivar port: the bound port (the real one when 0 was asked).
    :ivar scheme: ``http`` or ``https``.
    """

    server: uvicorn.Server
    task: asyncio.Task
    app: Any
    host: str
    port: int
    scheme: str

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8000``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the server task to end (forcing it after ``timeout`` seconds)."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except asyncio.TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


R = TypeVar("R", bound=RunningServer)


async def start_app(app: Any, host: str, port: int, *, name: str, handle: type[R] = RunningServer,
                    ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                    log_level: str = "warning", lifespan: str = "on",
                    startup_timeout: float = 10.0) -> R:
    """Serve ``app`` in the running event loop and return once it accepts connections.

    :param app: the ASGI app.
    :param host: interface to bind.
    :param port: TCP port (0 = any free port; read the real one from the result).
    :param name: what is starting, for errors and the task name: ``"the sample backend"`` gives
        "the sample backend could not start on ..." and the task ``sample-backend-HOST:PORT``.
    :param handle: the :class:`RunningServer` class (or subclass) to return.
    :param ssl_certfile: PEM certificate (chain) to serve HTTPS with.
    :param ssl_keyfile: PEM private key of ``ssl_certfile``.
    :param log_level: uvicorn's log level.
    :param lifespan: uvicorn's ``lifespan`` setting (``on``, ``off`` or ``auto``).
    :param startup_timeout: seconds to wait for the server to start.
    :return: the running server; call its ``stop()`` to stop it.
    :raises RuntimeError: the server could not start (e.g. the port is taken).
    """
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, access_log=False)
    # Bind here: uvicorn answers a bind error with sys.exit(), which would end the host's loop.
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise RuntimeError(f"{name} could not start on {host}:{port}: {exc}") from exc
    server = EmbeddedServer(config)
    task_name = name.removeprefix("the ").replace(" ", "-")
    task = asyncio.create_task(serve_guarded(server, sock), name=f"{task_name}-{host}:{port}")
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if task.done():
            exc = None if task.cancelled() else task.exception()
            sock.close()
            raise RuntimeError(f"{name} could not start on {host}:{port}: {exc or 'server exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start on {host}:{port} within {startup_timeout}s")
        await asyncio.sleep(0.01)
    bound = sock.getsockname()[1]
    return handle(server, task, app, host, bound, "https" if ssl_certfile else "http")
