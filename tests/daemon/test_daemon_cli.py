"""The ``python -m monitor`` command as a user runs it: ``check`` (every error at once, with
file:line:col), ``probe --json`` exit codes, and ``run`` reloading on SIGHUP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import httpx

from tests.support.daemon_helpers import TinyHttpServer, eventually, health_routes
from tests.support.probe_servers import closed_port


ROOT = Path(__file__).resolve().parents[2]


async def run_cli(*args: str, cwd: Path, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``python -m monitor ARGS`` without blocking the event loop (local servers keep serving)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=cwd, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


async def start_run(tmp_path: Path, config_text: str) -> tuple[asyncio.subprocess.Process, int]:
    """Start ``python -m monitor run`` on a config with ``{port}`` filled in, wait until it
    serves ``/health``; retry with another port when the chosen one was taken meanwhile.

    :raises RuntimeError: the daemon exited for another reason (its stderr is in the message).
    """
    for _ in range(3):
        port = closed_port()
        write(tmp_path / "monitor.yaml", config_text.replace("{port}", str(port)))
        log_path = tmp_path / "daemon-stderr.log"
        with open(log_path, "wb") as log_file:  # a file, not a pipe nobody drains while it runs
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "run", "--config", "monitor.yaml", cwd=tmp_path, env=_env(),
                stdout=asyncio.subprocess.DEVNULL, stderr=log_file)
        proc.log_path = log_path
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                if proc.returncode is not None:
                    err = log_path.read_text(errors="replace")
                    if "address already in use" in err.lower():
                        break
                    raise RuntimeError(f"the daemon exited with {proc.returncode}: {err[-3000:]}")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code in (200, 503):
                        return proc, port
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    await stop_process(proc)
                    raise RuntimeError("the daemon did not serve within 60 s")
                await asyncio.sleep(0.2)
    raise RuntimeError("no free port after 3 attempts")


async def test_check_reports_every_config_error_with_position(tmp_path):
    write(tmp_path / "monitor.yaml", """\
        server:
          port: 0
        bogus_key: 1
        probes:
          - name: a
            kind: api
            url: http://127.0.0.1:1
            interval: -5s
          - name: b
            kind: database
            interval: 10s
        """)
    code, out, err = await run_cli("check", "--config", "monitor.yaml", cwd=tmp_path)
    assert code == 1
    lines = err.splitlines()
    assert 'monitor.yaml:3:1: unknown key "bogus_key"' in lines
    assert any(line.startswith("monitor.yaml:8:5: probes[0].interval: ") for line in lines), err
    assert any(line.startswith("monitor.yaml:9:5: probes[1]") and "dsn" in line for line in lines), err
    assert "3 error(s)" in err


async def test_check_reports_every_rule_error_with_group_and_rule(tmp_path):
    write(tmp_path / "monitor.yaml", """\
        rules:
          files: [rules/x.yaml]
        state:
          path: state.db
        """)
    write(tmp_path / "rules" / "x.yaml", """\
        groups:
          - name: g
            rules:
              - alert: Good
                expr: up == 0
                labels:
                  severity: critical
              - alert: BadExpr
                expr: sum(rate(foo[5m]) /
                labels:
                  severity: critical
              - record: rec:x
                expr: up
                for: 5m
              - alert: NoSeverity
                expr: up == 0
              - alert: RangeWhereInstant
                expr: foo[5m] > 1
                labels:
                  severity: warning
        """)
    code, out, err = await run_cli("check", "--config", "monitor.yaml", cwd=tmp_path)
    assert code == 1
    lines = err.splitlines()
    assert any(line.startswith('rules/x.yaml:9:15: group "g", rule 2, "BadExpr": could not parse expression')
               for line in lines), err
    assert any(line.startswith('rules/x.yaml:14:9: group "g", rule 3, "rec:x": ') and "for" in line
               for line in lines), err
    assert any(line.startswith('rules/x.yaml:15:9: group "g", rule 4, "NoSeverity": ') and "severity" in line
               for line in lines), err
    assert any(line.startswith('rules/x.yaml:18:15: group "g", rule 5, "RangeWhereInstant": ')
               for line in lines), err
    assert "4 error(s)" in err

    # fixed: exit 0
    write(tmp_path / "rules" / "x.yaml", """\
        groups:
          - name: g
            rules:
              - alert: Good
                expr: up == 0
                labels:
                  severity: critical
        """)
    code, out, err = await run_cli("check", "--config", "monitor.yaml", cwd=tmp_path)
    assert code == 0, err
    assert "OK" in out


async def test_probe_json_exit_codes(tmp_path):
    async with TinyHttpServer(health_routes()) as api:
        write(tmp_path / "ok.yaml", f"""\
            probes:
              - name: good
                kind: api
                url: {api.url}
                interval: 5s
                timeout: 5s
            """)
        write(tmp_path / "bad.yaml", f"""\
            probes:
              - name: good
                kind: api
                url: {api.url}
                interval: 5s
                timeout: 5s
              - name: refused
                kind: api
                url: http://127.0.0.1:{closed_port()}
                interval: 5s
                timeout: 5s
            """)
        code, out, err = await run_cli("probe", "--json", "--config", "ok.yaml", cwd=tmp_path)
        assert code == 0, err
        assert json.loads(out)["good"]["success"] is True

        code, out, err = await run_cli("probe", "--json", "--config", "bad.yaml", cwd=tmp_path)
        assert code == 1
        data = json.loads(out)
        assert data["good"]["success"] is True
        assert data["refused"]["success"] is False and data["refused"]["error"]

        code, out, err = await run_cli("probe", "--config", "bad.yaml", cwd=tmp_path)
        assert code == 1
        assert "FAIL" in out and "refused" in out


async def test_run_reloads_rules_on_sighup(tmp_path):
    rule = """\
        groups:
          - name: g
            rules:
              - alert: {name}
                expr: vector(1)
                for: 1h
                labels:
                  severity: warning
        """
    write(tmp_path / "rules" / "r.yaml", rule.format(name="BeforeHup"))
    proc, port = await start_run(tmp_path, f"""\
        server:
          host: 127.0.0.1
          port: {{port}}
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        state:
          path: {tmp_path / 'state.db'}
        """)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async def names():
                try:
                    r = await client.get("/api/v1/rules")
                except httpx.TransportError:
                    assert proc.returncode is None, "the daemon exited"
                    return None
                return {x["name"] for g in r.json()["data"]["groups"] for x in g["rules"]}

            assert await eventually(names, timeout=60, what="the daemon serving") == {"BeforeHup"}
            write(tmp_path / "rules" / "r.yaml", rule.format(name="AfterHup"))
            proc.send_signal(signal.SIGHUP)
            await eventually(lambda: _equals(names, {"AfterHup"}), timeout=30, what="rules after SIGHUP")

            # a broken file on SIGHUP: rejected, previous rules kept, the process keeps running
            write(tmp_path / "rules" / "r.yaml",
                  "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: (\n")
            proc.send_signal(signal.SIGHUP)

            async def rejected():
                text = (await client.get("/metrics")).text
                return "monitor_config_last_reload_successful 0.0" in text

            await eventually(rejected, timeout=30, what="monitor_config_last_reload_successful 0")
            assert await names() == {"AfterHup"}
            assert proc.returncode is None
    finally:
        await stop_process(proc)


async def stop_process(proc: asyncio.subprocess.Process) -> str:
    """SIGTERM ``proc`` (SIGKILL after 30 s) and return its stderr."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.log_path.read_text(errors="replace")


async def test_run_stops_cleanly_on_sigterm(tmp_path):
    proc, _ = await start_run(tmp_path, f"""\
        server:
          host: 127.0.0.1
          port: {{port}}
        state:
          path: {tmp_path / 'state.db'}
        """)
    stderr = await stop_process(proc)
    assert "daemon stopped" in stderr, stderr[-3000:]
    assert proc.returncode == 0, stderr[-3000:]


async def _equals(fn, want):
    return (await fn()) == want
