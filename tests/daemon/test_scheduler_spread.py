"""Jobs of one interval are spread over the whole of it by a stable per-job phase (Prometheus's
scrape offsets), and a job's runs are exactly one interval apart in scheduled time.

Behaviour, not timing: the assertions are about phases and scheduled times, never about how
late a run was.
"""

from __future__ import annotations

import asyncio
import collections
import math
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from monitor.daemon.scheduler import Scheduler, next_run_at, spread
from monitor.metrics import Metrics


def _buckets(ids: list[str], interval: float, buckets: int) -> collections.Counter[int]:
    return collections.Counter(int(spread(i, interval) / interval * buckets) for i in ids)


@pytest.mark.parametrize(("n", "interval", "ratio"), [(1000, 15.0, 1.5), (5000, 15.0, 1.25), (1000, 60.0, 1.5)])
@pytest.mark.parametrize("pattern", ["probe:t{}", "probe:backend-{}-api", "scrape:job{}"])
def test_phases_cover_the_whole_interval_evenly(n, interval, ratio, pattern):
    ids = [pattern.format(i) for i in range(n)]
    phases = [spread(i, interval) for i in ids]
    assert all(0 <= p < interval for p in phases)
    # the whole interval is used, not its first seconds
    assert min(phases) < interval * 0.02 and max(phases) > interval * 0.98
    # one-second buckets (for 15 s): the busiest holds at most `ratio` times the mean
    per_bucket = _buckets(ids, interval, 15)
    assert len(per_bucket) == 15
    assert max(per_bucket.values()) <= ratio * n / 15, per_bucket


def test_phases_are_stable_across_processes():
    ids = [f"probe:t{i}" for i in range(50)]
    here = [spread(i, 15.0) for i in ids]
    code = ("import json; from monitor.daemon.scheduler import spread; "
            f"print(json.dumps([spread(i, 15.0) for i in {ids!r}]))")
    for seed in ("1", "2"):  # Python's own hash() would differ between these two
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""})
        assert [float(x) for x in out.stdout.strip("[]\n").split(",")] == here


def test_phase_depends_on_the_job_and_its_interval():
    assert spread("probe:a", 15.0) != spread("probe:b", 15.0)
    assert spread("probe:a", 15.0) != spread("scrape:a", 15.0)
    assert spread("probe:a", 30.0) == pytest.approx(2 * spread("probe:a", 15.0))


@pytest.mark.parametrize("now", [0.0, 1_700_000_000.0, 1_700_000_007.25, 1_700_000_014.999])
def test_next_run_is_the_next_instant_at_the_phase(now):
    interval, phase = 15.0, 7.25
    t = next_run_at(now, interval, phase)
    assert now < t <= now + interval
    assert math.isclose(t % interval, phase, abs_tol=1e-6)


async def test_runs_are_one_interval_apart_at_the_same_phase_after_a_restart():
    interval = 0.25
    runs: dict[str, list[float]] = collections.defaultdict(list)

    async def nothing() -> None:
        return None

    def on_run(job_id: str, scheduled: float, lag: float) -> None:
        runs[job_id].append(scheduled)

    ids = [f"probe:t{i}" for i in range(20)]
    for _restart in range(2):
        sched = Scheduler(Metrics(CollectorRegistry()), on_run=on_run)
        for job_id in ids:
            sched.add_interval_job(job_id, nothing, interval, phase=spread(job_id, interval))
        sched.start()
        await asyncio.sleep(interval * 6)
        sched.shutdown()
        await asyncio.sleep(0.05)
    for job_id in ids:
        times = runs[job_id]
        assert len(times) >= 6, (job_id, times)
        phase = spread(job_id, interval)
        for t in times:  # every run, before and after the restart, at the job's phase
            assert math.isclose((t - phase) % interval, 0, abs_tol=1e-5) or math.isclose(
                (t - phase) % interval, interval, abs_tol=1e-5), (job_id, t, phase)
        steps = [round((b - a) / interval, 6) for a, b in zip(times, times[1:])]
        # consecutive runs of one process are exactly one interval apart (a coalesced run under
        # load would show as a whole multiple, never as a fraction)
        assert all(s == int(s) and s >= 1 for s in steps), steps
        assert steps.count(1.0) >= len(steps) // 2, steps
