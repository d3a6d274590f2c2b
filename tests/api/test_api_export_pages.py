"""Issue 12, done when: the real Prometheus (Debian's /usr/bin/prometheus) runs with the
configuration ``codebook-monitor export prometheus`` writes, scrapes the daemon, and a fault in a
watched target pages exactly once per alert, whichever evaluator the export chose.

Each case: a local target (its ``/health`` probed by the daemon, its ``/metrics`` scraped by
both, which also makes the export's scrape interval 2 s), the daemon paging a local PagerDuty
Events API v2 (:class:`~tests.support.notify_servers.PagerDutyEvents`: incidents by
``dedup_key``), the export made by the CLI and accepted by ``promtool check config``, then
Prometheus started on it (own data dir, loopback port). The target's ``/health`` turns to 500;
the critical rule on ``probe_success`` fires (in the daemon, or in Prometheus reading the
daemon's ``/metrics`` and sending to its intake). Prometheus resends every second
(``--rules.alert.resend-delay=1s``), so a second page would show within the rounds waited for.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.daemon.test_daemon_cli import _env
from tests.support.daemon_helpers import ADMIN_TOKEN, eventually, run_daemon
from tests.support.notify_servers import FakeHTTP, PagerDutyEvents, Recorded, Reply

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="prometheus/promtool are not installed")

RULES = """\
groups:
  - name: backend
    interval: 1s
    rules:
      - alert: BackendDown
        expr: probe_success{probe="backend"} == 0
        # a slow probe or a missed scrape on a loaded machine neither pages nor resolves the alert
        for: 2s
        keep_firing_for: 1m
        labels: {severity: critical}
        annotations: {summary: the backend health check fails}
"""

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}}}
rules:
  files: {rule_files}
  evaluation_interval: 1s
  external_labels: {{monitor: prod}}
probes:
  - {{name: backend, kind: api, url: "{target}", interval: 1s, timeout: 1s}}
scrape:
  - {{name: backend-metrics, url: "{target}/metrics", interval: 2s, timeout: 2s}}
api:
  tokens: [{{name: prom, token: {token}, scopes: [read, ack, admin, intake]}}]
receivers:
  - name: pager
    pagerduty_configs: [{{routing_key: R0UT1NGKEYs3cr3t0000000000000000, url: "{pager}"}}]
alerting:
  route: {{receiver: pager, group_wait: 0s, group_by: ["..."]}}
state: {{backend: sqlite, path: {state}}}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """The watched service: healthy until :attr:`healthy` is set to False."""

    def __init__(self) -> None:
        self.healthy = True

    def __call__(self, req: Recorded) -> Reply:
        if req.path == "/metrics":
            return Reply(200, b"# TYPE backend_up gauge\nbackend_up 1\n", {"Content-Type": "text/plain"})
        if self.healthy:
            return Reply(200, {"status": "healthy", "checks": {"database": "healthy"}})
        return Reply(500, {"status": "unhealthy", "checks": {"database": "down"}})


def _export(config: Path, out: Path, evaluator: str | None, secrets: Path) -> None:
    """Run ``codebook-monitor export prometheus`` (the CLI) and ``promtool check config`` on its output."""
    args = [sys.executable, "-m", "monitor", "export", "prometheus", "-c", str(config), "-o", str(out),
            "--secrets-dir", str(secrets)]
    if evaluator is not None:
        args += ["--evaluator", evaluator]
    done = subprocess.run(args, cwd=config.parent, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    secrets.mkdir(exist_ok=True)
    (secrets / "codebook-monitor-intake").write_text(ADMIN_TOKEN)
    check = subprocess.run(["promtool", "check", "config", str(out)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


@contextlib.asynccontextmanager
async def _prometheus(config: Path, data: Path, log: Path):
    port = _port()
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s"],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Prometheus:
    """The running Prometheus: its API and its own metrics."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    async def query(self, q: str) -> list[dict] | None:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                r = await c.get(self.url + "/api/v1/query", params={"query": q})
        except httpx.HTTPError:
            return None
        return r.json()["data"]["result"] if r.status_code == 200 else None

    async def counter(self, name: str) -> float:
        """Sum a counter of Prometheus's own ``/metrics`` (it does not scrape itself here)."""
        async with httpx.AsyncClient(timeout=5) as c:
            text = (await c.get(self.url + "/metrics")).text
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name)] in " {")


