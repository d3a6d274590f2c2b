"""Token scopes on the real HTTP server: ``read``, ``ack``, ``admin``, ``intake``; 401 without a
valid token, 403 naming the missing scope; reload needs ``admin``; the intake needs ``intake``
unless ``api.intake_open``; the views stay open unless ``api.read_requires_token``; the token's
name is the actor in the audit log and in the request log; every route has an access rule."""

from __future__ import annotations

import logging

import pytest

from monitor.api.access import ROUTE_ACCESS
from monitor.api.app import create_app
from monitor.api.deps import AlertingDeps, ApiDeps, MetricsExposition, ProcessDeps, ReloadResult
from monitor.api.openapi import mounted_endpoints
from monitor.config.model import ApiConfig
from tests.alerting_service.conftest import T0, firing_rule_alert
from tests.alerting_service.scoped_api import api_config, auth

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api"}
SILENCE = {"matchers": [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}],
           "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T12:00:00Z", "comment": "deploy"}


async def test_reload_needs_the_admin_scope(scoped):
    c = scoped.client
    r = await c.post("/-/reload")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await c.post("/-/reload", headers=auth("oncall"))
    assert r.status_code == 403
    assert r.json()["error"] == 'token "oncall" lacks the "admin" scope needed for POST /-/reload'
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert scoped.reloads.count == 0
    assert (await c.put("/-/reload", headers=auth("ops"))).status_code == 200
    assert (await c.post("/-/reload", headers=auth("ops"))).json() == {"status": "success"}
    assert scoped.reloads.count == 2


async def test_ack_resolve_and_silences_need_ack_and_the_actor_is_the_token_name(harness, scoped, caplog):
    c = scoped.client
    alert = firing_rule_alert(LABELS, T0 - 60)
    await harness.service.ingest([alert])
    fp = alert.fingerprint
    for name in ("reader", "prometheus"):
        for action in ("ack", "unack", "resolve"):
            r = await c.post(f"/api/v1/alerts/{fp}/{action}", headers=auth(name))
            assert r.status_code == 403, (name, action)
            assert f'lacks the "ack" scope needed for POST /api/v1/alerts/{fp}/{action}' in r.json()["error"]
        assert (await c.post("/api/v2/silences", json=SILENCE, headers=auth(name))).status_code == 403
    assert harness.service.escalation.get(fp).state.status == "escalating"

    with caplog.at_level(logging.INFO, logger="monitor.api"):
        r = await c.post(f"/api/v1/alerts/{fp}/ack", headers=auth("oncall"), json={"comment": "on it"})
    assert r.status_code == 200 and r.json()["data"]["acked_by"] == "oncall"
    logged = [rec for rec in caplog.records if rec.getMessage() == "API request"]
    assert [(rec.token, rec.method, rec.status) for rec in logged] == [("oncall", "POST", 200)]
    # a read-only token cannot undo someone's acknowledgement
    assert (await c.post(f"/api/v1/alerts/{fp}/unack", headers=auth("reader"))).status_code == 403
    assert harness.service.escalation.get(fp).state.status == "acknowledged"

    r = await c.post("/api/v2/silences", json=SILENCE, headers=auth("ops"))
    assert r.status_code == 200, r.text
    sid = r.json()["silenceID"]
    assert harness.service.silences.get(sid).created_by == "ops"
    assert (await c.delete(f"/api/v2/silence/{sid}", headers=auth("reader"))).status_code == 403
    assert (await c.delete(f"/api/v2/silence/{sid}", headers=auth("oncall"))).status_code == 200
    audit = await harness.store.list_audit(limit=10)
    assert [(a["actor"], a["action"]) for a in audit[:3]] == [
        ("oncall", "silence.expire"), ("ops", "silence.create"), ("oncall", "ack")]


async def test_the_timeline_needs_read(harness, scoped):
    c = scoped.client
    alert = firing_rule_alert(LABELS, T0 - 60)
    await harness.service.ingest([alert])
    path = f"/api/v1/alerts/{alert.fingerprint}/timeline"
    assert (await c.get(path)).status_code == 401
    assert (await c.get(path, headers=auth("prometheus"))).status_code == 403
    r = await c.get(path, headers=auth("reader"))
    assert r.status_code == 200 and r.json()["data"]


