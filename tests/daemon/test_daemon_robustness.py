"""Robustness of the daemon and its command line against hostile or mistaken input.

* Durations above 10 years are config errors (``check`` reports file:line:col; ``run`` exits 1)
  instead of crashing the scheduler at start.
* A failure during ``daemon.start()`` stops what was started (state store, HTTP client, tasks),
  logs one JSON line and makes ``serve()`` / ``run`` exit 1 instead of hanging.
* Expected CLI failures print ``codebook-monitor: error: ...`` and exit 1 without a traceback.
* A reload names the settings only a restart applies; the rules reload gauge is gone (the
  config gauge covers config and rules).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from monitor.config.loader import load_config
from monitor.daemon.lifecycle import Lifecycle
from monitor.daemon.scheduler import MAX_INTERVAL, Scheduler
from monitor.daemon.wiring import Daemon
from monitor.metrics import Metrics
from model.duration import MAX_DURATION_SECONDS, parse_duration
from tests.support.daemon_helpers import metric_values, run_daemon, write_config

ROOT = Path(__file__).resolve().parents[2]

HUGE = """\
    probes: [{name: c, kind: disk, paths: [/], interval: 99999999999999999999d, timeout: 10s}]
    """


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MONITOR_URL", None)
    return env


async def cli(*args: str, cwd: Path, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``python -m monitor ARGS`` as a user would; fail (not hang) past ``timeout``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=cwd, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`codebook-monitor {' '.join(args)}` did not exit within {timeout} s") from None
    return proc.returncode, out.decode(), err.decode()


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


# -- 1. durations ---------------------------------------------------------------------------------


def test_parse_duration_caps_at_ten_years():
    assert parse_duration("10y") == MAX_DURATION_SECONDS
    assert parse_duration(MAX_DURATION_SECONDS) == MAX_DURATION_SECONDS
    for text in ("99999999999999999999d", "10y1s", "522w", 1e20, float("inf"), float("nan")):
        with pytest.raises(ValueError) as info:
            parse_duration(text)
        assert "expected a duration" in str(info.value)
    with pytest.raises(ValueError, match=r'^expected a duration of at most 10y, got "99999999999999999999d"$'):
        parse_duration("99999999999999999999d")


async def test_check_and_run_reject_a_huge_interval_with_its_position(tmp_path):
    (tmp_path / "monitor.yaml").write_text(textwrap.dedent(HUGE))
    code, out, err = await cli("check", "--config", "monitor.yaml", cwd=tmp_path)
    assert code == 1
    assert ('monitor.yaml:1:44: probes[0].interval: expected a duration of at most 10y, '
            'got "99999999999999999999d"') in err
    code, out, err = await cli("run", "--config", "monitor.yaml", cwd=tmp_path, timeout=60)
    assert code == 1
    assert "expected a duration of at most 10y" in err
    _no_traceback(err)


def test_scheduler_rejects_an_interval_it_cannot_schedule():
    from prometheus_client import CollectorRegistry

    sched = Scheduler(Metrics(CollectorRegistry()))

    async def job() -> None:
        return None

    with pytest.raises(ValueError, match="job probe:c: interval"):
        sched.add_interval_job("probe:c", job, MAX_INTERVAL * 2)
    assert sched.job_ids() == set()


# -- 1b. a failing start stops what started --------------------------------------------------------


def _non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread() and t.is_alive()}


async def test_start_failure_stops_what_started_and_serve_returns_1(tmp_path, caplog):
    path = write_config(tmp_path, """\
        probes:
          - {name: c, kind: disk, paths: [/], interval: 30s, timeout: 10s}
        """)
    config = load_config(path)
    # A value that slipped past validation (as before durations were capped): the scheduler
    # refuses it during start(), after the state store was opened.
    config.probes[0].interval = 1e20
    before = _non_daemon_threads()
    daemon = Daemon(config)
    lifecycle = Lifecycle(daemon, path, host="127.0.0.1")
    with caplog.at_level(logging.ERROR, logger="monitor.daemon"):
        code = await asyncio.wait_for(lifecycle.serve(), 60)
    assert code == 1
    assert lifecycle.server.started is False
    assert daemon.http.is_closed
    assert daemon.state is not None and daemon.state._db is None  # noqa: SLF001 - the store was closed
    assert not daemon.scheduler.running
    # no aiosqlite worker left to keep the process alive: each new thread ends (it was told to)
    for thread in _non_daemon_threads() - before:
        thread.join(timeout=30)
        assert not thread.is_alive(), thread
    failed = [r for r in caplog.records if r.getMessage() == "daemon failed to start"]
    assert failed and "interval" in failed[0].error


async def test_run_process_exits_1_with_a_json_line_when_start_fails(tmp_path):
    path = write_config(tmp_path, """\
        probes:
          - {name: c, kind: disk, paths: [/], interval: 30s, timeout: 10s}
        """)
    script = textwrap.dedent(f"""\
        import asyncio, sys
        from monitor.config.loader import load_config
        from monitor.daemon.lifecycle import serve
        from monitor.daemon.wiring import Daemon
        from monitor.logging import setup_logging

        config = load_config({str(path)!r})
        config.probes[0].interval = 1e20  # past validation: start() fails after the store opened
        setup_logging("INFO")
        sys.exit(asyncio.run(serve(Daemon(config), {str(path)!r}, host="127.0.0.1")))
        """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=tmp_path, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the process hung after a failed start") from None
    assert proc.returncode == 1
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]  # JSON lines only
    failed = [x for x in lines if x.get("msg", x.get("message")) == "daemon failed to start"]
    assert len(failed) == 1 and failed[0]["level"].lower() == "error", lines


# -- 2-4. the command line ---------------------------------------------------------------------------


async def test_silence_add_bad_duration_start_and_comment(tmp_path):
    code, out, err = await cli("silence", "add", 'a="x"', "--duration", "99999999999999d", "--comment", "x",
                               "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert code == 1
    assert err.strip() == ('codebook-monitor: error: --duration: expected a duration of at most 10y, '
                           'got "99999999999999d"')
    code, out, err = await cli("silence", "add", 'a="x"', "--start", "abc", "--comment", "x",
                               "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert code == 1
    assert err.strip() == ('codebook-monitor: error: --start: invalid time "abc" '
                           '(use RFC 3339, e.g. 2026-11-29T15:00:00Z)')
    code, out, err = await cli("silence", "add", 'a="x"', "--comment", "", "--url", "http://127.0.0.1:9",
                               cwd=tmp_path)
    assert code == 2
    assert "argument --comment: must not be empty" in err
    _no_traceback(err)


async def test_export_to_a_missing_directory_is_an_error_not_a_traceback(tmp_path):
    code, out, err = await cli("export", "prometheus", "--config", str(ROOT / "examples" / "monitor.yaml"),
                               "-o", str(tmp_path / "nonexistent" / "p.yml"), cwd=tmp_path)
    assert code == 1
    assert f"{tmp_path / 'nonexistent' / 'p.yml'}: cannot write: No such file or directory" in err
    _no_traceback(err)


@pytest.mark.parametrize("args", [["routes", "test", "a=b"], ["oncall"], ["simulate", "--labels", "a=b"],
                                  ["check"], ["probe"], ["export", "prometheus"]])
async def test_missing_default_config_suggests_config_option(tmp_path, args):
    code, out, err = await cli(*args, cwd=tmp_path)
    assert code == 1
    assert "monitor.yaml: no such file; pass --config FILE (the demo's config is examples/monitor.yaml)" in err
    _no_traceback(err)


async def test_oncall_bad_at_names_the_option(tmp_path):
    code, out, err = await cli("oncall", "--at", "soon", "--config", str(ROOT / "examples" / "monitor.yaml"),
                               cwd=tmp_path)
    assert code == 1
    assert err.strip() == 'codebook-monitor: error: --at: invalid time "soon" (use RFC 3339, e.g. 2026-11-29T15:00:00Z)'


async def test_test_rules_caps_expanded_points_and_names_files(tmp_path):
    (tmp_path / "huge.yaml").write_text(textwrap.dedent("""\
        tests:
          - input_series:
              - series: up{job="a"}
                values: '1+1x99999999999'
        """))
    (tmp_path / "broken.yaml").write_text("tests:\n  - [\n")
    code, out, err = await cli("test-rules", "huge.yaml", "broken.yaml", cwd=tmp_path, timeout=60)
    assert code == 1
    assert 'huge.yaml: input_series up{job="a"}: series values expand to more than 1000000 points' in out
    assert 'in "broken.yaml", line' in out
    assert "<unicode string>" not in out
    _no_traceback(err)


async def test_probe_writes_only_json_lines_to_stderr(tmp_path):
    (tmp_path / "monitor.yaml").write_text(textwrap.dedent("""\
        probes:
          - {name: gone, kind: disk, paths: [/no/such/dir/anywhere], interval: 30s, timeout: 10s}
          - {name: refused, kind: api, url: "http://127.0.0.1:9/health", interval: 30s, timeout: 5s}
        """))
    code, out, err = await cli("probe", cwd=tmp_path)
    assert code == 1
    assert "FAIL" in out
    for line in err.splitlines():
        if line.strip():
            record = json.loads(line)  # nothing but JSON lines
            assert record["level"].lower() in ("error", "critical"), record


# -- 6. reload ------------------------------------------------------------------------------------------


async def test_reload_warns_about_settings_that_need_a_restart(tmp_path, caplog):
    body = "probes:\n  - {name: c, kind: disk, paths: [/], interval: 30s, timeout: 10s}\n"
    cfg = write_config(tmp_path, body)
    async with run_daemon(cfg) as d:
        listener = d.url
        text = cfg.read_text().replace("port: 0", "port: 19999").replace("state.db", "other-state.db")
        cfg.write_text(text)
        with caplog.at_level(logging.WARNING, logger="monitor.daemon"):
            r = await d.post("/-/reload")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["status"] == "success"
        assert any(w.startswith("server.port changed (0 -> 19999)") for w in data["warnings"]), data
        assert any(w.startswith("state.path changed") for w in data["warnings"]), data
        logged = [r.warning for r in caplog.records if r.levelno == logging.WARNING and hasattr(r, "warning")]
        assert any("server.port" in w for w in logged) and any("state.path" in w for w in logged)
        # the old listener keeps serving
        assert (await d.get("/health")).status_code in (200, 503)
        assert d.url == listener

        # a reload that changes nothing needing a restart has no warnings
        r = await d.post("/-/reload")
        assert r.status_code == 200 and "warnings" not in r.json()


async def test_rejected_rule_reload_shows_only_in_the_config_gauge(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: vector(1)\n")
    cfg = write_config(tmp_path, f"rules:\n  files: [{rules}]\n")
    async with run_daemon(cfg) as d:
        rules.write_text("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: 'sum('\n")
        r = await d.post("/-/reload")
        assert r.status_code == 400
        text = await d.metrics()
        assert metric_values(text, "monitor_config_last_reload_successful") == [0.0]
        assert "monitor_rules_last_reload_successful" not in text