async def _pages(tmp_path: Path, evaluator: str | None, *, follow_export: bool = True,
                 ) -> tuple[PagerDutyEvents, list[dict], Prometheus]:
    target, pd = Target(), PagerDutyEvents()
    async with FakeHTTP(target) as tgt, FakeHTTP(pd) as pager:
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "backend.yaml").write_text(RULES)
        fields = dict(port=_port(), target=tgt.url, pager=pager.url, token=ADMIN_TOKEN, state=tmp_path / "state.db")
        exported = tmp_path / "monitor.yaml"  # the config the export reads lists the rule files
        exported.write_text(CONFIG.format(rule_files="[rules/*.yaml]", **fields))
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        _export(exported, prom_dir / "prometheus.yml", evaluator, tmp_path / "secrets")
        daemon_config = exported
        if evaluator == "prometheus" and follow_export:  # as the export says: the daemon evaluates nothing
            daemon_config = tmp_path / "daemon.yaml"
            daemon_config.write_text(CONFIG.format(rule_files="[]", **fields))
        async with run_daemon(daemon_config) as d, \
                _prometheus(prom_dir / "prometheus.yml", tmp_path / "prom-data", tmp_path / "prom.log") as prom:
            # Prometheus scrapes the daemon (and the target) and has loaded the exported rules.
            await eventually(lambda: prom.query('up{job="codebook-monitor"} == 1'), timeout=90,
                             what="Prometheus scraping the daemon")
            await eventually(lambda: prom.query('probe_success{probe="backend"} == 1'), timeout=60,
                             what="the daemon's probe_success in Prometheus")
            await eventually(lambda: prom.counter("prometheus_rule_evaluations_total"), timeout=60,
                             what="Prometheus evaluating the exported rules")
            assert pd.pages == 0

            target.healthy = False  # the fault
            await eventually(lambda: _async(pd.pages), timeout=90, what="the page")
            if not follow_export:
                await eventually(lambda: _async(pd.pages >= 2), timeout=90, what="the second page")
            # Rounds in which a second page would come: Prometheus evaluates (and, as the evaluator,
            # resends to the daemon) every second; the daemon probes and evaluates every second.
            base = await prom.counter("prometheus_rule_evaluations_total")
            sent = await prom.counter("prometheus_notifications_sent_total")

            async def rounds() -> bool:
                if await prom.counter("prometheus_rule_evaluations_total") < base + 5:
                    return False
                if evaluator != "prometheus":
                    return True
                return await prom.counter("prometheus_notifications_sent_total") >= sent + 3

            await eventually(rounds, timeout=90, what="five more evaluation rounds")
            r = await d.get("/api/v2/alerts")
            held = [a for a in r.json() if a["labels"]["alertname"] == "BackendDown"]
            return pd, held, prom


async def _async(value):
    return value


@pytest.mark.parametrize("evaluator", [None, "prometheus"], ids=["default-evaluator-daemon", "evaluator-prometheus"])
async def test_exported_config_pages_once_per_alert(tmp_path, evaluator):
    pd, held, _ = await _pages(tmp_path, evaluator)
    triggers = [e for _, e in pd.events if e["event_action"] == "trigger"]
    assert len(held) == 1, held
    assert pd.pages == 1 and len(triggers) == 1 and pd.deduplicated == 0, triggers
    (page,) = triggers
    assert page["payload"]["severity"] == "critical" and "BackendDown" in page["payload"]["summary"]
    labels = held[0]["labels"]
    assert labels["probe"] == "backend" and labels["monitor"] == "prod"
    if evaluator == "prometheus":  # evaluated on the daemon's /metrics as Prometheus scraped it
        assert labels["job"] == "codebook-monitor"
    else:
        assert "job" not in labels


async def test_the_control_both_evaluating_pages_twice(tmp_path):
    """The harness sees a double page: the daemon keeps its rules while Prometheus evaluates and
    sends (what the export warns against) gives two alerts, Prometheus's carrying the scrape's
    ``job``/``instance``, and two pages."""
    pd, held, _ = await _pages(tmp_path, "prometheus", follow_export=False)
    assert len(held) == 2 and pd.pages == 2, (held, pd.paged)
    assert sorted("job" in a["labels"] for a in held) == [False, True]
