"""Kill -9 safety of the remote-write queue: a real process appends rounds and is killed at
random moments, several times over one directory. After each kill the queue must open (a torn
tail cut off), hold every round the victim acknowledged after the last one it "sent", whole and
in order, and never hand back a batch whose acknowledgement (``sent``) was written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitor.remote.queue import RemoteQueue
from tests.remote import queue_writer as w

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5


class Victim:
    def __init__(self, path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.remote.queue_writer", str(path)], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.sent: int | None = None
        self.ready: int | None = None
        self.acked = -1
        self._seen = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            word, _, num = line.partition(" ")
            if word == "sent":
                self.sent = int(num)
            elif word == "ready":
                self.ready = int(num)
            elif word == "acked":
                self.acked = int(num)
                self._seen.set()

    def kill_after(self, seconds: float) -> None:
        assert self._seen.wait(60), "victim never acknowledged a round"
        time.sleep(seconds)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)


def _check(path: Path, acked: int, sent_seq: int | None) -> list[int]:
    q = RemoteQueue(path, batch_samples=w.PER_ROUND)
    q.open()
    try:
        batches = q.peek(1 << 62)
        if sent_seq is not None:
            assert all(b.seq > sent_seq for b in batches), "an acknowledged batch came back"
        rounds = []
        for b in batches:
            series = b.series()
            assert len(series) == w.PER_ROUND and all(list(ts) == [ts[0]] for _, ts, _ in series), "torn batch"
            assert all(list(vs) == [float(ts[0])] for _, ts, vs in series)
            rounds.append(int(series[0][1][0]))
        assert rounds == list(range(rounds[0], rounds[0] + len(rounds))) if rounds else True, "gap or disorder"
        assert rounds and rounds[-1] >= acked, f"acknowledged round {acked} lost"
        return rounds
    finally:
        q.close()


def test_kill_9_loses_no_acknowledged_append_and_resends_no_sent_batch(tmp_path: Path) -> None:
    rng = random.Random()
    path = tmp_path / "queue"
    expect = 0
    for k in range(KILLS):
        victim = Victim(path)
        victim.kill_after(rng.uniform(0.05, 1.0))
        assert victim.ready == expect, f"kill {k}: resumed at {victim.ready}, not {expect}"
        rounds = _check(path, victim.acked, victim.sent)
        expect = rounds[-1] + 1
    assert expect > 100
