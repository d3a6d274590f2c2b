"""A local TLS endpoint for the demo's ``tls`` probe, with a self-signed certificate made on start.

It completes the TLS handshake (so the probe can read the presented certificate) and answers
any HTTP request with a small ``200 OK``. The certificate is written to a known folder so a
config can name it as the probe's CA file: ``$DEMO_TLS_DIR``, else
``$MONITOR_STATE_DIR/.demo-tls``, else ``./.demo-tls`` (``cert.pem``, ``key.pem``).

Example::

    endpoint = await start("127.0.0.1", 8443)          # https://localhost:8443
    print(endpoint.cert_path)                           # trust it as its own CA
    endpoint.close(); await endpoint.wait_closed()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from examples.tls import make_self_signed_cert

_BODY = b"codebook-monitor demo TLS endpoint\n"
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
             b"Connection: close\r\n\r\n" % len(_BODY)) + _BODY


def default_directory() -> Path:
    """Return where the demo certificate is written (see the module docstring)."""
    if os.environ.get("DEMO_TLS_DIR"):
        return Path(os.environ["DEMO_TLS_DIR"])
    return Path(os.environ.get("MONITOR_STATE_DIR") or ".") / ".demo-tls"


@dataclass
class TlsEndpoint:
    """A running TLS endpoint.

    :ivar server: the asyncio server.
    :ivar host: bound host.
    :ivar port: bound port (the real one when 0 was asked).
    :ivar cert_path: the PEM certificate it presents (also usable as the CA file).
    :ivar key_path: its private key.
    """

    server: asyncio.Server
    host: str
    port: int
    cert_path: Path
    key_path: Path

    def close(self) -> None:
        """Stop accepting connections."""
        self.server.close()

    async def wait_closed(self) -> None:
        """Wait until the server is closed."""
        await self.server.wait_closed()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one connection: read the request head (if any), reply 200, close."""
    try:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(_RESPONSE)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.TimeoutError):
        pass  # a probe that only handshakes, or a client that went away
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2)


async def start(host: str = "127.0.0.1", port: int = 8443, *, directory: str | Path | None = None,
                hostname: str = "localhost", days_valid: int | None = None) -> TlsEndpoint:
    """Make (or reuse) the self-signed certificate and serve TLS on ``host:port``.

    :param host: interface to bind.
    :param port: TCP port (0 = any free port).
    :param directory: where the certificate goes (default :func:`default_directory`).
    :param hostname: the certificate's name (SANs also hold ``localhost`` and ``127.0.0.1``).
    :param days_valid: validity in days (default ``$DEMO_TLS_DAYS`` or 90; below 30 the
        certificate-expiry warning fires).
    :return: the running endpoint; ``close()`` stops it.
    :raises OSError: the port cannot be bound.
    """
    days = days_valid if days_valid is not None else int(os.environ.get("DEMO_TLS_DAYS") or 90)
    cert, key = make_self_signed_cert(directory or default_directory(), hostname=hostname, days_valid=days)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(_answer, host, port, ssl=context, ssl_handshake_timeout=5)
    bound = server.sockets[0].getsockname()[1]
    return TlsEndpoint(server, host, bound, cert, key)
