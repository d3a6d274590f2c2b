"""An httpx transport for probes whose connections run on the event loop's own streams.

httpx's default transport reaches the network through httpcore's ``anyio`` backend: every
connect, read and write enters an anyio cancel scope and a task group, which was a third of the
CPU of a probe run against a local target (``benchmarks/compare_stack.py``, issue 10).
:class:`AsyncioBackend` is an ``httpcore.AsyncNetworkBackend`` (httpcore's documented extension
point, ``network_backend=``) on plain ``asyncio`` streams with ``asyncio.timeout``: the same
requests, connections, TLS and timeouts, at less cost per call. It runs on any asyncio event
loop, uvloop's included.

:class:`ConnectionPerRequest` replaces httpcore's connection pool: a request gets a connection of
its own and nothing else, so no queue is shared between requests (a shared pool's queue cost
grew with the square of its length in a mass outage, issue 10).

What a probe measures does not change: every request opens a connection of its own (none is
kept alive), resolves the host with the loop's resolver, connects (with Happy Eyeballs, RFC
8305, when a name has several addresses and the loop supports it), does its TLS handshake and
reads its response, as blackbox_exporter's ``prober/http.go`` does with a client per probe and
keep-alives off.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx

#: Seconds Happy Eyeballs waits before racing the next address (RFC 8305's recommended 250 ms,
#: anyio's default, which httpcore's default backend uses).
HAPPY_EYEBALLS_DELAY = 0.25
#: A socket option as httpcore takes it: ``(level, option, value)`` or ``(level, option, None, length)``.
#: Loop types known to take (or not) ``happy_eyeballs_delay`` in ``create_connection``.
_HAPPY_EYEBALLS: dict[type, bool] = {}
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (TCP, or TLS over TCP) as httpcore reads and writes it.

    Timeouts are seconds (``None``: none); an expired timeout raises httpcore's
    ``ReadTimeout``/``WriteTimeout``/``ConnectTimeout``, an OS or TLS error its ``ReadError``/
    ``WriteError``/``ConnectError`` with the original error as ``__cause__`` (httpx then maps
    them to its own exceptions, as for its default backend).
    """

    __slots__ = ("_reader", "_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Return up to ``max_bytes`` bytes; ``b""`` at the end of the stream."""
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` (all of it, once the transport has room)."""
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "timed out") from exc
        except (OSError, ssl.SSLError, RuntimeError) as exc:  # RuntimeError: write after close
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close the connection without waiting for the peer (its socket is closed by the loop)."""
        self._writer.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """Do the TLS handshake on this connection; return the stream that reads and writes
        through TLS. On failure the connection is closed.

        :raises httpcore.ConnectTimeout: the handshake did not end within ``timeout``.
        :raises httpcore.ConnectError: the handshake failed (``__cause__``: the ``ssl.SSLError``,
            e.g. ``SSLCertVerificationError``).
        """
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname,
                                             ssl_handshake_timeout=timeout)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError, EOFError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._writer.close()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        """Return ``ssl_object``, ``client_addr``, ``server_addr``, ``socket`` or ``is_readable``
        (what httpcore asks of a stream); ``None`` for anything else."""
        writer = self._writer
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        if info == "is_readable":
            # readable while idle: the peer closed it (or it failed), so it cannot be reused
            return self._reader.at_eof() or self._reader.exception() is not None
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on the running asyncio event loop (see the module docstring).

    Usage::

        pool = httpcore.AsyncConnectionPool(network_backend=AsyncioBackend())
    """

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` and connect to ``port`` within ``timeout`` seconds (both together).

        :raises httpcore.ConnectTimeout: not connected within ``timeout``.
        :raises httpcore.ConnectError: refused, unreachable or unresolvable (``__cause__``: the
            ``OSError``, e.g. ``ConnectionRefusedError`` or ``socket.gaierror``).
        """
        kw: dict[str, Any] = {"local_addr": (local_address, 0)} if local_address else {}
        loop_type = type(asyncio.get_running_loop())
        if _HAPPY_EYEBALLS.get(loop_type, True):
            kw["happy_eyeballs_delay"] = HAPPY_EYEBALLS_DELAY
        try:
            async with asyncio.timeout(timeout):
                try:
                    reader, writer = await asyncio.open_connection(host, port, **kw)
                except TypeError:
                    if "happy_eyeballs_delay" not in kw:
                        raise
                    # uvloop's loop takes no happy_eyeballs_delay (it tries addresses in turn)
                    _HAPPY_EYEBALLS[loop_type] = False
                    del kw["happy_eyeballs_delay"]
                    reader, writer = await asyncio.open_connection(host, port, **kw)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if socket_options:
            sock = writer.get_extra_info("socket")
            for option in socket_options:
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SocketOption] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        """Connect to the Unix socket at ``path`` within ``timeout`` seconds.

        :raises httpcore.ConnectTimeout: not connected within ``timeout``.
        :raises httpcore.ConnectError: the socket cannot be reached.
        """
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        for option in socket_options or ():
            writer.get_extra_info("socket").setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` on the loop."""
        await asyncio.sleep(seconds)


class ConnectionPerRequest:
    """httpcore's request interface without a pool: every request gets a connection of its own
    (TCP connect, TLS handshake when ``https``, one HTTP/1.1 exchange), closed once its response
    is closed. Nothing is queued or shared between requests, so nothing grows with how many are
    in flight (a shared pool's queue did, issue 10), and every request measures its own connection.

    :param ssl_context: verifies ``https`` servers (ALPN offers ``http/1.1`` only).
    :param backend: the network backend (:class:`AsyncioBackend` when ``None``).
    """

    def __init__(self, ssl_context: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._ssl = ssl_context
        self._ssl.set_alpn_protocols(["http/1.1"])
        self._backend = backend or AsyncioBackend()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Connect, send ``request`` and return its response, whose stream closes the connection.

        :raises httpcore.UnsupportedProtocol: a scheme other than ``http``/``https``.
        :raises httpcore.ConnectError: and the other httpcore errors of connecting and reading
            (httpx's transport maps them to its own).
        """
        origin = request.url.origin
        if origin.scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(f"Request URL has an unsupported protocol '{origin.scheme!r}://'.")
        timeout = request.extensions.get("timeout", {}).get("connect")
        host = origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        try:
            if origin.scheme == b"https":
                sni = request.extensions.get("sni_hostname") or host
                stream = await stream.start_tls(self._ssl, server_hostname=sni, timeout=timeout)
            conn = httpcore.AsyncHTTP11Connection(origin=origin, stream=stream)
            response = await conn.handle_async_request(request)
        except BaseException:
            await stream.aclose()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(status=response.status, headers=response.headers,
                                 content=_ClosingStream(response.stream, conn), extensions=response.extensions)

    async def aclose(self) -> None:
        """Nothing to close: every connection is closed with its response."""

    async def __aenter__(self) -> "ConnectionPerRequest":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _ClosingStream:
    """A response body that closes its connection when it is closed (or fails)."""

    __slots__ = ("_stream", "_conn", "_closed")

    def __init__(self, stream: AsyncIterable[bytes], conn: httpcore.AsyncHTTP11Connection) -> None:
        self._stream = stream
        self._conn = conn
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                aclose = getattr(self._stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                await self._conn.aclose()


class ProbeTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport (HTTP/1.1, no proxy) sending every request on a connection of its
    own (:class:`ConnectionPerRequest`) through :class:`AsyncioBackend`; the conversion of
    requests and responses and the mapping of httpcore's exceptions to httpx's stay httpx's own.

    One transport (and one client on it) serves any number of probes: no pool, no queue, no
    connection kept between requests.

    :param ssl_context: verifies the servers' certificates.
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context)
        # httpx takes no connection pool of ours: replace the pool it built
        self._pool = ConnectionPerRequest(ssl_context)  # type: ignore[assignment]
