"""The database, quota and sql probes against the real PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import pytest
from pydantic import ValidationError

from probes.base import run_probe
from probes.database import DatabaseProbe, DatabaseSettings, dsn_target
from probes.quota import QuotaProbe, QuotaSettings, month_bounds
from probes.sql import SqlProbe, SqlSettings
from tests.support.probe_servers import SilentServer, closed_port

SCHEMA_SQL = """
CREATE TABLE clients (id text PRIMARY KEY, name text, monthly_token_quota bigint);
CREATE TABLE jobs (id serial PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE llm_usage (client_id text, tokens bigint, created_at timestamptz NOT NULL DEFAULT now());
"""

HARNESS = {"probe_success", "probe_duration_seconds"}


def value(result, name, /, **labels):
    found = {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
    return found[tuple(sorted(labels.items()))]


def names(result):
    return {s.name for s in result.samples}


@pytest.fixture
async def db(pg_schema):
    dsn, schema = pg_schema
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    await conn.execute(SCHEMA_SQL)
    yield dsn, schema, conn
    await conn.close()


async def run(probe, timeout=5.0):
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


# --- database ---------------------------------------------------------------------------------

async def test_database_figures(db):
    dsn, schema, conn = db
    await conn.execute("""INSERT INTO jobs (status, created_at) VALUES
        ('pending', now() - interval '10 minutes'), ('pending', now() - interval '1 minute'),
        ('done', now() - interval '2 hours')""")
    result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, search_path=schema)))
    assert result.success, result.error
    assert value(result, "probe_db_job_queue_depth") == 2
    assert 590 <= value(result, "probe_db_oldest_pending_job_age_seconds") < 3600
    used, maximum = value(result, "probe_db_connections"), value(result, "probe_db_max_connections")
    assert used >= 2 and maximum >= used
    assert value(result, "probe_db_connections_saturation_ratio") == pytest.approx(used / maximum)
    assert value(result, "probe_db_size_bytes") > 1_000_000
    assert value(result, "probe_db_slow_queries") >= 0
    for check in ("connections", "jobs", "slow_queries", "size"):
        assert value(result, "probe_db_check_success", check=check) == 1
    assert value(result, "probe_db_query_duration_seconds") >= 0
    assert result.details["jobs"] == 2
    assert {s.name for s in result.samples} <= set(DatabaseProbe.METRICS) | HARNESS


async def test_empty_queue_has_zero_age(db):
    dsn, schema, _ = db
    result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, search_path=schema)))
    assert value(result, "probe_db_job_queue_depth") == 0
    assert value(result, "probe_db_oldest_pending_job_age_seconds") == 0


async def test_missing_jobs_table_keeps_connection_metrics(pg_schema):
    dsn, schema = pg_schema  # no tables in this schema
    result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, search_path=schema)))
    assert result.success, result.error
    assert value(result, "probe_db_check_success", check="jobs") == 0
    assert "probe_db_job_queue_depth" not in names(result)
    assert "UndefinedTableError" in result.details["jobs"] and '"jobs" does not exist' in result.details["jobs"]
    assert any(line.startswith("jobs check failed") for line in result.logs)
    assert "probe_db_connections_saturation_ratio" in names(result)


async def test_custom_jobs_query_and_slow_queries(db):
    dsn, schema, conn = db
    await conn.execute("CREATE TABLE queue (state text, enqueued timestamptz)")
    await conn.execute("INSERT INTO queue VALUES ('waiting', now() - interval '5 seconds')")
    sleeper = await asyncpg.connect(dsn)
    sleep_task = asyncio.create_task(sleeper.execute("SELECT pg_sleep(30)"))
    try:
        # wait until the sleeping query is visible as active (a condition, not a timing guess)
        for _ in range(200):
            if await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
                                   "AND state = 'active'"):
                break
            await asyncio.sleep(0.01)
        settings = DatabaseSettings(
            name="pg", dsn=dsn, search_path=schema, slow_query_threshold=0,
            jobs_query="SELECT count(*) AS depth, EXTRACT(EPOCH FROM now() - min(enqueued)) AS oldest_age_seconds "
                       "FROM queue WHERE state = 'waiting'")
        result = await run(DatabaseProbe(settings))
    finally:
        sleeper.terminate()
        sleep_task.cancel()
        await asyncio.gather(sleep_task, return_exceptions=True)
    assert result.success, result.error
    assert value(result, "probe_db_slow_queries") >= 1
    assert value(result, "probe_db_job_queue_depth") == 1
    assert value(result, "probe_db_oldest_pending_job_age_seconds") >= 5


async def test_jobs_query_with_wrong_columns(db):
    dsn, schema, _ = db
    result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, search_path=schema,
                                                      jobs_query="SELECT 1 AS n")))
    assert result.success
    assert value(result, "probe_db_check_success", check="jobs") == 0
    assert "depth and oldest_age_seconds" in result.details["jobs"]


async def test_hung_sub_check_is_reported_and_the_rest_kept(db):
    dsn, schema, _ = db
    settings = DatabaseSettings(name="pg", dsn=dsn, search_path=schema, timeout=1.0,
                                jobs_query="SELECT pg_sleep(5) AS depth, 0 AS oldest_age_seconds")
    result = await run(DatabaseProbe(settings), timeout=2.0)  # harness later than the probe's 0.9 s budget
    assert result.success, result.error
    assert value(result, "probe_db_check_success", check="jobs") == 0
    assert result.details["jobs"].startswith("error: query cancelled by statement timeout after 0.")
    for check in ("connections", "slow_queries", "size"):
        assert value(result, "probe_db_check_success", check=check) == 1


async def test_database_connection_refused_names_target_not_password():
    dsn = f"postgresql://postgres:s3cretpw@127.0.0.1:{closed_port()}/test"
    result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, connect_timeout=0.5)), timeout=2)
    assert not result.success
    assert "cannot connect to 127.0.0.1:" in result.error and "/test" in result.error
    assert "s3cretpw" not in result.error


async def test_database_server_that_never_answers():
    async with SilentServer() as srv:
        dsn = f"postgresql://postgres:s3cretpw@127.0.0.1:{srv.port}/test"
        result = await run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, timeout=0.5)), timeout=0.5)
    assert not result.success
    assert "timeout" in result.error or "timed out" in result.error
    assert "s3cretpw" not in result.error


def test_target_never_shows_the_password():
    s = DatabaseSettings(name="pg", dsn="postgresql://app:pw123@db.internal:6543/codebook?sslmode=require")
    assert s.target() == "db.internal:6543/codebook"
    assert dsn_target("host=db port=5433 dbname=x password=pw") == "db:5433/x"
    assert "pw123" not in repr(s)


# --- quota ------------------------------------------------------------------------------------

async def test_quota_ratios_for_this_month(db):
    dsn, schema, conn = db
    await conn.execute("""INSERT INTO clients VALUES ('acme', 'Acme', 1000), ('globex', 'Globex', 2000),
                          ('initech', 'Initech', NULL), ('umbrella', 'Umbrella', 500)""")
    await conn.execute("""INSERT INTO llm_usage (client_id, tokens, created_at) VALUES
        ('acme', 600, '2026-03-05T10:00:00Z'), ('acme', 600, '2026-03-31T23:59:59Z'),
        ('acme', 9999, '2026-02-28T23:59:59Z'), ('acme', 9999, '2026-04-01T00:00:00Z'),
        ('globex', 500, '2026-03-01T00:00:00Z'), ('initech', 42, '2026-03-10T00:00:00Z'),
        ('stranger', 7, '2026-03-10T00:00:00Z')""")
    clock = lambda: datetime(2026, 3, 15, 12, tzinfo=timezone.utc)  # noqa: E731
    probe = QuotaProbe(QuotaSettings(name="quota", dsn=dsn, search_path=schema, quotas={"globex": 1000}),
                       clock=clock)
    result = await run(probe)
    assert result.success, result.error
    assert value(result, "llm_token_quota_used_ratio", client_id="acme") == pytest.approx(1.2)
    assert value(result, "llm_token_quota_used_tokens", client_id="acme") == 1200
    assert value(result, "llm_token_quota_limit_tokens", client_id="acme") == 1000
    assert value(result, "llm_token_quota_used_ratio", client_id="globex") == pytest.approx(0.5)  # config wins
    assert value(result, "llm_token_quota_used_ratio", client_id="umbrella") == 0
    assert value(result, "llm_token_quota_used_tokens", client_id="initech") == 42
    ratio_clients = {s.labels["client_id"] for s in result.samples if s.name == "llm_token_quota_used_ratio"}
    assert ratio_clients == {"acme", "globex", "umbrella"}
    assert result.details["no_quota"] == ["initech", "stranger"]
    assert {s.name for s in result.samples} <= set(QuotaProbe.METRICS) | HARNESS


async def test_quota_default_and_config_only(db):
    dsn, schema, conn = db
    await conn.execute("INSERT INTO llm_usage (client_id, tokens) VALUES ('a', 250), ('b', 50)")
    result = await run(QuotaProbe(QuotaSettings(name="q", dsn=dsn, search_path=schema, quota_query=None,
                                                default_quota=100, quotas={"b": 1000})))
    assert value(result, "llm_token_quota_used_ratio", client_id="a") == pytest.approx(2.5)
    assert value(result, "llm_token_quota_used_ratio", client_id="b") == pytest.approx(0.05)
    # the exhaustion horizon (default 4h) is exported next to each ratio, for LLMTokenQuotaExhaustionSoon
    assert value(result, "llm_token_quota_horizon_seconds", client_id="a") == 4 * 3600
    shorter = await run(QuotaProbe(QuotaSettings(name="q", dsn=dsn, search_path=schema, quota_query=None,
                                                 default_quota=100, exhaustion_horizon="90m")))
    assert value(shorter, "llm_token_quota_horizon_seconds", client_id="b") == 5400


async def test_quota_bad_query_fails_with_reason(db):
    dsn, schema, _ = db
    result = await run(QuotaProbe(QuotaSettings(name="q", dsn=dsn, search_path=schema,
                                                usage_query="SELECT client_id, sum(tokenz) FROM llm_usage GROUP BY 1")))
    assert not result.success
    assert "usage_query failed" in result.error and "tokenz" in result.error


def test_quota_settings_reject_negative_quota():
    with pytest.raises(ValidationError):
        QuotaSettings(name="q", dsn="postgresql://x@h/db", quotas={"acme": -1})


def test_month_bounds():
    assert month_bounds(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)) == (
        datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    start, end = month_bounds(datetime.fromisoformat("2026-04-01T01:00:00+03:00"))  # still March in UTC
    assert (start.month, end.month) == (3, 4)


# --- sql --------------------------------------------------------------------------------------

async def test_sql_gauges_and_a_bad_query(db):
    dsn, schema, conn = db
    await conn.execute("INSERT INTO clients VALUES ('acme', 'Acme', 10), ('globex', NULL, 20)")
    settings = SqlSettings(name="biz", dsn=dsn, search_path=schema, queries=[
        {"name": "codebook_client_quota", "help": "Quota per client.", "value": "quota",
         "query": "SELECT id, name, monthly_token_quota AS quota FROM clients ORDER BY id", "labels": ["id", "name"]},
        {"name": "codebook_broken", "query": "SELECT * FROM no_such_table"},
        {"name": "codebook_text_value", "query": "SELECT 'abc' AS value"},
        {"name": "codebook_slow", "query": "SELECT pg_sleep(5) IS NULL AS value", "timeout": "200ms"},
        {"name": "codebook_clients_total", "query": "SELECT count(*) AS value FROM clients"},
    ])
    probe = SqlProbe(settings)
    assert probe.metrics["codebook_client_quota"] == "Quota per client."
    result = await run(probe)
    assert not result.success
    assert value(result, "codebook_client_quota", id="acme", name="Acme") == 10
    assert value(result, "codebook_client_quota", id="globex", name="") == 20
    assert value(result, "codebook_clients_total") == 2
    assert value(result, "probe_sql_query_success", query="codebook_broken") == 0
    assert value(result, "probe_sql_query_success", query="codebook_text_value") == 0
    assert value(result, "probe_sql_query_success", query="codebook_slow") == 0
    assert value(result, "probe_sql_query_success", query="codebook_clients_total") == 1
    assert value(result, "probe_sql_query_rows", query="codebook_client_quota") == 2
    assert "codebook_broken: UndefinedTableError" in result.error
    assert "codebook_text_value: column value is not numeric" in result.error
    assert "codebook_slow: query cancelled by statement timeout after 0.2s" in result.error
    assert {s.name for s in result.samples} <= set(probe.metrics) | HARNESS


def test_sql_settings_validation():
    base = {"name": "s", "dsn": "postgresql://x@h/db"}
    with pytest.raises(ValidationError):
        SqlSettings(**base, queries=[{"name": "bad-name", "query": "SELECT 1"}])
    with pytest.raises(ValidationError):
        SqlSettings(**base, queries=[{"name": "a", "query": "SELECT 1", "labels": ["probe"]}])
    with pytest.raises(ValidationError):
        SqlSettings(**base, queries=[{"name": "a", "query": "SELECT 1"}, {"name": "a", "query": "SELECT 2"}])
    with pytest.raises(ValidationError):
        SqlSettings(**base, queries=[])
