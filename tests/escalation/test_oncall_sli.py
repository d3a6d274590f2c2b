"""The on-call response counters: what a page counts as, when, and that a restart resumes them
exactly (rebuilt from the markers in the stored escalations plus the pruned totals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from model.alert import Alert
from monitor.escalation import engine
from monitor.escalation.metrics import EscalationMetrics
from monitor.escalation.oncall_sli import PRUNED_KEY, judge
from monitor.escalation.policy import EscalationPolicy, snapshot
from monitor.escalation.runner import EscalationRunner
from tests.escalation.test_escalation_runner import T0, Sink
from tests.support.alerting_helpers import shipped_config


def alert(severity: str = "critical", **extra: str) -> Alert:
    return Alert.firing({"alertname": "ApiDown", "severity": severity, "service": "api", **extra}, starts_at=T0)


def sample(registry: CollectorRegistry, name: str, priority: str, within: str | None = None) -> float | None:
    labels = {"priority": priority} if within is None else {"priority": priority, "within_sla": within}
    return registry.get_sample_value(name, labels)


def counts(registry: CollectorRegistry, priority: str = "P0") -> tuple[float | None, ...]:
    """``(pages, acks in SLA, acks missed, resolutions in SLA, resolutions missed)``."""
    return (sample(registry, "monitor_oncall_pages_total", priority),
            sample(registry, "monitor_oncall_acks_total", priority, "true"),
            sample(registry, "monitor_oncall_acks_total", priority, "false"),
            sample(registry, "monitor_oncall_resolutions_total", priority, "true"),
            sample(registry, "monitor_oncall_resolutions_total", priority, "false"))


def test_judge_sets_each_marker_once():
    policy = EscalationPolicy.from_config(shipped_config().escalation)
    snap = snapshot(policy, {"alertname": "ApiDown", "severity": "critical"}, T0)  # P0: ack 15 min, resolve 4 h
    s = engine.EscalationState(snap.fingerprint)
    assert judge(snap, s, T0 + 899) is s                              # nothing decided yet
    missed = judge(snap, s, T0 + 900)
    assert (missed.ack_sli, missed.resolve_sli) == ("false", None)    # the ack deadline passed: a miss, at once
    late = judge(snap, engine.acknowledge(snap, missed, T0 + 1000).state, T0 + 1000)
    assert late.ack_sli == "false"                                    # a late ack does not change it
    acked = judge(snap, engine.acknowledge(snap, s, T0 + 900).state, T0 + 900)
    assert acked.ack_sli == "true"                                    # at the deadline is within it
    flap = judge(snap, engine.resolve(snap, s, T0 + 300).state, T0 + 300)
    assert (flap.ack_sli, flap.resolve_sli) == ("skip", "true")       # resolved before anyone had to ack
    assert judge(snap, s, T0 + 4 * 3600).resolve_sli == "false"
    assert judge(snap, engine.resolve(snap, s, T0 + 4 * 3600 + 1).state, T0 + 4 * 3600 + 1).resolve_sli == "false"


async def test_runner_counts_pages_acks_and_misses_at_their_deadline(sqlite_store):
    registry = CollectorRegistry()
    runner = EscalationRunner(shipped_config(), sqlite_store, Sink(), metrics=EscalationMetrics(registry))
    await runner.load()
    assert counts(registry) == (0, 0, 0, 0, 0) and counts(registry, "P2") == (0, 0, 0, 0, 0)  # born at 0
    acked, ignored, flap = alert(), alert(instance="2"), alert(instance="3")
    await runner.advance(T0, [acked, ignored, flap], {})
    await runner.acknowledge(acked.fingerprint, T0 + 600, "alice", "api:test")
    await runner.resolve(flap.fingerprint, T0 + 120, "rule")
    assert counts(registry) == (3, 1, 0, 1, 0)
    assert runner.next_deadline() == T0 + 900  # the unacknowledged page's ack deadline
    await runner.advance(T0 + 900, [acked, ignored], {})
    assert counts(registry) == (3, 1, 1, 1, 0)  # counted as missed the moment its deadline passed
    await runner.acknowledge(ignored.fingerprint, T0 + 1200, "bob", "api:test")
    await runner.advance(T0 + 1200, [acked, ignored], {})
    assert counts(registry) == (3, 1, 1, 1, 0)  # late, already counted: once
    await runner.resolve(acked.fingerprint, T0 + 3600, "alice")
    await runner.advance(T0 + 4 * 3600, [ignored], {})
    assert counts(registry) == (3, 1, 1, 2, 1)
    warning = alert("warning")
    await runner.advance(T0, [warning], {})
    assert counts(registry, "P2")[0] == 1


async def test_a_restart_resumes_every_counter_at_its_durable_value(sqlite_store):
    cfg = shipped_config()
    registry = CollectorRegistry()
    runner = EscalationRunner(cfg, sqlite_store, Sink(), metrics=EscalationMetrics(registry))
    await runner.load()
    a, b = alert(), alert(instance="2")
    await runner.advance(T0, [a, b], {})
    await runner.acknowledge(a.fingerprint, T0 + 60, "alice", "api:test")
    await runner.advance(T0 + 900, [a, b], {})
    before = counts(registry)
    assert before == (2, 1, 1, 0, 0)
    # a new process over the same store: the same values, not 0 (a reset) nor more (a double count)
    registry2 = CollectorRegistry()
    again = EscalationRunner(cfg, sqlite_store, Sink(), metrics=EscalationMetrics(registry2))
    await again.load()
    assert counts(registry2) == before
    await again.advance(T0 + 1000, [a, b], {})
    assert counts(registry2) == before  # the restarted walk replays nothing into the counters
    # resolved and pruned: the totals move to the kv entry and survive the next restart
    await again.resolve(a.fingerprint, T0 + 2000, "alice")
    await again.resolve(b.fingerprint, T0 + 2000, "rule")
    await again.prune(T0 + 2000 + 8 * 86400, 7 * 86400)
    assert await sqlite_store.list_escalations() == []
    assert (await sqlite_store.kv_get(PRUNED_KEY))["monitor_oncall_pages|P0|"] == 2
    registry3 = CollectorRegistry()
    third = EscalationRunner(cfg, sqlite_store, Sink(), metrics=EscalationMetrics(registry3))
    await third.load()
    assert counts(registry3) == (2, 1, 1, 2, 0) == counts(registry2)


def test_a_replica_not_leading_exports_nothing():
    registry = CollectorRegistry()
    metrics = EscalationMetrics(registry)
    assert sample(registry, "monitor_oncall_pages_total", "P0") is None
    metrics.oncall.reset({})
    assert sample(registry, "monitor_oncall_pages_total", "P0") == 0
    metrics.oncall.clear()
    assert sample(registry, "monitor_oncall_pages_total", "P0") is None
