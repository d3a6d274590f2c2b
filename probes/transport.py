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

A request may carry an :class:`HttpTrace` (request extension ``"probe_trace"``): the transport
then records, per request sent, when name resolution, the TCP connection, the TLS handshake, the
first response byte and the end of the body happened, the address connected to, the negotiated
TLS version and the certificates the server presented, so a probe can export
blackbox_exporter's ``probe_http_duration_seconds{phase}`` (``prober/http.go``: resolve,
connect, tls, processing, transfer) from the network the request really used.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from asyncio.staggered import staggered_race
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

#: Seconds Happy Eyeballs waits before racing the next address (RFC 8305's recommended 250 ms,
#: anyio's default, which httpcore's default backend uses).
HAPPY_EYEBALLS_DELAY = 0.25
#: A socket option as httpcore takes it: ``(level, option, value)`` or ``(level, option, None, length)``.
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


def presented_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """Return the DER certificates the peer presented, leaf first.

    Uses ``get_unverified_chain()`` (Python >= 3.13) or the private ``_sslobj`` method of
    Python 3.10–3.12; falls back to the leaf alone.
    """
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        # Python 3.10-3.12 give _ssl.Certificate objects; the DER constant lives in that private module.
        ders = [c if isinstance(c, bytes)
                else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]  # noqa: SLF001 - see docstring
                for c in chain]
        if ders:
            return ders
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


@dataclass(slots=True)
class Hop:
    """What one HTTP request of a traced exchange did on the network (monotonic seconds).

    A field stays ``None`` when its step did not happen (a refused connection has no
    ``connected``; a redirect closed unread has no ``end``).

    :ivar url: the request's URL (as sent; a password in it is the caller's to redact).
    :ivar start: when the request began, before name resolution.
    :ivar resolved: when the host's addresses were known.
    :ivar address: the IP address connected to (text) and its family (``socket.AF_INET``/``AF_INET6``).
    :ivar connected: when the TCP connection was established.
    :ivar tls_start, tls_done: when the TLS handshake began and ended (``https`` only).
    :ivar tls_version: the negotiated version as OpenSSL names it (``TLSv1.3``), ``""`` without TLS.
    :ivar chain: the DER certificates the server presented, leaf first (empty without TLS).
    :ivar first_byte: when the response's headers had arrived.
    :ivar end: when the response's body had been read to its end.
    """

    url: str
    start: float
    resolved: float | None = None
    address: tuple[str, int] | None = None
    connected: float | None = None
    tls_start: float | None = None
    tls_done: float | None = None
    tls_version: str = ""
    chain: list[bytes] = field(default_factory=list)
    first_byte: float | None = None
    end: float | None = None


