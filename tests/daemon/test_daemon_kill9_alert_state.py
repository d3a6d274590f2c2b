"""Issue 16 A with the real daemon: ``kill -9`` and an immediate restart while the sample backend
keeps failing must not restart the ``for`` timer of the shipped HighErrorRate alert (in-memory
sample store: the restarted process starts with no samples; ``rate(...[5m])`` needs two scrapes).
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import yaml

from examples.sample_backend import serve as serve_backend
from tests.daemon.test_daemon_cli import start_run, stop_process
from tests.support.daemon_helpers import eventually

ROOT = Path(__file__).resolve().parents[2]


def _rules(dest: Path) -> None:
    """The shipped HighErrorRate (rate of 5xx, or failing api probes while the metric is absent),
    with a ``for`` long enough to stay pending through the test."""
    doc = yaml.safe_load((ROOT / "rules" / "api.yaml").read_text())
    [rule] = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "HighErrorRate"]
    rule["for"] = "1h"
    dest.write_text(yaml.safe_dump({"groups": [{"name": "codebook-api", "interval": "1s", "rules": [rule]}]},
                                   sort_keys=False))


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_kill_9_restart_keeps_the_pending_alert_and_its_active_at(tmp_path):
    backend = await serve_backend("127.0.0.1", 0, seed=11, traffic_rps=20)
    _rules(tmp_path / "api.yaml")
    config = f"""\
server: {{host: 127.0.0.1, port: {{port}}}}
state: {{backend: sqlite, path: state.db}}
scrape:
  - {{name: codebook-backend, url: "{backend.url}/metrics", interval: 1s, timeout: 1s}}
probes:
  - name: backend-api
    kind: api
    url: {backend.url}
    interval: 1s
    timeout: 1s
    requests: [{{name: list, method: GET, path: /api/v1/codebooks, expected_status: 200}}]
rules:
  files: [api.yaml]
  evaluation_interval: 1s
"""
    proc = None
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.post(backend.url + "/faults", json={"error_rate": 1})
            assert r.status_code == 200, r.text
            proc, port = await start_run(tmp_path, config)
            base = f"http://127.0.0.1:{port}"

            async def mine() -> list[dict]:
                alerts = (await c.get(base + "/api/v1/alerts")).json()["data"]["alerts"]
                return [a for a in alerts if a["labels"]["alertname"] == "HighErrorRate"]

            [first] = await eventually(mine, timeout=90, what="HighErrorRate pending")
            active_at = _ts(first["activeAt"])

            async def persisted_and_old() -> bool:
                # pending for a while and its row written since (rows are refreshed every 5 s)
                return time.time() - active_at > 20 and (tmp_path / "state.db").exists()

            await eventually(persisted_and_old, timeout=90, what="the alert pending for 20 s")
            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            proc, port = await start_run(tmp_path, config)
            base = f"http://127.0.0.1:{port}"
            up_at = time.time()

            seen: list[tuple[str, float]] = []

            async def scraped_a_while() -> bool:
                got = await mine()
                assert got, f"HighErrorRate dropped after the restart; seen before: {seen}"
                seen.append((got[0]["state"], _ts(got[0]["activeAt"])))
                r = await c.get(base + "/api/v1/query",
                                params={"query": "count_over_time(http_requests_total[5m])"})
                counts = [float(s["value"][1]) for s in r.json()["data"]["result"]]
                return counts and min(counts) >= 5  # five scrapes since the restart

            await eventually(scraped_a_while, timeout=90, interval=0.1, what="five scrapes after the restart")
            assert {s for s, _ in seen} == {"pending"}
            # activeAt moved forward by the downtime only (last saved evaluation -> restart, at most
            # the 5 s refresh plus the restart), never to a time after the restart.
            for _, t in seen:
                assert active_at <= t <= active_at + (up_at - killed_at) + 6, (active_at, killed_at, up_at, seen)
    finally:
        if proc is not None:
            await stop_process(proc)
        await backend.stop()
