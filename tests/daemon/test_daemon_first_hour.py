"""The first hour with the real daemon (issue 16): what a newcomer and an on-call engineer meet.

- A rejected reload keeps the last good config and ``/health`` says so — ``config`` degraded with
  the first error and when the running config was loaded — at HTTP 200: the daemon still works.
- Acknowledge/resolve links in pages point where the daemon listens: ``run --port`` wins over
  ``server.port`` unless ``server.external_url`` is set (Alertmanager's ``--web.external-url``).
- Stopping the daemon while a database probe's query runs cancels that query on the server.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid

import asyncpg
import httpx

from examples import notify_sinks
from monitor.config.loader import load_config
from tests.daemon.test_daemon_cli import _env, stop_process, write
from tests.support.daemon_helpers import TinyHttpServer, eventually, run_daemon, write_config
from tests.support.probe_servers import closed_port

GOOD = """
    receivers:
      - name: hooks
        webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
    alerting:
      route: {receiver: hooks}
    """


async def test_a_rejected_reload_is_degraded_config_not_a_failing_daemon(tmp_path):
    cfg = write_config(tmp_path, GOOD)
    good_text = cfg.read_text()
    async with run_daemon(cfg) as d:
        assert (await d.get("/health")).json()["checks"]["config"] == "healthy"
        loaded = time.time()
        cfg.write_text(good_text.replace("route: {receiver: hooks}", "route: {receiver: nobody, group_wait: 15 s}"))
        r = await d.post("/-/reload")
        assert r.status_code == 400, r.text
        errors = r.json()["errors"]
        assert len(errors) >= 2 and any('undefined receiver "nobody"' in e for e in errors), errors

        r = await d.get("/health")
        assert r.status_code == 200, "a rejected reload is degraded config, not a failing daemon"
        doc = r.json()
        assert doc["status"] == "degraded"
        cause = doc["checks"]["config"]
        assert cause.startswith(f"degraded: config reload failed: {errors[0]} (and {len(errors) - 1} more error")
        stamp = cause.rsplit("running the config loaded at ", 1)[1]
        from datetime import datetime
        assert abs(datetime.fromisoformat(stamp).timestamp() - loaded) < 60
        assert (await d.get("/-/healthy")).status_code == 200

        cfg.write_text(good_text)
        assert (await d.post("/-/reload")).status_code == 200
        r = await d.get("/health")
        assert r.json()["checks"]["config"] == "healthy"


RULE = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: PageMe
        expr: vector(1)
        labels: {severity: critical}
        annotations: {summary: page me}
"""

PAGING = """\
server:
  host: 127.0.0.1
  port: {config_port}
rules:
  files: [rules/*.yaml]
  evaluation_interval: 1s
receivers:
  - name: pager
    pagerduty_configs: [{{routing_key: R0UT1NGKEYs3cr3t0000000000000000, url: "{sinks}"}}]
alerting:
  route: {{receiver: pager, group_wait: 0s}}
api:
  link_key: link-key-0123456789abcdef0123
state: {{path: state.db}}
"""


async def test_links_in_pages_follow_the_port_the_daemon_runs_on(tmp_path):
    sinks = await notify_sinks.start("127.0.0.1", 0, echo=lambda line: None)
    port, config_port = closed_port(), closed_port()
    write(tmp_path / "rules" / "r.yaml", RULE)
    write(tmp_path / "monitor.yaml", PAGING.format(config_port=config_port, sinks=sinks.pagerduty_url))
    log = (tmp_path / "stderr.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--config", "monitor.yaml", "--port", str(port),
        cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.DEVNULL, stderr=log)
    proc.log_path = tmp_path / "stderr.log"  # read by stop_process
    try:
        async def paged():
            assert proc.returncode is None, (tmp_path / "stderr.log").read_text()[-2000:]
            return [m for m in sinks.recorder.select("pager") if m["event_action"] == "trigger"]

        (page, *_) = await eventually(paged, timeout=60, what="the page")
        links = {link["text"]: link["href"] for link in page["event"]["links"]}
        assert links["Acknowledge"].startswith(f"http://127.0.0.1:{port}/ack/"), links
        assert links["Resolve"].startswith(f"http://127.0.0.1:{port}/ack/"), links
        assert page["event"]["client_url"] == f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:  # the link reaches the daemon
            r = await client.get(links["Acknowledge"])
            assert r.status_code == 200 and f"Acknowledge alert {page['dedup_key']}" in r.text

        # A reload keeps --port: links do not fall back to server.port.
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1)
        assert f":{config_port}" not in (tmp_path / "stderr.log").read_text()
    finally:
        await stop_process(proc)
        log.close()
        await sinks.stop()


