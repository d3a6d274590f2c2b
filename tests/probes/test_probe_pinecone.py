"""The pinecone probe through the real pinecone SDK against a local server speaking the data-plane REST shape."""

from __future__ import annotations

from probes.base import run_probe
from probes.pinecone import PineconeProbe, PineconeSettings
from tests.support.probe_servers import HttpServer, Response, SilentServer, closed_port

KEY = "pcsk_GOOD_0123456789abcdefghij"
STATS = {"namespaces": {"": {"vectorCount": 200}, "codebooks": {"vectorCount": 1000}},
         "dimension": 1536, "indexFullness": 0.1, "totalVectorCount": 1200}

HARNESS = {"probe_success", "probe_duration_seconds"}


def index_server(mode: str = "ok"):
    def handler(req):
        if mode == "hang":
            return Response(hang=True)
        if req.method != "POST" or req.path != "/describe_index_stats":
            return Response.json({"error": {"code": "NOT_FOUND", "message": "no route"}, "status": 404}, 404)
        if req.headers.get("api-key") != KEY:
            return Response.json({"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"},
                                  "status": 401}, 401)
        if mode == "forbidden":
            return Response.json({"error": {"code": "PERMISSION_DENIED", "message": "Forbidden"}, "status": 403}, 403)
        if mode == "503":
            return Response.json({"error": {"code": "UNAVAILABLE", "message": "Service unavailable"},
                                  "status": 503}, 503)
        assert req.headers.get("x-pinecone-api-version")
        return Response.json(STATS)

    return HttpServer(handler)


def value(result, name, /, **labels):
    found = {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
    return found[tuple(sorted(labels.items()))]


def names(result):
    return {s.name for s in result.samples}


async def check(host, key=KEY, timeout=2.0):
    probe = PineconeProbe(PineconeSettings(name="pc", api_key=key, host=host, index="codebook-items", timeout=timeout))
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


async def test_stats_through_the_sdk():
    async with index_server() as srv:
        result = await check(srv.url)
        assert len(srv.requests) == 1
    assert result.success, result.error
    assert value(result, "probe_pinecone_vectors") == 1200
    assert value(result, "probe_pinecone_index_fullness_ratio") == 0.1
    assert value(result, "probe_pinecone_dimension") == 1536
    assert value(result, "probe_pinecone_namespaces") == 2
    assert value(result, "probe_pinecone_up") == 1 and value(result, "probe_pinecone_auth_ok") == 1
    assert result.details["vectors"] == 1200
    assert {s.name for s in result.samples} <= set(PineconeProbe.METRICS) | HARNESS


async def test_invalid_key_is_not_an_outage():
    async with index_server() as srv:
        result = await check(srv.url, key="pcsk_BAD_000000000000000000000")
    assert not result.success
    assert result.error == "invalid API key (HTTP 401)"
    assert value(result, "probe_pinecone_auth_ok") == 0 and value(result, "probe_pinecone_up") == 0
    async with index_server("forbidden") as srv:
        result = await check(srv.url)
    assert result.error == "invalid API key (HTTP 403)"


async def test_5xx_is_an_outage_reported_after_one_attempt():
    async with index_server("503") as srv:
        result = await check(srv.url)
        assert len(srv.requests) == 1  # no SDK retries inside a probe run
    assert not result.success
    assert result.error.startswith("outage: HTTP 503") and "Service unavailable" in result.error
    assert "probe_pinecone_auth_ok" not in names(result)


async def test_connection_refused_is_an_outage():
    result = await check(f"http://127.0.0.1:{closed_port()}")
    assert not result.success
    assert result.error.startswith("outage: cannot connect")
    assert "probe_pinecone_auth_ok" not in names(result)


async def test_hung_server_times_out():
    async with SilentServer() as srv:
        result = await check(f"http://127.0.0.1:{srv.port}", timeout=0.5)
    assert not result.success and "timeout after 0.5s" in result.error
    assert result.duration_seconds < 2


def test_target_is_the_index_name_and_key_hidden():
    s = PineconeSettings(name="pc", api_key=KEY, host="https://x.svc.pinecone.io", index="codebook-items")
    assert s.target() == "codebook-items"
    assert KEY not in repr(s)
