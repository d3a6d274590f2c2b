"""Many HTTP targets in one small process, for the probe benchmarks: every path
``/t/<n>/health`` on one port is target ``n`` and answers the Codebook health document.

A control port switches every target at once between modes, so a benchmark can stage a mass
outage and its recovery:

- ``ok``: answer 200 with the health document (HTTP/1.1 keep-alive honoured);
- ``hang``: accept the connection, read the request, never answer (the client times out);
- ``refuse``: close the listening socket (connections are refused) and drop open ones;
- ``error``: answer 503 with an unhealthy document.

``GET /stats`` on the control port returns ``{"mode": ..., "hits": {user-agent family: n}}``
(``ours`` for codebook-monitor, ``blackbox`` for blackbox_exporter) and ``POST /mode/<mode>``
switches. The server is a bare ``asyncio.Protocol`` so that its own CPU stays small beside the
two systems measured.

Two more things for the alerting benchmarks: ``GET /metrics`` on the targets' port serves
:data:`SERIES` counter series (``bench_requests_total{service, code, instance}``, 51 services x
2 codes x 10 instances = 1,020; answered in every mode but ``refuse``), and the control port is a
webhook receiver: ``POST /webhook/<side>`` records the arrival time, status and alert count of
an Alertmanager webhook payload, ``GET /webhooks`` lists them and ``DELETE /webhooks`` clears.

    python benchmarks/target_server.py --port 18100 --control-port 18101
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

HEALTH = json.dumps({"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1",
                     "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}).encode()
UNHEALTHY = json.dumps({"status": "unhealthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1",
                        "checks": {"database": "unhealthy"}}).encode()
MODES = ("ok", "hang", "refuse", "error")
#: The ``/metrics`` series: (service, code, instance) label values.
SERIES = [(f"s{s}", code, f"i{i}") for s in range(51) for code in ("200", "500") for i in range(10)]
STARTED = time.time()


def exposition() -> bytes:
    """Return the ``/metrics`` text: every series of :data:`SERIES` as a counter growing with time
    (1/s for code 200, 0.01/s for code 500)."""
    t = time.time() - STARTED
    lines = ["# HELP bench_requests_total Requests served.", "# TYPE bench_requests_total counter"]
    for service, code, instance in SERIES:
        rate = 1.0 if code == "200" else 0.01
        lines.append(f'bench_requests_total{{service="{service}",code="{code}",instance="{instance}"}} '
                     f"{t * rate:.3f}")
    return ("\n".join(lines) + "\n").encode()


def _response(status: str, body: bytes, keep_alive: bool, ctype: bytes = b"application/json") -> bytes:
    conn = b"keep-alive" if keep_alive else b"close"
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + ctype + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: " + conn + b"\r\n\r\n" + body)


class Targets:
    """The shared state: mode, open connections, hit counts by client family."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.mode = "ok"
        self.hits: dict[str, int] = {}
        self.conns: set[TargetProtocol] = set()
        self.server: asyncio.Server | None = None
        self.webhooks: list[dict[str, Any]] = []

    async def listen(self) -> None:
        """Open the targets' listening socket."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: TargetProtocol(self), self.host, self.port,
                                               reuse_address=True, backlog=4096)

    async def set_mode(self, mode: str) -> None:
        """Switch every target to ``mode`` (one of :data:`MODES`)."""
        if mode not in MODES:
            raise ValueError(mode)
        previous, self.mode = self.mode, mode
        if mode == "refuse" and self.server is not None:
            self.server.close()
            self.server = None
            for c in list(self.conns):
                c.abort()
        elif previous == "refuse" and mode != "refuse":
            await self.listen()
        if previous == "hang" and mode != "hang":
            for c in list(self.conns):  # answer nothing that was held; the client gave up long ago
                if c.held:
                    c.abort()


class TargetProtocol(asyncio.Protocol):
    """One client connection: answers each request as the current mode says."""

    def __init__(self, targets: Targets) -> None:
        self.t = targets
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.held = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Track the connection (a refusal or recovery drops it)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.t.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self.t.conns.discard(self)

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        """Answer every complete request head received, as the mode says."""
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            lower = head.lower()
            keep = b"connection: close" not in lower and not head.startswith(b"GET / HTTP/1.0")
            assert self.transport is not None
            if head.startswith(b"GET /metrics "):
                self.transport.write(_response("200 OK", exposition(), keep, b"text/plain; version=0.0.4"))
                if not keep:
                    self.transport.close()
                    return
                continue
            family = "blackbox" if b"blackbox" in lower or b"go-http-client" in lower else (
                "ours" if b"codebook-monitor" in lower else "other")
            self.t.hits[family] = self.t.hits.get(family, 0) + 1
            if self.t.mode == "hang":
                self.held = True
                self.buf = b""
                return
            if self.t.mode == "error":
                msg = _response("503 Service Unavailable", UNHEALTHY, keep)
            else:
                msg = _response("200 OK", HEALTH, keep)
            self.transport.write(msg)
            if not keep:
                self.transport.close()
                return


async def control(targets: Targets, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one control request: ``GET /stats`` or ``POST /mode/<mode>``."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, path, _ = head.split(" ", 2)
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        payload = await reader.readexactly(length) if length else b""
        status, body = "200 OK", b""
        doc: dict[str, Any] = {"mode": targets.mode, "hits": targets.hits, "open": len(targets.conns)}
        if method == "POST" and path.startswith("/mode/"):
            try:
                await targets.set_mode(path.removeprefix("/mode/"))
            except ValueError:
                status = "400 Bad Request"
            doc["mode"] = targets.mode
        elif method == "POST" and path.startswith("/webhook/"):
            got = json.loads(payload or b"{}")
            alerts = got.get("alerts") or []
            targets.webhooks.append({"side": path.removeprefix("/webhook/"), "t": time.time(),
                                     "status": got.get("status"), "alerts": len(alerts),
                                     "group": got.get("groupKey"),
                                     "alertnames": sorted({a.get("labels", {}).get("alertname", "") for a in alerts})})
            doc = {"status": "ok"}
        elif path == "/webhooks":
            if method == "DELETE":
                targets.webhooks.clear()
            doc = {"webhooks": targets.webhooks}
        body = json.dumps(doc).encode()
        writer.write(_response(status, body, False))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(host: str, port: int, control_port: int) -> None:
    """Serve the targets and the control port until SIGTERM or SIGINT."""
    targets = Targets(host, port)
    await targets.listen()
    ctl = await asyncio.start_server(lambda r, w: control(targets, r, w), host, control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"listening": port, "control": control_port}), flush=True)
    await stop.wait()
    ctl.close()
    if targets.server is not None:
        targets.server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--control-port", type=int, default=18101)
    a = ap.parse_args()
    asyncio.run(main(a.host, a.port, a.control_port))
