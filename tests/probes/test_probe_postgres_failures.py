"""PostgreSQL probe failures say what failed, and a stopped run leaves no query behind (issue 16).

Against the real PostgreSQL (``MONITOR_TEST_DATABASE_URL``) and a real TCP server that accepts
connections and never answers:

- a server that never answers PostgreSQL's SSLRequest: "TLS negotiation timed out", not a bare
  "timed out";
- a query past its timeout: "query cancelled by statement timeout after 1s", named by its step
  (the query's name, the sub-check, ``SELECT 1``); the server's own ``statement_timeout`` too;
- a run cancelled mid-query (what stopping the daemon does): the query is cancelled on the
  server — ``pg_stat_activity`` shows it gone — instead of running on after the socket is cut.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from probes.base import run_probe
from probes.database import DatabaseProbe, DatabaseSettings
from probes.sql import SqlProbe, SqlSettings
from tests.support.probe_servers import SilentServer


async def _run(probe, timeout: float):
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


async def _active(dsn: str, marker: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 "
            "AND pid <> pg_backend_pid()", f"%{marker}%")
    finally:
        await conn.close()


async def _wait_active(dsn: str, marker: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await _active(dsn, marker) == 0:
        assert time.monotonic() < deadline, f"query {marker} never started"
        await asyncio.sleep(0.05)


async def test_a_server_that_never_answers_the_ssl_request_is_a_tls_negotiation_timeout():
    async with SilentServer() as srv:
        dsn = f"postgresql://postgres:s3cretpw@127.0.0.1:{srv.port}/test"  # sslmode prefer: SSLRequest first
        result = await _run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, connect_timeout=0.5, timeout=2)),
                            timeout=2)
    assert not result.success
    assert result.error.startswith(f"ConnectionError: cannot connect to 127.0.0.1:{srv.port}/test: "
                                   "TLS negotiation timed out: "
                                   "the server accepted the TCP connection but never answered the SSL request"), \
        result.error
    assert "s3cretpw" not in result.error


async def test_without_tls_the_same_silence_is_a_startup_timeout():
    async with SilentServer() as srv:
        dsn = f"postgresql://postgres@127.0.0.1:{srv.port}/test?sslmode=disable"
        result = await _run(DatabaseProbe(DatabaseSettings(name="pg", dsn=dsn, connect_timeout=0.5, timeout=2)),
                            timeout=2)
    assert "timed out waiting for the server's startup and authentication" in result.error, result.error


async def test_sql_query_timeout_names_the_query_and_the_statement_timeout(database_url):
    settings = SqlSettings(name="biz", dsn=database_url, timeout=5, queries=[
        {"name": "slow_gauge", "query": "SELECT pg_sleep(10)::text::float8 AS value", "timeout": "1s"},
        {"name": "fast_gauge", "query": "SELECT 1::float8 AS value"}])
    result = await _run(SqlProbe(settings), timeout=5)
    assert not result.success
    assert result.error == "slow_gauge: query cancelled by statement timeout after 1s"
    assert result.details["fast_gauge"] == 1.0


async def test_the_servers_statement_timeout_is_named_too(database_url):
    settings = SqlSettings(name="biz", dsn=database_url, timeout=5, server_settings={"statement_timeout": "300ms"},
                           queries=[{"name": "slow_gauge", "query": "SELECT pg_sleep(3)::text::float8 AS value"}])
    result = await _run(SqlProbe(settings), timeout=5)
    assert result.error.startswith("slow_gauge: query cancelled by the server's statement_timeout "
                                   "(QueryCanceledError: canceling statement due to statement timeout"), result.error


async def test_database_sub_check_timeout_names_the_check(database_url):
    settings = DatabaseSettings(name="pg", dsn=database_url, timeout=1.5,
                                jobs_query="SELECT pg_sleep(5) AS depth, 0 AS oldest_age_seconds")
    result = await _run(DatabaseProbe(settings), timeout=3)
    assert result.success, result.error  # a failing sub-check does not fail the probe
    (line,) = [x for x in result.logs if x.startswith("jobs check failed: ")]
    assert line.startswith("jobs check failed: query cancelled by statement timeout after "), line


async def test_a_cancelled_run_cancels_its_query_on_the_server(database_url):
    marker = f"probe_cancel_{uuid.uuid4().hex[:8]}"
    settings = SqlSettings(name="biz", dsn=database_url, timeout=60, queries=[
        {"name": "slow_gauge", "query": f"SELECT pg_sleep(30)::text::float8 AS value /* {marker} */"}])
    task = asyncio.create_task(_run(SqlProbe(settings), timeout=60))
    await _wait_active(database_url, marker)
    task.cancel()  # what stopping the daemon does to a run in flight
    await asyncio.gather(task, return_exceptions=True)
    assert await _active(database_url, marker) == 0, "the query kept running on the server"
