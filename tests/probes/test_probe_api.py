"""The api probe against a real local HTTP server."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from probes.api import ApiProbe, ApiSettings, check_is_healthy, json_lookup
from probes.base import run_probe
from tests.probes.probe_certs import issue, server_context
from tests.support.probe_servers import HttpServer, Response, SilentServer, closed_port

HEALTHY = {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1.4.2",
           "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}

HARNESS = {"probe_success", "probe_duration_seconds"}


def samples(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


def value(result, name, /, **labels):
    return samples(result, name)[tuple(sorted(labels.items()))]


async def probe_once(url: str, timeout: float = 2.0, **kw):
    probe = ApiProbe(ApiSettings(name="backend", url=url, timeout=timeout, **kw))
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


async def test_healthy_backend():
    async with HttpServer(lambda r: Response.json(HEALTHY)) as srv:
        result = await probe_once(srv.url)
    assert result.success, result.error
    assert value(result, "probe_http_status_code") == 200
    assert value(result, "probe_api_healthy") == 1
    assert value(result, "probe_api_check_healthy", check="database") == 1
    assert value(result, "probe_api_check_healthy", check="llm") == 1
    assert value(result, "probe_success") == 1
    assert result.details["status"] == 200 and result.details["version"] == "1.4.2"
    assert srv.requests[0].path == "/health"
    assert {s.name for s in result.samples} <= set(ApiProbe.METRICS) | HARNESS


async def test_503_degraded_is_a_failure_with_reason():
    doc = {**HEALTHY, "status": "degraded", "checks": {"database": "healthy", "pinecone": "down", "llm": "ok"}}
    async with HttpServer(lambda r: Response.json(doc, status=503)) as srv:
        result = await probe_once(srv.url)
    assert not result.success
    assert "HTTP 503" in result.error and "'degraded'" in result.error and "pinecone=down" in result.error
    assert value(result, "probe_http_status_code") == 503
    assert value(result, "probe_api_check_healthy", check="pinecone") == 0
    assert value(result, "probe_api_check_healthy", check="llm") == 1
    assert value(result, "probe_success") == 0


async def test_degraded_check_under_healthy_status_fails():
    doc = {**HEALTHY, "checks": {"database": {"status": "unhealthy", "error": "pool exhausted"}, "llm": True}}
    async with HttpServer(lambda r: Response.json(doc)) as srv:
        result = await probe_once(srv.url)
    assert not result.success
    assert "unhealthy checks: database=unhealthy" in result.error
    assert value(result, "probe_api_check_healthy", check="llm") == 1


async def test_non_json_health():
    async with HttpServer(lambda r: Response(200, "<html>oops</html>", {"content-type": "text/html"})) as srv:
        result = await probe_once(srv.url)
    assert not result.success
    assert "not a JSON object" in result.error and "oops" in result.error


async def test_connection_refused():
    result = await probe_once(f"http://127.0.0.1:{closed_port()}")
    assert not result.success
    assert result.error.startswith("cannot reach http://127.0.0.1:")
    assert "Connection refused" in result.error
    assert value(result, "probe_http_status_code") == 0


async def test_target_that_never_answers_times_out():
    async with SilentServer() as srv:
        result = await probe_once(f"http://127.0.0.1:{srv.port}", timeout=0.5)
    assert not result.success
    # normally the probe's own 0.45 s budget names the request; under heavy load the harness's 0.5 s may win
    assert result.error.startswith(("timeout after 0.45s (GET http://127.0.0.1:", "timeout after 0.5s"))
    assert result.duration_seconds < 2


async def test_synthetic_requests_and_json_condition():
    def handler(req):
        if req.path == "/health":
            return Response.json(HEALTHY)
        if req.path == "/api/v1/codebooks?limit=1":
            assert req.headers["x-api-key"] == "ck_live_secret_value_1234"
            return Response.json({"data": {"status": "ready", "items": [{"id": "cb1"}]}})
        if req.path == "/api/v1/recommend" and req.method == "POST":
            return Response.json({"accepted": req.json()["n"]}, status=201)
        return Response.json({"error": "not found"}, status=404)

    async with HttpServer(handler) as srv:
        result = await probe_once(srv.url, api_key="ck_live_secret_value_1234", requests=[
            {"name": "list", "path": "/api/v1/codebooks?limit=1", "json_path": "data.status", "equals": "ready"},
            {"name": "first-id", "path": "/api/v1/codebooks?limit=1", "json_path": "data.items.0.id"},
            {"name": "recommend", "method": "post", "path": "/api/v1/recommend", "json": {"n": 3},
             "expected_status": [200, 201], "json_path": "accepted", "equals": 3, "latency_budget": "5s"},
            {"name": "missing", "path": "/nope"},
            {"name": "wrong-value", "path": "/api/v1/codebooks?limit=1", "json_path": "data.status", "equals": "done"},
        ])
    assert not result.success
    assert value(result, "probe_api_request_success", request="list") == 1
    assert value(result, "probe_api_request_success", request="first-id") == 1
    assert value(result, "probe_api_request_success", request="recommend") == 1
    assert value(result, "probe_api_request_status_code", request="recommend") == 201
    assert value(result, "probe_api_request_success", request="missing") == 0
    assert value(result, "probe_api_request_success", request="wrong-value") == 0
    assert "request missing: HTTP 404, expected 200" in result.error
    assert "request wrong-value: data.status is 'ready', expected 'done'" in result.error
    assert "ck_live_secret_value_1234" not in repr(result)


async def test_latency_budget_exceeded():
    async with HttpServer(lambda r: Response.json(HEALTHY)) as srv:
        result = await probe_once(srv.url, health_path=None,
                                  requests=[{"name": "fast", "path": "/health", "latency_budget": 0}])
    assert not result.success and "over the 0s budget" in result.error
    assert value(result, "probe_api_request_success", request="fast") == 0


async def test_injected_client_is_used_and_not_closed():
    async with HttpServer(lambda r: Response.json(HEALTHY)) as srv, httpx.AsyncClient() as client:
        probe = ApiProbe(ApiSettings(name="b", url=srv.url), http_client=client)
        result = await run_probe(probe, 2)
        await probe.close()
        assert not client.is_closed
    assert result.success


def test_settings_validation_and_target():
    s = ApiSettings(name="b", url="https://user:hunter2@api.example/")
    assert "hunter2" not in s.target()
    with pytest.raises(ValidationError):
        ApiSettings(name="b", url="ftp://x")
    with pytest.raises(ValidationError):
        ApiSettings(name="b", url="http://x", bogus=1)
    with pytest.raises(ValidationError):
        ApiSettings(name="b", url="http://x", requests=[{"name": "r", "method": "FETCH"}])
    with pytest.raises(ValidationError, match="equals needs json_path"):
        ApiSettings(name="b", url="http://x", requests=[{"name": "r", "equals": 1}])
    with pytest.raises(ValidationError, match="at most one of body and json"):
        ApiSettings(name="b", url="http://x", requests=[{"name": "r", "body": "x", "json": {}}])


def test_check_values_and_json_lookup():
    assert check_is_healthy("OK") and check_is_healthy("up") and check_is_healthy(True)
    assert check_is_healthy({"status": "healthy"})
    assert not check_is_healthy("degraded") and not check_is_healthy(False) and not check_is_healthy(None)
    assert json_lookup({"a": [{"b": 1}]}, "a.0.b") == 1
    assert json_lookup({"a": []}, "a.0") is not None  # the private "missing" sentinel


async def test_https_self_signed_needs_verify_tls_off(tmp_path):
    leaf = issue("localhost", days=30, sans=["127.0.0.1"])
    ctx = server_context(tmp_path, leaf)
    async with HttpServer(lambda r: Response.json(HEALTHY), ssl_context=ctx) as srv, httpx.AsyncClient() as shared:
        strict = await probe_once(srv.url)
        probe = ApiProbe(ApiSettings(name="b", url=srv.url, verify_tls=False), http_client=shared)
        relaxed = await run_probe(probe, 2)
        await probe.close()
    assert not strict.success and strict.error.endswith("certificate verify failed: self-signed certificate")
    assert relaxed.success, relaxed.error
