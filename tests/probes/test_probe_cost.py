"""The cost probe against the real PostgreSQL: the sample backend's seeded month, priced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from pydantic import ValidationError

from examples.seed import seed
from probes.base import run_probe
from probes.cost import CostProbe, CostSettings, ModelPrice, forecast, spend_of

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=timezone.utc)  # 10.5 days into a 31-day month
PRICES = {"gpt-4o": {"input": 2.50, "output": 10.00}, "gpt-4o-mini": {"input": 0.15, "output": 0.60}}


def values(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


async def run(probe):
    try:
        return await run_probe(probe, 10.0)
    finally:
        await probe.close()


@pytest.fixture
async def seeded(pg_schema):
    dsn, schema = pg_schema
    await seed(dsn, schema, now=NOW)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    yield dsn, schema, conn
    await conn.close()


def test_spend_of_prices_input_and_output_apart():
    prices = {"m": ModelPrice(input=2.0, output=8.0)}
    usd, unpriced = spend_of([("acme", "m", "chat", 1_000_000, 500_000), ("acme", "x", "chat", 7, 3)], prices)
    assert usd == {("acme", "m", "chat"): pytest.approx(6.0)}
    assert unpriced == {"x": 10.0}


def test_forecast_extends_the_recent_pace():
    # $10 spent, $2 in the last day, 20 days left: 10 + 2 * 20
    assert forecast(10.0, 2.0, 86400, 20 * 86400) == pytest.approx(50.0)
    assert forecast(3.0, 0.0, 0.0, 86400) == 3.0


def test_settings_reject_negative_prices_and_zero_budget():
    with pytest.raises(ValidationError):
        CostSettings(name="c", dsn="postgresql://x@127.0.0.1/db", prices={"m": {"input": -1}})
    with pytest.raises(ValidationError):
        CostSettings(name="c", dsn="postgresql://x@127.0.0.1/db", budget_usd=0)


async def test_seeded_month_spend_matches_sql(seeded):
    dsn, schema, conn = seeded
    settings = CostSettings(name="cost", dsn=dsn, search_path=schema, prices=PRICES, budget_usd=100,
                            top_operations=2)
    result = await run(CostProbe(settings, clock=lambda: NOW))
    assert result.success, result.error
    # the same sums computed by PostgreSQL
    rows = await conn.fetch("""
        SELECT client_id, model, sum(input_tokens) AS i, sum(output_tokens) AS o FROM llm_usage
        WHERE created_at >= '2026-03-01' AND created_at < $1 GROUP BY 1, 2""", NOW)
    expected = {}
    for r in rows:
        if r["model"] in PRICES:
            p = PRICES[r["model"]]
            expected[(("client_id", r["client_id"]), ("model", r["model"]))] = \
                (float(r["i"]) * p["input"] + float(r["o"]) * p["output"]) / 1e6
    got = values(result, "llm_spend_usd")
    assert got == pytest.approx(expected)
    total = sum(expected.values())
    assert values(result, "llm_spend_month_usd")[()] == pytest.approx(total)
    assert values(result, "llm_spend_budget_used_ratio")[()] == pytest.approx(total / 100)
    # the embedding model has no price: counted as unpriced tokens, not spend
    unpriced = await conn.fetchval("""SELECT sum(tokens) FROM llm_usage WHERE model = 'text-embedding-3-small'
        AND created_at >= '2026-03-01' AND created_at < $1""", NOW)
    assert values(result, "llm_spend_unpriced_tokens") == {(("model", "text-embedding-3-small"),): float(unpriced)}
    assert "text-embedding-3-small" in result.logs[0]
    # two most expensive operations, ranked
    ops = values(result, "llm_spend_operation_usd")
    assert len(ops) == 2 and {k[0][1] for k in ops} <= {"refactor_codebook", "generate_recommendations"}
    assert sum(ops.values()) == pytest.approx(total)
    # the seed spreads usage evenly over the month: the forecast is close to the month's pace
    pace = total / (10.5 * 86400) * 31 * 86400
    fc = values(result, "llm_spend_forecast_usd")[()]
    assert fc == pytest.approx(pace, rel=0.15)
    assert values(result, "llm_spend_forecast_budget_ratio")[()] == pytest.approx(fc / 100)


async def test_forecast_follows_a_burst_in_the_window(seeded):
    dsn, schema, conn = seeded
    await conn.execute("TRUNCATE llm_usage")
    # $2.50 on day 1, then $25 in the last hour: the day-long window sees the burst
    await conn.execute("""INSERT INTO llm_usage (client_id, tokens, model, input_tokens, output_tokens, operation,
        created_at) VALUES ('acme', 1000000, 'gpt-4o', 1000000, 0, 'chat', '2026-03-01T06:00Z'),
                           ('acme', 10000000, 'gpt-4o', 10000000, 0, 'chat', $1)""", NOW - timedelta(minutes=30))
    settings = CostSettings(name="cost", dsn=dsn, search_path=schema, prices=PRICES, budget_usd=500)
    result = await run(CostProbe(settings, clock=lambda: NOW))
    assert result.success, result.error
    left = (datetime(2026, 4, 1, tzinfo=timezone.utc) - NOW).total_seconds()
    assert values(result, "llm_spend_forecast_usd")[()] == pytest.approx(27.5 + 25.0 / 86400 * left)
    # last month's and future rows are not this month's spend
    await conn.execute("""INSERT INTO llm_usage (client_id, tokens, model, input_tokens, output_tokens, operation,
        created_at) VALUES ('acme', 1000000, 'gpt-4o', 1000000, 0, 'chat', '2026-02-28T23:59:59Z')""")
    again = await run(CostProbe(settings, clock=lambda: NOW))
    assert values(again, "llm_spend_month_usd")[()] == pytest.approx(27.5)


async def test_no_budget_exports_no_ratio_and_a_bad_query_fails(seeded):
    dsn, schema, _ = seeded
    result = await run(CostProbe(CostSettings(name="cost", dsn=dsn, search_path=schema, prices=PRICES),
                                 clock=lambda: NOW))
    assert result.success and not values(result, "llm_spend_budget_used_ratio")
    bad = CostSettings(name="cost", dsn=dsn, search_path=schema, usage_query="SELECT client_id FROM llm_usage")
    failed = await run(CostProbe(bad, clock=lambda: NOW))
    assert not failed.success and "five columns" in failed.error


async def test_no_forecast_before_forecast_after(seeded):
    dsn, schema, _ = seeded
    early = datetime(2026, 3, 1, 5, 0, tzinfo=timezone.utc)
    settings = CostSettings(name="cost", dsn=dsn, search_path=schema, prices=PRICES, budget_usd=100)
    result = await run(CostProbe(settings, clock=lambda: early))
    assert result.success, result.error
    assert not values(result, "llm_spend_forecast_usd") and not values(result, "llm_spend_forecast_budget_ratio")
    assert values(result, "llm_spend_budget_used_ratio")
    sooner = CostSettings(name="cost", dsn=dsn, search_path=schema, prices=PRICES, budget_usd=100,
                          forecast_after="4h")
    assert values(await run(CostProbe(sooner, clock=lambda: early)), "llm_spend_forecast_budget_ratio")
