"""The outgoing heartbeat (monitor/daemon/heartbeat.py) against a real local HTTP server: beats
arrive on the real scheduler; they stop while rule evaluation stalls (a real RuleManager whose
alert hand-off blocks) or the scheduler lags, and resume after; failures are counted; the URL,
a secret, never reaches a log line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from monitor.config.loader import load_config_text
from monitor.config.model import HealthConfig, HeartbeatConfig
from monitor.config.secrets import secret_values
from monitor.daemon.health import PagingPathChecks
from monitor.daemon.heartbeat import Heartbeat, HeartbeatMetrics, LagWindow, shown_url
from monitor.daemon.scheduler import Scheduler
from monitor.logging import JsonFormatter
from monitor.metrics import Metrics
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.store.sqlite import SQLiteStore
from monitor.tsdb.store import SampleStore
from tests.support.daemon_helpers import eventually
from tests.support.notify_servers import FakeHTTP, Reply
from tests.support.probe_servers import closed_port

SECRET = "5f2b9c1e-7d4a-4c1b-9e8f-0a1b2c3d4e5f"
PING = f"/ping/{SECRET}"

#: One group evaluated every 200 ms whose alert fires at every evaluation, so every evaluation
#: hands alerts on (and waits for the hand-off).
RULES = """
groups:
  - name: fast
    interval: 200ms
    rules:
      - alert: Always
        expr: vector(1)
        labels: {severity: warning}
