"""Kill -9 safety of the durable sample store (issue 11, item 4).

A real process (:mod:`tests.tsdb.wal_writer`) writes through the store and is killed with SIGKILL
at random moments — mid-append, mid-flush, mid-checkpoint — several times over the same
directory. After each kill the store must open (torn tails cut off, no error), hold every round
the victim acknowledged (printed ``acked r`` after its flush), hold nothing but whole, correct
rounds in order, and the next victim resumes where the store ends. The victim closes chunks and
checkpoints write them to block files, so kills also land between a block and its checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.tsdb import wal_writer as w

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6


class Victim:
    """One writer process; a thread reads its stdout so the pipe never fills."""

    def __init__(self, path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.tsdb.wal_writer", str(path)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ready: int | None = None
        self.acked = -1
        self._seen = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            word, _, num = line.partition(" ")
            if word == "ready":
                self.ready = int(num)
            elif word == "acked":
                self.acked = int(num)
                self._seen.set()

    def kill_after(self, seconds: float) -> int:
        """Wait until the victim has acknowledged a round, then ``seconds`` more; kill -9; return
        the last round it acknowledged."""
        assert self._seen.wait(60), f"victim never acknowledged a round: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"  # noqa: E501
        time.sleep(seconds)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)  # every line it printed before dying has been read
        return self.acked


def check(path: Path, acked: int) -> int:
    """Open the store as the next process would; assert what it holds; return its last round."""
    store = w.make_store()
    store.open(path, now_ms=w.T0)
    try:
        last = None
        for i in range(w.SERIES):
            [sl] = store.select_series([w.labels(i)], 0, 2**62) or [None]
            assert sl is not None, f"series {i} lost"
            rounds = [(t - w.T0) // 1000 for t in sl.timestamps]
            n = len(rounds)
            assert rounds == list(range(n)), f"series {i}: rounds not contiguous from 0: {rounds[-5:]}"
            assert list(sl.values) == [w.value(i, r) for r in rounds], f"series {i}: wrong values"
            assert n - 1 >= acked, f"series {i}: acknowledged round {acked} lost (store ends at {n - 1})"
            # Rounds are flushed whole: every series ends at the same round.
            last = n - 1 if last is None else last
            assert n - 1 == last, f"series {i} ends at round {n - 1}, series 0 at {last}"
        [slo] = store.select_series([w.SLO], 0, 2**62)
        ts = list(slo.timestamps)
        assert ts == sorted(set(ts))
        steps = [t // 60_000 for t in ts]
        assert steps == sorted(set(steps)), "more than one sample in a 1m step of the downsampled series"
        assert all(v == (t - w.T0) // 15_000 for t, v in zip(ts, slo.values))  # round r at T0 + 15 s * r
        assert slo.values[-1] == last, "the downsampled series' latest sample is the latest round"
        return last
    finally:
        store.close()


def test_kill_9_at_random_moments_loses_no_acknowledged_sample(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    path = tmp_path / "tsdb"
    expect_start = 0
    for k in range(KILLS):
        victim = Victim(path)
        acked = victim.kill_after(rng.uniform(0.05, 1.5))
        assert victim.ready == expect_start, f"seed {seed}, kill {k}: resumed at {victim.ready}, not {expect_start}"
        last = check(path, acked)
        assert last >= acked, f"seed {seed}, kill {k}"
        expect_start = last + 1
    print(f"seed {seed}: {expect_start} rounds over {KILLS} kills")
    assert expect_start > w.CHECKPOINT_EVERY, "the runs were too short to reach a checkpoint"
    assert any(p.name.startswith("checkpoint.") for p in path.iterdir())
    assert any(p.name.startswith("block.") for p in path.iterdir()), "no closed chunk reached a block file"
