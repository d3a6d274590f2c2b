"""Intake vs acknowledgement: POST a big batch of alerts to a running daemon through the real HTTP
API (intake token) and, meanwhile, acknowledge an alert; print the intake's seconds and the ack's
latency.

    .venv/bin/python benchmarks/intake_ack.py [--alerts 5000]

The daemon is the real one (``Lifecycle.serve()`` in this process, SQLite state in a temp folder),
with a Slack receiver pointed at a local sink so groups flush and rows are written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.daemon_helpers import ADMIN_TOKEN, run_daemon, write_config  # noqa: E402
from tests.support.notify_servers import FakeHTTP, slack_api  # noqa: E402

INTAKE_TOKEN = "ck_bench_intake_token_0123456789"
SLACK_TOKEN = "xoxb-bench-slack-token-0000"


def _alert(name: str, i: int) -> dict:
    return {"labels": {"alertname": name, "severity": "warning", "instance": f"host-{i}"},
            "annotations": {"summary": f"{name} {i}"}}


async def main(n: int) -> None:
    """Run the daemon, post ``n`` alerts and acknowledge meanwhile; print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeHTTP(slack_api(SLACK_TOKEN)) as slack:
            cfg = write_config(Path(tmp), f"""
                api:
                  tokens:
                    - {{name: admin, token: {ADMIN_TOKEN}, scopes: [read, ack, admin]}}
                    - {{name: prometheus, token: {INTAKE_TOKEN}, scopes: [intake]}}
                receivers:
                  - name: slack
                    slack_configs: [{{channel: "#alerts", token: {SLACK_TOKEN}, api_url: "{slack.url}/api/"}}]
                alerting:
                  route: {{receiver: slack, group_wait: 0s, group_by: [alertname, instance]}}
                """)
            async with run_daemon(cfg) as d:
                intake = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
                async with httpx.AsyncClient(base_url=d.url, timeout=600, headers=intake) as c:
                    r = await c.post("/api/v2/alerts", json=[_alert("AckMe", 0)])
                    assert r.status_code == 200, r.text
                    [shown] = (await d.get("/api/v2/alerts")).json()
                    fp = shown["fingerprint"]
                    batch = [_alert("Storm", i) for i in range(n)]

                    async def post() -> float:
                        t = time.perf_counter()
                        r = await c.post("/api/v2/alerts", json=batch)
                        assert r.status_code == 200, r.text
                        return time.perf_counter() - t

                    async def ack() -> tuple[float, float]:
                        await asyncio.sleep(0.5)  # the intake is under way
                        t = time.perf_counter()
                        r = await d.post(f"/api/v1/alerts/{fp}/ack", json={"comment": "bench"}, timeout=600)
                        assert r.status_code == 200, r.text
                        return t, time.perf_counter() - t

                    t0 = time.perf_counter()
                    intake_s, (ack_start, ack_s) = await asyncio.gather(post(), ack())
                    before = ack_start - t0 + ack_s < intake_s
                    print(f"alerts={n} intake_s={intake_s:.2f} ack_latency_s={ack_s:.3f} "
                          f"ack_sent_at_s={ack_start - t0:.2f} ack_done_before_intake={before}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=5000)
    asyncio.run(main(p.parse_args().alerts))
