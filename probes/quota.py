"""The ``quota`` probe: each tenant's LLM token usage this calendar month against its quota.

Schema assumed by the default SQL (the backend's tables)::

    clients(id text primary key, name text, monthly_token_quota bigint)   -- NULL = no quota
    llm_usage(client_id text, tokens bigint, created_at timestamptz)

The month is the current calendar month in UTC: ``[first day 00:00 UTC, first day of next
month 00:00 UTC)``. ``usage_query`` receives it as ``$1`` and ``$2`` (timestamptz; a query
may use neither, one or both) and must return ``(client_id, used)`` rows; ``quota_query``
takes no parameter and returns ``(client_id, quota)`` rows (``null`` disables it).

A client's limit is, first match wins: ``quotas[client_id]`` in the config, the
``quota_query`` row, ``default_quota``. Clients with a limit are exported even with no usage
(ratio 0); a client with usage but no positive limit exports its used tokens only, and is listed
in ``details["no_quota"]``. The ratio is ``used / limit`` and may exceed 1. Whether a ratio is
too high is for alert rules; the probe succeeds when its queries ran.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Annotated, Callable, ClassVar, Literal

import asyncpg
import httpx
from pydantic import Field

from model.duration import PositiveDuration
from probes.base import ProbeResult, ProbeSettings
from probes.database import RUN_BUDGET, PostgresSettings, describe_pg_error, pg_connect

DEFAULT_USAGE_QUERY = (
    "SELECT client_id, COALESCE(sum(tokens), 0) AS used FROM llm_usage "
    "WHERE created_at >= $1 AND created_at < $2 GROUP BY client_id"
)
DEFAULT_QUOTA_QUERY = (
    "SELECT id AS client_id, monthly_token_quota AS quota FROM clients WHERE monthly_token_quota IS NOT NULL"
)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Return ``(start, end)`` of the calendar month (UTC) containing ``now``, end exclusive."""
    now = now.astimezone(timezone.utc)
    start = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


class QuotaSettings(PostgresSettings):
    """Settings of the ``quota`` probe (connection fields from :class:`PostgresSettings`).

    Example::

        - name: token-quotas
          kind: quota
          dsn: ${DATABASE_URL}
          default_quota: 1000000
          quotas: {acme: 5000000}

    :ivar usage_query: SQL returning ``(client_id, used)`` for the month ``[$1, $2)``.
    :ivar quota_query: SQL returning ``(client_id, quota)``; ``null`` to use the config only.
    :ivar quotas: monthly token quota per client id, overriding the database.
    :ivar default_quota: monthly token quota of clients with none set elsewhere.
    :ivar exhaustion_horizon: how far ahead ``LLMTokenQuotaExhaustionSoon`` looks (default 4h),
        exported as ``llm_token_quota_horizon_seconds{client_id}`` for the rule to compare with.
    """

    kind: Literal["quota"] = "quota"
    usage_query: str = DEFAULT_USAGE_QUERY
    quota_query: str | None = DEFAULT_QUOTA_QUERY
    quotas: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    default_quota: int | None = Field(default=None, ge=0)
    exhaustion_horizon: PositiveDuration = 4 * 3600.0


class QuotaProbe:
    """Export ``llm_token_quota_used_ratio{client_id}`` for every tenant.

    :param clock: returns the current time (aware ``datetime``); injected by tests to pick a month.
    """

    kind: ClassVar[str] = "quota"
    Settings: ClassVar[type[ProbeSettings]] = QuotaSettings
    METRICS: ClassVar[dict[str, str]] = {
        "llm_token_quota_used_ratio": "LLM tokens used this calendar month (UTC) over the monthly quota; may exceed 1.",
        "llm_token_quota_used_tokens": "LLM tokens used by the client this calendar month (UTC).",
        "llm_token_quota_limit_tokens": "The client's monthly LLM token quota.",
        "llm_token_quota_horizon_seconds": ("Seconds ahead that LLMTokenQuotaExhaustionSoon warns of the quota "
                                            "running out at the current rate (exhaustion_horizon)."),
    }

    def __init__(self, settings: QuotaSettings, *, http_client: httpx.AsyncClient | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    async def run(self) -> ProbeResult:
        """Read usage and quotas, then export one ratio per client with a limit."""
        s = self.settings
        start, end = month_bounds(self._clock())
        result = ProbeResult(True, details={"month": start.strftime("%Y-%m")})
        deadline = time.monotonic() + RUN_BUDGET * s.timeout
        async with pg_connect(s) as conn:
            used = await self._fetch_pairs(conn, s.usage_query, (start, end), deadline, "usage_query")
            db_quota = {}
            if s.quota_query:
                db_quota = await self._fetch_pairs(conn, s.quota_query, (), deadline, "quota_query")
        limits: dict[str, float] = {}
        for client in set(used) | set(db_quota) | set(s.quotas):
            limit = s.quotas.get(client, db_quota.get(client, s.default_quota))
            if limit is not None and limit > 0:
                limits[client] = float(limit)
        no_quota = sorted(c for c in used if c not in limits)
        for client in sorted(set(used) | set(limits)):
            tokens = used.get(client, 0.0)
            result.add("llm_token_quota_used_tokens", tokens, client_id=client)
            if client in limits:
                result.add("llm_token_quota_limit_tokens", limits[client], client_id=client)
                result.add("llm_token_quota_used_ratio", tokens / limits[client], client_id=client)
                result.add("llm_token_quota_horizon_seconds", s.exhaustion_horizon, client_id=client)
        ratios = {c: used.get(c, 0.0) / lim for c, lim in limits.items()}
        result.details["clients"] = len(limits)
        if ratios:
            top = max(ratios, key=lambda c: ratios[c])
            result.details["max_ratio"] = f"{top}={ratios[top]:.2f}"
        if no_quota:
            result.details["no_quota"] = no_quota
            result.logs.append(f"clients with usage but no quota: {', '.join(no_quota)}")
        return result

    async def _fetch_pairs(self, conn: asyncpg.Connection, query: str, args: tuple, deadline: float,
                           what: str) -> dict[str, float]:
        """Run ``query`` with as many of ``args`` as it has parameters; map column 0 -> float(column 1)."""
        timeout = max(deadline - time.monotonic(), 0.01)
        try:
            stmt = await conn.prepare(query, timeout=timeout)
            n = len(stmt.get_parameters())
            timeout = max(deadline - time.monotonic(), 0.01)
            rows = await stmt.fetch(*args[:n], timeout=timeout)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            raise RuntimeError(f"{what} failed: {describe_pg_error(exc, self.settings, timeout=timeout)}") from None
        out: dict[str, float] = {}
        for row in rows:
            if len(row) < 2:
                raise RuntimeError(f"{what} must return two columns (client_id, value)")
            if row[0] is None or row[1] is None:
                continue
            out[str(row[0])] = out.get(str(row[0]), 0.0) + float(row[1])
        return out

    async def close(self) -> None:
        """Nothing to release: each run opens and closes its own connection."""
