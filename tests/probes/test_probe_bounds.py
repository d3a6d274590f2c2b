"""``body_size_limit`` of the probes that read an HTTP body (api, llm, pinecone), against real local
servers sending endless, huge and compressed-huge bodies: the probe fails with the reason, reads
no further than the limit, and its memory stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from probes.api import ApiProbe, ApiSettings
from probes.base import DEFAULT_BODY_SIZE_LIMIT, format_size, parse_size, run_probe
from probes.llm import LlmProbe, LlmSettings
from probes.pinecone import PineconeProbe, PineconeSettings
from tests.support.hostile_servers import Body, StreamingServer, endless, sized

MiB = 1 << 20
#: What the kernel's socket buffers may hold beyond what the client read (send + receive).
SOCKET_SLACK = 16 * MiB
JSON = "application/json"


class Peak:
    """The peak of Python allocations traced while the block ran (tracemalloc), in bytes."""

    peak = 0


@contextlib.contextmanager
def traced() -> Iterator[Peak]:
    out = Peak()
    tracemalloc.start()
    try:
        yield out
    finally:
        out.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


async def sent(srv: StreamingServer, path: str) -> int:
    """Bytes the server sent on ``path`` before the client hung up (waits for its thread to notice)."""
    deadline = time.monotonic() + 10
    while not srv.sent.get(path):
        assert time.monotonic() < deadline, "the server never finished the request"
        await asyncio.sleep(0.05)
    return srv.sent[path][0]


def gzip_bomb(size: int) -> Body:
    """A gzip body that inflates to ``size`` bytes (it travels as a few tens of kilobytes)."""
    packed = gzip.compress(b'{"pad": "' + b"0" * size + b'"}', compresslevel=9)
    return Body(lambda: [packed], length=len(packed), content_type=JSON, headers={"Content-Encoding": "gzip"})


async def run(probe, timeout: float):
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


def value(result, name, /, **labels):
    found = {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
    return found[tuple(sorted(labels.items()))]


# ---------------------------------------------------------------- sizes


def test_sizes_parse_like_prometheus_and_format_in_binary_units():
    assert parse_size("10MiB") == parse_size("10MB") == parse_size("10mib") == 10 * MiB
    assert parse_size("512KiB") == parse_size("512KB") == 512 * 1024
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("1.5KiB") == 1536
    assert parse_size(2048) == parse_size("2048") == parse_size("2048B") == 2048
    assert parse_size(0) == parse_size("0") == 0
    for bad in ("-1", -1, "ten", "10 parsecs", "", True):
        with pytest.raises(ValueError, match="expected a size such as 10MiB"):
            parse_size(bad)
    assert format_size(10 * MiB) == "10MiB"
    assert format_size(1536) == "1536B" and format_size(3 << 30) == "3GiB" and format_size(0) == "0B"


def test_every_http_probe_has_a_10mib_default_and_validates_the_setting():
    assert DEFAULT_BODY_SIZE_LIMIT == 10 * MiB
    api = ApiSettings(name="a", url="http://127.0.0.1:1")
    llm = LlmSettings(name="l", provider="openai", api_key="k")
    pc = PineconeSettings(name="p", api_key="k", host="http://127.0.0.1:1", index="i")
    assert api.body_size_limit == llm.body_size_limit == pc.body_size_limit == 10 * MiB
    assert ApiSettings(name="a", url="http://127.0.0.1:1", body_size_limit="1MB").body_size_limit == MiB
    assert ApiSettings(name="a", url="http://127.0.0.1:1", body_size_limit=0).body_size_limit == 0
    with pytest.raises(ValidationError, match='expected a size such as 10MiB, got "lots"'):
        LlmSettings(name="l", provider="openai", api_key="k", body_size_limit="lots")


# ---------------------------------------------------------------- api


async def test_api_endless_health_body_fails_at_the_limit_with_bounded_memory():
    with StreamingServer({"/health": endless(b'{"status": "healthy", "pad": "', content_type=JSON)}) as srv:
        with traced() as mem:
            result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20, body_size_limit="1MiB")), 20)
        assert await sent(srv, "/health") < 1 * MiB + SOCKET_SLACK
    assert not result.success
    assert result.error.startswith(f"body exceeds body_size_limit 1MiB (GET {srv.url}/health)"), result.error
    assert value(result, "probe_http_status_code") == 200  # the answer came; its body was refused
    assert value(result, "probe_api_healthy") == 0
    assert result.duration_seconds < 15  # refused at the limit, not at the timeout
    assert mem.peak < 8 * MiB, mem.peak


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
async def test_api_50mib_body_fails_at_the_default_10mib(declare):
    body = sized(50 * MiB, b'{"status": "healthy", "pad": "', declare=declare, content_type=JSON)
    with StreamingServer({"/health": body}) as srv:
        with traced() as mem:
            result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20)), 20)
        assert await sent(srv, "/health") < 10 * MiB + SOCKET_SLACK
    assert not result.success
    assert result.error.startswith("body exceeds body_size_limit 10MiB"), result.error
    assert mem.peak < 3 * 10 * MiB, mem.peak  # chunks held up to the limit, then refused


async def test_api_synthetic_request_over_the_limit_fails_only_that_request():
    with StreamingServer({
        "/health": Body(lambda: [b'{"status": "healthy"}'], length=21, content_type=JSON),
        "/big": sized(3 * MiB, b"[", content_type=JSON),
        "/small": Body(lambda: [b'{"ok": 1}'], length=9, content_type=JSON),
    }) as srv:
        result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20, body_size_limit="1MiB", requests=[
            {"name": "big", "path": "/big"}, {"name": "small", "path": "/small", "json_path": "ok"}])), 20)
    assert not result.success
    assert result.error == f"request big: body exceeds body_size_limit 1MiB (GET {srv.url}/big)"
    assert value(result, "probe_api_healthy") == 1
    assert value(result, "probe_api_request_success", request="big") == 0
    assert value(result, "probe_api_request_status_code", request="big") == 200
    assert value(result, "probe_api_request_success", request="small") == 1


async def test_api_limit_counts_the_uncompressed_body():
    with StreamingServer({"/health": gzip_bomb(20 * MiB)}) as srv:
        with traced() as mem:
            result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20, body_size_limit="1MiB")), 20)
    assert not result.success and result.error.startswith("body exceeds body_size_limit 1MiB"), result.error
    assert mem.peak < 12 * MiB, mem.peak  # at most one inflated read beyond the limit


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_api_compressed_health_within_the_limit_is_read(encoding):
    doc = b'{"status": "healthy", "pad": "' + b"y" * 300_000 + b'"}'
    if encoding == "gzip":
        packed = gzip.compress(doc)
    elif encoding == "deflate":
        packed = zlib.compress(doc)
    else:
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        packed = c.compress(doc) + c.flush()
    header = {"Content-Encoding": "deflate" if encoding == "raw-deflate" else encoding}
    body = Body(lambda: [packed[:1000], packed[1000:]], length=len(packed), content_type=JSON, headers=header)
    with StreamingServer({"/health": body}) as srv:
        result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20, body_size_limit="1MiB")), 20)
    assert result.success, result.error


async def test_api_body_that_is_not_its_encoding_fails_with_the_reason():
    body = Body(lambda: [b"not gzip at all"], length=15, content_type=JSON, headers={"Content-Encoding": "gzip"})
    with StreamingServer({"/health": body}) as srv:
        result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20)), 20)
    assert not result.success
    assert result.error.startswith("cannot decode the gzip body: "), result.error
    assert result.error.endswith(f"(GET {srv.url}/health)")


async def test_api_limit_zero_reads_a_large_body_whole():
    doc = b'{"status": "healthy", "pad": "' + b"x" * (12 * MiB) + b'"}'
    with StreamingServer({"/health": Body(lambda: [doc], length=len(doc), content_type=JSON)}) as srv:
        result = await run(ApiProbe(ApiSettings(name="b", url=srv.url, timeout=20, body_size_limit=0)), 20)
    assert result.success, result.error


# ---------------------------------------------------------------- llm


async def test_llm_endless_model_list_is_state_error_with_the_reason():
    with StreamingServer({"/v1/models": endless(b'{"object": "list", "data": [', b'{"id": "m"},' * 4096,
                                                content_type=JSON)}) as srv:
        with traced() as mem:
            result = await run(LlmProbe(LlmSettings(name="l", provider="openai", api_key="sk-test-key-1234567890",
                                                    base_url=srv.url + "/v1", timeout=20)), 20)
        assert await sent(srv, "/v1/models") < 10 * MiB + SOCKET_SLACK
    assert not result.success
    assert result.error == "error: body exceeds body_size_limit 10MiB (HTTP 200)"
    assert value(result, "probe_llm_state", state="error") == 1
    assert value(result, "probe_llm_http_status_code") == 200
    assert mem.peak < 3 * 10 * MiB, mem.peak


# ---------------------------------------------------------------- pinecone (through the SDK)


def pinecone(srv: StreamingServer, **kw) -> PineconeProbe:
    return PineconeProbe(PineconeSettings(name="pc", api_key="pcsk_test_0123456789", host=srv.url,
                                          index="codebook-items", timeout=20, **kw))


async def test_pinecone_sdk_stops_reading_an_endless_body_at_the_limit():
    with StreamingServer({"/describe_index_stats": endless(b'{"namespaces": {', content_type=JSON)}) as srv:
        with traced() as mem:
            result = await run(pinecone(srv, body_size_limit="2MiB"), 20)
        assert await sent(srv, "/describe_index_stats") < 2 * MiB + SOCKET_SLACK
    assert not result.success
    assert result.error == "error: body exceeds body_size_limit 2MiB"
    assert value(result, "probe_pinecone_up") == 0
    assert result.logs == []  # the SDK's client was found and bounded
    assert mem.peak < 12 * MiB, mem.peak


async def test_pinecone_limit_counts_the_uncompressed_body_and_a_small_answer_passes():
    stats = b'{"namespaces": {"": {"vectorCount": 5}}, "dimension": 8, "indexFullness": 0.0, "totalVectorCount": 5}'
    with StreamingServer({"/describe_index_stats": gzip_bomb(5 * MiB)}) as srv:
        result = await run(pinecone(srv, body_size_limit="1MiB"), 20)
    assert not result.success and result.error == "error: body exceeds body_size_limit 1MiB"
    with StreamingServer({"/describe_index_stats": Body(lambda: [stats], length=len(stats), content_type=JSON)}) as srv:
        result = await run(pinecone(srv, body_size_limit="1KiB"), 20)
    assert result.success, result.error
    assert value(result, "probe_pinecone_vectors") == 5
