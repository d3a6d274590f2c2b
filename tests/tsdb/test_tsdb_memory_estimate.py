"""The store's running memory estimate (``monitor_tsdb_memory_bytes``): close to the full walk of
``memory_bytes()`` as series and samples come and go, and back to zero when they are gone."""

from __future__ import annotations

from model.labels import Labels
from monitor.tsdb.store import SampleStore

T0 = 1_700_000_000_000


def labels(i: int) -> Labels:
    return Labels.of(__name__=f"probe_m{i % 5}", probe=f"api-{i}", target=f"http://127.0.0.1:9/{i}", kind="api")


def close(store: SampleStore) -> bool:
    return 0.85 <= store.estimated_memory_bytes / store.memory_bytes() <= 1.15


def test_estimate_follows_appends_retention_and_clear():
    store = SampleStore(retention_seconds=600)
    assert store.estimated_memory_bytes == 0
    series = [labels(i) for i in range(500)]
    for k in range(80):  # 20 min at 15 s
        store.append_batch([(s, T0 + k * 15_000, float(k)) for s in series])
    assert close(store)
    before = store.estimated_memory_bytes
    store.gc(T0 + 80 * 15_000)  # keeps the last 10 min: arrays compacted
    assert store.estimated_memory_bytes < before and close(store)
    for s in series[:100]:  # a vanished series: its samples expire and it goes
        store.mark_stale(s, T0 + 80 * 15_000)
    for k in range(80, 130):
        store.append_batch([(s, T0 + k * 15_000, float(k)) for s in series[100:]])
    store.gc(T0 + 130 * 15_000)
    assert store.series_count == 400 and close(store)
    store.gc(T0 + 10**9)
    assert store.series_count == 0 and store.estimated_memory_bytes == 0
    store.append(labels(1), T0, 1.0)
    store.clear()
    assert store.estimated_memory_bytes == 0
