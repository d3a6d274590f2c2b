"""An open maintenance window is said, not silent (issue 16, item 1): the daemon logs
"maintenance window NAME open until HH:MM UTC: pages muted" at start and when a window opens or
closes; the demo's banner prints it and names ``demo --no-maintenance``.

The window of ``examples/monitor.yaml`` (first Saturday of the month 02:00-06:00 UTC) at chosen
instants (an injected clock), and a real daemon (``run_daemon``) with an always-open window.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from monitor.config.loader import load_config
from monitor.daemon.demo import cli_name
from monitor.daemon.maintenance_watch import MaintenanceWatch
from tests.support.daemon_helpers import eventually, run_daemon, write_config
from tests.test_readme_first_hour import ROOT


def _t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def _example_alerting():
    return load_config(ROOT / "examples" / "monitor.yaml").alerting


def test_the_example_window_is_said_when_it_opens_and_closes(caplog):
    alerting = _example_alerting()
    clock = [_t("2026-12-05T01:59:30")]  # the first Saturday of December 2026, before the window
    watch = MaintenanceWatch(lambda: alerting, clock=lambda: clock[0])
    caplog.set_level(logging.INFO, logger="monitor.maintenance")
    assert watch.check() == [] and watch.open_messages() == []
    clock[0] = _t("2026-12-05T02:00:10")
    expected = "maintenance window monthly-maintenance open until 06:00 UTC: pages muted"
    assert watch.check() == [expected]
    assert watch.open_messages() == [expected]
    assert watch.check() == []  # said once, not at every look
    clock[0] = _t("2026-12-05T06:00:00")
    assert watch.check() == ["maintenance window monthly-maintenance closed: pages resume"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", expected), ("INFO", "maintenance window monthly-maintenance closed: pages resume")]
    # the next month's first Saturday (2027-01-02), looked at from the start
    fresh = MaintenanceWatch(lambda: alerting, clock=lambda: _t("2027-01-02T05:59:00"))
    assert fresh.check() == ["maintenance window monthly-maintenance open until 06:00 UTC: pages muted"]


def test_a_window_ending_another_day_gives_the_date(tmp_path):
    cfg = write_config(tmp_path, """
        alerting:
          time_intervals:
            - name: weekend
              time_intervals: [{weekdays: [saturday, sunday]}]
          maintenance_windows:
            - name: weekend-freeze
              time_intervals: [weekend]
        """)
    alerting = load_config(cfg).alerting
    watch = MaintenanceWatch(lambda: alerting)
    assert watch.open_messages(_t("2026-12-05T03:00:00")) == [
        "maintenance window weekend-freeze open until 2026-12-07 00:00 UTC: pages muted"]


async def test_the_daemon_logs_an_open_window_at_start(tmp_path, caplog):
    cfg = write_config(tmp_path, """
        alerting:
          time_intervals:
            - name: always
              time_intervals: [{weekdays: ["sunday:saturday"]}]
          maintenance_windows:
            - name: freeze
              time_intervals: [always]
        """)
    caplog.set_level(logging.INFO, logger="monitor.maintenance")
    async with run_daemon(cfg) as d:
        async def said():
            return [r.getMessage() for r in caplog.records if r.name == "monitor.maintenance"]

        assert await eventually(said, timeout=30, what="the maintenance log line") == [
            "maintenance window freeze open until further notice: pages muted"]
        rt = (await d.get("/api/v1/status/runtimeinfo")).json()["data"]
        assert rt["maintenanceWindowsOpen"] == ["maintenance window freeze open until further notice: pages muted"]


def test_the_banner_names_the_cli_as_it_was_started():
    assert cli_name(".venv/bin/codebook-monitor") == ".venv/bin/codebook-monitor"
    assert cli_name("/opt/cm/bin/codebook-monitor") == "/opt/cm/bin/codebook-monitor"
    assert cli_name("/work/x/monitor/__main__.py") == ".venv/bin/codebook-monitor"  # python -m monitor


ALWAYS_OPEN = """\
state: {{backend: sqlite, path: {state}}}
alerting:
  time_intervals:
    - name: always
      time_intervals: [{{weekdays: ["sunday:saturday"]}}]
  maintenance_windows:
    - name: freeze
      time_intervals: [always]
"""


def _run_demo_until_banner(tmp_path, *extra: str) -> str:
    """Run ``python -m monitor demo`` on an always-open window until its banner is out; return its output."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.api.test_api_dashboards_live import _free_port

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(ALWAYS_OPEN.format(state=tmp_path / "state.db"))
    port, backend = _free_port(), _free_port(1, 443)
    log_path = tmp_path / f"demo{len(extra)}.log"
    env = {**os.environ, "MONITOR_STATE_DIR": str(tmp_path), "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"}
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--port", str(port), "--backend-port",
                                 str(backend), "--config", str(cfg), *extra], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "stop           : Ctrl-C" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no banner within 90 s: " + log_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log_path.read_text()


def test_the_demo_banner_says_the_window_is_open_and_how_to_page_anyway(tmp_path):
    out = _run_demo_until_banner(tmp_path)
    assert "  MAINTENANCE    : maintenance window freeze open until further notice: pages muted\n" \
           "                   (run `demo --no-maintenance` to page anyway)\n" in out
    assert ".venv/bin/codebook-monitor ack FINGERPRINT --url" in out  # python -m monitor: the README's path
    assert out.count("maintenance window freeze open") == 2  # the banner and the daemon's log line
    out = _run_demo_until_banner(tmp_path, "--no-maintenance")
    assert "MAINTENANCE" not in out and "maintenance window" not in out
