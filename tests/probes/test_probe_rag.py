"""The rag probe through the real openai and pinecone SDKs against the sample backend's stand-ins
(real HTTP on 127.0.0.1 speaking OpenAI's embeddings and Pinecone's query shapes)."""

from __future__ import annotations

import pytest

from examples.sample_backend import serve
from examples.vendors import RAG_CANARY_TEXT, RAG_NAMESPACE
from probes.base import run_probe
from probes.genai import DURATION, TOKENS
from probes.rag import RagProbe, RagSettings
from tests.support.probe_servers import closed_port

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
async def backend():
    running = await serve("127.0.0.1", 0, seed=7, traffic_rps=0)
    try:
        yield running
    finally:
        await running.stop()


def settings(url: str, **over) -> RagSettings:
    base = dict(name="rag", openai_api_key=KEY, openai_base_url=f"{url}/v1", pinecone_api_key="pc-test-0123456789",
                pinecone_host=url, namespace=RAG_NAMESPACE, canary_id="rag-canary", canary_text=RAG_CANARY_TEXT,
                min_score=0.95)
    return RagSettings(**{**base, **over})


def values(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


async def run_twice(probe):
    try:
        first = await run_probe(probe, 10.0)
        return first, await run_probe(probe, 10.0)
    finally:
        await probe.close()


async def test_canary_comes_back_first_and_every_step_is_timed(backend):
    first, result = await run_twice(RagProbe(settings(backend.url)))
    assert first.success and result.success, result.error
    assert values(result, "probe_rag_step_success") == {(("step", "embed"),): 1, (("step", "query"),): 1,
                                                         (("step", "check"),): 1}
    steps = values(result, "probe_rag_step_duration_seconds")
    assert set(steps) == {(("step", "embed"),), (("step", "query"),)} and all(v > 0 for v in steps.values())
    total = values(result, "probe_rag_duration_seconds")[()]
    assert total >= sum(steps.values())
    assert values(result, "probe_rag_canary_rank")[()] == 1
    assert values(result, "probe_rag_canary_score")[()] == pytest.approx(1.0, abs=1e-4)
    assert values(result, "probe_rag_up")[()] == 1
    # GenAI semantic-convention histograms of the embeddings call, cumulative over the two runs
    labels = (("gen_ai_operation_name", "embeddings"), ("gen_ai_provider_name", "openai"),
              ("gen_ai_request_model", "text-embedding-3-small"))
    assert values(result, f"{DURATION}_count") == {labels: 2}
    assert values(result, f"{DURATION}_bucket")[(*labels, ("le", "+Inf"))] == 2
    tokens = values(result, f"{TOKENS}_sum")
    assert tokens[(*labels, ("gen_ai_token_type", "input"))] > 0
    assert {s.name for s in result.samples} <= set(RagProbe.METRICS) | {"probe_success", "probe_duration_seconds"}


async def test_other_text_misses_the_canary(backend):
    _, result = await run_twice(RagProbe(settings(backend.url, canary_text="a different text")))
    assert not result.success
    assert values(result, "probe_rag_step_success")[(("step", "check"),)] == 0
    # the canary's vector is nearly orthogonal to another text's: not first, or far below 0.95
    assert result.error.startswith("check: canary ")


async def test_wrong_namespace_returns_no_matches(backend):
    _, result = await run_twice(RagProbe(settings(backend.url, namespace="empty")))
    assert result.error == "check: canary 'rag-canary' not in the top 3 matches (no matches)"
    assert values(result, "probe_rag_canary_rank")[()] == 0


async def test_invalid_openai_key_fails_at_embed_without_leaking_it(backend):
    bad = "invalid-key-0123456789abcdef"
    _, result = await run_twice(RagProbe(settings(backend.url, openai_api_key=bad)))
    assert not result.success
    assert result.error.startswith("embed: invalid API key (HTTP 401)")
    assert bad not in result.error
    assert (("step", "query"),) not in values(result, "probe_rag_step_success")
    errors = values(result, f"{DURATION}_count")
    assert any(("error_type", "401") in k for k in errors)


async def test_pinecone_outage_fails_at_query(backend):
    backend.backend.set_faults({"vendor_status": {"pinecone": 503}})
    _, result = await run_twice(RagProbe(settings(backend.url)))
    assert values(result, "probe_rag_step_success") == {(("step", "embed"),): 1, (("step", "query"),): 0}
    assert result.error.startswith("query: HTTP 503")


async def test_pinecone_unreachable(backend):
    _, result = await run_twice(RagProbe(settings(backend.url, pinecone_host=f"http://127.0.0.1:{closed_port()}")))
    assert not result.success and result.error.startswith("query: ")


async def test_dimension_mismatch_is_a_query_error(backend):
    _, result = await run_twice(RagProbe(settings(backend.url, dimensions=256)))
    assert result.error.startswith("query: HTTP 400") and "dimension" in result.error


async def test_endless_embeddings_answer_stops_at_body_size_limit(backend):
    from tests.support.hostile_servers import StreamingServer, endless

    with StreamingServer({"/v1/embeddings": endless(b'{"data": [', content_type="application/json")}) as srv:
        probe = RagProbe(settings(backend.url, openai_base_url=f"{srv.url}/v1", body_size_limit="1MiB"))
        try:
            result = await run_probe(probe, 20.0)
        finally:
            await probe.close()
    assert not result.success
    assert result.error == "embed: body exceeds body_size_limit 1MiB"
