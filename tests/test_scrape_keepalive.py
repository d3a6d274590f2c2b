"""A scrape survives the server closing its kept-alive connection as the next GET goes out (issue 16, 15).

``scrape of http://127.0.0.1:8000/metrics failed: RemoteProtocolError: Server disconnected without
sending a response`` came from the keep-alive race, not from the sample backend dropping
connections under a fault: uvicorn closes a connection idle for 5 s (``timeout_keep_alive``), the
demo scrapes every 5 s, and httpx reuses a pooled connection idle for up to 5 s; now and then the
GET goes out on a connection the server is closing. Prometheus (Go's ``net/http`` transport)
sends such a GET again on a new connection; so does the scraper, once.

The server here is a real one on 127.0.0.1 that closes each kept-alive connection, without an
answer, at its second request: every reuse hits the race, deterministically.
"""

from __future__ import annotations

import asyncio

import httpx

from monitor.scrape.scraper import Scraper
from monitor.tsdb import SampleStore

BODY = b"# TYPE jobs_done counter\njobs_done 7\n"


class ClosingServer:
    """HTTP/1.1 on 127.0.0.1: answers the first request of each connection (keep-alive), closes the
    connection without answering at the second; with ``always_close`` closes at the first too."""

    def __init__(self, always_close: bool = False) -> None:
        self.always_close = always_close
        self.connections = 0
        self.answered = 0
        self.closed_unanswered = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "ClosingServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if served >= 1 or self.always_close:
                    self.closed_unanswered += 1
                    return  # the idle-timeout close, as the request arrives
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
                served += 1
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_a_get_on_a_connection_closed_under_it_is_sent_again():
    async with ClosingServer() as srv, httpx.AsyncClient() as client:
        scraper = Scraper("backend", f"http://127.0.0.1:{srv.port}/metrics", SampleStore(), client=client,
                          timeout=30)
        results = [await scraper.scrape_once() for _ in range(3)]
    assert [(r.up, r.error) for r in results] == [(True, None)] * 3
    assert srv.answered == 3 and srv.closed_unanswered == 2 and srv.connections == 3


async def test_a_server_that_never_answers_still_fails_the_scrape_after_one_retry():
    async with ClosingServer(always_close=True) as srv, httpx.AsyncClient() as client:
        scraper = Scraper("backend", f"http://127.0.0.1:{srv.port}/metrics", SampleStore(), client=client,
                          timeout=30)
        result = await scraper.scrape_once()
    assert not result.up and result.reason == "connection"
    assert result.error == "RemoteProtocolError: Server disconnected without sending a response."
    assert srv.closed_unanswered == 2  # the GET and its one retry
