"""The demo's llm, rag and cost probes (examples/monitor.yaml, as the daemon loads it) against the
sample backend's stand-ins and the seeded PostgreSQL: they succeed and the spend alerts stay quiet."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from examples.sample_backend import serve
from examples.seed import seed
from monitor.config.loader import load_config
from probes import PROBES
from probes.base import run_probe
from probes.cost import CostProbe
from tests.shipped.shipped_helpers import EXAMPLE_CONFIG


@pytest.fixture
async def backend():
    running = await serve("127.0.0.1", 0, seed=7, traffic_rps=0)
    try:
        yield running
    finally:
        await running.stop()


def demo_probes(env):
    config = load_config(EXAMPLE_CONFIG, env=env)
    return {p.name: p for p in config.probes}


def values(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


async def test_demo_llm_and_rag_probes_succeed_on_the_stand_ins(backend):
    settings = demo_probes({"BACKEND_URL": backend.url})
    for name in ("llm", "rag"):
        probe = PROBES[settings[name].kind](settings[name])
        try:
            result = await run_probe(probe, 10.0)
        finally:
            await probe.close()
        assert result.success, (name, result.error)
        if name == "llm":
            assert values(result, "probe_llm_ratelimit_remaining_ratio")
        else:
            assert values(result, "probe_rag_canary_rank")[()] == 1


@pytest.mark.parametrize("day", [2, 15, 28])
async def test_demo_spend_figures_stay_under_the_alert_thresholds(pg_schema, day):
    dsn, schema = pg_schema
    now = datetime(2026, 2, day, 12, tzinfo=timezone.utc)
    await seed(dsn, schema, now=now)
    settings = demo_probes({"DATABASE_URL": dsn, "DEMO_SCHEMA": schema})["llm-cost"]
    probe = CostProbe(settings, clock=lambda: now)
    result = await run_probe(probe, 10.0)
    assert result.success, result.error
    assert 10 < values(result, "llm_spend_month_usd")[()] < 100  # a demo with figures to show
    assert values(result, "llm_spend_budget_used_ratio")[()] < 0.8
    assert values(result, "llm_spend_forecast_budget_ratio")[()] < 1
    assert not values(result, "llm_spend_unpriced_tokens")