"""


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class Rig:
    """A heartbeat over real parts: rule manager, SQLite outbox, scheduler, HTTP client."""

    def __init__(self, tmp_path: Path, url: str, *, method: str = "GET", interval: float = 0.2,
                 timeout: float = 0.2) -> None:
        (tmp_path / "r.yaml").write_text(RULES)
        self.gate = asyncio.Event()
        self.gate.set()
        samples = SampleStore()
        self.rules = RuleManager(samples, Engine(samples), on_alerts=self._hand_off)
        assert self.rules.load([tmp_path / "r.yaml"]) == []
        self.state = SQLiteStore(tmp_path / "state.db")
        self.settings = HeartbeatConfig(url=url, method=method, interval=interval, timeout=timeout)
        self.checks = PagingPathChecks(self.rules, HealthConfig)
        self.registry = CollectorRegistry()
        self.lag = LagWindow()
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.heartbeat = Heartbeat(lambda: self.settings, self.http, self.checks,
                                   HeartbeatMetrics(self.registry), lag=self.lag)
        self.scheduler = Scheduler(Metrics(CollectorRegistry()), on_lag=self.lag.observe)
        self._tasks: list[asyncio.Task] = []

    async def _hand_off(self, alerts) -> None:
        await self.gate.wait()  # a stuck alert pipeline stalls the evaluation that hands off

    async def _beat(self) -> None:
        await self.heartbeat.beat()

    async def _read_outbox(self) -> None:
        await self.checks.read_outbox(self.state)

    async def __aenter__(self) -> "Rig":
        await self.state.open()
        await self.checks.read_outbox(self.state)
        self._tasks.append(asyncio.create_task(self.rules.run()))
        self.scheduler.add_interval_job("health:outbox", self._read_outbox, 0.5)
        self.scheduler.add_interval_job("heartbeat", self._beat, self.settings.interval)
        self.scheduler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gate.set()
        self.scheduler.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()
        await self.state.close()


async def test_beats_arrive_stop_while_rule_evaluation_stalls_and_resume(tmp_path):
    async with FakeHTTP() as srv, Rig(tmp_path, srv.url + PING) as rig:
        await eventually(lambda: _count(srv, PING, 3), timeout=10, interval=0.05, what="three beats")
        assert {r.method for r in srv.on(PING)} == {"GET"}
        # The sink records a beat before the beat's response is counted: wait for the count too.
        await eventually(lambda: _successes(rig, 3), timeout=10, interval=0.05, what="three counted beats")
        assert sample(rig.registry, "monitor_heartbeat_last_success_timestamp_seconds") > 0

        rig.gate.clear()  # the alert hand-off hangs: rule evaluation stops
        await eventually(lambda: _state(rig, "paused"), timeout=10, interval=0.05, what="heartbeat paused")
        sent = len(srv.on(PING))
        skipped = sample(rig.registry, "monitor_heartbeats_total", outcome="skipped")
        await asyncio.sleep(1.5)  # ~7 beat intervals
        assert len(srv.on(PING)) == sent, "a beat went out while rule evaluation was stalled"
        assert sample(rig.registry, "monitor_heartbeats_total", outcome="skipped") > skipped
        assert 'group "fast"' in rig.checks.problems()["rule_evaluation"]

        rig.gate.set()  # the pipeline moves again
        await eventually(lambda: _count(srv, PING, sent + 3), timeout=10, interval=0.05, what="beats resumed")
        assert rig.heartbeat.state == "ok"


async def test_beats_stop_while_the_outbox_cannot_deliver(tmp_path):
    async with FakeHTTP() as srv, Rig(tmp_path, srv.url + PING) as rig:
        await eventually(lambda: _count(srv, PING, 1), timeout=10, interval=0.05, what="a beat")
        now = rig.checks.clock()
        await rig.state.enqueue("stuck", "ops", "webhook[0]", {}, now + 3600, now - 600)
        await eventually(lambda: _state(rig, "paused"), timeout=10, interval=0.05, what="heartbeat paused")
        assert rig.checks.problems()["outbox"].startswith("1 notification pending, oldest 60")
        row = (await rig.state.claim_due(now))[0]
        await rig.state.mark_sent(row["id"], now)
        sent = len(srv.on(PING))
        await eventually(lambda: _count(srv, PING, sent + 2), timeout=10, interval=0.05, what="beats resumed")


async def test_a_scheduler_lagging_badly_skips_the_beat(tmp_path):
    async with FakeHTTP() as srv:
        rig = Rig(tmp_path, srv.url + PING)
        await rig.state.open()
        try:
            await rig.rules.eval_all()
            await rig.checks.read_outbox(rig.state)
            rig.lag.observe(0.5)
            assert await rig.heartbeat.beat() == "success"  # under max_scheduler_lag (10 s)
            rig.lag.observe(12.0)
            assert await rig.heartbeat.beat() == "skipped"
            assert rig.heartbeat.blockers(rig.settings) == []  # the window was taken
            assert await rig.heartbeat.beat() == "success"
            assert len(srv.on(PING)) == 2
        finally:
            await rig.http.aclose()
            await rig.state.close()


async def test_post_sends_a_short_body_and_failures_are_counted(tmp_path):
    async with FakeHTTP() as srv:
        rig = Rig(tmp_path, srv.url + PING, method="POST", interval=1.0, timeout=0.3)
        await rig.state.open()
        try:
            await rig.rules.eval_all()
            await rig.checks.read_outbox(rig.state)
            srv.script(PING, Reply(503), Reply(200, delay=2.0))
            assert await rig.heartbeat.beat() == "failure"  # 503
            assert await rig.heartbeat.beat() == "failure"  # no answer within 0.3 s
            assert await rig.heartbeat.beat() == "success"
            post = srv.on(PING)[-1]
            assert post.method == "POST" and post.body.startswith(b"codebook-monitor ")
            assert post.headers["User-Agent"].startswith("codebook-monitor/")
            assert sample(rig.registry, "monitor_heartbeats_total", outcome="failure") == 2
            assert sample(rig.registry, "monitor_heartbeats_total", outcome="success") == 1
        finally:
            await rig.http.aclose()
            await rig.state.close()


async def test_the_url_never_reaches_a_log_line(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="monitor")
    url = f"http://127.0.0.1:{closed_port()}{PING}?key=ck_live_0123456789abcdef"
    rig = Rig(tmp_path, url, interval=1.0, timeout=0.5)
    await rig.state.open()
    try:
        await rig.rules.eval_all()
        await rig.checks.read_outbox(rig.state)
        assert await rig.heartbeat.beat() == "failure"  # connection refused
        assert await rig.heartbeat.beat() == "failure"
        rig.gate.clear()
        rig.heartbeat.clock = rig.checks.clock = lambda: 1e12  # far in the future: every group stalled
        assert await rig.heartbeat.beat() == "skipped"
    finally:
        await rig.http.aclose()
        await rig.state.close()
    formatter = JsonFormatter(redactor=None)  # no safety net: our own lines must be clean
    lines = [formatter.format(r) for r in caplog.records]
    assert any("heartbeat not delivered" in line for line in lines)
    assert any("heartbeat paused" in line for line in lines)
    for line in lines:
        assert SECRET not in line and "ck_live_0123456789abcdef" not in line, line
    assert any(f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/ping..." in line for line in lines)


def test_shown_url_keeps_host_and_a_prefix_only():
    assert shown_url(f"https://hc-ping.com/{SECRET}") == "https://hc-ping.com/5f2b..."
    assert shown_url("https://user:pw@hc-ping.com:8443/ab") == "https://hc-ping.com:8443/***"
    assert shown_url("https://hc-ping.com") == "https://hc-ping.com/"


def test_the_url_is_a_registered_secret():
    config = load_config_text(f"heartbeat:\n  url: https://hc-ping.com/{SECRET}\n", "monitor.yaml", env={})
    assert config.heartbeat is not None and config.heartbeat.method == "GET"
    assert (config.heartbeat.interval, config.heartbeat.timeout) == (30.0, 5.0)
    assert f"https://hc-ping.com/{SECRET}" in secret_values(config)
    assert SECRET not in repr(config)


async def _count(srv: FakeHTTP, path: str, n: int) -> bool:
    return len(srv.on(path)) >= n


async def _successes(rig: Rig, n: int) -> bool:
    return sample(rig.registry, "monitor_heartbeats_total", outcome="success") >= n


async def _state(rig: Rig, state: str) -> bool:
    return rig.heartbeat.state == state
