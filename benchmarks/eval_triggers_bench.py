"""Benchmark: how often the rule manager evaluates a one-rule group while N probes report.

N simulated probes write ``probe_success`` and ``probe_duration_seconds`` (the labels the
daemon's ``ProbeRunner`` gives them) into a real :class:`SampleStore`, each once per
``--probe-interval`` at its own offset (staggered evenly, as the scheduler spreads them). One
group with one alerting rule over ``probe_success`` (``--group-interval``) runs in a real
:class:`RuleManager` over the real :class:`Engine`. After a warm-up of one group interval the
script counts evaluations for ``--duration`` seconds and prints them per 15 s, with the bound
the manager promises: one per slot, one per pending ``for`` deadline, and at most one
data-triggered evaluation per ``min(group interval, shortest input interval)``.

Then it injects a fault (one probe starts failing) and prints how long after the failing sample
was written the alert turned pending (a ``for: 0s`` rule would fire at that evaluation); then a
mass outage (every probe fails on its next run) and the evaluations over one probe interval of
it, whose bound adds one evaluation per :data:`~monitor.rules.manager.MIN_DATA_WINDOW` (values
change all the time then).

    python benchmarks/eval_triggers_bench.py --probes 1000 --duration 45
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.labels import Labels  # noqa: E402
from monitor.promql.engine import Engine  # noqa: E402
from monitor.rules.manager import RuleManager  # noqa: E402
from monitor.tsdb.store import SampleStore  # noqa: E402

RULES = """
groups:
  - name: probes
    interval: {interval}s
    rules:
      - alert: ProbeFailing
        expr: probe_success == 0
        for: 1m
        labels: {{severity: critical}}
        annotations: {{summary: "{{{{ $labels.probe }}}} fails"}}
"""


class Probes:
    """N probes writing their samples on their own offsets within the interval."""

    def __init__(self, store: SampleStore, n: int, interval: float) -> None:
        self.store = store
        self.n = n
        self.interval = interval
        self.failing: dict[int, float] = {}  # probe index -> wall time its failing sample was written
        self.labels = []
        for i in range(n):
            base = {"probe": f"api-{i:05d}", "target": f"http://127.0.0.1:9/t/{i}/health", "kind": "api"}
            self.labels.append((Labels.of({**base, "__name__": "probe_success"}),
                                Labels.of({**base, "__name__": "probe_duration_seconds"})))
        self.fail_next: set[int] = set()

    async def run(self) -> None:
        """Write each probe's samples on its offset, forever (cancel to stop)."""
        start = time.time()
        slot = self.interval / self.n
        k = 0
        while True:
            i = k % self.n
            due = start + k * slot
            await asyncio.sleep(max(0.0, due - time.time()))
            now = time.time()
            ok = 0.0 if i in self.fail_next or i in self.failing else 1.0
            if ok == 0.0 and i not in self.failing:
                self.failing[i] = now
            t_ms = int(now * 1000)
            success, duration = self.labels[i]
            self.store.append_batch([(success, t_ms, ok), (duration, t_ms, 0.012)])
            k += 1


async def main(args: argparse.Namespace) -> None:
    """Run the probes and the manager; print the counts and the fault latencies."""
    store = SampleStore()
    engine = Engine(store)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probes.yaml")
        Path(path).write_text(RULES.format(interval=f"{args.group_interval:g}"))
        mgr = RuleManager(store, engine)
        errors = mgr.load([path])
        assert not errors, errors
        probes = Probes(store, args.probes, args.probe_interval)
        feeder = asyncio.create_task(probes.run())
        runner = asyncio.create_task(mgr.run())
        try:
            await asyncio.sleep(args.group_interval)  # warm-up: every probe has reported once
            (group,) = mgr.groups()
            n0, t0 = group.evaluations_total, time.monotonic()
            await asyncio.sleep(args.duration)
            n = group.evaluations_total - n0
            elapsed = time.monotonic() - t0
            window = min(args.group_interval, args.probe_interval)
            bound = (elapsed // args.group_interval + 1) + (elapsed // window + 1)
            print(f"probes: {args.probes} every {args.probe_interval:g} s (staggered); "
                  f"group interval {args.group_interval:g} s; {elapsed:.1f} s measured")
            print(f"evaluations: {n} = {n / elapsed * 15:.1f} per 15 s "
                  f"(bound: slots + data windows = {bound:.0f} = {bound / elapsed * 15:.1f} per 15 s)")
            # fault: the next run of one probe reports failure; time until the alert is pending
            victim = args.probes // 2
            probes.fail_next.add(victim)
            while victim not in probes.failing:
                await asyncio.sleep(0.001)
            written = probes.failing[victim]
            while not mgr.alerts():
                await asyncio.sleep(0.001)
            print(f"fault -> pending: {(time.time() - written) * 1000:.0f} ms after the failing sample")
            # mass outage: every probe fails from its next run on
            n0, t0 = group.evaluations_total, time.monotonic()
            probes.fail_next.update(range(args.probes))
            await asyncio.sleep(args.probe_interval)
            n = group.evaluations_total - n0
            elapsed = time.monotonic() - t0
            bound = (elapsed // args.group_interval + 1) + (elapsed // 1.0 + 1)
            print(f"mass outage: {n} evaluations in {elapsed:.1f} s while all {args.probes} probes turned failing "
                  f"(bound with one per second for changed values: {bound:.0f}); "
                  f"{len(mgr.alerts())} alerts pending")
            print(f"evaluations by trigger: {getattr(group, 'evaluations_by_trigger', 'n/a')}")
        finally:
            for t in (feeder, runner):
                t.cancel()
            await asyncio.gather(feeder, runner, return_exceptions=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--probe-interval", type=float, default=15.0)
    ap.add_argument("--group-interval", type=float, default=15.0)
    ap.add_argument("--duration", type=float, default=45.0)
    asyncio.run(main(ap.parse_args()))
