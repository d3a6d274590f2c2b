"""The ``sql`` probe: user-defined queries exported as gauges (the backend's business metrics).

Each entry of ``queries`` names a metric; every row its query returns becomes one sample of that
metric: the value from column ``value``, labels from the ``labels`` columns (``NULL`` labels
become ``""``; rows with a ``NULL`` value are skipped). Queries run one after another on one
connection, each under its own ``timeout`` (default: what is left of the probe's timeout).

A failing query (bad SQL, timeout, missing column, non-numeric value) fails only itself:
``probe_sql_query_success{query=<name>} 0`` and its reason, while the other queries still
export. The probe succeeds when every query succeeded; ``error`` names the failing ones.

Example, one of ``examples/``' business metrics::

    - name: business
      kind: sql
      dsn: ${DATABASE_URL}
      queries:
        - name: codebook_codebooks_created_per_day
          help: Codebooks created in the last 24 hours, per client.
          query: SELECT client_id, count(*) AS value FROM codebooks
                 WHERE created_at > now() - interval '1 day' GROUP BY client_id
          labels: [client_id]
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar, Literal

import asyncpg
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.duration import PositiveDuration
from probes.base import ProbeResult, ProbeSettings, one_line
from probes.database import RUN_BUDGET, PostgresSettings, describe_pg_error, pg_connect

_RESERVED = {"probe", "target", "__name__"}


class SqlQuery(BaseModel):
    """One user-defined gauge.

    :ivar name: metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``).
    :ivar help: the ``# HELP`` sentence.
    :ivar query: SQL returning the value column and the label columns.
    :ivar value: name of the numeric column holding the sample value (default ``value``).
    :ivar labels: columns that become labels (not ``probe``/``target``, which the daemon sets).
    :ivar timeout: seconds allowed for this query.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    help: str = ""
    query: str = Field(min_length=1)
    value: str = "value"
    labels: list[str] = Field(default_factory=list)
    timeout: PositiveDuration | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        for label in v:
            if label in _RESERVED:
                raise ValueError(f"label {label!r} is reserved (set by the daemon)")
        return v


class SqlSettings(PostgresSettings):
    """Settings of the ``sql`` probe: connection fields plus ``queries`` (see :class:`SqlQuery`)."""

    kind: Literal["sql"] = "sql"
    queries: list[SqlQuery] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "SqlSettings":
        names = [q.name for q in self.queries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate query names: {', '.join(dupes)}")
        return self


class SqlProbe:
    """Run each configured query and export its rows as gauges.

    ``SqlProbe.METRICS`` lists the probe's own metrics; an instance's ``metrics`` adds the
    user-defined ones with their ``help`` text.
    """

    kind: ClassVar[str] = "sql"
    Settings: ClassVar[type[ProbeSettings]] = SqlSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_sql_query_success": "Whether one configured query ran and returned usable rows.",
        "probe_sql_query_duration_seconds": "Seconds one configured query took.",
        "probe_sql_query_rows": "Rows returned by one configured query.",
    }

    def __init__(self, settings: SqlSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        #: every metric this instance may emit -> help text (own metrics + user gauges).
        self.metrics: dict[str, str] = {
            **self.METRICS,
            **{q.name: q.help or f"User-defined SQL gauge {q.name}." for q in settings.queries},
        }

    async def run(self) -> ProbeResult:
        """Run every query; see the module docstring for failure semantics."""
        s = self.settings
        result = ProbeResult(True)
        deadline = time.monotonic() + RUN_BUDGET * s.timeout
        failed: list[str] = []
        async with pg_connect(s) as conn:
            for q in s.queries:
                left = max(deadline - time.monotonic(), 0.01)
                timeout = min(q.timeout, left) if q.timeout else left
                start = time.monotonic()
                try:
                    rows = await conn.fetch(q.query, timeout=timeout)
                    samples = self._samples(q, rows)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
                    reason: str | None = describe_pg_error(exc, s, timeout=timeout)
                except ValueError as exc:
                    reason = one_line(str(exc))
                else:
                    reason = None
                    for labels, value in samples:
                        result.add(q.name, value, **labels)
                result.add("probe_sql_query_duration_seconds", time.monotonic() - start, query=q.name)
                result.add("probe_sql_query_success", 0 if reason else 1, query=q.name)
                if reason:
                    failed.append(f"{q.name}: {reason}")
                    result.logs.append(f"query {q.name} failed: {reason}")
                    result.details[q.name] = "error"
                else:
                    result.add("probe_sql_query_rows", len(samples), query=q.name)
                    result.details[q.name] = samples[0][1] if len(samples) == 1 else f"{len(samples)} rows"
        if failed:
            result.success = False
            result.error = one_line("; ".join(failed), 400)
        return result

    @staticmethod
    def _samples(q: SqlQuery, rows: list[asyncpg.Record]) -> list[tuple[dict[str, str], float]]:
        """Turn rows into (labels, value) pairs. :raises ValueError: missing column or non-numeric value."""
        out = []
        for row in rows:
            keys = set(row.keys())
            missing = [c for c in [q.value, *q.labels] if c not in keys]
            if missing:
                raise ValueError(f"missing column(s) {', '.join(missing)}; got {', '.join(sorted(keys))}")
            raw = row[q.value]
            if raw is None:
                continue
            if isinstance(raw, bool):
                raw = int(raw)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"column {q.value} is not numeric: {one_line(repr(raw), 40)}") from None
            out.append(({c: "" if row[c] is None else str(row[c]) for c in q.labels}, value))
        return out

    async def close(self) -> None:
        """Nothing to release: each run opens and closes its own connection."""
