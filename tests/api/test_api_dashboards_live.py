"""Every shipped dashboard panel against the daemon itself, as Grafana pointed straight at it
would query it: the real demo (``codebook-monitor demo``: the daemon on examples/monitor.yaml,
the sample backend, the local PostgreSQL) runs for a minute, then each panel's expression is a
range query over the last 10 minutes (:mod:`tests.api.dashboard_panels`).

Before the daemon copied its own ``monitor_*`` / ``process_*`` metrics into its store, 36 of the
102 panel queries came back empty; the ones still allowed to be empty here are those that count
events the demo does not produce in a minute (escalation steps, acknowledgements, SLA breaches,
probe failures, missed scheduler runs, backend LLM errors): a labelled counter has no series
until its first event, in Prometheus too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.api.dashboard_panels import empty_panels
from tests.shipped.shipped_helpers import ROOT

#: Metrics (as named in a panel query) that count events the demo does not produce in a minute.
EVENT_METRICS = ("monitor_escalation_steps_total", "monitor_time_to_acknowledge_seconds", "monitor_sla_breaches_total",
                 'llm_api_requests_total{status!~"2.."}', 'monitor_probe_runs_total{outcome="failure"}',
                 "monitor_scheduler_missed_runs_total", "monitor_scheduler_skipped_overlapping_runs_total",
                 "monitor_scrape_errors_total")
#: Every job has run: the 60 s SQL probes once (their first run is spread over the interval),
#: the self-copy (15 s) and the backend scrape (5 s) often enough for rate() to have two points.
WARMUP_SECONDS = 75.0


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(*offsets: int) -> int:
    """A free port whose ``port + offset`` ports are free too (the demo's sinks and TLS endpoint)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + max(offsets, default=0) < 65536 and all(_free(port + o) for o in offsets):
            return port


@pytest.fixture
def demo(tmp_path):
    port, backend = _free_port(), _free_port(1, 443)
    env = {**os.environ, "MONITOR_STATE_DIR": str(tmp_path), "DEMO_SCHEMA": f"codebook_demo_panels_{port}",
           "DATABASE_URL": os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")}
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--port", str(port),
                             "--backend-port", str(backend)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_every_panel_returns_data_from_the_daemon(demo):
    time.sleep(WARMUP_SECONDS)
    total, empty = empty_panels(demo)
    print(f"\n{len(empty)} of {total} panel queries empty: {sorted({title for _, title, _ in empty})}; "
          f"loadavg {os.getloadavg()}")
    assert total == 126  # 102 before the SLOs dashboard and the LLM spend row
    unexpected = [row for row in empty if not any(m in row[2] for m in EVENT_METRICS)]
    assert not unexpected, unexpected
