"""Hostile HTTP targets on 127.0.0.1 for the bounds tests: bodies that never end, bodies of tens of
megabytes, expositions of a million series, series with too many labels.

:class:`StreamingServer` runs in its own thread (so a target that writes as fast as it can does
not compete with the code under test for the event loop) and produces every body lazily from a
generator, reusing its chunks: the server itself holds a few hundred kilobytes, whatever it sends.
It records how many body bytes it managed to send per request, which shows where the client
stopped reading (the difference is what the kernel's socket buffers took).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


@dataclass
class Body:
    """One reply: ``chunks()`` makes the body; ``length`` is sent as Content-Length (else chunked)."""

    chunks: Callable[[], Iterable[bytes]]
    length: int | None = None
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def endless(prefix: bytes = b"", piece: bytes = b"x" * CHUNK, **kw: object) -> Body:
    """A body that never ends (chunked): ``prefix`` then ``piece`` forever."""
    return Body(lambda: itertools.chain([prefix], itertools.repeat(piece)), **kw)  # type: ignore[arg-type]


def sized(n: int, prefix: bytes = b"", declare: bool = True, **kw: object) -> Body:
    """A body of exactly ``n`` bytes (``prefix``, then filler); Content-Length sent when ``declare``."""
    def chunks() -> Iterator[bytes]:
        yield prefix
        left = n - len(prefix)
        piece = b"x" * CHUNK
        while left > 0:
            yield piece[:left]
            left -= CHUNK
    return Body(chunks, length=n if declare else None, **kw)  # type: ignore[arg-type]


def exposition(series: int, labels: int = 2, name: str = "hostile_series") -> Body:
    """A text-format exposition of ``series`` series of ``name``, each with ``labels`` labels, chunked."""
    def chunks() -> Iterator[bytes]:
        yield f"# HELP {name} A target that exposes far too much.\n# TYPE {name} gauge\n".encode()
        extra = ",".join(f'l{j}="v{j}"' for j in range(labels - 1))
        extra = "," + extra if extra else ""
        lines: list[str] = []
        for i in range(series):
            lines.append(f'{name}{{id="{i}"{extra}}} {i}\n')
            if len(lines) == 1000:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()
    return Body(chunks)


class StreamingServer:
    """A threaded HTTP/1.1 server answering ``routes[path]`` (a :class:`Body`), one request per
    connection. ``sent[path]`` lists the body bytes sent per request, ``requests[path]`` counts them.

    Usage::

        with StreamingServer({"/metrics": exposition(1_000_000)}) as srv:
            ... srv.url + "/metrics" ...
    """

    def __init__(self, routes: dict[str, Body]) -> None:
        self.routes = routes
        self.sent: dict[str, list[int]] = {}
        self.requests: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer()

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                path = self.path
                server.requests[path] = server.requests.get(path, 0) + 1
                body = server.routes.get(path) or Body(lambda: [b"not found"], length=9, status=404)
                self.send_response(body.status)
                self.send_header("Content-Type", body.content_type)
                self.send_header("Connection", "close")
                for k, v in body.headers.items():
                    self.send_header(k, v)
                chunked = body.length is None
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(body.length))
                self.end_headers()
                sent = 0
                try:
                    for piece in body.chunks():
                        if not piece:
                            continue
                        if chunked:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        else:
                            self.wfile.write(piece)
                        sent += len(piece)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what this server is for
                finally:
                    server.sent.setdefault(path, []).append(sent)
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "StreamingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
