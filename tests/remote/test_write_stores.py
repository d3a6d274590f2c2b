"""Remote write into the real stores: Debian's VictoriaMetrics and Prometheus (remote-write receiver).

Samples go the daemon's way — appended to the sample store, teed at its flush into the on-disk
queue, sent by the writer — and are read back through the store's query API with their values and
labels (external labels added). The outage test stops VictoriaMetrics by PID for
``MONITOR_TEST_REMOTE_OUTAGE`` seconds (default 20; the benchmark runs minutes) while samples keep
coming, restarts it on the same data folder, and finds every sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from model.labels import Labels
from monitor.remote.queue import RemoteQueue
from monitor.remote.write import RemoteWriter
from monitor.tsdb.store import SampleStore
from tests.support.daemon_helpers import eventually
from tests.support.remote_stores import free_port, needs_prometheus, needs_vm, running_store

OUTAGE = float(os.environ.get("MONITOR_TEST_REMOTE_OUTAGE", "20"))


class Pipe:
    """A sample store teed into a queue at ``path`` and a writer to ``url``, sending in a task."""

    def __init__(self, path: Path | None, url: str, **writer_kw: object) -> None:
        self.store = SampleStore(retention_seconds=None)
        self.queue = RemoteQueue(path, batch_samples=500)
        self.queue.open()
        self.client = httpx.AsyncClient()
        self.writer = RemoteWriter("test", url, self.queue, self.client, max_samples_per_send=500,
                                   min_backoff=0.05, max_backoff=0.5, timeout=5, **writer_kw)  # type: ignore[arg-type]

        def tee(ids, ts, vs, labels_of):
            self.queue.append(ids, ts, vs, labels_of)
            self.writer.wake()
        self.store.set_tee(tee)
        self.task = asyncio.create_task(self.writer.run())

    async def drained(self, timeout: float = 120.0) -> None:
        self.store.flush()

        async def empty():
            return self.queue.samples == 0 or None
        await eventually(empty, timeout=timeout, what="the queue drains")

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.queue.close()
        await self.client.aclose()


@contextlib.asynccontextmanager
async def pipe(path: Path | None, url: str, **kw: object) -> AsyncIterator[Pipe]:
    p = Pipe(path, url, **kw)
    try:
        yield p
    finally:
        await p.close()


def _series(now_ms: int) -> list[tuple[Labels, int, float]]:
    out = []
    values = [0.0, 1.0, -2.5, 1e-9, 123456789.125, 3.0e38]
    for i, v in enumerate(values):
        labels = Labels.of({"__name__": "rw_test_value", "case": str(i), "path": "/api/v1/x y", "le": "0.5"})
        out += [(labels, now_ms - 60_000 + k * 15_000, v + k) for k in range(4)]
    out.append((Labels.of({"__name__": "probe_success", "probe": "api", "unicode": "żółw ✓"}), now_ms - 1000, 1.0))
    return out


@pytest.mark.parametrize("kind", [pytest.param("vm", marks=needs_vm),
                                  pytest.param("prometheus", marks=needs_prometheus)])
async def test_samples_read_back_with_equal_values_and_labels(tmp_path, kind):
    async with running_store(kind, tmp_path / kind) as store:
        async with pipe(tmp_path / "q", store.write_url, external_labels={"replica": "a"}) as p:
            now = int(time.time() * 1000)
            sent = _series(now)
            p.store.append_batch(sent)
            await p.drained()
            assert p.writer.sent_samples_total == len(sent) and p.writer.failed_samples_total == 0
        want: dict[frozenset, list[tuple[int, float]]] = {}
        for labels, t, v in sent:
            want.setdefault(frozenset({**labels.as_dict(), "replica": "a"}.items()), []).append((t, v))

        async def read():
            got = {**await store.raw('{__name__=~"rw_test_value|probe_success"}', "10m")}
            return got if got == want else None
        got = await eventually(read, timeout=60, what="the samples are readable")
        assert got == want


@needs_vm
async def test_a_store_outage_loses_no_sample(tmp_path):
    async with running_store("vm", tmp_path / "vm") as store:
        async with pipe(tmp_path / "q", store.write_url) as p:
            appended: list[tuple[Labels, int, float]] = []
            stop = asyncio.Event()

            async def produce():
                k = 0
                while not stop.is_set():
                    t = int(time.time() * 1000)
                    batch = [(Labels.of({"__name__": "rw_outage", "series": str(i)}), t, float(k)) for i in range(20)]
                    p.store.append_batch(batch)
                    appended.extend(batch)
                    p.store.flush()
                    k += 1
                    await asyncio.sleep(0.1)

            producer = asyncio.create_task(produce())
            await eventually(lambda: _true(p.writer.sent_samples_total > 0), timeout=30, what="first send")
            store.stop()
            t_down = time.monotonic()
            while time.monotonic() - t_down < OUTAGE:
                await asyncio.sleep(0.5)
            assert p.queue.samples > 0 and p.writer.retried_samples_total > 0  # held while it was down
            await store.start()
            await asyncio.sleep(1)
            stop.set()
            await producer
            await p.drained(timeout=120 + OUTAGE)
            assert p.queue.dropped_samples_total == 0 and p.writer.failed_samples_total == 0
        want = {}
        for labels, t, v in appended:
            want.setdefault(frozenset(labels.as_dict().items()), []).append((t, v))

        async def read():
            got = await store.raw("rw_outage", "30m")
            return got if got == want else None
        assert await eventually(read, timeout=60, what="every sample is readable") == want


@needs_vm
async def test_a_restart_resumes_the_queue(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nothing listens: the samples stay queued
    labels = Labels.of({"__name__": "rw_resumed", "job": "x"})
    t0 = int(time.time() * 1000) - 30_000
    async with pipe(tmp_path / "q", dead) as p:
        p.store.append_batch([(labels, t0 + i * 1000, float(i)) for i in range(25)])
        p.store.flush()
        await eventually(lambda: _true(p.writer.retried_samples_total > 0), timeout=30, what="a failed send")
    async with running_store("vm", tmp_path / "vm") as store:
        async with pipe(tmp_path / "q", store.write_url) as p:
            assert p.queue.recovered_batches > 0
            await p.drained()

        async def read():
            got = await store.raw("rw_resumed", "10m")
            return got or None
        got = await eventually(read, timeout=60, what="the resumed samples")
        assert got == {frozenset(labels.as_dict().items()): [(t0 + i * 1000, float(i)) for i in range(25)]}


async def _true(cond: bool) -> bool | None:
    return True if cond else None
