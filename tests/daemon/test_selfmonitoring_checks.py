"""The paging path's self-checks (monitor/daemon/health.py) over a real RuleManager and a real
SQLite state store, with a stepped clock: rule evaluation stalls after 3 intervals, the outbox is
degraded by age, by failed attempts, by an unreadable store and by a reading not renewed."""

from __future__ import annotations

from pathlib import Path

from monitor.config.model import HealthConfig
from monitor.daemon.health import OUTBOX_STALE_AFTER, PagingPathChecks, health_document
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.store.sqlite import SQLiteStore
from monitor.tsdb.store import SampleStore

T0 = 1_800_000_000.0

RULES = """
groups:
  - name: fast
    interval: 10s
    rules:
      - alert: Always
        expr: vector(1)
        labels: {severity: warning}
  - name: slow
    interval: 1m
    rules:
      - record: one
        expr: vector(1)
"""


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def manager(tmp_path: Path) -> RuleManager:
    (tmp_path / "r.yaml").write_text(RULES)
    samples = SampleStore()
    rules = RuleManager(samples, Engine(samples))
    assert rules.load([tmp_path / "r.yaml"]) == []
    return rules


def checks_for(rules: RuleManager, clock: Clock, **health) -> PagingPathChecks:
    return PagingPathChecks(rules, lambda: HealthConfig(**health), clock=clock)


async def test_rule_evaluation_stalls_after_three_intervals_of_its_group(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    checks = checks_for(rules, clock)
    await rules.eval_all(T0)
    clock.t = T0 + 30
    assert checks.rule_evaluation_problem() is None  # exactly 3 intervals of "fast": not yet
    clock.t = T0 + 31
    assert checks.rule_evaluation_problem() == (
        f'group "fast" ({tmp_path / "r.yaml"}) not evaluated for 31 s (interval 10 s)')
    assert checks.checks()["rule_evaluation"].startswith('degraded: group "fast"')
    await rules.eval_group(rules.groups()[0], T0 + 31)
    assert checks.rule_evaluation_problem() is None
    clock.t = T0 + 200  # both stalled: each is named
    problem = checks.rule_evaluation_problem()
    assert problem is not None and 'group "fast"' in problem and 'group "slow"' in problem
    assert "(interval 1m s)" not in problem and "(interval 60 s)" in problem


async def test_a_group_never_evaluated_is_measured_from_when_it_was_first_seen(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    checks = checks_for(rules, clock)
    assert checks.rule_evaluation_problem() is None  # first seen now
    clock.t = T0 + 45
    assert checks.rule_evaluation_problem() == (
        f'group "fast" ({tmp_path / "r.yaml"}) never evaluated since it was loaded 45 s (interval 10 s)')


async def test_outbox_degraded_by_age_and_by_failed_attempts(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    try:
        checks = checks_for(rules, clock, outbox_max_age=120, outbox_max_attempts=3)
        await checks.read_outbox(store)
        assert checks.outbox_problem() is None and checks.checks()["outbox"] == "healthy"
        for i in range(8):
            await store.enqueue(f"k{i}", "ops", "webhook[0]", {}, T0 + 3600, T0 + i)
        clock.t = T0 + 100
        await checks.read_outbox(store)
        assert checks.outbox_problem() is None  # pending, but young and never failed
        clock.t = T0 + 300
        await checks.read_outbox(store)
        assert checks.outbox_problem() == "8 notifications pending, oldest 300 s (limit 120 s)"
        assert checks.checks()["outbox"] == "degraded: 8 notifications pending, oldest 300 s (limit 120 s)"

        for row in await store.claim_due(T0 + 300, limit=7):  # k0..k6 delivered at last
            await store.mark_sent(row["id"], T0 + 300)
        clock.t = T0 + 310
        await checks.read_outbox(store)
        assert checks.outbox_problem() == "1 notification pending, oldest 303 s (limit 120 s)"
        row = (await store.claim_due(T0 + 310))[0]
        await store.mark_sent(row["id"], T0 + 310)
        await checks.read_outbox(store)
        assert checks.outbox_problem() is None
    finally:
        await store.close()


async def test_outbox_degraded_when_retries_climb_before_the_age_limit(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    try:
        checks = checks_for(rules, clock, outbox_max_age=3600, outbox_max_attempts=3)
        await store.enqueue("k", "ops", "webhook[0]", {}, T0 + 7200, T0)
        for attempt in range(3):
            row = (await store.claim_due(T0 + 10 * attempt))[0]
            await store.mark_failed(row["id"], T0 + 10 * attempt, "503", next_attempt_at=T0 + 10 * (attempt + 1))
            clock.t = T0 + 10 * attempt + 1
            await checks.read_outbox(store)
            expected = None if attempt < 2 else "1 notification pending, one failed 3 times (limit 3)"
            assert checks.outbox_problem() == expected
    finally:
        await store.close()


async def test_outbox_degraded_when_unreadable_or_not_read(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    checks = checks_for(rules, clock)
    assert checks.outbox_problem() is None  # just started
    clock.t = T0 + OUTBOX_STALE_AFTER + 1
    assert checks.outbox_problem() == f"not read since the start {OUTBOX_STALE_AFTER + 1:.0f} s ago"
    store = SQLiteStore(tmp_path / "state.db")  # never opened: every call fails
    await checks.read_outbox(store)
    assert checks.outbox_problem() == "cannot be read: StoreError: state store is not open"
    await store.open()
    try:
        await checks.read_outbox(store)
        assert checks.outbox_problem() is None
        clock.t += OUTBOX_STALE_AFTER + 5  # the reading job stopped
        assert checks.outbox_problem() == f"not read for {OUTBOX_STALE_AFTER + 5:.0f} s"
    finally:
        await store.close()


async def test_health_document_names_the_causes_and_is_degraded(tmp_path):
    rules, clock = manager(tmp_path), Clock()
    checks = checks_for(rules, clock)
    await rules.eval_all(T0)
    doc = health_document(scheduler_running=True, config_problem=None, store=SampleStore(), rules=rules,
                          is_leader=True, paging=checks)
    assert doc["status"] == "healthy"
    assert {k: doc["checks"][k] for k in ("rule_evaluation", "outbox")} == {
        "rule_evaluation": "healthy", "outbox": "healthy"}
    clock.t = T0 + 40
    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    try:
        await checks.read_outbox(store)
    finally:
        await store.close()
    doc = health_document(scheduler_running=True, config_problem=None, store=SampleStore(), rules=rules,
                          is_leader=True, paging=checks)
    assert doc["status"] == "degraded"
    assert doc["checks"]["rule_evaluation"].startswith('degraded: group "fast"')
    assert doc["checks"]["outbox"] == "healthy" and doc["checks"]["leader"] is True
