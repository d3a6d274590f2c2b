"""The ``database`` probe: PostgreSQL health through asyncpg.

One run opens one connection (with ``connect_timeout``), measures ``SELECT 1``, then runs the
sub-checks below in this order, each under what is left of 90 % of the probe's timeout
(:data:`RUN_BUDGET`), so a slow step is reported by name before the harness cancels the run:

- **connections**: client backends in ``pg_stat_activity`` against ``max_connections``
  (``probe_db_connections_saturation_ratio``, 0..1; 1 means new connections are refused).
- **slow_queries**: active queries of this database running longer than
  ``slow_query_threshold`` (default 1 s), from ``pg_stat_activity.query_start``.
- **size**: ``pg_database_size(current_database())`` in bytes.
- **jobs**: depth of the job queue and the age of its oldest pending job. The default SQL
  assumes the backend's ``jobs(id, status text, created_at timestamptz, ...)`` table, pending
  rows having ``status = 'pending'``; ``jobs_query`` replaces it (it must return one row with
  columns ``depth`` and ``oldest_age_seconds``), ``null`` turns it off.

The probe succeeds when the connection and ``SELECT 1`` work. A failing sub-check (a missing
``jobs`` table, no permission on ``pg_stat_activity``...) does *not* fail the probe: it exports
``probe_db_check_success{check="jobs"} 0``, its reason goes to ``logs`` and
``details["jobs"]``, and the other figures are kept — the database is up, the schema is
different; alert rules decide whether that matters.

This module also holds the PostgreSQL settings and connection helper shared by the ``quota``
and ``sql`` probes (:class:`PostgresSettings`, :func:`pg_connect`).
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx
from pydantic import Field, SecretStr

from model.duration import Duration, PositiveDuration
from probes.base import ProbeResult, ProbeSettings, one_line
from model.secrets import scrub_secrets

#: Share of the probe's timeout its own deadlines use, so a slow step is reported by name
#: before the harness's timeout cancels the whole run.
RUN_BUDGET = 0.9
#: Seconds a cancelled or failed run waits for its query to be cancelled on the server.
CANCEL_GRACE = 2.0

log = logging.getLogger("probes.database")

DEFAULT_JOBS_QUERY = (
    "SELECT count(*) AS depth, "
    "COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds "
    "FROM jobs WHERE status = 'pending'"
)
_CONNECTIONS_QUERY = (
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used, "
    "current_setting('max_connections')::int AS max"
)
_SLOW_QUERY = (
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
    "AND datname = current_database() AND now() - query_start > make_interval(secs => $1)"
)


def dsn_target(dsn: str) -> str:
    """Return ``host:port/dbname`` of a PostgreSQL DSN, never its password.

    Accepts URL DSNs (``postgresql://user:pw@host:5432/db?...``) and libpq keyword DSNs
    (``host=... port=... dbname=...``); missing parts take libpq defaults (``localhost``, 5432).
    """
    if "://" in dsn:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        try:
            port = parts.port or 5432
        except ValueError:
            port = 5432
        db = unquote(parts.path.lstrip("/")) or (parts.username or "")
        return f"{host}:{port}/{db}"
    kv = dict(tok.split("=", 1) for tok in dsn.split() if "=" in tok)
    return f"{kv.get('host', 'localhost')}:{kv.get('port', '5432')}/{kv.get('dbname', kv.get('user', ''))}"


class PostgresSettings(ProbeSettings):
    """Connection settings shared by the PostgreSQL probes (``database``, ``quota``, ``sql``).

    :ivar dsn: libpq/asyncpg connection string (secret: it may hold a password).
    :ivar connect_timeout: seconds allowed for connecting (default 5 s; also capped by ``timeout``).
    :ivar search_path: optional ``search_path`` for the session (schema of the backend tables).
    :ivar server_settings: other session settings (``application_name`` defaults to
        ``codebook-monitor``).
    """

    dsn: SecretStr
    connect_timeout: PositiveDuration = 5.0
    search_path: str | None = None
    server_settings: dict[str, str] = Field(default_factory=dict)

    def target(self) -> str:
        """Return ``host:port/dbname`` (never the password)."""
        return dsn_target(self.dsn.get_secret_value())


def describe_pg_error(exc: BaseException, settings: PostgresSettings, *, timeout: float | None = None) -> str:
    """Return a one-line reason for a PostgreSQL/asyncpg/OS error, with the DSN's secrets scrubbed.

    A timeout says what timed out: a query cancelled after ``timeout`` seconds (the client-side
    statement timeout; asyncpg cancels the query on the server), the server's own
    ``statement_timeout``, or the connection step that waited (:func:`connect_timeout_reason`).

    :param timeout: the query's timeout in seconds, when ``exc`` ended a query.
    """
    dsn = settings.dsn.get_secret_value()
    password = urlsplit(dsn).password if "://" in dsn else None
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        text = (f"query cancelled by statement timeout after {timeout:.3g}s" if timeout is not None
                else connect_timeout_reason(exc))
    else:
        text = one_line(str(exc) or type(exc).__name__)
    if isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc):
        text = f"query cancelled by the server's statement_timeout ({type(exc).__name__}: {text})"
    elif isinstance(exc, asyncpg.PostgresError):
        text = f"{type(exc).__name__}: {text}"
    return scrub_secrets(text, dsn, password)


#: The step asyncpg's connect was waiting in when its timeout struck, by the deepest asyncpg
#: frame (function, a word of its source line) -> what to say. asyncpg 0.29-0.30
#: ``connect_utils.py``: ``_create_ssl_connection`` sends PostgreSQL's SSLRequest and waits for
#: its one-byte answer (``on_data``), then runs the TLS handshake (``start_tls``);
#: ``__connect_addr`` opens TCP (``connector``) and waits for startup and authentication
#: (``connected``).
_CONNECT_STEPS: tuple[tuple[str, str, str], ...] = (
    ("_create_ssl_connection", "on_data",
     "TLS negotiation timed out: the server accepted the TCP connection but never answered the SSL "
     "request (not PostgreSQL, or a proxy that swallows it? sslmode=disable skips TLS)"),
    ("_create_ssl_connection", "start_tls", "TLS handshake timed out"),
    ("_create_ssl_connection", "create_connection", "TCP connect timed out"),
    ("__connect_addr", "connector", "TCP connect timed out"),
    ("__connect_addr", "connected", "timed out waiting for the server's startup and authentication"),
)


def connect_timeout_reason(exc: BaseException) -> str:
    """Return what timed out while connecting, from where asyncpg was waiting (``"timed out"``
    when that cannot be told).

    The timeout cancels the waiting coroutine: the ``CancelledError`` in ``exc.__context__``
    carries the frames down to the ``await`` that was waiting.
    """
    inner = exc.__context__ if isinstance(exc.__context__, asyncio.CancelledError) else exc
    tb = inner.__traceback__
    deepest: tuple[str, str] | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if "/asyncpg/" in code.co_filename.replace("\\", "/"):
            deepest = (code.co_name, linecache.getline(code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if deepest is not None:
        for function, word, reason in _CONNECT_STEPS:
            if deepest[0] == function and word in deepest[1]:
                return reason
    return "timed out"


@asynccontextmanager
async def pg_connect(settings: PostgresSettings) -> AsyncIterator[asyncpg.Connection]:
    """Open one asyncpg connection for a probe run and close it afterwards.

    Closing is graceful on a normal exit and immediate (``terminate``) when the run is
    cancelled or fails, so a timed-out probe never waits on a hung server.

    :raises ConnectionError: ``cannot connect to host:port/db: <reason>`` (secrets scrubbed).
    """
    server_settings = {"application_name": "codebook-monitor", **settings.server_settings}
    if settings.search_path:
        server_settings["search_path"] = settings.search_path
    try:
        conn = await asyncpg.connect(
            settings.dsn.get_secret_value(),
            timeout=min(settings.connect_timeout, RUN_BUDGET * settings.timeout),
            server_settings=server_settings,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
        raise ConnectionError(f"cannot connect to {settings.target()}: {describe_pg_error(exc, settings)}") from None
    try:
        yield conn
    except BaseException:
        await _close_cancelling(conn)
        raise
    else:
        try:
            await asyncio.wait_for(conn.close(), 1.0)
        except (asyncio.TimeoutError, OSError, asyncpg.InterfaceError):
            conn.terminate()


async def _close_cancelling(conn: asyncpg.Connection) -> None:
    """Close ``conn`` after a failed or cancelled run so that no query of it keeps running.

    A cancelled query (the daemon stopping, the harness's timeout) makes asyncpg send a cancel
    request on a second connection; closing gracefully lets that finish, where ``terminate()``
    alone dropped it and left the query running on the server (issue 16). Bounded by
    :data:`CANCEL_GRACE` seconds and shielded from a second cancellation; then the socket is cut.
    """
    close = asyncio.ensure_future(conn.close(timeout=CANCEL_GRACE))
    try:
        await asyncio.wait_for(asyncio.shield(close), CANCEL_GRACE)
    except asyncio.CancelledError:
        conn.terminate()
        raise
    except Exception as exc:  # noqa: BLE001 - a server that hangs or errs on close: cut the socket
        log.debug("closing after a failed run failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        conn.terminate()


class DatabaseSettings(PostgresSettings):
    """Settings of the ``database`` probe.

    Example::

        - name: postgres
          kind: database
          dsn: ${DATABASE_URL}
          slow_query_threshold: 1s

    :ivar slow_query_threshold: seconds an active query must have run to count as slow.
    :ivar jobs_query: SQL returning one row ``(depth, oldest_age_seconds)``; ``null`` disables.
    """

    kind: Literal["database"] = "database"
    slow_query_threshold: Duration = 1.0
    jobs_query: str | None = DEFAULT_JOBS_QUERY


class DatabaseProbe:
    """Connect to PostgreSQL, time ``SELECT 1`` and read saturation, queue, slow-query and size figures."""

    kind: ClassVar[str] = "database"
    Settings: ClassVar[type[ProbeSettings]] = DatabaseSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_db_connect_duration_seconds": "Seconds taken to open the connection (TCP, TLS, auth).",
        "probe_db_query_duration_seconds": "Seconds taken by a SELECT 1 round trip.",
        "probe_db_connections": "Client backends connected to the server (pg_stat_activity).",
        "probe_db_max_connections": "The server's max_connections setting.",
        "probe_db_connections_saturation_ratio": "Client connections over max_connections, 0..1.",
        "probe_db_job_queue_depth": "Number of pending jobs in the job queue.",
        "probe_db_oldest_pending_job_age_seconds": "Age in seconds of the oldest pending job (0 when none).",
        "probe_db_slow_queries": "Active queries in this database running longer than the slow-query threshold.",
        "probe_db_size_bytes": "Size of the database on disk in bytes (pg_database_size).",
        "probe_db_check_success": "Whether one sub-check (connections, jobs, slow_queries, size) could be read.",
    }

    def __init__(self, settings: DatabaseSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings

    async def run(self) -> ProbeResult:
        """Connect, time ``SELECT 1``, then run each sub-check; see the module docstring."""
        s = self.settings
        result = ProbeResult(True)
        deadline = time.monotonic() + RUN_BUDGET * s.timeout
        start = time.monotonic()
        async with pg_connect(s) as conn:
            connected = time.monotonic()
            result.add("probe_db_connect_duration_seconds", connected - start)
            select_timeout = max(deadline - time.monotonic(), 0.01)
            try:
                await conn.fetchval("SELECT 1", timeout=select_timeout)
            except (asyncio.TimeoutError, asyncpg.PostgresError) as exc:
                return ProbeResult(False, error=f"SELECT 1: {describe_pg_error(exc, s, timeout=select_timeout)}")
            query_seconds = time.monotonic() - connected
            result.add("probe_db_query_duration_seconds", query_seconds)
            result.details["query_ms"] = round(query_seconds * 1000, 1)

            async def sub(check: str, fn: Any) -> None:
                timeout = max(deadline - time.monotonic(), 0.01)
                try:
                    await fn(conn, timeout, result)
                    result.add("probe_db_check_success", 1, check=check)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError, ValueError,
                        TypeError, KeyError) as exc:
                    reason = describe_pg_error(exc, s, timeout=timeout)
                    result.add("probe_db_check_success", 0, check=check)
                    result.details[check] = f"error: {reason}"
                    result.logs.append(f"{check} check failed: {reason}")

            # catalogue reads first; the user-configurable jobs query last, so a slow one
            # cannot starve the others of the shared deadline
            await sub("connections", self._connections)
            await sub("slow_queries", self._slow)
            await sub("size", self._size)
            if s.jobs_query:
                await sub("jobs", self._jobs)
        return result

    async def _connections(self, conn: asyncpg.Connection, timeout: float, result: ProbeResult) -> None:
        row = await conn.fetchrow(_CONNECTIONS_QUERY, timeout=timeout)
        used, maximum = int(row["used"]), int(row["max"])
        ratio = min(used / maximum, 1.0) if maximum > 0 else 0.0
        result.add("probe_db_connections", used)
        result.add("probe_db_max_connections", maximum)
        result.add("probe_db_connections_saturation_ratio", ratio)
        result.details["connections"] = f"{used}/{maximum}"

    async def _jobs(self, conn: asyncpg.Connection, timeout: float, result: ProbeResult) -> None:
        row = await conn.fetchrow(self.settings.jobs_query, timeout=timeout)
        if row is None:
            raise ValueError("jobs_query returned no row")
        if not {"depth", "oldest_age_seconds"} <= set(row.keys()):
            raise ValueError("jobs_query must return columns depth and oldest_age_seconds")
        depth, age = float(row["depth"] or 0), float(row["oldest_age_seconds"] or 0)
        result.add("probe_db_job_queue_depth", depth)
        result.add("probe_db_oldest_pending_job_age_seconds", max(age, 0.0))
        result.details["jobs"] = int(depth)

    async def _slow(self, conn: asyncpg.Connection, timeout: float, result: ProbeResult) -> None:
        n = await conn.fetchval(_SLOW_QUERY, float(self.settings.slow_query_threshold), timeout=timeout)
        result.add("probe_db_slow_queries", int(n))
        result.details["slow_queries"] = int(n)

    async def _size(self, conn: asyncpg.Connection, timeout: float, result: ProbeResult) -> None:
        size = await conn.fetchval("SELECT pg_database_size(current_database())", timeout=timeout)
        result.add("probe_db_size_bytes", int(size))
        result.details["size_mb"] = round(int(size) / 1e6, 1)

    async def close(self) -> None:
        """Nothing to release: each run opens and closes its own connection."""
