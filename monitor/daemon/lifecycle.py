"""Start-up, reload and shutdown of the daemon process.

Order: load and validate config -> logging -> parts -> scheduler -> HTTP server. SIGHUP and
``POST /-/reload`` reload all-or-nothing: a bad file is logged with every error and the running
configuration stays (``monitor_config_last_reload_successful 0``). SIGTERM / SIGINT stop the HTTP
server, then the scheduler, then close shared resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn

from monitor.api.app import create_app
from monitor.config.loader import load_config
from monitor.config.secrets import secret_values
from monitor.daemon.wiring import Daemon
from monitor.errors import ConfigErrors
from monitor.logging import add_secrets

log = logging.getLogger("monitor.daemon")


def reload_daemon(daemon: Daemon, path: str | Path) -> list[str]:
    """Reload ``path`` into ``daemon`` all-or-nothing.

    :return: the list of errors (empty on success). On errors the running config is kept.
    """
    try:
        config = load_config(path)
        errors = daemon.check_reload(config) if hasattr(daemon, "check_reload") else []
    except ConfigErrors as e:
        errors = [str(err) for err in e.errors]
    if errors:
        daemon.metrics.config_reload_ok.set(0)
        for err in errors:
            log.error("reload rejected; previous configuration kept", extra={"error": err})
        return errors
    add_secrets(secret_values(config))
    daemon.reload(config)
    log.info("configuration reloaded", extra={"file": str(path)})
    return []


async def serve(daemon: Daemon, config_path: str | Path, *, host: str | None = None, port: int | None = None,
                on_started: Callable[[Daemon], Awaitable[None]] | None = None) -> int:
    """Run ``daemon`` with its HTTP server until SIGTERM/SIGINT.

    :param daemon: a built, not yet started daemon.
    :param config_path: the file SIGHUP and ``POST /-/reload`` reload.
    :param host: listen address (default from config).
    :param port: listen port (default from config).
    :param on_started: awaited once the daemon and server are up (the demo prints its banner).
    :return: the process exit code.
    """
    daemon.config_path = Path(config_path)
    app = create_app(daemon)
    server = _Server(uvicorn.Config(
        app, host=host or daemon.config.server.host, port=port or daemon.config.server.port,
        log_config=None, access_log=False, lifespan="off"))
    daemon.server = server
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("stopping")
        server.should_exit = True

    for sig, handler in ((signal.SIGHUP, lambda: reload_daemon(daemon, config_path)),
                         (signal.SIGTERM, stop), (signal.SIGINT, stop)):
        try:
            loop.add_signal_handler(sig, handler)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    await daemon.start()

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        log.info("listening", extra={"url": f"http://{server.config.host}:{server.config.port}"})
        if on_started:
            await on_started(daemon)

    announcer = asyncio.create_task(announce())
    try:
        await server.serve()
    finally:
        announcer.cancel()
        await daemon.stop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    return 0 if server.started else 1


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: uvicorn re-raises a caught SIGTERM
    once ``serve()`` returns, which would kill the process before the daemon's orderly
    shutdown (final state save, store close). :func:`serve` owns the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: D401 - uvicorn hook
        yield
