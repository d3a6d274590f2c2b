"""The victim of ``test_queue_kill9``: appends numbered batches to a remote-write queue forever.

Usage: ``python -m tests.remote.queue_writer <dir>``. At start it opens the queue and
"sends" (acknowledges) the first half of what it recovered, printing ``sent <seq>``, then
``ready <k>`` (the next round). Round ``k`` is one append of :data:`PER_ROUND` samples with value
``k`` at timestamp ``k`` ms; ``acked k`` is printed after the append returned (the record is in the
operating system's page cache: a kill -9 cannot lose it) and, every few rounds, an fsync.
"""

from __future__ import annotations

import sys
from array import array
from pathlib import Path

from model.labels import Labels
from monitor.remote.queue import RemoteQueue

PER_ROUND = 50
LABELS = {i: Labels.of({"__name__": "victim", "i": str(i)}) for i in range(PER_ROUND)}


def rounds_of(q: RemoteQueue) -> list[int]:
    """Return the rounds the queue holds, in queue order (each batch is one round)."""
    out = []
    for b in q.peek(1 << 62):
        [(labels, ts, vs)] = b.series()[:1]
        out.append(int(ts[0]))
    return out


def main(path: str) -> None:
    q = RemoteQueue(Path(path), batch_samples=PER_ROUND, segment_bytes=64 << 10)
    q.open()
    held = q.peek(1 << 62)
    if held:
        done = held[len(held) // 2]
        q.ack(done.seq)
        print(f"sent {done.seq}", flush=True)
    rounds = rounds_of(q)
    k = rounds[-1] + 1 if rounds else 0
    print(f"ready {k}", flush=True)
    ids = array("q", range(PER_ROUND))
    while True:
        q.append(ids, array("q", [k] * PER_ROUND), array("d", [float(k)] * PER_ROUND), LABELS.get)
        print(f"acked {k}", flush=True)
        if k % 10 == 0:
            q.fsync_handle()()
        k += 1


if __name__ == "__main__":
    main(sys.argv[1])