class HttpTrace:
    """The network timeline of one probe request and its redirects: one :class:`Hop` per request.

    Usage::

        trace = HttpTrace()
        request = client.build_request("GET", url, extensions={"probe_trace": trace})
        response = await client.send(request)   # through ProbeTransport
        trace.hops[-1].first_byte - trace.hops[-1].tls_done   # seconds of "processing"

    Only :class:`ConnectionPerRequest` fills it; through another transport ``hops`` stays empty.

    :param clock: monotonic seconds (injected by tests).
    """

    __slots__ = ("hops", "clock")

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.hops: list[Hop] = []
        self.clock = clock

    def begin(self, url: str) -> Hop:
        """Start and return the :class:`Hop` of a new request."""
        hop = Hop(url, self.clock())
        self.hops.append(hop)
        return hop

    def now(self) -> float:
        """Return the trace's clock."""
        return float(self.clock())


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
                          socket_options: Iterable[SocketOption] | None = None, *,
                          hop: Hop | None = None, clock: Any = time.monotonic) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` and connect to ``port`` within ``timeout`` seconds (both together).

        The name is resolved with the loop's resolver; with several addresses they are raced as
        Happy Eyeballs does (RFC 8305: families interleaved, the next attempt started
        :data:`HAPPY_EYEBALLS_DELAY` seconds after the previous one unless it failed sooner, the
        first connection wins and the others are closed), on any loop, uvloop's included.

        :param hop: when given, the resolution and connection times and the address are recorded in it.
        :param clock: monotonic seconds for ``hop``.
        :raises httpcore.ConnectTimeout: not connected within ``timeout``.
        :raises httpcore.ConnectError: refused, unreachable or unresolvable (``__cause__``: the
            ``OSError``, e.g. ``ConnectionRefusedError`` or ``socket.gaierror``).
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = _numeric(host, port) or await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                if hop is not None:
                    hop.resolved = clock()
                sock, addr = await _connect(loop, _interleave(infos), local_address)
                try:
                    reader, writer = await asyncio.open_connection(sock=sock)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if hop is not None:
            hop.connected = clock()
            hop.address = (str(addr[0]), sock.family)
        if socket_options:
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


_AddrInfo = tuple[int, int, int, str, Any]


def _numeric(host: str, port: int) -> list[_AddrInfo] | None:
    """Return the address of an IP literal ``host`` as ``getaddrinfo`` would, without its thread
    (asyncio's ``create_connection`` skips resolving an IP literal the same way); ``None`` for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.version == 4:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(ip), port))]
    return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(ip), port, 0, 0))]


def _interleave(infos: Sequence[_AddrInfo]) -> list[_AddrInfo]:
    """Return ``infos`` without duplicates, families alternating from the first one's (RFC 8305 §4)."""
    unique = list(dict.fromkeys(infos))
    first = [i for i in unique if i[0] == unique[0][0]]
    rest = [i for i in unique if i[0] != unique[0][0]]
    out: list[_AddrInfo] = []
    for a, b in zip(first, rest):
        out += [a, b]
    return out + first[len(rest):] + rest[len(first):]


async def _connect(loop: asyncio.AbstractEventLoop, infos: list[_AddrInfo],
                   local_address: str | None) -> tuple[socket.socket, Any]:
    """Connect a non-blocking socket to the first of ``infos`` that answers (raced as Happy
    Eyeballs when there are several); return it and the address connected to. Every other socket
    opened is closed, whoever wins.

    :raises OSError: no address could be connected (the error itself when there was one address,
        or all failed alike; else ``Multiple exceptions: ...`` as asyncio's ``create_connection``).
    """
    if not infos:
        raise OSError("getaddrinfo returned no address")
    opened: list[socket.socket] = []

    async def attempt(info: _AddrInfo) -> tuple[socket.socket, Any]:
        family, type_, proto, _, addr = info
        sock = socket.socket(family, type_, proto)
        opened.append(sock)
        sock.setblocking(False)
        if local_address:
            sock.bind((local_address, 0))
        await loop.sock_connect(sock, addr)
        return sock, addr

    winner: tuple[socket.socket, Any] | None = None
    try:
        if len(infos) == 1:
            winner = await attempt(infos[0])
            return winner
        winner, _, errors = await staggered_race(
            [functools.partial(attempt, info) for info in infos], HAPPY_EYEBALLS_DELAY)
        if winner is None:
            found = [e for e in errors if e is not None]
            if not found:
                raise OSError("no address could be connected")
            if len({str(e) for e in found}) == 1 and isinstance(found[0], OSError):
                raise found[0]
            raise OSError("Multiple exceptions: " + ", ".join(str(e) for e in found))
        return winner
    finally:
        for sock in opened:
            if winner is None or sock is not winner[0]:
                sock.close()


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
        found = request.extensions.get("probe_trace")
        trace = found if isinstance(found, HttpTrace) else None
        hop: Hop | None = None
        if trace is not None:
            hop = trace.begin(bytes(request.url).decode("ascii", "replace"))
            _trace_first_byte(request, hop, trace)
        if trace is not None and hop is not None and isinstance(self._backend, AsyncioBackend):
            stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout, hop=hop, clock=trace.clock)
        else:
            stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        try:
            if origin.scheme == b"https":
                sni = request.extensions.get("sni_hostname") or host
                if trace is not None and hop is not None:
                    hop.tls_start = trace.now()
                stream = await stream.start_tls(self._ssl, server_hostname=sni, timeout=timeout)
                if trace is not None and hop is not None:
                    hop.tls_done = trace.now()
                    sslobj = stream.get_extra_info("ssl_object")
                    if sslobj is not None:
                        hop.tls_version = sslobj.version() or ""
                        hop.chain = presented_chain(sslobj)
            conn = httpcore.AsyncHTTP11Connection(origin=origin, stream=stream)
            response = await conn.handle_async_request(request)
        except BaseException:
            await stream.aclose()
            raise
        assert isinstance(response.stream, AsyncIterable)
        ending = (hop, trace) if hop is not None and trace is not None else None
        return httpcore.Response(status=response.status, headers=response.headers,
                                 content=_ClosingStream(response.stream, conn, ending), extensions=response.extensions)

    async def aclose(self) -> None:
        """Nothing to close: every connection is closed with its response."""

    async def __aenter__(self) -> "ConnectionPerRequest":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _trace_first_byte(request: httpcore.Request, hop: Hop, trace: HttpTrace) -> None:
    """Record in ``hop`` when the response headers arrive, through httpcore's ``trace`` extension
    (any trace callback the request already had is still called)."""
    chained = request.extensions.get("trace")

    async def on_event(name: str, info: dict[str, Any]) -> None:
        if name == "http11.receive_response_headers.complete":
            hop.first_byte = trace.now()
        if chained is not None:
            await chained(name, info)

    request.extensions["trace"] = on_event


class _ClosingStream:
    """A response body that closes its connection when it is closed (or fails); with a traced
    request, records when the body was read to its end."""

    __slots__ = ("_stream", "_conn", "_closed", "_ending")

    def __init__(self, stream: AsyncIterable[bytes], conn: httpcore.AsyncHTTP11Connection,
                 ending: tuple[Hop, HttpTrace] | None = None) -> None:
        self._stream = stream
        self._conn = conn
        self._closed = False
        self._ending = ending

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise
        if self._ending is not None:
            hop, trace = self._ending
            hop.end = trace.now()

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
