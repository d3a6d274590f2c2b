"""A probe's series in the store: one label set per series, kept from run to run, and a staleness
marker for a series the probe stops reporting (Prometheus ``scrape/scrape.go``)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from model.labels import Labels
from monitor.daemon.probing import ProbeClients, ProbeRunner
from monitor.metrics import Metrics
from monitor.tsdb.series import is_stale
from monitor.tsdb.store import SampleStore
from probes import PROBES
from tests.support.probe_servers import HttpServer, Response

TWO_CHECKS = {"status": "healthy", "checks": {"database": "healthy", "llm": "healthy"}}
ONE_CHECK = {"status": "healthy", "checks": {"database": "healthy"}}


def check_series(store: SampleStore, check: str) -> Labels:
    [labels] = [lbl for lbl in store.series() if lbl.name == "probe_api_check_healthy" and lbl.get("check") == check]
    return labels


async def test_a_series_the_probe_stops_reporting_is_marked_stale_and_the_rest_keep_their_labels():
    docs = [TWO_CHECKS, TWO_CHECKS, ONE_CHECK]
    store = SampleStore()
    async with HttpServer(lambda r: Response.json(docs.pop(0))) as srv:
        settings = PROBES["api"].Settings.model_validate({"name": "b", "kind": "api", "url": srv.url})
        clients = ProbeClients()
        runner = ProbeRunner([settings], store, Metrics(CollectorRegistry()), clients=clients)
        try:
            first = await runner.run("b")
            database = check_series(store, "database")
            await asyncio.sleep(0.01)  # runs stamped in one millisecond would be one sample
            await runner.run("b")
            assert runner._series["b"][("probe_api_check_healthy", ("check", "database"))] is database
            await asyncio.sleep(0.01)
            third = await runner.run("b")
        finally:
            await runner.close()
            await clients.aclose()
    assert first.success and third.success
    llm = store.select_series([check_series(store, "llm")], 0, 2**62)[0]
    assert is_stale(llm.values[-1]) and not any(is_stale(v) for v in llm.values[:-1])
    db = store.select_series([database], 0, 2**62)[0]
    assert len(db.values) == 3 and not any(is_stale(v) for v in db.values)
    assert store.stored_labels(database) is database
