"""Two replicas over one PostgreSQL schema: one leader by advisory lock; only the leader sends;
stopping it lets the follower take over without sending twice; a dropped lock connection makes
the leader step down. Real daemons, real PostgreSQL, a local Slack Web API through slack-sdk."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
from prometheus_client import generate_latest

from model.alert import Alert
from monitor.config.loader import load_config
from monitor.daemon.wiring import Daemon
from tests.support.daemon_helpers import eventually, metric_values, write_config
from tests.support.notify_servers import FakeHTTP, slack_api

TOKEN = "xoxb-7777777777-8888888888-LeAdErToKeN"

RULES = """\
groups:
  - name: ha
    interval: 1s
    rules:
      - alert: BackendDown
        expr: vector(1)
        labels:
          severity: critical
        annotations:
          summary: backend is down
"""


def config(tmp_path: Path, slack_url: str, state: str):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    return load_config(write_config(tmp_path, f"""
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        receivers:
          - name: slack
            slack_configs: [{{channel: "#incidents", token: {TOKEN}, api_url: "{slack_url}/api/"}}]
        alerting:
          route:
            receiver: slack
            group_wait: 0s
            group_by: [alertname]
        state:
          {state}
        """))


def pg_state(pg_schema) -> str:
    dsn, schema = pg_schema
    return f'{{backend: postgres, dsn: "{dsn}", schema: {schema}}}'


def leader_gauge(d: Daemon) -> list[float]:
    return metric_values(generate_latest(d.registry).decode(), "monitor_leader")


async def _value(v):
    return v


async def test_one_leader_sends_and_the_follower_takes_over(tmp_path, pg_schema):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        posts = lambda: slack.on("/api/chat.postMessage")  # noqa: E731
        cfg = config(tmp_path, slack.url, pg_state(pg_schema))
        d1, d2 = Daemon(cfg), Daemon(cfg)
        await d1.start()
        try:
            assert d1.leadership.is_leader and d1.alerting_ports() is not None
            await eventually(lambda: _value(len(posts()) == 1), what="the leader's Slack message")
            await d2.start()  # restores the leader's rule state from the shared store
            assert not d2.leadership.is_leader and d2.alerting_ports() is None and d2.outbox is None
            assert leader_gauge(d1) == [1.0] and leader_gauge(d2) == [0.0]
            for d, role in ((d1, True), (d2, False)):
                h = d.health()
                assert h["status"] == "healthy" and h["checks"]["leader"] is role
            # The follower evaluates the rule (warm state) but neither ingests nor sends.
            started = time.time()
            await eventually(lambda: _value(any(a.state == "firing" for a in d2.rules.alerts())
                                            and all(g.last_evaluation and g.last_evaluation > started + 2
                                                    for g in d2.rules.groups())),
                             what="the follower evaluating its rules")
            assert not await d2.leadership.check()  # the lock is held: still a follower
            assert len(posts()) == 1

            await d1.stop()  # the leader goes away; its lock connection closes
            await eventually(lambda: _value(d2.leadership.is_leader), what="the follower taking over")
            assert leader_gauge(d2) == [1.0] and d2.health()["checks"]["leader"] is True
            took_over = time.time()
            # The new leader restored the firing alert, ticked and ran the outbox; rule alerts
            # keep arriving: nothing is sent again.
            await eventually(lambda: _value(
                [a["labels"]["alertname"] for a in d2.alerting_ports().views.alerts_api()] == ["BackendDown"]
                and all(g.last_evaluation > took_over + 2 for g in d2.rules.groups())),
                what="the new leader processing the firing alert")
            async def drained():
                return await d2.state.depth() == 0
            await eventually(drained, what="the new leader's outbox drained")
            assert len(posts()) == 1
            rows = await d2.state.list_outbox()
            assert [r["status"] for r in rows] == ["sent"]

            # The new leader carries on: a new alert is sent once, by it.
            await d2.alerting_ports().intake.ingest([Alert.firing({"alertname": "Manual", "severity": "warning"},
                                                   starts_at=time.time())], source="api")
            await eventually(lambda: _value(len(posts()) == 2), what="the new leader sending")
            assert "Manual" in posts()[1].data["text"]
        finally:
            await d2.stop()
            if d1.scheduler.running:
                await d1.stop()
        assert len(posts()) == 2


async def test_dropped_lock_connection_steps_down(tmp_path, pg_schema, database_url):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        d = Daemon(config(tmp_path, slack.url, pg_state(pg_schema)))
        await d.start()
        try:
            first = d.alerting_ports()
            assert d.leadership.is_leader and first is not None
            key = d.state.lock_key
            conn = await asyncpg.connect(database_url)
            try:
                [pid] = [r["pid"] for r in await conn.fetch(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = $1", key)]
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            finally:
                await conn.close()
            # The leader notices, steps down (its alert service is dropped), and - the lock being
            # free - takes over again with a service restored from the store.
            await eventually(lambda: _value(d.alerting_ports() is not None and d.alerting_ports() is not first
                                            and d.leadership.is_leader), what="step down and re-election")
            assert leader_gauge(d) == [1.0]
            await eventually(lambda: _value(len(slack.on("/api/chat.postMessage")) >= 1), what="first message")
            await eventually(lambda: _value([a["labels"]["alertname"] for a in d.alerting_ports().views.alerts_api()]
                                            == ["BackendDown"]), what="alert restored")
        finally:
            await d.stop()
        assert leader_gauge(d) == [0.0]


async def test_sqlite_is_always_the_leader(tmp_path):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        d = Daemon(config(tmp_path, slack.url, f"{{backend: sqlite, path: {tmp_path / 'state.db'}}}"))
        await d.start()
        try:
            assert d.leadership.is_leader and await d.leadership.check()
            assert d.health()["checks"]["leader"] is True and leader_gauge(d) == [1.0]
            assert {"leader:check", "alerting:tick", "oncall:announce"} <= d.scheduler.job_ids()
        finally:
            await d.stop()
