"""Self-monitoring inside the real daemon: ``/health`` names undeliverable notifications
(retries climbing against a webhook answering 429) and the heartbeat, sent to a real local
server, stops meanwhile and resumes once the notification is delivered; a reload starts and
stops the heartbeat."""

from __future__ import annotations

import asyncio
import textwrap

from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config
from tests.support.notify_servers import FakeHTTP, Recorded, Reply

SECRET = "5f2b9c1e-7d4a-4c1b-9e8f-0a1b2c3d4e5f"
PING = f"/ping/{SECRET}"

RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: warning}
        annotations: {summary: always firing}
"""


def config(tmp_path, url: str) -> object:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    return write_config(tmp_path, textwrap.dedent(f"""
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        receivers:
          - name: hook
            webhook_configs:
              - url: {url}/hook
                timeout: 2
        alerting:
          route: {{receiver: hook, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
        health:
          outbox_max_age: 1h
          outbox_max_attempts: 3
        heartbeat:
          url: {url}{PING}
          interval: 1s
          timeout: 500ms
        """))


async def test_health_names_stuck_notifications_and_the_heartbeat_pauses_until_delivery(tmp_path):
    webhook_up = False

    def answer(req: Recorded) -> Reply:
        if req.path == "/hook" and not webhook_up:
            return Reply(429, {"error": "slow down"}, headers={"Retry-After": "1"})
        return Reply(200, {})

    async with FakeHTTP(answer) as srv, run_daemon(config(tmp_path, srv.url)) as d:
        # Retries climb: after 3 failed attempts the outbox check is degraded and names the cause.
        async def degraded():
            r = await d.get("/health")
            return r.status_code == 503 and r.json()["checks"]["outbox"].startswith("degraded: ") and r.json()
        doc = await eventually(degraded, timeout=30, what="/health degraded by the outbox")
        assert doc["status"] == "degraded"
        assert doc["checks"]["outbox"].startswith("degraded: 1 notification pending, one failed ")
        assert doc["checks"]["rule_evaluation"] == "healthy"
        assert (await d.get("/-/healthy")).status_code == 200  # liveness is not readiness
        assert len(srv.on(PING)) >= 1  # it was beating before

        # Meanwhile no heartbeat goes out.
        await eventually(lambda: _paused(d), timeout=10, what="heartbeat paused")
        sent = len(srv.on(PING))
        await asyncio.sleep(2.5)
        assert len(srv.on(PING)) == sent
        text = await d.metrics()
        assert metric_values(text, "monitor_heartbeats_total", outcome="skipped")[0] >= 1

        # The webhook recovers: the notification goes out, health and heartbeat come back.
        webhook_up = True
        await eventually(lambda: _healthy(d), timeout=30, what="/health healthy again")
        assert len(srv.on("/hook")) >= 4  # three refusals, then the delivery
        await eventually(lambda: _count(srv, PING, sent + 2), timeout=15, what="heartbeat resumed")
        text = await d.metrics()
        assert metric_values(text, "monitor_heartbeats_total", outcome="success")[0] >= 3
        assert metric_values(text, "monitor_heartbeat_last_success_timestamp_seconds")[0] > 0
        assert {r.method for r in srv.on(PING)} == {"GET"}


async def _paused(d) -> bool:
    return d.daemon.heartbeat.state == "paused"


async def _healthy(d) -> bool:
    r = await d.get("/health")
    return r.status_code == 200 and r.json()["checks"]["outbox"] == "healthy"


async def _count(srv: FakeHTTP, path: str, n: int) -> bool:
    return len(srv.on(path)) >= n


async def test_a_reload_starts_and_stops_the_heartbeat(tmp_path):
    async with FakeHTTP() as srv:
        path = write_config(tmp_path, "rules: {evaluation_interval: 1s}\n")
        async with run_daemon(path) as d:
            assert "heartbeat" not in d.daemon.scheduler.job_ids()
            doc = (await d.get("/health")).json()
            assert doc["checks"]["outbox"] == "healthy" and doc["checks"]["rule_evaluation"] == "healthy"

            beat = f"heartbeat: {{url: '{srv.url}{PING}', method: POST, interval: 1s, timeout: 1s}}\n"
            text = path.read_text() + beat
            path.write_text(text)
            assert (await d.post("/-/reload")).status_code == 200
            await eventually(lambda: _count(srv, PING, 2), timeout=15, what="beats after the reload")
            assert {r.method for r in srv.on(PING)} == {"POST"}

            path.write_text(text.split("heartbeat:")[0])
            assert (await d.post("/-/reload")).status_code == 200
            assert "heartbeat" not in d.daemon.scheduler.job_ids()
            await asyncio.sleep(0.3)  # a beat already in flight may still land
            sent = len(srv.on(PING))
            await asyncio.sleep(1.5)
            assert len(srv.on(PING)) == sent
