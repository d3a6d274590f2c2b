"""The probes' httpx transport (``probes/transport.py``) against real local servers, on asyncio's
loop and on uvloop: the same outcomes and reasons as httpx's default transport, and a connection
of its own for every request (blackbox_exporter's ``prober/http.go``: keep-alives off)."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore
import httpx
import pytest

from probes.api import ApiProbe, ApiSettings
from probes.base import run_probe
from probes.transport import AsyncioBackend, ProbeTransport
from tests.probes.probe_certs import issue, server_context, write_ca
from tests.support.probe_servers import HttpServer, Response, SilentServer, closed_port

HEALTHY = {"status": "healthy", "checks": {"database": "healthy"}}
LOOPS = ["asyncio", "uvloop"]


def run_on(loop: str, main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main()`` on a fresh loop of the kind named."""
    factory = None
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def client(ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=ProbeTransport(ssl_context or httpx.create_ssl_context()))


async def probe_with(http: httpx.AsyncClient, url: str, timeout: float = 2.0):
    probe = ApiProbe(ApiSettings(name="b", url=url, timeout=timeout), http_client=http)
    return await run_probe(probe, timeout)


class KeepAliveServer:
    """Answers every request on a connection with keep-alive, and counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "KeepAliveServer":
        body = b'{"status": "healthy"}'

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    self.requests += 1
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_healthy_target_and_a_connection_per_request(loop):
    async def main():
        async with KeepAliveServer() as srv, client() as http:
            results = [await probe_with(http, f"http://127.0.0.1:{srv.port}") for _ in range(3)]
            return results, srv.connections, srv.requests

    results, connections, requests = run_on(loop, main)
    assert all(r.success for r in results), [r.error for r in results]
    assert requests == 3 and connections == 3  # the server offered keep-alive; each run connected anew


@pytest.mark.parametrize("loop", LOOPS)
def test_refused_connection_reason(loop):
    port = closed_port()

    async def main():
        async with client() as http:
            return await probe_with(http, f"http://127.0.0.1:{port}")

    result = run_on(loop, main)
    assert not result.success
    assert result.error == f"cannot reach http://127.0.0.1:{port}/health: Connection refused"


@pytest.mark.parametrize("loop", LOOPS)
def test_hung_target_times_out_with_reason(loop):
    async def main():
        async with SilentServer() as srv, client() as http:
            return await probe_with(http, f"http://127.0.0.1:{srv.port}", timeout=0.5), srv.connections

    result, connections = run_on(loop, main)
    assert not result.success and result.error.startswith("timeout after ")
    assert connections == 1


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_verified_against_the_clients_ca_and_refused_without_it(loop, tmp_path):
    ca = issue("test CA", ca=True)
    leaf = issue("localhost", issuer=ca, sans=["127.0.0.1"])
    trusting = ssl.create_default_context(cafile=write_ca(tmp_path, ca))

    async def main():
        async with HttpServer(lambda r: Response.json(HEALTHY), ssl_context=server_context(tmp_path, leaf)) as srv:
            async with client(trusting) as good, client() as default:
                return await probe_with(good, srv.url), await probe_with(default, srv.url)

    trusted, untrusted = run_on(loop, main)
    assert trusted.success, trusted.error
    assert not untrusted.success
    assert untrusted.error.endswith("certificate verify failed: unable to get local issuer certificate")


@pytest.mark.parametrize("loop", LOOPS)
def test_post_body_and_status(loop):
    seen = []

    def handler(req):
        seen.append((req.method, req.path, req.body))
        return Response.json({"id": 7}, status=201)

    async def main():
        async with HttpServer(handler) as srv, client() as http:
            return await http.post(srv.url + "/x?y=1", json={"a": 1})

    resp = run_on(loop, main)
    assert resp.status_code == 201 and resp.json() == {"id": 7}
    assert seen == [("POST", "/x?y=1", b'{"a":1}')]


def test_backend_connect_timeout_and_stream_info():
    async def main():
        backend = AsyncioBackend()
        async with SilentServer() as srv:
            stream = await backend.connect_tcp("127.0.0.1", srv.port, timeout=1.0)
            try:
                info = (stream.get_extra_info("server_addr"), stream.get_extra_info("ssl_object"),
                        stream.get_extra_info("is_readable"))
                with pytest.raises(httpcore.ReadTimeout):
                    await stream.read(10, timeout=0.05)
            finally:
                await stream.aclose()
            return srv.port, info

    port, info = run_on("asyncio", main)
    assert info == (("127.0.0.1", port), None, False)


@pytest.mark.parametrize("loop", LOOPS)
def test_timed_out_and_cancelled_requests_leave_no_socket_open(loop):
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main():
        async with SilentServer() as srv, client() as http:
            before = open_files()
            results = await asyncio.gather(*(probe_with(http, f"http://127.0.0.1:{srv.port}", timeout=0.3)
                                             for _ in range(50)))
            task = asyncio.create_task(http.get(f"http://127.0.0.1:{srv.port}/x", timeout=30))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.1)  # the loop releases closed sockets on its next turn
            return results, before, open_files(), srv.connections

    results, before, after, held_by_server = run_on(loop, main)
    assert not any(r.success for r in results)
    assert held_by_server == 51
    assert after - before <= held_by_server  # the server's ends stay open (it hangs); ours are closed


@pytest.mark.parametrize("loop", LOOPS)
def test_traced_request_records_every_step_by_name_and_by_address(loop):
    """A request carrying an HttpTrace records resolution (by name; an IP literal is not resolved
    in a thread), connection, first byte and end, and the address connected to; ``localhost`` may
    resolve to ::1 first, where nothing listens, and the race still ends on 127.0.0.1."""
    from probes.transport import HttpTrace

    async def main():
        async with HttpServer(lambda r: Response.json(HEALTHY)) as srv, client() as http:
            hops = []
            for host in ("127.0.0.1", "localhost"):
                trace = HttpTrace()
                r = await http.get(f"http://{host}:{srv.port}/health", extensions={"probe_trace": trace})
                assert r.status_code == 200
                hops.append(trace.hops)
            return hops

    for (hop,) in run_on(loop, main):
        assert hop.address is not None and hop.address[0] == "127.0.0.1"
        assert hop.start <= hop.resolved <= hop.connected <= hop.first_byte <= hop.end
        assert hop.tls_start is None and hop.chain == []
