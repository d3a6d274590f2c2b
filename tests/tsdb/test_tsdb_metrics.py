"""The sample store's own metrics (``monitor_tsdb_disk_bytes``, ``monitor_tsdb_wal_errors_total``,
checkpoint duration and bytes) and the reload warning for settings only a restart applies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from model.labels import Labels
from monitor.config.loader import load_config_text
from monitor.daemon.collectors import StoreCounters, update_store_gauges
from monitor.daemon.lifecycle import restart_needed
from monitor.metrics import Metrics
from monitor.tsdb.store import SampleStore

T0 = 1_796_428_800_000


def _value(text: str, name: str) -> float:
    [line] = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def test_disk_wal_errors_and_checkpoint_gauges(tmp_path: Path) -> None:
    store = SampleStore()
    store.open(tmp_path / "tsdb", now_ms=T0)
    try:
        up = Labels.of(__name__="up", job="api")
        for k in range(100):
            store.append(up, T0 + k * 15_000, 1.0)
        store.sync()
        store.wal_errors_total = 2  # as two failed writes leave it
        asyncio.run(store.checkpoint(now_ms=T0 + 100 * 15_000))
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        registry.register(StoreCounters(store))
        update_store_gauges(metrics, store)
        text = generate_latest(registry).decode()
        assert _value(text, "monitor_tsdb_disk_bytes") == store.disk_bytes() > 0
        assert _value(text, "monitor_tsdb_wal_errors_total") == 2
        assert _value(text, "monitor_tsdb_checkpoint_duration_seconds") > 0
        assert _value(text, "monitor_tsdb_checkpoint_written_bytes") > 0
    finally:
        store.close()


def _config(tmp_path: Path, tsdb: str):  # type: ignore[no-untyped-def]
    return load_config_text(f"tsdb:\n{tsdb}", str(tmp_path / "monitor.yaml"), base_dir=tmp_path, env={})


def test_reload_of_tsdb_path_retention_or_rules_needs_a_restart(tmp_path: Path) -> None:
    old = _config(tmp_path, "  path: data\n  retention: 2h\n")
    assert restart_needed(old, _config(tmp_path, "  path: data\n  retention: 2h\n  sync_interval: 5s\n")) == []
    warned = restart_needed(old, _config(tmp_path, "  path: other\n  retention: 3h\n  retention_rules:\n"
                                                   "    - match: '{__name__=~\"slo:.*\"}'\n      retention: 40d\n"))
    assert [w.split(" ")[0] for w in warned] == ["tsdb.path", "tsdb.retention", "tsdb.retention_rules"]
    assert all("restart" in w for w in warned)
