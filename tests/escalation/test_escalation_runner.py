"""The escalation stage alone: walks started from the marked alerts handed in, notices handed to
a sink (never the outbox), timeline and state written after them, holds while muted."""

from __future__ import annotations

from tests.support.alerting_helpers import unix
from prometheus_client import CollectorRegistry

from model.alert import Alert
from monitor.escalation.metrics import EscalationMetrics
from monitor.escalation.notices import Notice
from monitor.escalation.runner import EscalationRunner

T0 = unix(2026, 3, 30, 8, 0)  # Monday 10:00 Berlin: alice primary, bob secondary


class Sink:
    """Records the notices; answers ``failures[channel]`` (default: delivered)."""

    def __init__(self, **failures: str) -> None:
        self.notices: list[Notice] = []
        self.failures = failures

    async def __call__(self, notice: Notice, now: float) -> str:
        self.notices.append(notice)
        return self.failures.get(notice.channel, "")

    def sent(self) -> list[tuple[str, str, str]]:
        return [(n.kind, n.person, n.channel) for n in self.notices]


def critical(**extra: str) -> Alert:
    return Alert.firing({"alertname": "ApiDown", "severity": "critical", "service": "api", **extra}, starts_at=T0)


async def events(sqlite_store, fp: str) -> list[tuple[str, object]]:
    return [(r["event"], (r["detail"] or {}).get("level")) for r in await sqlite_store.list_timeline(fp)]


async def test_firing_unmuted_alert_starts_a_walk_whose_notices_go_to_the_sink(shipped, sqlite_store):
    sink, registry = Sink(), CollectorRegistry()
    runner = EscalationRunner(shipped, sqlite_store, sink, metrics=EscalationMetrics(registry))
    a = critical()
    await runner.advance(T0, [a], {a.fingerprint: a})
    assert sink.sent() == [("escalation", "alice", "page"), ("escalation", "alice", "slack_dm")]
    page = sink.notices[0]
    assert page.alert is a and page.integration == "pagerduty" and page.recipient == "${PD_KEY_ALICE}"
    assert page.title == "P0: paging Alice Martin (alice) (schedule:primary)"
    assert page.transition.startswith(f"{a.fingerprint}@") and page.transition.endswith(":0:0:notify:page")
    assert await events(sqlite_store, a.fingerprint) == [("escalation started", None), ("triggered", 0)]
    stored = await sqlite_store.load_escalation(a.fingerprint)
    assert stored["state"]["level"] == 1 and runner.status(a.fingerprint)["status"] == "escalating"
    # the rule re-sends it: no second walk; at +15 min the secondary
    await runner.advance(T0 + 60, [a], {a.fingerprint: a})
    assert len(sink.notices) == 2
    await runner.advance(T0 + 900, [a], {a.fingerprint: a})
    assert sink.sent()[2:] == [("escalation", "bob", "page"), ("escalation", "bob", "slack_dm")]
    assert registry.get_sample_value("monitor_escalation_steps_total", {"level": "2", "outcome": "triggered"}) == 1


async def test_only_and_resolved_and_no_chain(shipped, sqlite_store):
    sink = Sink()
    runner = EscalationRunner(shipped, sqlite_store, sink)
    a, b = critical(), critical(instance="2")
    await runner.advance(T0, [a, b.resolve(T0)], {}, only={a.fingerprint})
    assert {n.snap.fingerprint for n in sink.notices} == {a.fingerprint}
    assert all(n.alert is None for n in sink.notices)  # not held: the sink shows what the snapshot knows
    shipped.escalation.chain = []
    quiet = EscalationRunner(shipped, sqlite_store, Sink())
    assert not quiet.enabled and not quiet.needs_start(b.fingerprint, T0)


async def test_failures_are_recorded_in_the_timeline(shipped, sqlite_store):
    sink, registry = Sink(slack_dm="no_integration"), CollectorRegistry()
    shipped.people["alice"].pagerduty_routing_key = None
    runner = EscalationRunner(shipped, sqlite_store, sink, metrics=EscalationMetrics(registry))
    a = critical()
    await runner.advance(T0, [a], {a.fingerprint: a})
    assert sink.sent() == [("escalation", "alice", "slack_dm")]  # no page contact: nothing to hand over
    rows = await sqlite_store.list_timeline(a.fingerprint)
    failed = [(r["event"], r["detail"]["detail"]) for r in rows if r["event"].startswith("failed")]
    assert failed == [("failed: no_contact", "page"), ("failed: no_integration", "slack_dm")]
    assert registry.get_sample_value("monitor_escalation_steps_total", {"level": "1", "outcome": "failed"}) == 2


async def test_muted_walk_is_held_and_restarts_at_the_primary(shipped, sqlite_store):
    sink = Sink()
    runner = EscalationRunner(shipped, sqlite_store, sink)
    a = critical()
    await runner.advance(T0, [a], {a.fingerprint: a})
    muted = a.with_marks(silenced_by=("s1",))
    for t in (T0 + 300, T0 + 900, T0 + 1800):
        await runner.advance(t, [muted], {a.fingerprint: a})
    assert len(sink.notices) == 2  # held: the secondary is not paged
    await runner.advance(T0 + 2000, [a], {a.fingerprint: a})
    assert sink.sent()[2:] == [("escalation", "alice", "page"), ("escalation", "alice", "slack_dm")]
    held = [e for e, _ in await events(sqlite_store, a.fingerprint) if e in ("paused", "resumed")]
    assert held == ["paused", "resumed"]


async def test_people_acknowledge_and_resolve(shipped, sqlite_store):
    sink = Sink()
    runner = EscalationRunner(shipped, sqlite_store, sink)
    a = critical()
    await runner.advance(T0, [a], {a.fingerprint: a})
    await runner.acknowledge(a.fingerprint, T0 + 120, "alice", "api:test")
    await runner.notify_notified(a.fingerprint, "acknowledged", T0 + 120, "ack:x", a)
    assert sink.sent()[2:] == [("acknowledged", "alice", "page"), ("acknowledged", "alice", "slack_dm")]
    assert {n.transition for n in sink.notices[2:]} == {"ack:x:alice:page", "ack:x:alice:slack_dm"}
    assert runner.status(a.fingerprint)["acked_by"] == "alice"
    await runner.resolve(a.fingerprint, T0 + 300, "bob", a)
    assert [(n.kind, n.title) for n in sink.notices[4:]] == [("resolved", "Resolved (resolved by bob)")] * 2
    assert runner.get(a.fingerprint).state.status == "resolved"
    assert not runner.needs_start(a.fingerprint, a.starts_at)  # resolved by hand: the firing rule does not page again
    await runner.prune(T0 + 300 + 7 * 86400 + 1, 7 * 86400)
    assert runner.get(a.fingerprint) is None and await sqlite_store.load_escalation(a.fingerprint) is None
