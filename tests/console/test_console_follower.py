"""The console on a follower (no alert pipeline runs there): pages still render and say so; actions
answer 503 naming the leader. Served by the real app over ASGI, with a real (empty) sample store."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.api.deps import AlertingDeps, ApiDeps, ConsoleDeps, QueryDeps
from monitor.config.console import ConsoleConfig
from monitor.daemon.probing import ProbeRunner
from monitor.metrics import Metrics
from monitor.promql.adhoc import AdHocQueries
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.tsdb.store import SampleStore
from tests.console.helpers import PASSWORDS, ROLES, csrf_of, login
from monitor.api.console.session import hash_password


async def test_a_follower_console_reads_and_refuses_actions():
    store = SampleStore(retention_seconds=3600)
    engine = Engine(store)
    probes = ProbeRunner([], store, Metrics(CollectorRegistry()))
    console = ConsoleConfig.model_validate({"users": [
        {"username": "alice", "password_hash": hash_password(PASSWORDS["alice"]), "role": ROLES["alice"]}]})
    queries = AdHocQueries(store, workers=1)
    deps = ApiDeps(queries=QueryDeps(probes=lambda: probes, rules=RuleManager(store, engine), engine=queries),
                   alerting=AlertingDeps(ports=lambda: None), console=ConsoleDeps(settings=lambda: console))
    transport = httpx.ASGITransport(app=create_app(deps))
    try:
        await _check(transport)
    finally:
        queries.close()


async def _check(transport: httpx.ASGITransport) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://follower") as c:
        csrf = await login(c, "http://follower", "alice")
        for path in ("/ui/", "/ui/alerts", "/ui/silences", "/ui/rules", "/ui/probes", "/ui/query?expr=up"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert "not running on this replica" in r.text
        r = await c.get("/ui/alerts/0123456789abcdef")
        assert r.status_code == 503
        for path, form in (("/ui/alerts/0123456789abcdef/ack", {}), ("/ui/silences", {"matchers": '{a="b"}'}),
                           ("/ui/silences/x/expire", {})):
            r = await c.post(path, data={"csrf": csrf, **form})
            assert r.status_code == 503 and "leader" in r.text, (path, r.status_code)
        assert csrf_of((await c.get("/ui/")).text) == csrf
