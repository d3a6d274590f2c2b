"""The on-call counters of a real daemon process: pages from the Alertmanager intake, an
acknowledgement over the API, a miss at the ack deadline; after ``kill -9`` and a restart
``/metrics`` shows every counter at the value it had, neither reset nor counted twice."""

from __future__ import annotations

import signal

import httpx

from model.labels import Labels
from tests.daemon.test_daemon_cli import start_run, stop_process
from tests.support.daemon_helpers import eventually

ADMIN = "ck_test_oncall_admin_token_0123456789"
INTAKE = "ck_test_oncall_intake_token_0123456789"

CONFIG = f"""\
server: {{host: 127.0.0.1, port: {{port}}}}
state: {{backend: sqlite, path: state.db}}
receivers:
  - name: hook
    webhook_configs: [{{url: 'http://127.0.0.1:9/hook'}}]
alerting:
  route: {{receiver: hook, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
  people:
    alice: {{name: Alice, email: alice@example.com}}
  escalation:
    priorities:
      P0: {{ack: 3s, resolve: 1h}}
      P1: {{ack: 1h, resolve: 24h}}
      P2: {{ack: 4h, resolve: 3d}}
    chain:
      - {{target: "person:alice", channels: [email]}}
api:
  tokens:
    - {{name: admin, token: {ADMIN}, scopes: [read, ack, admin]}}
    - {{name: intake, token: {INTAKE}, scopes: [intake]}}
"""


def oncall(text: str) -> dict[str, float]:
    """The ``monitor_oncall_*_total`` samples of a ``/metrics`` page with a value above 0."""
    out = {}
    for line in text.splitlines():
        if line.startswith("monitor_oncall_") and "_total" in line:
            name, value = line.rsplit(" ", 1)
            if float(value):
                out[name] = float(value)
    return out


async def test_counters_resume_exactly_after_kill_9(tmp_path):
    proc, port = await start_run(tmp_path, CONFIG)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            async def metrics() -> dict[str, float]:
                return oncall((await c.get(url + "/metrics")).text)

            # the acknowledged one is P1 (ack within 1 h: in time however loaded the machine), the other P0 (3 s)
            labels = [{"alertname": "ApiDown", "severity": "critical", "priority": "P1", "instance": "1"},
                      {"alertname": "ApiDown", "severity": "critical", "instance": "2"}]
            r = await c.post(url + "/api/v2/alerts", headers={"Authorization": f"Bearer {INTAKE}"},
                             json=[{"labels": lb, "annotations": {"summary": "down"}} for lb in labels])
            assert r.status_code == 200, r.text
            pages = 'monitor_oncall_pages_total{priority="P0"}'
            assert await eventually(lambda: _has(metrics, pages, 1.0), timeout=60)
            assert await eventually(lambda: _has(metrics, pages.replace("P0", "P1"), 1.0), timeout=60)
            fp = Labels.of(labels[0]).fingerprint()
            r = await c.post(f"{url}/api/v1/alerts/{fp}/ack", headers={"Authorization": f"Bearer {ADMIN}"}, json={})
            assert r.status_code == 200, r.text
            acked_now = 'monitor_oncall_acks_total{priority="P1",within_sla="true"}'
            assert await eventually(lambda: _has(metrics, acked_now, 1.0), timeout=60)
            # the other one's ack deadline (3 s) passes: a miss, counted by the running daemon
            missed = 'monitor_oncall_acks_total{priority="P0",within_sla="false"}'
            assert await eventually(lambda: _has(metrics, missed, 1.0), timeout=60)
            before = await metrics()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proc, port = await start_run(tmp_path, CONFIG)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as c:
            after = oncall((await c.get(url + "/metrics")).text)
        acked = 'monitor_oncall_acks_total{priority="P1",within_sla="true"}'
        assert before == {pages: 1.0, pages.replace("P0", "P1"): 1.0, acked: 1.0, missed: 1.0}
        assert after == before
    finally:
        await stop_process(proc)


async def _has(metrics, name: str, value: float) -> bool:
    return (await metrics()).get(name) == value
