"""The real daemon with ``tsdb.path``: recorded samples outlive a restart, ``slo:*`` series are kept at
one sample a minute, and the directory is relative to the config file."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config

RULES = """\
groups:
  - name: slo
    interval: 1s
    rules:
      - record: slo:sli_error:ratio_rate5m
        expr: vector(0.25)
      - record: job:up:sum
        expr: vector(1)
"""


async def _has_sample(running, expr: str) -> None:
    async def got() -> bool:
        r = await running.query(expr)
        return bool(r.json()["data"]["result"])
    await eventually(got, what=f"a sample of {expr}")


async def test_samples_survive_a_restart_of_the_daemon(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = write_config(tmp_path, """\
        tsdb:
          path: data/tsdb
          sync_interval: 100ms
        rules:
          files: [rules.yaml]
        """)
    async with run_daemon(config) as d1:
        await _has_sample(d1, "slo:sli_error:ratio_rate5m")
        await _has_sample(d1, "job:up:sum")
        text = await d1.metrics()
        assert metric_values(text, "monitor_tsdb_memory_bytes")[0] > 0
    t_stop = round(time.time(), 3)
    assert (tmp_path / "data" / "tsdb" / "wal").is_dir()

    async with run_daemon(config) as d2:
        # An instant query at the time the first run had stopped: only replayed samples answer it.
        # (Not of the slo:* series: the second run's first sample replaces the first run's last
        # one when both fall in the same minute step, as downsampling means.)
        r = await d2.query("job:up:sum", time=t_stop)
        assert [s["value"] for s in r.json()["data"]["result"]] == [[t_stop, "1"]]
        # The slo:* series keeps one sample per minute (the default retention rule): evaluated
        # every second, it still holds at most one sample per minute step.
        r = await d2.query("count_over_time(slo:sli_error:ratio_rate5m[1h])")
        [res] = r.json()["data"]["result"]
        assert 1 <= float(res["value"][1]) <= 3
        r = await d2.query("count_over_time(job:up:sum[1h])")
        assert float(r.json()["data"]["result"][0]["value"][1]) >= 1
