"""The daemon's remote parts: ``remote_write`` (queues, senders, the store's tee) and the rules'
remote datasource (``rules.datasource``), built from the config (:mod:`monitor.remote`).

Data path: every sample the store accepts (probes, scrapes, rule results, ``ALERTS``, self
metrics) is logged by the store; at each flush (``tsdb.sync_interval``) the store hands them to
:meth:`RemoteWrite.tee`, which appends them to each endpoint's queue and wakes its sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from array import array
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from model.labels import Labels
from monitor.config.model import Config
from monitor.remote.datasource import RemoteDatasource
from monitor.remote.queue import RemoteQueue
from monitor.remote.write import RemoteWriteCollector, RemoteWriter
from monitor.tsdb.store import SampleStore

__all__ = ["RemoteWrite", "build_datasource"]

log = logging.getLogger("monitor.daemon")


def build_datasource(config: Config) -> RemoteDatasource | None:
    """Return the rules' remote datasource (``rules.datasource``), or ``None`` for the local engine."""
    ds = config.rules.datasource
    if ds is None:
        return None
    return RemoteDatasource(ds.url, httpx.AsyncClient(follow_redirects=False),
                            headers={k: v.get_secret_value() for k, v in ds.headers.items()},
                            timeout=ds.timeout, query_offset=ds.query_offset,
                            partial_response=ds.partial_response, group_partial_response=ds.group_partial_response,
                            restore_for_state=ds.restore_for_state)


class RemoteWrite:
    """Every ``remote_write`` endpoint: its queue (on disk beside the sample store, or where
    ``queue_config.path`` says) and its sender.

    :param registry: where ``monitor_remote_write_*`` is registered.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.writers: list[RemoteWriter] = []
        registry.register(RemoteWriteCollector(lambda: list(self.writers)))

    async def start(self, config: Config, store: SampleStore, stack: contextlib.AsyncExitStack) -> None:
        """Open the queues (their unsent samples first), start the senders, tee the store into
        them; push the closes onto ``stack``. Call before the store is opened, so the store's
        close (which flushes its last samples into the queues) runs before theirs.

        :raises OSError: a queue's directory cannot be created or read.
        """
        if not config.remote_write:
            return
        client = httpx.AsyncClient(follow_redirects=False)
        stack.push_async_callback(client.aclose)
        for rw in config.remote_write:
            qc = rw.queue_config
            queue = RemoteQueue(config.resolved_remote_queue_path(rw), max_bytes=qc.max_bytes,
                                batch_samples=qc.max_samples_per_send)
            recovered = queue.open()
            stack.callback(queue.close)
            ext = rw.external_labels if rw.external_labels is not None else config.rules.external_labels
            writer = RemoteWriter(rw.name, rw.url, queue, client, external_labels=ext,
                                  max_samples_per_send=qc.max_samples_per_send, min_backoff=qc.min_backoff,
                                  max_backoff=qc.max_backoff, timeout=rw.remote_timeout,
                                  headers={k: v.get_secret_value() for k, v in rw.headers.items()})
            self.writers.append(writer)
            task = asyncio.create_task(writer.run(), name=f"remote_write:{rw.name}")
            stack.push_async_callback(_cancel, task)
            log.info("remote write started", extra={"remote_name": rw.name, "recovered_samples": recovered,
                                                    "queue": str(queue.directory or "memory")})
        store.set_tee(self.tee)
        stack.callback(store.set_tee, None)

    def tee(self, ids: array, ts: array, vs: array, labels_of: Callable[[int], Labels | None]) -> None:
        """Queue flushed samples for every endpoint (the store's tee; see ``SampleStore.set_tee``)."""
        for w in self.writers:
            w.queue.append(ids, ts, vs, labels_of)
            w.wake()

    async def sync(self, store: SampleStore) -> None:
        """Flush an in-memory store into the queues (a durable one flushes in ``tsdb:sync``), then
        fsync the queues off the loop."""
        if not store.durable:
            store.flush()
        fsyncs = [w.queue.fsync_handle() for w in self.writers]
        try:
            for f in fsyncs:
                await asyncio.to_thread(f)
        except asyncio.CancelledError:  # shutdown: the queues' close fsyncs
            pass


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
