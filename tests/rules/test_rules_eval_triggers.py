"""When the rule manager evaluates a group: on its slots, at ``for`` deadlines, and after new data —
coalesced, so the number of evaluations follows the intervals, not the number of probes.

Real SampleStore, Engine and RuleManager; probes are simulated by appending the samples the
daemon's ProbeRunner writes (``probe_success`` with ``probe``/``target``/``kind`` labels), each
probe once per interval at its own offset. Counts are compared with the bound the manager
promises; no test asserts a duration, only which trigger ran and that none ran too often.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from model.labels import Labels
from monitor.promql.engine import Engine
from monitor.rules.manager import MIN_DATA_WINDOW, RuleManager
from monitor.tsdb.store import SampleStore

RULES = """
groups:
  - name: probes
    interval: {interval}
    rules:
      - alert: ProbeFailing
        expr: probe_success == 0
        for: 1m
        labels: {{severity: critical}}
        annotations: {{summary: "{{{{ $labels.probe }}}} fails"}}
"""


def success_labels(i: int) -> Labels:
    return Labels.of(__name__="probe_success", probe=f"api-{i:03d}", target=f"http://127.0.0.1:9/{i}", kind="api")


class StaggeredProbes:
    """``n`` probes each writing ``probe_success`` once per ``interval`` seconds at offset ``i/n``."""

    def __init__(self, store: SampleStore, n: int, interval: float) -> None:
        self.store, self.n, self.interval = store, n, interval
        self.failing: set[int] = set()
        self.written = 0

    async def run(self) -> None:
        start, step = time.monotonic(), self.interval / self.n
        k = 0
        while True:
            await asyncio.sleep(max(0.0, start + k * step - time.monotonic()))
            i = k % self.n
            self.store.append(success_labels(i), int(time.time() * 1000), 0.0 if i in self.failing else 1.0)
            self.written += 1
            k += 1


async def start(tmp_path: Path, interval: str, probes: int, probe_interval: float):
    store = SampleStore()
    path = tmp_path / "probes.yaml"
    path.write_text(RULES.format(interval=interval))
    mgr = RuleManager(store, Engine(store))
    assert mgr.load([str(path)]) == []
    feeder = StaggeredProbes(store, probes, probe_interval)
    tasks = [asyncio.create_task(feeder.run()), asyncio.create_task(mgr.run())]
    return store, mgr, feeder, tasks


async def stop(tasks) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def bound(seconds: float, group_interval: float, window: float) -> int:
    """Slots (one per group interval, plus a partial one) + data windows (likewise)."""
    return int(seconds // group_interval) + 1 + int(seconds // window) + 1


async def test_evaluations_follow_the_intervals_not_the_number_of_probes(tmp_path):
    # 200 probes every second: a sample every 5 ms. Before coalescing, every sample woke the
    # group (50 ms debounce): about 20 evaluations a second.
    store, mgr, feeder, tasks = await start(tmp_path, "2s", probes=200, probe_interval=1.0)
    try:
        await asyncio.sleep(1.3)  # every probe has written twice: the input interval (1 s) is known
        (g,) = mgr.groups()
        assert mgr.data_window(g) == 1.0  # min(group interval 2 s, probe interval 1 s)
        n0, by0, w0, t0 = g.evaluations_total, dict(g.evaluations_by_trigger), feeder.written, time.monotonic()
        await asyncio.sleep(3.0)
        n, elapsed = g.evaluations_total - n0, time.monotonic() - t0
        assert feeder.written - w0 >= 300  # the probes kept writing all along
        assert 1 <= n <= bound(elapsed, 2.0, 1.0), (n, elapsed, g.evaluations_by_trigger)
        assert g.evaluations_by_trigger.get("data", 0) > by0.get("data", 0)  # new data was evaluated
        # nothing changed value (every probe kept reporting 1): no prompt "change" evaluation
        assert g.evaluations_by_trigger.get("change", 0) == by0.get("change", 0)

        # A mass outage: every probe flips to failing within one probe interval. Each flip is a
        # change, yet changes are evaluated at most once per MIN_DATA_WINDOW.
        n0, t0 = g.evaluations_total, time.monotonic()
        feeder.failing.update(range(200))
        await asyncio.sleep(1.5)
        n, elapsed = g.evaluations_total - n0, time.monotonic() - t0
        assert n <= bound(elapsed, 2.0, MIN_DATA_WINDOW), (n, elapsed, g.evaluations_by_trigger)
        await asyncio.sleep(0.5)
        assert len(mgr.alerts()) >= 150  # and the failures were seen
    finally:
        await stop(tasks)


async def test_a_changed_value_is_evaluated_at_once_not_at_the_end_of_the_window(tmp_path):
    store = SampleStore()
    now = time.time()
    for i in range(100):  # history: every probe reported 30 s ago and just now -> 30 s input interval
        store.append(success_labels(i), int((now - 30) * 1000), 1.0)
        store.append(success_labels(i), int(now * 1000), 1.0)
    path = tmp_path / "probes.yaml"
    path.write_text(RULES.format(interval="1h"))
    mgr = RuleManager(store, Engine(store))
    assert mgr.load([str(path)]) == []
    task = asyncio.create_task(mgr.run())
    try:
        (g,) = mgr.groups()
        while g.evaluations_total < 1:
            await asyncio.sleep(0.005)
        assert mgr.data_window(g) == 30.0
        # healthy repeats open a 30 s data window: one prompt evaluation, then nothing new
        store.append(success_labels(1), int(time.time() * 1000), 1.0)
        while g.evaluations_by_trigger.get("data", 0) < 1:
            await asyncio.sleep(0.005)
        store.append(success_labels(2), int(time.time() * 1000), 1.0)  # waits for the window's end
        await asyncio.sleep(MIN_DATA_WINDOW + 0.2)
        assert g.evaluations_by_trigger.get("data", 0) == 1
        assert mgr.alerts() == []
        # a probe starts failing inside the window: evaluated at once, as a change
        store.append(success_labels(7), int(time.time() * 1000), 0.0)
        for _ in range(1000):
            if mgr.alerts():
                break
            await asyncio.sleep(0.01)
        (alert,) = mgr.alerts()
        assert (alert.state, alert.labels.get("probe")) == ("pending", "api-007")
        assert g.evaluations_by_trigger == {"slot": 1, "data": 1, "change": 1}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_sample_interval_is_the_shortest_spacing_of_the_last_two_samples():
    store = SampleStore()
    fast, slow, stale = (Labels.of(__name__="m", i=str(i)) for i in range(3))
    for t in (0, 15_000, 30_000):
        store.append(slow, t, 1.0)
    store.append(fast, 20_000, 1.0)
    store.append(fast, 25_000, 1.0)
    store.append(stale, 0, 1.0)
    store.append(stale, 1_000, 1.0)
    assert store.sample_interval(["m"]) == 1.0
    store.mark_stale(stale, 1_500)  # a vanished series does not count
    assert store.sample_interval(["m"]) == 5.0
    assert store.sample_interval(["other"]) is None
    assert store.sample_interval(["m"], max_series=0) is None


def test_change_listeners_hear_only_changed_values():
    store = SampleStore()
    heard: list[set[str]] = []
    changed: list[set[str]] = []
    store.add_listener(heard.append)
    store.add_listener(changed.append, changed_only=True)
    up, x = Labels.of(__name__="up", job="a"), Labels.of(__name__="x")
    store.append(up, 1_000, 1.0)                                  # a new series: a change
    store.append_batch([(up, 2_000, 1.0), (x, 2_000, 5.0)])       # up repeats; x is new
    store.append_batch([(up, 3_000, 1.0), (x, 3_000, 5.0)])       # repeats only
    store.append_batch([(up, 4_000, 0.0), (x, 4_000, 5.0)])       # up changed
    store.mark_stale(x, 5_000)                                    # a staleness marker changes x
    assert store.mark_stale(x, 6_000)                             # already stale: no new sample
    store.append(x, 7_000, 5.0)                                   # back after a marker: a change
    assert heard == [{"up"}, {"up", "x"}, {"up", "x"}, {"up", "x"}, {"x"}, {"x"}]
    assert changed == [{"up"}, {"x"}, {"up"}, {"x"}, {"x"}]
    store.remove_listener(changed.append)
    store.append(up, 8_000, 1.0)
    assert changed == [{"up"}, {"x"}, {"up"}, {"x"}, {"x"}]
