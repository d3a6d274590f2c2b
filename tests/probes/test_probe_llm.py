"""The llm probe against a local server speaking OpenAI's and Anthropic's /v1/models shapes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from probes.base import run_probe
from probes.llm import LlmProbe, LlmSettings
from tests.support.probe_servers import HttpServer, Response, SilentServer, closed_port

GOOD_KEY = "sk-proj-GOODkey0123456789abcdef"
BAD_KEY = "sk-proj-BADkey00000000000000000"

OPENAI_MODELS = {"object": "list", "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"}]}
ANTHROPIC_MODELS = {"data": [
    {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4",
     "created_at": "2025-05-22T00:00:00Z"}],
    "has_more": False, "first_id": "claude-sonnet-4-20250514", "last_id": "claude-sonnet-4-20250514"}

HARNESS = {"probe_success", "probe_duration_seconds"}


def provider_server(mode: str = "ok"):
    """OpenAI at /openai/v1/models, Anthropic at /anthropic/v1/models, with their real auth and errors."""

    def handler(req):
        if mode == "hang":
            return Response(hang=True)
        if mode == "500":
            return Response.json({"error": {"type": "server_error", "message": "The server had an error"}}, 500)
        if req.path == "/openai/v1/models":
            if req.headers.get("authorization") != f"Bearer {GOOD_KEY}":
                return Response.json({"error": {
                    "message": f"Incorrect API key provided: {req.headers.get('authorization', '')[7:]}.",
                    "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, 401)
            if mode == "429":
                return Response.json({"error": {"message": "Rate limit reached for requests",
                                                "type": "requests", "code": "rate_limit_exceeded"}}, 429,
                                     **{"retry-after": "20"})
            return Response.json(OPENAI_MODELS)
        if req.path == "/anthropic/v1/models":
            if req.headers.get("anthropic-version") != "2023-06-01":
                return Response.json({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "anthropic-version missing"}}, 400)
            if req.headers.get("x-api-key") != GOOD_KEY:
                return Response.json({"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}}, 401)
            if mode == "429":
                return Response.json({"type": "error", "error": {
                    "type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}}, 429)
            if mode == "not-a-list":
                return Response.json({"hello": "world"})
            return Response.json(ANTHROPIC_MODELS)
        return Response.json({"error": {"type": "not_found", "message": "no"}}, 404)

    return HttpServer(handler)


def value(result, name, /, **labels):
    found = {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
    return found[tuple(sorted(labels.items()))]


def state(result):
    return [s.labels["state"] for s in result.samples if s.name == "probe_llm_state" and s.value == 1]


async def check(provider, base_url, key=GOOD_KEY, timeout=2.0, **kw):
    probe = LlmProbe(LlmSettings(name="llm", provider=provider, base_url=base_url, api_key=key, timeout=timeout, **kw))
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_valid_key(provider):
    async with provider_server() as srv:
        result = await check(provider, f"{srv.url}/{provider}/v1")
    assert result.success, result.error
    assert state(result) == ["ok"]
    assert value(result, "probe_llm_up") == 1 and value(result, "probe_llm_http_status_code") == 200
    assert value(result, "probe_llm_models") == (2 if provider == "openai" else 1)
    assert len([s for s in result.samples if s.name == "probe_llm_state"]) == 5
    assert result.details["key"] == "sk-pro..."
    assert {s.name for s in result.samples} <= set(LlmProbe.METRICS) | HARNESS


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_invalid_key(provider):
    async with provider_server() as srv:
        result = await check(provider, f"{srv.url}/{provider}/v1", key=BAD_KEY)
    assert not result.success
    assert state(result) == ["invalid_key"]
    assert result.error.startswith("invalid_key: invalid API key (HTTP 401")
    assert BAD_KEY not in result.error and BAD_KEY not in repr(result)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_rate_limited(provider):
    async with provider_server("429") as srv:
        result = await check(provider, f"{srv.url}/{provider}/v1")
    assert state(result) == ["rate_limited"] and not result.success
    assert value(result, "probe_llm_http_status_code") == 429
    if provider == "openai":
        assert "retry-after 20s" in result.error


async def test_outage_500():
    async with provider_server("500") as srv:
        result = await check("openai", f"{srv.url}/openai/v1")
    assert state(result) == ["outage"]
    assert "provider error (HTTP 500, server_error: The server had an error)" in result.error


async def test_outage_connection_refused():
    result = await check("anthropic", f"http://127.0.0.1:{closed_port()}/v1")
    assert state(result) == ["outage"] and result.error == "outage: cannot connect: Connection refused"
    assert value(result, "probe_llm_http_status_code") == 0


async def test_outage_hang_times_out():
    async with provider_server("hang") as srv:
        probe = LlmProbe(LlmSettings(name="llm", provider="openai", base_url=f"{srv.url}/openai/v1",
                                     api_key=GOOD_KEY, timeout=0.3))
        # the probe's own timeout (0.3 s) fires before the harness's (1 s): classified as an outage
        result = await run_probe(probe, 1.0)
        await probe.close()
    assert state(result) == ["outage"] and "timeout after 0.3s" in result.error


async def test_silent_server_under_harness_timeout():
    async with SilentServer() as srv:
        result = await check("openai", f"http://127.0.0.1:{srv.port}/v1", timeout=0.5)
    assert not result.success and "timeout after 0.5s" in result.error


async def test_unexpected_body_and_missing_model():
    async with provider_server("not-a-list") as srv:
        result = await check("anthropic", f"{srv.url}/anthropic/v1")
    assert state(result) == ["error"] and "not a model list" in result.error
    async with provider_server() as srv:
        result = await check("openai", f"{srv.url}/openai/v1", expect_model="gpt-5-ultra")
    assert state(result) == ["error"] and "'gpt-5-ultra' not listed" in result.error


def test_settings():
    s = LlmSettings(name="l", provider="anthropic", api_key="k")
    assert s.target() == "https://api.anthropic.com/v1"
    assert LlmSettings(name="l", provider="openai", api_key="k").target() == "https://api.openai.com/v1"
    with pytest.raises(ValidationError):
        LlmSettings(name="l", provider="gemini", api_key="k")
    assert "sk-" not in repr(LlmSettings(name="l", provider="openai", api_key=GOOD_KEY))
