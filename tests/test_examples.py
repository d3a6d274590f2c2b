"""The examples: the sample backend through a real uvicorn server, its TLS helper, the seed and the business SQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from examples.faults import Faults, FaultsError
from examples.sample_backend import DURATION_BUCKETS, SampleBackend, serve
from examples.seed import CLIENTS, seed
from examples.tls import make_self_signed_cert
from examples.tls_endpoint import start as start_tls_endpoint

ROOT = Path(__file__).resolve().parents[1]

BUSINESS_QUERIES = ROOT / "examples" / "business_queries.yaml"


@pytest.fixture
async def backend():
    """A sample backend on a free port of 127.0.0.1 with fast synthetic traffic."""
    running = await serve("127.0.0.1", 0, seed=7, traffic_rps=100.0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(backend):
    async with httpx.AsyncClient(base_url=backend.url, timeout=10) as c:
        yield c


def _samples(text: str) -> list:
    """Parse exposition text with prometheus-client's parser into a flat list of samples."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def _sum_samples(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """Sum the samples called ``name`` whose labels include ``labels``, from a scrape of /metrics."""
    text = (await client.get("/metrics")).text
    return sum(s.value for s in _samples(text)
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# -- /health and /faults ------------------------------------------------------------------------


async def test_health_is_healthy_in_the_guides_shape(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "timestamp", "version", "checks"}
    assert body["status"] == "healthy"
    assert body["version"] == "1.4.2"
    assert body["checks"] == {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}
    stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 5


async def test_degraded_health_answers_503_and_delete_resets(client):
    response = await client.post("/faults", json={"health": "degraded"})
    assert response.status_code == 200
    assert response.json()["health"] == "degraded"
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"

    assert (await client.delete("/faults")).status_code == 200
    health = await client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert (await client.get("/faults")).json()["health"] is None


async def test_unhealthy_check_shows_in_health_and_post_merges(client):
    await client.post("/faults", json={"checks": {"pinecone": "unhealthy"}})
    await client.post("/faults", json={"error_rate": 0.1})
    faults = (await client.get("/faults")).json()
    assert faults["checks"] == {"pinecone": "unhealthy"} and faults["error_rate"] == 0.1
    body = (await client.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "healthy", "pinecone": "unhealthy", "llm": "healthy"}

    await client.post("/faults", json={"checks": {"database": "unhealthy", "pinecone": None}})
    body = (await client.get("/health")).json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["pinecone"] == "healthy"
    # Without its database the backend fails every API request.
    assert (await client.get("/api/v1/codebooks")).status_code == 500


async def test_error_rate_one_makes_500_counters_grow(client):
    before = await _sum_samples(client, "http_requests_total", status="500")
    response = await client.post("/faults", json={"error_rate": 1})
    assert response.status_code == 200

    async def grew() -> bool:
        return await _sum_samples(client, "http_requests_total", status="500") >= before + 20

    await _wait_until(grew)
    real = await client.get("/api/v1/codebooks", headers={"X-Client-ID": "acme"})
    assert real.status_code == 500
    assert await _sum_samples(client, "http_requests_total", endpoint="/api/v1/codebooks",
                              status="500", client_id="acme") >= 1


async def test_extra_latency_moves_observations_past_five_seconds(client, backend):
    def slow() -> float:
        total = bucket_5 = 0.0
        for family in backend.backend.registry.collect():
            for s in family.samples:
                if s.name == "http_request_duration_seconds_count":
                    total += s.value
                elif s.name == "http_request_duration_seconds_bucket" and s.labels["le"] == "5.0":
                    bucket_5 += s.value
        return total - bucket_5

    before = slow()
    await client.post("/faults", json={"extra_latency_seconds": 6})

    async def moved() -> bool:
        return slow() >= before + 20

    await _wait_until(moved)


async def test_real_requests_sleep_the_extra_latency(client):
    await client.post("/faults", json={"extra_latency_seconds": 0.3})
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3


@pytest.mark.parametrize("body, message", [
    ({"error_rate": 1.5}, "error_rate: expected a number between 0 and 1, got 1.5"),
    ({"error_rate": -0.1}, "error_rate: expected a number between 0 and 1"),
    ({"error_rate": "half"}, "error_rate: expected a number between 0 and 1, got 'half'"),
    ({"error_rate": True}, "error_rate: expected a number between 0 and 1, got True"),
    ({"extra_latency_seconds": -1}, "extra_latency_seconds: expected a number of seconds from 0 to 600, got -1"),
    ({"health": "sick"}, "health: expected one of healthy, degraded, unhealthy (or null), got 'sick'"),
    ({"checks": {"redis": "healthy"}}, "checks.redis: unknown name"),
    ({"checks": {"llm": "down"}}, "checks.llm: expected healthy, degraded, unhealthy, got 'down'"),
    ({"vendor_status": {"llm": 999}}, "vendor_status.llm: expected an HTTP status code 100..599"),
    ({"eror_rate": 1}, "unknown key 'eror_rate'"),
    ([1, 2], "expected a JSON object"),
])
async def test_bad_faults_are_400_with_a_clear_message_and_change_nothing(client, body, message):
    response = await client.post("/faults", json=body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(message in e for e in errors), errors
    assert (await client.get("/faults")).json()["error_rate"] == 0.0


async def test_non_json_faults_body_is_400(client):
    response = await client.post("/faults", content=b"error_rate=1", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["errors"] == ["the body is not valid JSON"]


def test_faults_report_every_error_at_once():
    with pytest.raises(FaultsError) as info:
        Faults().merged({"error_rate": 2, "extra_latency_seconds": -1, "health": "x"})
    assert len(info.value.errors) == 3


# -- /metrics and the API -----------------------------------------------------------------------


async def test_metrics_parse_and_carry_the_expected_series(client):
    await client.post("/api/v1/codebooks/12/items", json={"items": [1, 2]}, headers={"X-Client-ID": "globex"})
    await client.get("/api/v1/recommendations", headers={"X-Client-ID": "initech"})

    async def traffic() -> bool:  # the synthetic traffic covers every client
        return await _sum_samples(client, "http_requests_total", client_id="acme") >= 5

    await _wait_until(traffic)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    requests = [s for s in families["http_requests"].samples if s.name == "http_requests_total"]
    assert {tuple(sorted(s.labels)) for s in requests} == {("client_id", "endpoint", "method", "status")}
    assert {s.labels["client_id"] for s in requests} >= {"acme", "globex", "initech"}
    assert any(s.labels == {"method": "POST", "endpoint": "/api/v1/codebooks/{id}/items",
                            "status": "201", "client_id": "globex"} for s in requests)
    buckets = {s.labels["le"] for s in families["http_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert {"5.0", "10.0", "+Inf"} <= buckets
    assert max(DURATION_BUCKETS) > 5
    assert "llm_api_requests" in families and "llm_tokens" in families


async def test_api_routes_answer_and_reject_bad_bodies(client):
    assert (await client.get("/api/v1/codebooks")).status_code == 200
    assert (await client.post("/api/v1/codebooks/3/items", json={"items": ["a"]})).json()["added"] == 1
    assert (await client.post("/api/v1/refactor", json={"codebook_id": 3})).status_code == 202
    bad = await client.post("/api/v1/refactor", json={})
    assert bad.status_code == 400 and "codebook_id" in bad.json()["detail"]
    assert (await client.get("/api/v1/recommendations")).status_code == 200


def test_same_seed_gives_the_same_traffic():
    def figures(backend: SampleBackend) -> list:
        backend.set_faults({"error_rate": 0.3, "extra_latency_seconds": 1})
        backend.generate(500)
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                      for f in backend.registry.collect() for s in f.samples if not s.name.endswith("_created"))

    first, second = figures(SampleBackend(seed=3)), figures(SampleBackend(seed=3))
    assert first == second
    errors = sum(v for name, labels, v in first if name == "http_requests_total" and ("status", "500") in labels)
    assert 100 < errors < 200  # ~30% of 500 requests


# -- vendor stand-ins ---------------------------------------------------------------------------


async def test_llm_stand_in_speaks_openai_and_anthropic(client):
    openai = await client.get("/v1/models", headers={"Authorization": "Bearer sk-test"})
    assert openai.status_code == 200 and openai.json()["object"] == "list"
    anthropic = await client.get("/v1/models", headers={"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"})
    assert anthropic.status_code == 200 and anthropic.json()["data"][0]["type"] == "model"
    denied = await client.get("/v1/models", headers={"x-api-key": "invalid-key", "anthropic-version": "2023-06-01"})
    assert denied.status_code == 401 and denied.json()["error"]["type"] == "authentication_error"

    await client.post("/faults", json={"vendor_status": {"llm": 429}})
    limited = await client.get("/v1/models", headers={"Authorization": "Bearer sk-test"})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
    await client.post("/faults", json={"vendor_status": {"llm": None}, "checks": {"llm": "unhealthy"}})
    assert (await client.get("/v1/models", headers={"Authorization": "Bearer sk-test"})).status_code == 503


async def test_pinecone_stand_in_through_the_real_sdk(backend):
    from pinecone import Pinecone

    index = Pinecone(api_key="pc-test").Index(host=backend.url)
    stats = await asyncio.to_thread(index.describe_index_stats)
    assert stats.dimension == 1536 and stats.total_vector_count > 0
    backend.backend.set_faults({"checks": {"pinecone": "unhealthy"}})
    with pytest.raises(Exception) as info:
        await asyncio.to_thread(index.describe_index_stats)
    assert "503" in str(info.value)


# -- TLS ----------------------------------------------------------------------------------------


async def test_backend_over_tls_with_the_self_signed_certificate(tmp_path):
    from cryptography import x509

    cert, key = make_self_signed_cert(tmp_path, hostname="localhost", days_valid=20)
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    left = parsed.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=19) < left <= dt.timedelta(days=20)
    assert make_self_signed_cert(tmp_path, hostname="localhost", days_valid=20) == (cert, key)

    running = await serve("127.0.0.1", 0, traffic_rps=0, ssl_certfile=str(cert), ssl_keyfile=str(key))
    try:
        assert running.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context) as c:
            response = await c.get(f"https://localhost:{running.port}/health")
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):  # not trusted by the system store
            async with httpx.AsyncClient() as c:
                await c.get(f"https://localhost:{running.port}/health")
    finally:
        await running.stop()


async def test_demo_tls_endpoint_presents_its_certificate(tmp_path):
    endpoint = await start_tls_endpoint("127.0.0.1", 0, directory=tmp_path, days_valid=20)
    try:
        assert endpoint.cert_path == tmp_path / "cert.pem"
        # A client that only handshakes and leaves (as the tls probe does) does not disturb it.
        context = ssl.create_default_context(cafile=str(endpoint.cert_path))
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port, ssl=context,
                                                       server_hostname="localhost")
        presented = writer.get_extra_info("ssl_object").getpeercert()
        assert ("DNS", "localhost") in presented["subjectAltName"]
        writer.close()
        await writer.wait_closed()
        async with httpx.AsyncClient(verify=context) as c:
            response = await c.get(f"https://localhost:{endpoint.port}/")
        assert response.status_code == 200 and "TLS endpoint" in response.text
    finally:
        endpoint.close()
        await endpoint.wait_closed()


