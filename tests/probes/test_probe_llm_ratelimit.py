"""Rate-limit headroom of the llm probe: header parsing, and the 1-token request against the
sample backend's OpenAI and Anthropic stand-ins (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from examples.sample_backend import serve
from examples.vendors import ANTHROPIC_LIMITS, OPENAI_LIMITS, go_duration
from probes.base import run_probe
from probes.genai import DURATION, TOKENS
from probes.llm import LlmProbe, LlmSettings
from probes.ratelimit import RateLimit, parse_go_duration, parse_ratelimits, parse_rfc3339

KEY = "sk-test-0123456789abcdef"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize("text, seconds", [("6m0s", 360.0), ("1s", 1.0), ("17ms", 0.017), ("1h2m3.5s", 3723.5),
                                           ("0s", 0.0), ("59.88s", 59.88), ("250us", 0.00025)])
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "6 minutes", "m", "1x", "2025-08-21T12:40:59Z"])
def test_not_go_durations(text):
    assert parse_go_duration(text) is None


def test_rfc3339():
    assert parse_rfc3339("2026-01-01T00:00:30Z") == NOW + 30
    assert parse_rfc3339("2026-01-01T01:00:30+01:00") == NOW + 30
    assert parse_rfc3339("6m0s") is None and parse_rfc3339("2026-01-01T00:00:30") is None


def test_openai_headers():
    headers = httpx.Headers({"x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999",
                             "x-ratelimit-reset-requests": "12ms", "x-ratelimit-limit-tokens": "160000",
                             "x-ratelimit-remaining-tokens": "40000", "x-ratelimit-reset-tokens": "6m0s"})
    assert parse_ratelimits("openai", headers, NOW) == {
        "requests": RateLimit(5000, 4999, pytest.approx(NOW + 0.012)),
        "tokens": RateLimit(160000, 40000, NOW + 360)}


def test_anthropic_headers_and_minus_one_is_unknown():
    headers = httpx.Headers({
        "anthropic-ratelimit-requests-limit": "1000", "anthropic-ratelimit-requests-remaining": "999",
        "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:59Z",
        "anthropic-ratelimit-input-tokens-limit": "80000", "anthropic-ratelimit-input-tokens-remaining": "-1",
        "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:01:00Z",
        "anthropic-ratelimit-tokens-limit": "-1", "anthropic-ratelimit-tokens-remaining": "-1"})
    assert parse_ratelimits("anthropic", headers, NOW) == {
        "requests": RateLimit(1000, 999, NOW + 59),
        "input-tokens": RateLimit(80000, None, NOW + 60)}
    # OpenAI's names mean nothing to the Anthropic parser and the other way round
    assert parse_ratelimits("openai", headers, NOW) == {}


def test_stand_in_formats_resets_as_go_does():
    assert go_duration(0.12) == "120ms" and go_duration(6.5) == "6.5s" and go_duration(60) == "1m0s"


@pytest.fixture
async def backend():
    running = await serve("127.0.0.1", 0, seed=7, traffic_rps=0)
    try:
        yield running
    finally:
        await running.stop()


def values(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


async def probe_runs(settings, n=1):
    probe = LlmProbe(settings)
    try:
        return [await run_probe(probe, 10.0) for _ in range(n)]
    finally:
        await probe.close()


async def test_models_list_alone_carries_no_rate_limit_headers(backend):
    (result,) = await probe_runs(LlmSettings(name="llm", provider="openai", api_key=KEY,
                                             base_url=f"{backend.url}/v1"))
    assert result.success and not values(result, "probe_llm_ratelimit_remaining")
    assert not values(result, f"{DURATION}_count")  # no GenAI operation: the models list is not one


async def test_openai_one_token_request_exports_headroom(backend):
    settings = LlmSettings(name="llm", provider="openai", api_key=KEY, base_url=f"{backend.url}/v1",
                           completion_model="gpt-4o-mini", ratelimit_horizon="30m")
    before = datetime.now(timezone.utc).timestamp()
    first, second = await probe_runs(settings, 2)
    assert first.success and second.success, second.error
    limit = values(second, "probe_llm_ratelimit_limit")
    assert limit == {(("resource", "requests"),): OPENAI_LIMITS[0], (("resource", "tokens"),): OPENAI_LIMITS[1]}
    remaining = values(second, "probe_llm_ratelimit_remaining")
    assert remaining[(("resource", "requests"),)] == OPENAI_LIMITS[0] - 2
    used = {kind: v for ((_, kind),), v in values(second, "probe_llm_completion_tokens").items()}
    assert used["output"] == 1 and used["input"] > 0
    assert remaining[(("resource", "tokens"),)] == OPENAI_LIMITS[1] - 2 * (used["input"] + used["output"])
    ratio = values(second, "probe_llm_ratelimit_remaining_ratio")[(("resource", "tokens"),)]
    assert ratio == pytest.approx(remaining[(("resource", "tokens"),)] / OPENAI_LIMITS[1])
    reset = values(second, "probe_llm_ratelimit_reset_timestamp_seconds")[(("resource", "tokens"),)]
    assert before < reset <= before + 61
    assert values(second, "probe_llm_ratelimit_horizon_seconds")[(("resource", "tokens"),)] == 1800
    chat = (("gen_ai_operation_name", "chat"), ("gen_ai_provider_name", "openai"),
            ("gen_ai_request_model", "gpt-4o-mini"))
    assert values(second, f"{DURATION}_count") == {chat: 2}
    assert values(second, f"{TOKENS}_sum")[(*chat, ("gen_ai_token_type", "output"))] == 2
    assert {s.name for s in second.samples} <= set(LlmProbe.METRICS) | {"probe_success", "probe_duration_seconds"}


async def test_anthropic_one_token_request_exports_four_resources(backend):
    settings = LlmSettings(name="claude", provider="anthropic", api_key=KEY, base_url=f"{backend.url}/v1",
                           completion_model="claude-3-5-haiku-20241022")
    (result,) = await probe_runs(settings)
    assert result.success, result.error
    limit = values(result, "probe_llm_ratelimit_limit")
    assert limit == {(("resource", r),): v for r, v in zip(("requests", "tokens", "input-tokens", "output-tokens"),
                                                           ANTHROPIC_LIMITS)}
    assert values(result, "probe_llm_ratelimit_remaining")[(("resource", "output-tokens"),)] == \
        ANTHROPIC_LIMITS[3] - 1
    reset = values(result, "probe_llm_ratelimit_reset_timestamp_seconds")[(("resource", "requests"),)]
    assert reset == int(reset)  # RFC 3339 in whole seconds


async def test_rate_limited_one_token_request_is_state_rate_limited(backend):
    backend.backend.set_faults({"vendor_status": {"llm": 429}})
    settings = LlmSettings(name="llm", provider="openai", api_key=KEY, base_url=f"{backend.url}/v1",
                           completion_model="gpt-4o-mini")
    (result,) = await probe_runs(settings)
    # the models list is refused first: the 1-token request is not sent
    assert values(result, "probe_llm_state")[(("state", "rate_limited"),)] == 1
    assert not values(result, f"{DURATION}_count")


async def test_a_429_on_the_one_token_request_still_exports_its_headers():
    from tests.support.probe_servers import HttpServer, Response

    def handler(req):
        if req.path == "/v1/models":
            return Response.json({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        assert req.json()["max_completion_tokens"] == 1
        return Response.json({"error": {"message": "Rate limit reached for gpt-4o-mini on tokens per min",
                                        "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}, 429,
                             **{"retry-after": "6", "x-ratelimit-limit-tokens": "200000",
                                "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6s",
                                "x-ratelimit-limit-requests": "-1", "x-ratelimit-remaining-requests": "-1"})

    async with HttpServer(handler) as srv:
        settings = LlmSettings(name="llm", provider="openai", api_key=KEY, base_url=f"{srv.url}/v1",
                               completion_model="gpt-4o-mini")
        (result,) = await probe_runs(settings)
    assert not result.success
    assert result.error.startswith("rate_limited: 1-token request to gpt-4o-mini: rate limited (HTTP 429, tokens:")
    assert values(result, "probe_llm_state")[(("state", "rate_limited"),)] == 1
    assert values(result, "probe_llm_ratelimit_remaining_ratio") == {(("resource", "tokens"),): 0.0}
    assert (("resource", "requests"),) not in values(result, "probe_llm_ratelimit_limit")  # -1: unknown
    chat = (("error_type", "429"), ("gen_ai_operation_name", "chat"), ("gen_ai_provider_name", "openai"),
            ("gen_ai_request_model", "gpt-4o-mini"))
    assert values(result, f"{DURATION}_count") == {chat: 1}
    assert not values(result, f"{TOKENS}_count")


async def test_a_completion_without_usage_is_state_error():
    from tests.support.probe_servers import HttpServer, Response

    def handler(req):
        if req.path == "/v1/models":
            return Response.json({"data": [{"id": "claude-3-5-haiku-20241022", "type": "model"}]})
        assert req.path == "/v1/messages" and req.json()["max_tokens"] == 1
        return Response.json({"type": "message", "content": []})

    async with HttpServer(handler) as srv:
        settings = LlmSettings(name="llm", provider="anthropic", api_key=KEY, base_url=f"{srv.url}/v1",
                               completion_model="claude-3-5-haiku-20241022")
        (result,) = await probe_runs(settings)
    assert result.error == ("error: 1-token request to claude-3-5-haiku-20241022: HTTP 200 but the body is not a "
                            "completion with usage")
