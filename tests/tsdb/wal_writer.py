"""A process that writes through a durable sample store until it is killed (the kill -9 test's victim).

Run as ``python -m tests.tsdb.wal_writer PATH``: opens the store at ``PATH`` (replaying what an
earlier victim left), then appends rounds of samples forever, resuming after the last round the
store holds. Round ``r`` goes to :data:`SERIES` full-resolution series at ``T0 + r * 1000`` ms
(value :func:`value`) and to one downsampled ``slo:`` series at ``T0 + r * 15000`` ms (value
``r``). After each round's flush it prints ``acked <r>``: from then on a kill -9 must not lose
round ``r``. Every :data:`CHECKPOINT_EVERY` rounds it writes a checkpoint, so kills also land
inside checkpoints; every :data:`SWEEP_EVERY` rounds it runs the retention sweep, which closes
chunks of :data:`CHUNK_SAMPLES` samples older than :data:`HEAD_MS`, so checkpoints write block files
and kills land between a block and the checkpoint naming it.
"""

from __future__ import annotations

import asyncio
import sys

from model.labels import Labels
from monitor.tsdb.retention import RetentionRule
from monitor.tsdb.store import SampleStore

T0 = 1_700_000_000_000
SERIES = 20
CHECKPOINT_EVERY = 150
SWEEP_EVERY = 7
CHUNK_SAMPLES = 25
HEAD_MS = 20_000
SLO_RULE = RetentionRule.parse('{__name__=~"slo:.*"}', retention=35 * 86400, resolution=60)


def labels(i: int) -> Labels:
    """The ``i``-th full-resolution series."""
    return Labels.of(__name__="w_samples", i=str(i))


SLO = Labels.of(__name__="slo:sli_error:ratio_rate5m", sloth_slo="w")


def value(i: int, r: int) -> float:
    """The value series ``i`` gets in round ``r``."""
    return r * 100.0 + i


def make_store() -> SampleStore:
    """The store as the victim and the checker open it."""
    return SampleStore(retention_seconds=None, retention_rules=[SLO_RULE], chunk_samples=CHUNK_SAMPLES,
                       head_ms=HEAD_MS)


def main(path: str) -> None:
    store = make_store()
    store.open(path, now_ms=T0, segment_bytes=64 << 10)
    last = store.last_timestamp(labels(0))
    r = 0 if last is None else (last - T0) // 1000 + 1
    print(f"ready {r}", flush=True)
    series = [labels(i) for i in range(SERIES)]
    while True:
        t = T0 + r * 1000
        store.append_batch([(lb, t, value(i, r)) for i, lb in enumerate(series)] + [(SLO, T0 + r * 15_000, float(r))])
        fsync = store.flush()
        print(f"acked {r}", flush=True)
        if r % 10 == 0:
            fsync()
        if r % SWEEP_EVERY == 0:
            store.gc(t)
        if r % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
            asyncio.run(store.checkpoint(now_ms=t))
        r += 1


if __name__ == "__main__":
    main(sys.argv[1])