async def test_intake_needs_the_intake_scope_unless_configured_open(harness, scoped):
    c = scoped.client
    body = [{"labels": {"alertname": "DatabaseDown", "severity": "warning", "service": "db"}}]
    assert (await c.post("/api/v2/alerts", json=body)).status_code == 401
    r = await c.post("/api/v2/alerts", json=body, headers=auth("ops"))
    assert r.status_code == 403 and '"intake" scope' in r.json()["error"]
    webhook = {"version": "4", "status": "firing", "alerts": [dict(body[0], status="firing")]}
    assert (await c.post("/api/v1/intake/alertmanager", json=webhook)).status_code == 401
    assert (await c.get("/api/v2/alerts")).json() == []

    assert (await c.post("/api/v2/alerts", json=body, headers=auth("prometheus"))).status_code == 200
    assert (await c.post("/api/v1/intake/alertmanager", json=webhook, headers=auth("prometheus"))).status_code == 200
    assert len((await c.get("/api/v2/alerts")).json()) == 1
    assert harness.registry.get_sample_value("monitor_alerts_received_total", {"source": "api"}) == 1

    scoped.settings["api"] = api_config(intake_open=True)
    body[0]["labels"]["alertname"] = "Other"
    assert (await c.post("/api/v2/alerts", json=body)).status_code == 200
    assert len((await c.get("/api/v2/alerts")).json()) == 2


async def test_views_are_open_unless_read_requires_token(harness, scoped):
    c = scoped.client
    views = ["/api/v2/alerts", "/api/v2/silences", "/metrics"]
    for path in views:
        assert (await c.get(path)).status_code == 200, path
    scoped.settings["api"] = api_config(read_requires_token=True)
    for path in views:
        assert (await c.get(path)).status_code == 401, path
        assert (await c.get(path, headers=auth("prometheus"))).status_code == 403, path
        assert (await c.get(path, headers=auth("reader"))).status_code == 200, path
    # liveness, health and the API description stay open
    for path in ("/-/healthy", "/-/ready", "/health", "/api/openapi.json"):
        assert (await c.get(path)).status_code == 200, path


async def test_a_token_without_scopes_in_the_config_gets_read_and_ack():
    cfg = ApiConfig.model_validate({"tokens": [{"name": "a", "token": "t" * 24}]})
    assert cfg.tokens[0].scopes == ["read", "ack"]
    with pytest.raises(ValueError, match="read', 'ack', 'admin' or 'intake'"):
        ApiConfig.model_validate({"tokens": [{"name": "a", "token": "t" * 24, "scopes": ["root"]}]})


def test_every_mounted_route_has_an_access_rule_and_a_description():
    from prometheus_client import CollectorRegistry
    from starlette.responses import Response
    from starlette.routing import Route

    from monitor.api.access import guard_routes
    from monitor.api.deps import ConsoleDeps, QueryDeps, StatusDeps
    from monitor.config.console import ConsoleConfig
    from monitor.tsdb.store import SampleStore
    from monitor.api.openapi import OPERATIONS
    from monitor.api.oncall import OnCallDeps
    from monitor.api.statuspage import StatusPageDeps

    deps = ApiDeps(process=ProcessDeps(health=dict, metrics=MetricsExposition(CollectorRegistry()),
                                       reload=ReloadResult),
                   queries=QueryDeps(probes=lambda: None, rules=None, engine=None,  # never called here
                                     catalog=SampleStore(), status=StatusDeps(runtime=dict, config_yaml=str)),
                   alerting=AlertingDeps(ports=lambda: None),
                   oncall=OnCallDeps(alerting=lambda: None, store=lambda: None),
                   status_page=StatusPageDeps(config=lambda: None, probes=lambda: None, store=lambda: None,
                                              clock=lambda: 0.0),
                   console=ConsoleDeps(settings=ConsoleConfig))
    mounted = set(mounted_endpoints(create_app(deps).routes))
    assert mounted == set(ROUTE_ACCESS) == set(OPERATIONS)

    async def handler(request):
        return Response()

    with pytest.raises(RuntimeError, match="no access rule for POST /api/v1/new"):
        guard_routes([Route("/api/v1/new", handler, methods=["POST"])])
