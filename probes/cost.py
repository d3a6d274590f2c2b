"""The ``cost`` probe: LLM spend in USD this calendar month, by client and model, against a budget.

Schema assumed by the default SQL (the backend's ``llm_usage`` table, ``examples/schema.sql``)::

    llm_usage(client_id text, model text, operation text,
              input_tokens bigint, output_tokens bigint, created_at timestamptz)

``usage_query`` receives ``$1`` and ``$2`` (timestamptz, ``[from, to)``) and must return rows
``(client_id, model, operation, input_tokens, output_tokens)``. It runs twice per probe: over the
month so far ``[first day 00:00 UTC, now)`` and over the recent window ``[max(month start, now -
forecast_window), now)``.

Spend of a row: ``input_tokens * prices[model].input / 1e6 + output_tokens * prices[model].output
/ 1e6`` (prices are USD per million tokens, the providers' list-price unit). Tokens of a model
with no price are not guessed: they are exported as ``llm_spend_unpriced_tokens{model}`` and
logged, and add nothing to the spend.

Forecast of month-end spend at the current rate: ``spent + recent / window_seconds *
seconds_left_in_month``, where ``recent`` is the spend of the recent window (default the last
24 hours, clipped to the month). A day-long window follows a change of pace within a day while
ignoring the hour-to-hour swing of a working day. Until ``forecast_after`` (default 1 day) of the
month has passed, the pace of a few hours says little about a month: no forecast is exported, so
``LLMSpendForecastOverBudget`` cannot fire on the first morning's traffic. The probe succeeds
when its queries ran; whether spend is too high is for alert rules (``rules/llm.yaml``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Annotated, Callable, ClassVar, Literal

import asyncpg
import httpx
from pydantic import BaseModel, ConfigDict, Field

from model.duration import PositiveDuration
from probes.base import ProbeResult, ProbeSettings
from probes.database import RUN_BUDGET, PostgresSettings, describe_pg_error, pg_connect
from probes.quota import month_bounds

DEFAULT_USAGE_QUERY = (
    "SELECT client_id, model, operation, COALESCE(sum(input_tokens), 0) AS input_tokens, "
    "COALESCE(sum(output_tokens), 0) AS output_tokens FROM llm_usage "
    "WHERE created_at >= $1 AND created_at < $2 GROUP BY client_id, model, operation"
)


class ModelPrice(BaseModel):
    """List price of one model, USD per million tokens.

    :ivar input: USD per million input (prompt) tokens.
    :ivar output: USD per million output (completion) tokens; 0 for embedding models.
    """

    model_config = ConfigDict(extra="forbid")
    input: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)] = 0.0


class CostSettings(PostgresSettings):
    """Settings of the ``cost`` probe (connection fields from :class:`PostgresSettings`).

    Example::

        - name: llm-cost
          kind: cost
          dsn: ${DATABASE_URL}
          budget_usd: 250
          prices:
            gpt-4o: {input: 2.50, output: 10.00}
            gpt-4o-mini: {input: 0.15, output: 0.60}

    :ivar prices: model id -> :class:`ModelPrice` (USD per million tokens).
    :ivar budget_usd: monthly budget of all clients together, USD; unset exports no ratios.
    :ivar forecast_window: the recent window whose pace the forecast extends (default 1 day).
    :ivar forecast_after: how much of the month must have passed before a forecast is exported
        (default 1 day; ``0s`` is not allowed, use ``1s`` for "always").
    :ivar top_operations: how many of the most expensive operations to export (default 5).
    :ivar usage_query: SQL returning ``(client_id, model, operation, input_tokens, output_tokens)``
        for ``[$1, $2)``.
    """

    kind: Literal["cost"] = "cost"
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, gt=0)
    forecast_window: PositiveDuration = 86400.0
    forecast_after: PositiveDuration = 86400.0
    top_operations: int = Field(default=5, ge=1)
    usage_query: str = DEFAULT_USAGE_QUERY


Row = tuple[str, str, str, float, float]


def spend_of(rows: list[Row], prices: dict[str, ModelPrice]) -> tuple[dict[tuple[str, str, str], float],
                                                                       dict[str, float]]:
    """Price usage rows.

    :param rows: ``(client_id, model, operation, input_tokens, output_tokens)``.
    :return: ``({(client_id, model, operation): usd}, {model: unpriced tokens})``.
    """
    usd: dict[tuple[str, str, str], float] = {}
    unpriced: dict[str, float] = {}
    for client, model, operation, tokens_in, tokens_out in rows:
        price = prices.get(model)
        if price is None:
            unpriced[model] = unpriced.get(model, 0.0) + tokens_in + tokens_out
            continue
        key = (client, model, operation)
        usd[key] = usd.get(key, 0.0) + (tokens_in * price.input + tokens_out * price.output) / 1e6
    return usd, unpriced


def forecast(spent: float, recent: float, window_seconds: float, seconds_left: float) -> float:
    """Month-end spend at the recent pace: ``spent + recent / window_seconds * seconds_left`` (USD).

    A zero-length window (the first instant of the month) forecasts ``spent``.
    """
    if window_seconds <= 0:
        return spent
    return spent + recent / window_seconds * max(seconds_left, 0.0)


class CostProbe:
    """Export ``llm_spend_usd{client_id, model}``, the top operations, the month's total and forecast.

    :param clock: returns the current time (aware ``datetime``); injected by tests to pick a month.
    """

    kind: ClassVar[str] = "cost"
    Settings: ClassVar[type[ProbeSettings]] = CostSettings
    METRICS: ClassVar[dict[str, str]] = {
        "llm_spend_usd": "LLM spend this calendar month (UTC) by client and model, USD at the configured prices.",
        "llm_spend_operation_usd": "LLM spend this calendar month of the most expensive operations, USD.",
        "llm_spend_month_usd": "LLM spend this calendar month (UTC) of all clients, USD.",
        "llm_spend_forecast_usd": "Month-end LLM spend forecast at the pace of the recent window, USD.",
        "llm_spend_budget_usd": "The configured monthly LLM budget, USD.",
        "llm_spend_budget_used_ratio": "LLM spend this month over the monthly budget; may exceed 1.",
        "llm_spend_forecast_budget_ratio": "Month-end LLM spend forecast over the monthly budget; may exceed 1.",
        "llm_spend_unpriced_tokens": "Tokens this month of models with no configured price (not counted in spend).",
    }

    def __init__(self, settings: CostSettings, *, http_client: httpx.AsyncClient | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    async def run(self) -> ProbeResult:
        """Query the month's and the recent window's usage, price it, export spend and forecast."""
        s = self.settings
        now = self._clock().astimezone(timezone.utc)
        start, end = month_bounds(now)
        recent_from = max(start, now - timedelta(seconds=s.forecast_window))
        deadline = time.monotonic() + RUN_BUDGET * s.timeout
        async with pg_connect(s) as conn:
            month_rows = await self._fetch(conn, (start, now), deadline)
            recent_rows = await self._fetch(conn, (recent_from, now), deadline)
        usd, unpriced = spend_of(month_rows, s.prices)
        recent_usd, _ = spend_of(recent_rows, s.prices)
        result = ProbeResult(True, details={"month": start.strftime("%Y-%m")})
        by_client_model: dict[tuple[str, str], float] = {}
        by_operation: dict[str, float] = {}
        for (client, model, operation), amount in usd.items():
            by_client_model[(client, model)] = by_client_model.get((client, model), 0.0) + amount
            by_operation[operation] = by_operation.get(operation, 0.0) + amount
        for (client, model), amount in sorted(by_client_model.items()):
            result.add("llm_spend_usd", amount, client_id=client, model=model)
        top = sorted(by_operation.items(), key=lambda kv: (-kv[1], kv[0]))[:s.top_operations]
        for operation, amount in top:
            result.add("llm_spend_operation_usd", amount, operation=operation)
        spent = sum(usd.values())
        projected = forecast(spent, sum(recent_usd.values()), (now - recent_from).total_seconds(),
                             (end - now).total_seconds())
        forecasting = (now - start).total_seconds() >= s.forecast_after
        result.add("llm_spend_month_usd", spent)
        if forecasting:
            result.add("llm_spend_forecast_usd", projected)
        if s.budget_usd is not None:
            result.add("llm_spend_budget_usd", s.budget_usd)
            result.add("llm_spend_budget_used_ratio", spent / s.budget_usd)
            if forecasting:
                result.add("llm_spend_forecast_budget_ratio", projected / s.budget_usd)
        for model, tokens in sorted(unpriced.items()):
            result.add("llm_spend_unpriced_tokens", tokens, model=model)
        result.details.update(spent_usd=round(spent, 2),
                              forecast_usd=round(projected, 2) if forecasting else "not yet (forecast_after)")
        if top:
            result.details["top_operation"] = f"{top[0][0]}={top[0][1]:.2f}"
        if unpriced:
            result.details["unpriced_models"] = sorted(unpriced)
            result.logs.append(f"models with usage but no price (not counted): {', '.join(sorted(unpriced))}")
        return result

    async def _fetch(self, conn: asyncpg.Connection, args: tuple[datetime, datetime], deadline: float) -> list[Row]:
        """Run ``usage_query`` over ``[args[0], args[1])``; return its rows as :data:`Row` tuples."""
        timeout = max(deadline - time.monotonic(), 0.01)
        try:
            stmt = await conn.prepare(self.settings.usage_query, timeout=timeout)
            n = len(stmt.get_parameters())
            timeout = max(deadline - time.monotonic(), 0.01)
            rows = await stmt.fetch(*args[:n], timeout=timeout)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            raise RuntimeError(f"usage_query failed: {describe_pg_error(exc, self.settings, timeout=timeout)}") \
                from None
        out: list[Row] = []
        for row in rows:
            if len(row) < 5:
                raise RuntimeError("usage_query must return five columns "
                                   "(client_id, model, operation, input_tokens, output_tokens)")
            out.append((str(row[0]), str(row[1]), str(row[2]), float(row[3] or 0), float(row[4] or 0)))
        return out

    async def close(self) -> None:
        """Nothing to release: each run opens and closes its own connection."""
