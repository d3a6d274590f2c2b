"""What every ``codebook-monitor`` command that talks to the running daemon shares.

- :func:`add_api_args` adds ``--config``, ``--url``, ``--port`` (and ``--token``).
- :func:`api_base` picks the daemon's base URL and the request headers from them.
- :func:`unreachable` is the one message printed when the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_URL", "add_api_args", "api_base", "unreachable"]

#: The daemon's URL when nothing else names it (``server.host``/``server.port`` defaults).
DEFAULT_URL = "http://127.0.0.1:9115"


def add_api_args(s: argparse.ArgumentParser, *, token: bool = True, config: str = "monitor.yaml") -> None:
    """Add ``--config``, ``--url``, ``--port`` and (with ``token``) ``--token`` to a subcommand's parser."""
    s.add_argument("--config", "-c", default=config, help="read server.external_url from here")
    s.add_argument("--url", help="the daemon's base URL (default: $MONITOR_URL, then --port, then "
                                 "server.external_url of --config, then http://127.0.0.1:9115)")
    s.add_argument("--port", type=int, help="the port of a daemon run with --port (on server.host, default 127.0.0.1)")
    if token:
        s.add_argument("--token", help="API bearer token (default: $MONITOR_API_TOKEN)")


def api_base(args: Any) -> tuple[str, dict[str, str]]:
    """Return the base URL (no trailing ``/``) and headers for a command that talks to the running daemon.

    The URL, first found: ``--url``; ``$MONITOR_URL``; ``--port`` (``http://<server.host>:<port>``,
    for a daemon run with ``--port``); ``server.external_url`` of ``--config`` (derived from
    ``server.host``/``server.port`` when not set); :data:`DEFAULT_URL`. The headers carry
    ``--token`` (or ``$MONITOR_API_TOKEN``) as a bearer token when one is given.
    """
    url = getattr(args, "url", None) or os.environ.get("MONITOR_URL", "")
    port = getattr(args, "port", None)
    cfg = getattr(args, "config", None)
    if not url:
        from monitor.config.loader import load_config_reporting  # late: --help stays light

        config = load_config_reporting(cfg) if cfg and Path(cfg).exists() else None
        if port is not None:
            from monitor.config.model import ServerConfig

            url = ServerConfig(host=config.server.host if config is not None else "127.0.0.1",
                               port=port).external_url
        else:
            url = config.server.external_url if config is not None else DEFAULT_URL
    headers = {"X-Monitor-Client": "cli"}
    token = getattr(args, "token", None) or os.environ.get("MONITOR_API_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return url.rstrip("/"), headers


def unreachable(url: Any, exc: BaseException) -> str:
    """Return the message for a daemon that did not answer at ``url``, with how to point at another one.

    ``cannot reach the daemon at http://127.0.0.1:9115: ConnectError: ... (pass --url/--port or set MONITOR_URL)``
    """
    return (f"cannot reach the daemon at {url}: {type(exc).__name__}: {exc} "
            "(pass --url/--port or set MONITOR_URL)")
