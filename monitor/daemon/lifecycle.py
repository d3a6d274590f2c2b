"""Start-up, reload and shutdown of the daemon process (:class:`Lifecycle`).

Start-up pushes the close of each part onto one :class:`~contextlib.AsyncExitStack` as it starts
it: signal handlers, state store, HTTP client, probes, leadership and alerting, rule evaluation,
scheduler (see :meth:`Daemon.start <monitor.daemon.wiring.Daemon.start>`), then the HTTP server
runs. SIGTERM / SIGINT end the server; closing the stack then stops the rest in reverse order.
A start that fails stops exactly what had started and :meth:`Lifecycle.serve` returns 1.

SIGHUP and ``POST /-/reload`` call the same :meth:`Lifecycle.reload` (:func:`reload_config`):
all-or-nothing; a bad file is logged with every error and the running configuration stays
(``monitor_config_last_reload_successful 0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn

from monitor.api.app import create_app
from monitor.api.deps import ReloadResult
from monitor.config.loader import load_config
from monitor.config.model import Config
from monitor.config.secrets import secret_values
from monitor.daemon.eventloop import freeze_startup_objects, space_full_collections, warmup_seconds
from monitor.daemon.wiring import Daemon, api_deps
from monitor.errors import ConfigErrors
from monitor.logging import add_secrets

log = logging.getLogger("monitor.daemon")


def restart_needed(old: Config, new: Config) -> list[str]:
    """Return a warning for each changed setting a reload cannot apply (``server.host``,
    ``server.port``: the listener is already bound; ``state``: the store is already open;
    ``tsdb.path``, ``tsdb.retention``, ``tsdb.retention_rules``: the sample store is open and its
    series took their retention when created; ``remote_write``, ``rules.datasource``: built at start;
    ``cluster``: the membership is running).

    State values are not quoted: a DSN may hold a password.
    """
    warnings = []
    for key in ("host", "port"):
        before, after = getattr(old.server, key), getattr(new.server, key)
        if before != after:
            warnings.append(f"server.{key} changed ({before} -> {after}): the running listener is kept; "
                            "restart the daemon to apply it")
    state_keys = [k for k in type(old.state).model_fields if getattr(old.state, k) != getattr(new.state, k)]
    for key in state_keys:
        alias = type(old.state).model_fields[key].alias or key
        warnings.append(f"state.{alias} changed: the open state store is kept; restart the daemon to apply it")
    for key in ("path", "retention", "retention_rules"):
        if getattr(old.tsdb, key) != getattr(new.tsdb, key):
            warnings.append(f"tsdb.{key} changed: the open sample store keeps its directory and retention; "
                            "restart the daemon to apply it")
    # URLs and headers are not quoted: either may hold a token.
    if old.remote_write != new.remote_write:
        warnings.append("remote_write changed: the running queues and senders are kept; restart the daemon to apply it")
    if old.rules.datasource != new.rules.datasource:
        warnings.append("rules.datasource changed: rules keep their datasource; restart the daemon to apply it")
    if old.cluster != new.cluster:
        warnings.append("cluster changed: the running membership and probe sharding are kept; "
                        "restart the daemon to apply it")
    return warnings


def reload_config(daemon: Daemon, path: str | Path, *, port: int | None = None,
                  bound_port: int | None = None) -> ReloadResult:
    """Reload ``path`` into ``daemon`` all-or-nothing: the config file and every rule file it
    names are validated first; on any error nothing changes, and ``/health`` says so (``config``
    degraded with the first error and when the running config was loaded; HTTP 200: the daemon
    keeps working on the last good config).

    :param port: the ``--port`` the daemon listens on, applied to the new config as at start
        (:meth:`~monitor.config.model.ServerConfig.listen_on`), so links keep pointing at it.
    :param bound_port: the port the server is bound to (for ``server.port: 0``; links name it).

    Settings only a restart applies (see :func:`restart_needed`) keep their running values;
    each is logged as a WARNING and returned in ``warnings``.

    :return: the errors (each logged; the running config is kept) or the warnings.
    """
    try:
        config = load_config(path)
        config.server.listen_on(port)
        if bound_port:
            config.server.bound_to(bound_port)
        errors = daemon.check_reload(config)
    except ConfigErrors as e:
        errors = [str(err) for err in e.errors]
    if errors:
        daemon.reload_rejected(errors)
        for err in errors:
            log.error("reload rejected; previous configuration kept", extra={"error": err})
        return ReloadResult(errors=errors)
    add_secrets(secret_values(config))
    needs_restart = restart_needed(daemon.config, config)
    daemon.reload(config)
    for warning in needs_restart:
        log.warning("reload: setting needs a restart", extra={"warning": warning})
    log.info("configuration reloaded", extra={"file": str(path)})
    return ReloadResult(warnings=needs_restart)


class Lifecycle:
    """Serve one daemon with its HTTP API until SIGTERM/SIGINT; reload it on SIGHUP.

    :param daemon: a built, not yet started daemon.
    :param config_path: the file :meth:`reload` reads.
    :param host: listen address (default ``server.host``).
    :param port: listen port (default ``server.port``).
    :param on_started: awaited once the daemon and server are up (the demo prints its banner).
    :param freeze_after_start: move the objects alive once the daemon has started, and again
        once every probe and scrape has run, out of the garbage collector's reach
        (:func:`~monitor.daemon.eventloop.freeze_startup_objects`), and space its full
        collections (:func:`~monitor.daemon.eventloop.space_full_collections`);
        ``codebook-monitor run`` does, tests that share a process do not.

    :ivar server: the HTTP server (``started`` once it listens).

    Example (what ``codebook-monitor run`` does)::

        exit_code = await Lifecycle(Daemon(config), "monitor.yaml").serve()
    """

    def __init__(self, daemon: Daemon, config_path: str | Path, *, host: str | None = None,
                 port: int | None = None, on_started: Callable[[Daemon], Awaitable[None]] | None = None,
                 freeze_after_start: bool = False) -> None:
        self.daemon = daemon
        self._freeze = freeze_after_start
        self.config_path = Path(config_path)
        self._port = port
        self._bound_port: int | None = None
        self._on_started = on_started
        app = create_app(api_deps(daemon, self.reload))
        self.server = _Server(uvicorn.Config(
            app, host=host or daemon.config.server.host, port=port or daemon.config.server.port,
            log_config=None, access_log=False, lifespan="off",
            # The peer address is the client: X-Forwarded-For is not believed, not even from
            # loopback (uvicorn's default), so no client can choose the address that per-client
            # limits (status-page subscriptions) and the audit log count.
            proxy_headers=False))

    def reload(self) -> ReloadResult:
        """Reload the config file into the running daemon (``POST /-/reload`` and SIGHUP)."""
        return reload_config(self.daemon, self.config_path, port=self._port, bound_port=self._bound_port)

    def stop(self) -> None:
        """Ask the server to stop; :meth:`serve` then shuts everything down and returns."""
        log.info("stopping")
        self.server.should_exit = True

    async def serve(self) -> int:
        """Start the daemon, serve until stopped, shut down in reverse start order.

        :return: the process exit code: 0 after a clean stop, 1 when the start failed or the
            server never listened.
        """
        async with contextlib.AsyncExitStack() as stack:
            self._handle_signals(stack)
            try:
                sock = self._listen()
            except OSError as exc:
                cfg = self.server.config
                log.error("cannot listen", extra={"error": f"{cfg.host}:{cfg.port}: {exc}"})
                return 1
            stack.callback(sock.close)
            try:
                await self.daemon.start(stack)
            except Exception as exc:  # noqa: BLE001 - any start failure: undo what started, exit 1
                log.error("daemon failed to start", extra={"error": f"{type(exc).__name__}: {exc}"})
                # Stop what did start (the state store above all: aiosqlite's worker thread is not
                # a daemon thread; left open, the process would never exit).
                try:
                    await stack.aclose()
                except Exception as stop_exc:  # noqa: BLE001 - already failing; report and go on
                    log.error("cleanup after the failed start failed",
                              extra={"error": f"{type(stop_exc).__name__}: {stop_exc}"})
                return 1
            if self._freeze:
                log.debug("start-up objects frozen", extra={"objects": freeze_startup_objects()})
                space_full_collections()
                # again once every probe and scrape has run: their series live as long as we do
                config = self.daemon.config
                warm = warmup_seconds([(p.interval, p.timeout) for p in config.probes]
                                      + [(t.interval, t.timeout) for t in config.scrape])
                again = asyncio.get_running_loop().call_later(warm, freeze_startup_objects)
                stack.callback(again.cancel)
            announcer = asyncio.create_task(self._announce())
            stack.callback(announcer.cancel)
            # The server starts last and stops first: serve() returns once it has stopped.
            await self.server.serve(sockets=[sock])
        return 0 if self.server.started else 1

    def _listen(self) -> socket.socket:
        """Bind the listening socket before the daemon starts, so a port already in use fails the
        start at once and ``--port 0`` is resolved: the chosen port goes into the config, and a
        derived ``server.external_url`` (links in pages and Slack) names it instead of ``:0``.

        :raises OSError: the address cannot be bound.
        """
        cfg = self.server.config
        family, kind, proto, _, addr = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(2048)
            sock.set_inheritable(True)
        except OSError:
            sock.close()
            raise
        self._bound_port = cfg.port = sock.getsockname()[1]
        self.daemon.config.server.bound_to(self._bound_port)
        return sock

    def _handle_signals(self, stack: contextlib.AsyncExitStack) -> None:
        """Install SIGHUP (reload), SIGTERM and SIGINT (stop); their removal goes on ``stack``."""
        loop = asyncio.get_running_loop()
        handlers = ((signal.SIGHUP, self.reload), (signal.SIGTERM, self.stop), (signal.SIGINT, self.stop))
        for sig, handler in handlers:
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass

        def remove() -> None:
            for sig, _ in handlers:
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass

        stack.callback(remove)

    async def _announce(self) -> None:
        server = self.server
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        log.info("listening", extra={"url": f"http://{server.config.host}:{server.config.port}"})
        if self._on_started:
            await self._on_started(self.daemon)


async def serve(daemon: Daemon, config_path: str | Path, *, host: str | None = None, port: int | None = None,
                on_started: Callable[[Daemon], Awaitable[None]] | None = None, freeze_after_start: bool = False) -> int:
    """Run ``daemon`` with its HTTP server until SIGTERM/SIGINT (see :class:`Lifecycle`).

    :return: the process exit code.
    """
    return await Lifecycle(daemon, config_path, host=host, port=port, on_started=on_started,
                           freeze_after_start=freeze_after_start).serve()


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: uvicorn re-raises a caught SIGTERM
    once ``serve()`` returns, which would kill the process before the daemon's orderly
    shutdown (final state save, store close). :class:`Lifecycle` owns the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # noqa: D401 - uvicorn hook
        yield