def test_certificate_days_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="days_valid must be > 0"):
        make_self_signed_cert(tmp_path, days_valid=0)


async def test_serve_reports_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="could not start"):
            await serve("127.0.0.1", taken.getsockname()[1], traffic_rps=0)


# -- entry points -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_command_line_backend_serves_and_stops_on_sigterm():
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.sample_backend", "--port", str(port), "--seed", "1",
        "--log-level", "warning", cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            for _ in range(100):
                try:
                    response = await c.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the command-line backend did not start")
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- schema, seed and business queries ----------------------------------------------------------


async def test_seed_fills_a_realistic_month_and_is_idempotent(pg_schema):
    dsn, schema = pg_schema
    counts = await seed(dsn, schema)
    again = await seed(dsn, schema)
    assert counts == again and counts["clients"] == 3

    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        assert await conn.fetchval("SELECT count(*) FROM llm_usage") == counts["llm_usage"]
        ratios = {r["id"]: r["ratio"] for r in await conn.fetch(
            "SELECT c.id, coalesce(sum(u.tokens), 0)::float8 / c.monthly_token_quota AS ratio "
            "FROM clients c LEFT JOIN llm_usage u ON u.client_id = c.id "
            "AND u.created_at >= date_trunc('month', now(), 'UTC') GROUP BY c.id")}
        assert ratios == {cid: pytest.approx(used, abs=1e-6) for cid, _, _, used in CLIENTS}
        assert ratios["acme"] > 0.8
        pending, oldest = await conn.fetchrow(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM jobs WHERE status = 'pending'")
        assert pending == 5 and 7100 < oldest < 7400
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status NOT IN ('pending', 'running', 'done', "
                                   "'failed')") == 0
        assert await conn.fetchval("SELECT max(created_at) <= now() FROM codebook_items")
        next_id = await conn.fetchval("INSERT INTO codebooks (client_id, name) VALUES ('acme', 'x') RETURNING id")
        assert next_id == counts["codebooks"] + 1
    finally:
        await conn.close()


async def test_business_queries_return_rows_from_the_seeded_database(pg_schema):
    dsn, schema = pg_schema
    await seed(dsn, schema)
    queries = yaml.safe_load(BUSINESS_QUERIES.read_text())
    names = {q["name"] for q in queries}
    assert names == {
        "codebook_codebooks_created_24h", "codebook_items_uploaded_24h",
        "codebook_refactor_operations_completed_24h", "codebook_llm_tokens_1h", "codebook_llm_tokens_24h",
        "codebook_recommendations_generated_24h", "codebook_recommendation_acceptance_ratio",
    }
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        for q in queries:
            assert set(q) == {"name", "help", "query", "value", "labels"}, q["name"]
            rows = await conn.fetch(q["query"])
            assert rows, q["name"]
            for row in rows:
                assert set(row.keys()) == {q["value"], *q["labels"]}, q["name"]
                assert isinstance(row[q["value"]], float) and row[q["value"]] > 0, q["name"]
            if q["labels"] == ["client_id"]:
                assert {r["client_id"] for r in rows} == {"acme", "globex", "initech"}
        ratio = await conn.fetchval(next(q["query"] for q in queries if q["name"].endswith("acceptance_ratio")))
        assert 0 < ratio < 1
        # No decided recommendation in the window: no series, rather than a misleading 0.
        await conn.execute("UPDATE recommendations SET accepted = NULL")
        assert await conn.fetch(next(q["query"] for q in queries if q["name"].endswith("acceptance_ratio"))) == []
    finally:
        await conn.close()


async def test_seed_command_line(pg_schema):
    dsn, schema = pg_schema
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.seed", "--dsn", dsn, "--schema", schema, "--pending-jobs", "150",
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f"seeded schema {schema}:".encode() in out and b"jobs 356" in out


def test_seed_command_line_reports_an_unreachable_database():
    port = _free_port()
    result = subprocess.run([sys.executable, "-m", "examples.seed", "--dsn",
                             f"postgresql://postgres@127.0.0.1:{port}/test"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("seed failed:")
