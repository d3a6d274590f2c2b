"""Side by side with the real Prometheus (2.42), on the configuration ``export prometheus`` writes:
one page per alert, whichever evaluator owns the rules — and the old setup (both evaluate,
Prometheus sends to the daemon) is what pages twice and what the daemon warns about.

The daemon pages a local webhook receiver; each test counts the distinct alerts (fingerprints)
it was paged for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import subprocess

import httpx
import pytest

from monitor.config.loader import load_config
from monitor.export.document import render
from monitor.export.prometheus import prometheus_config
from tests.support.daemon_helpers import ADMIN_TOKEN, eventually, run_daemon, write_config
from tests.support.notify_servers import FakeHTTP

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")

RULES = """\
groups:
  - name: sla
    interval: 1s
    rules:
      - alert: SlaBreach
        expr: vector(1)
        labels: {severity: critical}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon_config(tmp_path, hook_url: str, port: int, *, evaluates: bool):
    (tmp_path / "r.yaml").write_text(RULES)
    return write_config(tmp_path, f"""
        server: {{host: 127.0.0.1, port: {port}}}
        rules:
          files: {'[r.yaml]' if evaluates else '[]'}
          evaluation_interval: 1s
          external_labels: {{monitor: prod}}
        api:
          tokens: [{{name: prom, token: {ADMIN_TOKEN}, scopes: [read, ack, admin, intake]}}]
        receivers:
          - name: hook
            webhook_configs: [{{url: "{hook_url}/hook"}}]
        alerting:
          route: {{receiver: hook, group_wait: 0s, group_by: [alertname]}}
        """)


@contextlib.asynccontextmanager
async def _prometheus(tmp_path, prometheus_yml: str):
    (tmp_path / "prom").mkdir()
    path = tmp_path / "prom" / "prometheus.yml"
    path.write_text(prometheus_yml)
    (tmp_path / "prom" / "r.yaml").write_text(RULES)
    port = _port()
    proc = subprocess.Popen(["prometheus", f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             # the first send may find no alertmanager discovered yet (dropped): resend soon
                             "--rules.alert.resend-delay=1s"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            async def firing():
                assert proc.poll() is None, (tmp_path / "prom.log").read_text()[-2000:]
                try:
                    r = await c.get(url + "/api/v1/alerts")
                except httpx.HTTPError:
                    return None
                if r.status_code != 200:  # 503 while it starts
                    return None
                return [a for a in r.json()["data"]["alerts"] if a["state"] == "firing"] or None
            await eventually(firing, timeout=60, what="Prometheus evaluates the rule")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _export(cfg_path, tmp_path, evaluator: str) -> str:
    config = load_config(cfg_path)
    # Prometheus loads the same rule file (copied beside its config) and sends with the token file
    (tmp_path / "prom-secrets").mkdir(exist_ok=True)
    (tmp_path / "prom-secrets" / "codebook-monitor-intake").write_text(ADMIN_TOKEN)
    export = prometheus_config(config, evaluator=evaluator, secrets_dir=str(tmp_path / "prom-secrets"))
    export.data["rule_files"] = ["r.yaml"]
    export.data["global"]["evaluation_interval"] = "1s"
    return render(export, title="side by side")


def _paged(hook: FakeHTTP) -> set[str]:
    fps = set()
    for r in hook.on("/hook"):
        for a in json.loads(r.body)["alerts"]:
            if a["status"] == "firing":
                fps.add(json.dumps(a["labels"], sort_keys=True))
    return fps


async def _run(tmp_path, *, evaluator: str, daemon_evaluates: bool) -> tuple[set[str], list[str]]:
    port = _port()
    async with FakeHTTP() as hook:
        cfg = _daemon_config(tmp_path, hook.url, port, evaluates=daemon_evaluates)
        prom_yml = _export(cfg, tmp_path, evaluator)
        async with run_daemon(cfg) as d:
            async with _prometheus(tmp_path, prom_yml) as prom:
                await eventually(lambda: _async(_paged(hook)), timeout=30, what="a page")
                if evaluator == "prometheus":  # its first sends are dropped until the daemon is discovered
                    await eventually(lambda: _sent(prom), timeout=30, what="Prometheus sends to the daemon")
                await asyncio.sleep(3)  # a second page would come from the next evaluations
                r = await d.get("/api/v2/alerts")
                return _paged(hook), [json.dumps(a["labels"], sort_keys=True) for a in r.json()]


async def _sent(prom_url: str) -> bool:
    async with httpx.AsyncClient(timeout=5) as c:
        text = (await c.get(prom_url + "/metrics")).text
    return any(line.startswith("prometheus_notifications_sent_total{") and float(line.split()[-1]) > 0
               for line in text.splitlines())


async def _async(value):
    return value


async def test_daemon_evaluates_prometheus_sends_nothing_one_page(tmp_path):
    paged, held = await _run(tmp_path, evaluator="daemon", daemon_evaluates=True)
    assert paged == {json.dumps({"alertname": "SlaBreach", "monitor": "prod", "severity": "critical"},
                                sort_keys=True)}
    assert len(held) == 1


async def test_prometheus_evaluates_and_sends_one_page(tmp_path):
    paged, held = await _run(tmp_path, evaluator="prometheus", daemon_evaluates=False)
    assert paged == {json.dumps({"alertname": "SlaBreach", "monitor": "prod", "severity": "critical"},
                                sort_keys=True)}
    assert len(held) == 1


async def test_both_evaluating_is_warned_about(tmp_path, caplog):
    """The setup the old export made: both evaluate and Prometheus sends. The labels are the same
    here (the daemon adds the external labels, Prometheus sends no job/instance), so it is one
    alert — and the daemon still warns that the rule arrives from two sources."""
    caplog.set_level(logging.WARNING, logger="monitor.api")
    paged, held = await _run(tmp_path, evaluator="prometheus", daemon_evaluates=True)
    assert len(paged) == 1 and len(held) == 1
    assert [r.rule for r in caplog.records if "two sources" in r.getMessage()] == ["SlaBreach"]
