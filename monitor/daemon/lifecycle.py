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
from monitor.api.deps import ReloadResult
from monitor.config.loader import load_config
from monitor.config.model import Config
from monitor.config.secrets import secret_values
from monitor.daemon.wiring import Daemon, api_deps
from monitor.errors import ConfigErrors
from monitor.logging import add_secrets

log = logging.getLogger("monitor.daemon")


def restart_needed(old: Config, new: Config) -> list[str]:
    """Return a warning for each changed setting a reload cannot apply (``server.host``,
    ``server.port``: the listener is already bound; ``state``: the store is already open).

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
    return warnings


def reload_config(daemon: Daemon, path: str | Path) -> ReloadResult:
    """Reload ``path`` into ``daemon`` all-or-nothing: the config file and every rule file it
    names are validated first; on any error nothing changes.

    Settings only a restart applies (see :func:`restart_needed`) keep their running values;
    each is logged as a WARNING and returned in ``warnings``.

    :return: the errors (each logged; the running config is kept) or the warnings.
    """
    try:
        config = load_config(path)
        errors = daemon.check_reload(config)
    except ConfigErrors as e:
        errors = [str(err) for err in e.errors]
    if errors:
        daemon.metrics.config_reload_ok.set(0)
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
    def reload() -> ReloadResult:
        return reload_config(daemon, config_path)

    app = create_app(api_deps(daemon, reload))
    server = _Server(uvicorn.Config(
        app, host=host or daemon.config.server.host, port=port or daemon.config.server.port,
        log_config=None, access_log=False, lifespan="off"))
    daemon.server = server
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("stopping")
        server.should_exit = True

    def remove_signal_handlers() -> None:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    for sig, handler in ((signal.SIGHUP, reload),
                         (signal.SIGTERM, stop), (signal.SIGINT, stop)):
        try:
            loop.add_signal_handler(sig, handler)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    try:
        await daemon.start()
    except Exception as exc:  # noqa: BLE001 - any start failure: undo what started, exit 1
        log.error("daemon failed to start", extra={"error": f"{type(exc).__name__}: {exc}"})
        # Stop what did start: the state store (aiosqlite's worker thread is not a daemon
        # thread: left open, the process would never exit), the HTTP client, the tasks.
        try:
            await daemon.stop()
        except Exception as stop_exc:  # noqa: BLE001 - already failing; report and go on
            log.error("cleanup after the failed start failed",
                      extra={"error": f"{type(stop_exc).__name__}: {stop_exc}"})
        remove_signal_handlers()
        return 1

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
        remove_signal_handlers()
    return 0 if server.started else 1


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: uvicorn re-raises a caught SIGTERM
    once ``serve()`` returns, which would kill the process before the daemon's orderly
    shutdown (final state save, store close). :func:`serve` owns the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: D401 - uvicorn hook
        yield
