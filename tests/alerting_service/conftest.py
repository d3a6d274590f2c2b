"""Fixtures for the alerting runtime tests: local Slack / PagerDuty / SMTP servers, a manual clock,
a full ``Config`` pointing every receiver at them, and a real HTTP server for the API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from monitor.config.model import Config
from monitor.daemon.leader_pipeline import LeaderPipeline, PipelineMetrics
from monitor.notify.outbox import OutboxWorker
from monitor.notify.registry import build_integrations
from tests.support.notify_servers import FakeHTTP, FakeSMTP, pagerduty_api, slack_api

SHIPPED = Path(__file__).parent.parent / "alerting" / "shipped_alerting.yaml"

SLACK_TOKEN = "xoxb-test-slack-bot-token-4242"
PAGER_KEY = "pagerroutingkey0000000000000001"
PD_KEYS = {"alice": "pdkeyalice00000000000000000000a1", "bob": "pdkeybob0000000000000000000000b2",
           "carol": "pdkeycarol00000000000000000000c3", "em": "pdkeyerin000000000000000000000e4",
           "cto": "pdkeychris00000000000000000000f5"}
API_TOKEN = "ck_live_api_token_alice_123456789"
CLI_TOKEN = "ck_live_api_token_cli_987654321"
INTAKE_TOKEN = "ck_live_intake_token_prometheus_42"  # scopes: [intake]
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LINK_KEY = "link-signing-key-0123456789abcdef"
SECRETS = [SLACK_TOKEN, PAGER_KEY, *PD_KEYS.values(), API_TOKEN, CLI_TOKEN, INTAKE_TOKEN, SIGNING_SECRET, LINK_KEY]

#: Monday 2026-11-30 10:00 UTC (11:00 Europe/Berlin): after the weekly handoff.
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc).timestamp()


class Clock:
    """A manual Unix-seconds clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def make_config(slack_url: str, pd_url: str, smarthost: str, state: dict,
                external_url: str = "http://127.0.0.1:9") -> Config:
    """A whole config: the shipped ``alerting:`` section with real-looking keys and local receivers."""
    alerting = yaml.safe_load(SHIPPED.read_text())["alerting"]
    for pid, key in PD_KEYS.items():
        alerting["people"][pid]["pagerduty_routing_key"] = key
    slack = {"token": SLACK_TOKEN, "api_url": slack_url + "/api/"}
    email = {"from": "monitor@example.com", "smarthost": smarthost, "require_tls": False, "to": "ops@example.com"}
    return Config.model_validate({
        "server": {"external_url": external_url},
        "api": {"tokens": [{"name": "alice", "token": API_TOKEN}, {"name": "cli-bot", "token": CLI_TOKEN},
                           {"name": "prometheus", "token": INTAKE_TOKEN, "scopes": ["intake"]}],
                "slack_signing_secret": SIGNING_SECRET, "link_key": LINK_KEY, "link_ttl": "1d"},
        "alerting": alerting,
        "receivers": [
            {"name": "pager", "pagerduty_configs": [{"routing_key": PAGER_KEY, "url": pd_url}]},
            {"name": "slack-incidents", "slack_configs": [dict(slack, channel="#incidents")]},
            {"name": "slack-alerts", "slack_configs": [dict(slack, channel="#alerts")]},
            {"name": "email", "email_configs": [email]},
        ],
        "state": state,
    })


@pytest.fixture
async def servers():
    """Local Slack Web API, PagerDuty Events API v2 and SMTP servers."""
    with FakeSMTP() as smtp:
        async with FakeHTTP(slack_api(SLACK_TOKEN)) as slack, FakeHTTP(pagerduty_api) as pd:
            yield SimpleNamespace(slack=slack, pd=pd, smtp=smtp)


