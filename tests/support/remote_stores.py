"""Real remote-write stores for tests: Debian's ``victoria-metrics`` and ``prometheus`` (with
``--web.enable-remote-write-receiver``), on loopback ports with data folders of their own,
stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

needs_vm = pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="victoria-metrics is not installed")
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")


def free_port() -> int:
    """Return a free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Store:
    """One store process; :meth:`stop` and :meth:`start` keep its port and data folder.

    :ivar url: the base URL (``http://127.0.0.1:<port>``).
    :ivar write_url: its remote-write endpoint.
    """

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = self.url + "/api/v1/write"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def _argv(self) -> list[str]:
        if self.kind == "vm":
            return ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{self.port}",
                    f"-storageDataPath={self.folder / 'data'}", "-retentionPeriod=100y",
                    "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"]
        cfg = self.folder / "prometheus.yml"
        cfg.write_text("global: {}\n")
        return ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                "--storage.tsdb.retention.time=100y"]

    async def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until it answers queries."""
        log = (self.folder / "store.log").open("ab")
        self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=log)
        ready = "/health" if self.kind == "vm" else "/-/ready"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as c:
            while True:
                assert self.proc.poll() is None, (self.folder / "store.log").read_text()[-2000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(self.url + ready)).status_code == 200:
                        return
                assert time.monotonic() < deadline, f"{self.kind} did not start"
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL after 30 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)

    async def flush(self) -> None:
        """Make recently written samples searchable (VictoriaMetrics' ``/internal/force_flush``)."""
        if self.kind == "vm":
            async with httpx.AsyncClient(timeout=10) as c:
                await c.get(self.url + "/internal/force_flush")

    async def raw(self, selector: str, window: str = "1h", at: float | None = None) -> dict[str, Any]:
        """Return every raw sample of ``selector`` in the ``window`` before ``at`` (default: a
        minute from now, as VictoriaMetrics leaves out the last second's samples at "now"):
        ``{frozenset(labels.items()): [(t_ms, value), ...]}``, through the query API."""
        await self.flush()
        params = {"query": f"{selector}[{window}]", "time": f"{time.time() + 60 if at is None else at:.3f}"}
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.post(self.url + "/api/v1/query", data=params)
        r.raise_for_status()
        doc = r.json()
        assert doc["status"] == "success", doc
        return {frozenset(s["metric"].items()): [(int(round(float(t) * 1000)), float(v)) for t, v in s["values"]]
                for s in doc["data"]["result"]}


@contextlib.asynccontextmanager
async def running_store(kind: str, folder: Path) -> AsyncIterator[Store]:
    """Run a store (``vm`` or ``prometheus``) for the block; stop it after."""
    store = Store(kind, folder)
    await store.start()
    try:
        yield store
    finally:
        store.stop()
