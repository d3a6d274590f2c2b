"""The whole API (process and alerting routes) on a real HTTP server over the harness's alert
service and SQLite store, with one token per scope set: the ``scoped`` fixture."""

from __future__ import annotations

import httpx
import pytest

from monitor.api.deps import (
    AlertingDeps, ApiDeps, ConsoleDeps, MetricsExposition, ProcessDeps, QueryDeps, ReloadResult, StatusDeps,
)
from monitor.config.console import ConsoleConfig
from monitor.config.model import ApiConfig
from monitor.daemon.probing import ProbeRunner
from monitor.metrics import Metrics
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.api.oncall import OnCallDeps
from monitor.api.statuspage import StatusPageDeps
from monitor.tsdb.store import SampleStore
from tests.alerting_service.conftest import ApiServer

TOKENS = {  # name -> (token, scopes)
    "reader": ("ck_test_reader_token_000000000001", ["read"]),
    "oncall": ("ck_test_oncall_token_000000000002", None),  # default: read, ack
    "ops": ("ck_test_ops_admin_token_00000000003", ["read", "ack", "admin"]),
    "prometheus": ("ck_test_prometheus_token_0000004", ["intake"]),
}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


def api_config(**extra) -> ApiConfig:
    tokens = [{"name": n, "token": t, **({"scopes": s} if s is not None else {})} for n, (t, s) in TOKENS.items()]
    return ApiConfig.model_validate({"tokens": tokens, **extra})


class Reloads:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> ReloadResult:
        self.count += 1
        return ReloadResult()


@pytest.fixture
async def scoped(harness):
    """The API with every route (process, queries over an empty sample store, alerting over the
    harness's service, the console without users), with the tokens above;
    ``scoped.settings["api"]`` may be replaced (read per request)."""
    from prometheus_client import CollectorRegistry

    await harness.new_service()
    settings = {"api": api_config()}
    reloads = Reloads()
    store = SampleStore(retention_seconds=3600)
    engine = Engine(store)
    probes = ProbeRunner([], store, Metrics(CollectorRegistry()))
    deps = ApiDeps(settings=lambda: settings["api"],
                   process=ProcessDeps(health=lambda: {"status": "healthy"},
                                       metrics=MetricsExposition(CollectorRegistry()), reload=reloads),
                   queries=QueryDeps(probes=lambda: probes, rules=RuleManager(store, engine), engine=engine,
                                     catalog=store,
                                     status=StatusDeps(runtime=dict, config_yaml=lambda: "api: {}\n")),
                   alerting=AlertingDeps(ports=harness.service.ports,
                                         claims=lambda: harness.store),
                   oncall=OnCallDeps(alerting=lambda: harness.config.alerting, store=lambda: harness.store,
                                     clock=harness.clock),
                   status_page=StatusPageDeps(config=lambda: harness.config, probes=lambda: probes,
                                              store=lambda: harness.store, clock=harness.clock),
                   console=ConsoleDeps(settings=ConsoleConfig))
    async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        srv.client, srv.settings, srv.reloads = client, settings, reloads
        yield srv