@pytest.fixture(params=["sqlite", "postgres"])
def state_cfg(request, tmp_path):
    """The ``state:`` section: SQLite in a temp dir, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return {"backend": "sqlite", "path": str(tmp_path / "state.db")}
    dsn, schema = request.getfixturevalue("pg_schema")
    return {"backend": "postgres", "dsn": dsn, "schema": schema}


@pytest.fixture
def sqlite_state(tmp_path):
    return {"backend": "sqlite", "path": str(tmp_path / "state.db")}


class Service:
    """A leader's pipeline seen through the one object these scenarios drive: each port's
    methods, plus the leader's ``start``, ``tick``, ``configure``, routing, escalation walks and
    silences."""

    def __init__(self, leader: LeaderPipeline) -> None:
        ports = leader.ports()
        self.ports = lambda: ports
        self.clock = ports.clock
        self.ingest = ports.intake.ingest
        self.acknowledge, self.unacknowledge, self.resolve = (ports.acks.acknowledge, ports.acks.unacknowledge,
                                                              ports.acks.resolve)
        self.alerts_api, self.timeline = ports.views.alerts_api, ports.views.timeline
        self.create_silence, self.expire_silence = ports.silences.create_silence, ports.silences.expire_silence
        self.list_silences, self.get_silence = ports.silences.list_silences, ports.silences.get_silence
        self.leader = leader
        self.start, self.tick, self.configure = leader.start, leader.tick, leader.configure
        self.receivers_for = leader.pipeline.receivers_for
        self.escalation, self.silences = leader.escalation, leader.silences


class Harness:
    """Everything one scenario needs; ``await h.new_service()`` builds (or rebuilds, after a
    'restart') the store, the service and the outbox worker over the same database."""

    def __init__(self, config: Config, clock: Clock, servers) -> None:
        self.config = config
        self.clock = clock
        self.servers = servers
        self.store = None
        self.service = None
        self.worker = None
        self.integrations = None
        self.registry = None

    async def new_service(self):
        from prometheus_client import CollectorRegistry

        from monitor.notify.outbox import NotifyMetrics
        from monitor.store import open_store

        await self.close()
        self.store = await open_store(self.config.state, clock=self.clock)
        self.integrations = build_integrations(self.config.receivers, clock=self.clock)
        self.registry = CollectorRegistry()
        self.service = Service(LeaderPipeline(self.config, self.store, self.integrations, clock=self.clock,
                                              metrics=PipelineMetrics.register(self.registry)))
        self.worker = OutboxWorker(self.store, self.integrations, clock=self.clock, rng=lambda: 0.0,
                                   metrics=NotifyMetrics(self.registry))
        await self.service.start()
        return self.service

    async def deliver(self):
        """Run the outbox once at the clock's time."""
        return await self.worker.run_once(self.clock())

    async def at(self, t: float):
        """Set the clock, tick and deliver."""
        self.clock.t = t
        await self.service.tick()
        return await self.deliver()

    async def close(self):
        if self.integrations:
            for items in self.integrations.values():
                for i in items:
                    await i.notifier.aclose()
            self.integrations = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    # -- what the servers saw --------------------------------------------------------------

    def pd_events(self):
        return [r.data for r in self.servers.pd.on("/v2/enqueue")]

    def pd_triggers(self, key: str):
        return [e for e in self.pd_events() if e["routing_key"] == key and e["event_action"] == "trigger"]

    def slack_posts(self, channel: str | None = None):
        posts = [r.data for r in self.servers.slack.on("/api/chat.postMessage")]
        return [p for p in posts if channel is None or p["channel"] == channel]

    def slack_updates(self):
        return [r.data for r in self.servers.slack.on("/api/chat.update")]


@pytest.fixture
async def harness(servers, sqlite_state):
    clock = Clock(T0)
    h = Harness(make_config(servers.slack.url, servers.pd.url, servers.smtp.smarthost, sqlite_state), clock, servers)
    yield h
    await h.close()


def firing_rule_alert(labels: dict, active_at: float, value: float = 1.0, **annotations):
    """A firing ``monitor.rules.alerting.Alert``."""
    from monitor.rules.alerting import Alert as RuleAlert
    from model.labels import Labels

    ann = {"summary": "API is down", "description": "the API answers 503", "runbook_url": "https://runbooks/api"}
    ann.update(annotations)
    return RuleAlert(Labels.of(labels), ann, "firing", active_at, fired_at=active_at, value=value)


def resolved_rule_alert(alert, at: float):
    from dataclasses import replace

    return replace(alert, state="inactive", resolved_at=at)


class ApiServer:
    """The daemon's ASGI app on a real uvicorn server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, deps) -> None:
        self.deps = deps
        self.server = None
        self.task = None
        self.url = ""

    async def __aenter__(self):
        import uvicorn

        from monitor.api.app import create_app

        app = create_app(self.deps)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                                    access_log=False, lifespan="off"))
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await self.task


@pytest.fixture
async def api(harness):
    """A real HTTP server serving the alerting API over the harness's service (``api.url``)."""
    from monitor.api.deps import AlertingDeps, ApiDeps

    await harness.new_service()
    deps = ApiDeps(settings=lambda: harness.config.api,
                   alerting=AlertingDeps(ports=harness.service.ports, claims=lambda: harness.store))
    async with ApiServer(deps) as srv:
        yield srv


# ``scoped``: the whole API with one token per scope set (tests/alerting_service/scoped_api.py).
from tests.alerting_service.scoped_api import scoped  # noqa: E402, F401 - a fixture, re-exported