def test_a_configured_external_url_is_kept_whatever_the_port(tmp_path):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("server:\n  port: 9115\n  external_url: https://monitor.example.com/\n")
    config = load_config(cfg)
    config.server.listen_on(9200)
    assert (config.server.port, config.server.external_url) == (9200, "https://monitor.example.com")
    cfg.write_text("server:\n  port: 9115\n")
    config = load_config(cfg)
    config.server.listen_on(9200)
    assert config.server.external_url == "http://127.0.0.1:9200"


async def test_port_zero_links_name_the_port_chosen(tmp_path):
    """``server.port: 0`` listens on a free port; derived links name it, not ``:0``."""
    async with run_daemon(write_config(tmp_path, GOOD)) as d:
        port = int(d.url.rsplit(":", 1)[1])
        assert port != 0
        assert d.daemon.config.server.external_url == f"http://127.0.0.1:{port}"


async def test_a_port_in_use_fails_the_start_before_anything_runs(tmp_path):
    """A second daemon on a taken port exits 1 at once (it probes nothing and leads nothing)."""
    async with run_daemon(write_config(tmp_path, GOOD)) as d:
        port = int(d.url.rsplit(":", 1)[1])
        from monitor.daemon.lifecycle import Lifecycle
        from monitor.daemon.wiring import Daemon
        text = (tmp_path / "monitor.yaml").read_text().replace("port: 0", f"port: {port}")
        other = write(tmp_path / "other.yaml", text.replace("state.db", "other.db"))
        daemon = Daemon(load_config(other))
        assert await asyncio.wait_for(Lifecycle(daemon, other).serve(), 30) == 1
        assert not daemon.probes.last


async def test_stopping_the_daemon_cancels_a_slow_probe_query_on_the_server(tmp_path, database_url):
    marker = f"daemon_stop_{uuid.uuid4().hex[:8]}"
    cfg = write_config(tmp_path, f"""
        probes:
          - name: business
            kind: sql
            dsn: {database_url}
            interval: 20s
            timeout: 20s
            queries:
              - name: slow_gauge
                query: "SELECT pg_sleep(40)::text::float8 AS value /* {marker} */"
        """)

    async def active() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                       "AND query LIKE $1 AND pid <> pg_backend_pid()", f"%{marker}%")
        finally:
            await conn.close()

    async with run_daemon(cfg):
        # the first run comes somewhere in the first interval (probes are spread over it)
        await eventually(active, timeout=30, interval=0.1, what="the probe's query running")
        seen = time.monotonic()
    # run_daemon's exit stopped the daemon the way SIGTERM does (Lifecycle.stop).
    # The server ends a cancelled query at once; allow its bookkeeping a moment.
    async def gone() -> bool:
        return await active() == 0

    await eventually(gone, timeout=3, interval=0.1, what="the query cancelled on the server after the stop")
    assert time.monotonic() - seen < 10, "stopped well before the probe's own 18 s query timeout"


async def test_cli_commands_find_the_daemon_by_port_and_monitor_url(tmp_path, monkeypatch, capsys):
    from monitor.cli import main

    silences = (200, "application/json", "[]")
    async with TinyHttpServer({"/api/v2/silences": silences}) as srv:
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text("server:\n  port: 1\n")  # what a daemon run with --port does not listen on
        monkeypatch.delenv("MONITOR_URL", raising=False)
        assert await asyncio.to_thread(main, ["silence", "list", "--config", str(cfg), "--port", str(srv.port)]) == 0
        monkeypatch.setenv("MONITOR_URL", srv.url)
        assert await asyncio.to_thread(main, ["silence", "list", "--config", str(cfg)]) == 0
        assert srv.hits["/api/v2/silences"] == 2
        monkeypatch.delenv("MONITOR_URL")
        assert await asyncio.to_thread(main, ["silence", "list", "--config", str(cfg)]) == 1
    assert "cannot reach the daemon at http://127.0.0.1:1/api/v2/silences" in capsys.readouterr().err
