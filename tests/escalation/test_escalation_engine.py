"""The escalation walk, minute by minute with a manual clock (STYLE guideline 14)."""

from __future__ import annotations

import json

import pytest

from model.alert import Alert
from monitor.escalation.engine import (
    EscalationState, acknowledge, escalate_now, resolve, start, step, unacknowledge,
)
from monitor.escalation.policy import EscalationPolicy, EscalationSnapshot, snapshot
from monitor.escalation.schedule import OnCallLookup
from tests.support.alerting_helpers import utc

T0 = utc(2026, 3, 30, 8, 0).timestamp()  # Monday 10:00 Berlin: alice primary, bob secondary
MIN = 60.0


@pytest.fixture
def policy(shipped) -> EscalationPolicy:
    return EscalationPolicy.from_config(shipped.escalation)


@pytest.fixture
def lookup(shipped) -> OnCallLookup:
    return OnCallLookup.from_config(shipped)


def critical(**extra: str) -> Alert:
    return Alert.firing({"alertname": "ApiDown", "severity": "critical", "service": "api", **extra}, starts_at=T0)


class Walk:
    """Drive an escalation one minute at a time and keep everything it produced."""

    def __init__(self, snap, lookup, t=T0):
        self.snap, self.lookup, self.t = snap, lookup, t
        res = start(snap, t, lookup)
        self.state = res.state
        self.log = [(t, a.kind, a.level, a.person, a.channels, a.reason) for a in res.actions]
        self.timeline = list(res.timeline)
        self.deadline = res.next_deadline

    def _take(self, res):
        self.state = res.state
        self.log += [(self.t, a.kind, a.level, a.person, a.channels, a.reason) for a in res.actions]
        self.timeline += res.timeline
        self.deadline = res.next_deadline
        return res

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.t += MIN
            self._take(step(self.snap, self.state, self.t, self.lookup))

    def ack(self, by="alice"):
        return self._take(acknowledge(self.snap, self.state, self.t, by))

    def unack(self, by="alice"):
        return self._take(unacknowledge(self.snap, self.state, self.t, self.lookup, by))

    def escalate(self, by="alice", comment=""):
        return self._take(escalate_now(self.snap, self.state, self.t, self.lookup, by, comment))

    def resolve(self, by="rule"):
        return self._take(resolve(self.snap, self.state, self.t, by))

    def notified(self):
        return [((t - T0) / MIN, kind, level, person) for t, kind, level, person, _, _ in self.log]


def test_p0_nobody_acks_walks_the_chain_every_15_minutes(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(60)
    assert w.notified() == [(0, "notify", 0, "alice"), (15, "notify", 1, "bob"), (30, "notify", 2, "em"),
                            (45, "notify", 3, "cto")]
    assert w.log[0][4] == ("page", "slack_dm") and w.log[2][4] == ("page", "slack_dm", "email")
    assert w.log[1][5] == "not acknowledged within 15m" and w.log[3][5] == "not acknowledged within 45m"
    assert [(e.event, e.level, e.person) for e in w.timeline] == [
        ("triggered", 0, "alice"), ("triggered", 1, "bob"), ("triggered", 2, "em"), ("triggered", 3, "cto")]
    assert w.state.status == "exhausted"
    assert w.deadline == T0 + 4 * 3600  # only the resolve SLA is left


def test_ack_stops_escalation(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(20)  # alice at 0, bob at 15
    w.ack("bob")
    assert w.state.status == "acknowledged" and w.timeline[-1].event == "acknowledged"
    w.minutes(120)
    assert [p for _, _, _, p in w.notified()] == ["alice", "bob"]
    assert w.deadline == T0 + 4 * 3600  # the resolve SLA comes before the ack expiry (20m + 4h)


def test_ack_expiry_retriggers_from_the_primary(policy, lookup):
    # P1 (ack 1h, resolve 24h) so that the resolve SLA stays out of the way.
    w = Walk(snapshot(policy, critical(priority="P1"), T0), lookup)
    w.minutes(5)
    w.ack("alice")
    assert w.state.ack_expires_at == T0 + 5 * MIN + 4 * 3600
    w.minutes(4 * 60 - 1)
    assert w.notified() == [(0, "notify", 0, "alice")]
    w.minutes(1)  # the acknowledgement expired at 4h05m
    assert w.timeline[-2].event == "ack_expired"
    assert w.notified()[-1] == (245, "notify", 0, "alice")
    assert w.state.walk == 1 and w.state.status == "escalating"
    w.minutes(60)
    assert w.notified()[-1] == (305, "notify", 1, "bob")


def test_unack_restarts_from_the_primary(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(31)  # alice, bob, em
    w.ack("em")
    w.minutes(10)
    w.unack("em")
    assert [e.event for e in w.timeline[-2:]] == ["unacknowledged", "triggered"]
    assert w.notified()[-1] == (41, "notify", 0, "alice")
    w.minutes(15)
    assert w.notified()[-1] == (56, "notify", 1, "bob")
    assert len(w.log) == 5


def test_escalate_now_runs_the_next_level_at_once_and_keeps_the_waits(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(3)
    w.escalate("alice", "need a database person")
    assert w.notified() == [(0, "notify", 0, "alice"), (3, "notify", 1, "bob")]
    assert [(e.event, e.person, e.detail) for e in w.timeline[-2:]] == [
        ("escalated", "alice", "need a database person"), ("triggered", "bob", "schedule:secondary via page, slack_dm")]
    w.minutes(14)
    assert len(w.log) == 2  # em's wait (15m) counts from the escalation, not from the original deadline
    w.minutes(1)
    assert w.notified()[-1] == (18, "notify", 2, "em")


def test_escalate_now_after_an_ack_goes_on_from_the_level_reached(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(16)  # alice, bob
    w.ack("bob")
    w.minutes(5)
    w.escalate("bob")
    assert w.state.status == "escalating" and w.state.acked_at is None
    assert w.notified()[-1] == (21, "notify", 2, "em")
    w.minutes(60)
    w.escalate("cto")  # the chain is done: nobody left
    assert w.timeline[-1].event == "escalated" and "nobody left" in w.timeline[-1].detail
    assert [p for _, _, _, p in w.notified()] == ["alice", "bob", "em", "cto"]
    w.resolve()
    w.escalate("alice")
    assert w.state.status == "resolved" and len([x for x in w.log if x[1] == "notify"]) == 4


def test_resolve_sla_breach_notifies_next_level_once(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(2)
    w.ack("alice")  # acknowledged at level 0, never resolved
    w.minutes(4 * 60)  # the resolve SLA passes at 4h, before the acknowledgement expires (4h02m)
    breach = [x for x in w.log if x[1] == "sla_breach"]
    assert len(breach) == 1
    t, kind, level, person, channels, reason = breach[0]
    assert ((t - T0) / MIN, level, person) == (240, 1, "bob")
    assert reason == "SLA breached: P0 not resolved within 4h"
    assert w.state.sla_breached
    w.minutes(600)
    assert len([x for x in w.log if x[1] == "sla_breach"]) == 1


def test_resolution_sends_resolved_notices_to_everyone_notified(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.minutes(35)  # alice, bob, em
    w.resolve("alice")
    notices = [(x[3], x[4], x[5]) for x in w.log if x[1] == "resolved_notice"]
    assert notices == [("alice", ("page", "slack_dm"), "resolved by alice"),
                       ("bob", ("page", "slack_dm"), "resolved by alice"),
                       ("em", ("page", "slack_dm", "email"), "resolved by alice")]
    assert w.state.status == "resolved" and w.deadline is None
    w.minutes(60)
    assert len(w.log) == 6
    again = resolve(w.snap, w.state, w.t, "rule")
    assert again.actions == () and again.state == w.state


def test_a_person_notified_twice_gets_one_resolved_notice(policy, lookup):
    w = Walk(snapshot(policy, critical(), T0), lookup)
    w.ack("alice")
    w.minutes(1)
    w.unack("alice")  # alice paged again
    w.resolve()
    assert [x[3] for x in w.log if x[1] == "resolved_notice"] == ["alice"]


def test_nobody_on_call_fails_and_moves_on(policy, shipped):
    # Before the schedules start nobody is on call: both schedule steps fail at once, em is paged at 0.
    early = utc(2025, 12, 1, 12).timestamp()
    lookup = OnCallLookup.from_config(shipped)
    w = Walk(snapshot(policy, critical(), early), lookup, t=early)
    assert [(e.event, e.level, e.detail) for e in w.timeline] == [
        ("failed: no_one_on_call", 0, "schedule:primary"),
        ("failed: no_one_on_call", 1, "schedule:secondary"),
        ("triggered", 2, "person:em via page, slack_dm, email"),
    ]
    assert [x[3] for x in w.log] == ["em"]
    w.minutes(15)
    assert [x[3] for x in w.log] == ["em", "cto"]


def test_sla_breach_with_nobody_left_records_failure(policy):
    snap = snapshot(policy, critical(), T0)
    res = start(snap, T0, lambda target, at: None)
    assert [e.event for e in res.timeline] == ["failed: no_one_on_call"] * 4
    assert res.actions == () and res.state.status == "exhausted"
    res = step(snap, res.state, T0 + 4 * 3600, lambda target, at: None)
    # The breach notice tries each level from the first not yet reached; all fail.
    assert [(e.event, e.level) for e in res.timeline] == [("failed: no_one_on_call", i) for i in range(4)]
    assert res.state.sla_breached and res.next_deadline is None


def test_warning_is_p2_and_never_pages(policy, lookup):
    snap = snapshot(policy, {"alertname": "Slow", "severity": "warning"}, T0)
    assert (snap.priority, snap.ack_seconds, snap.resolve_seconds) == ("P2", 4 * 3600, 3 * 86400)
    assert {c for s in snap.steps for c in s.channels} == {"slack_dm", "email"}
    assert [s.wait for s in snap.steps] == [4 * 3600] * 4


def test_priority_label_overrides_severity(policy):
    snap = snapshot(policy, critical(priority="P1"), T0)
    assert (snap.priority, snap.ack_deadline - T0, snap.resolve_deadline - T0) == ("P1", 3600, 86400)
    assert snapshot(policy, critical(priority="P7"), T0).priority == "P0"  # unknown: ignored
    assert snapshot(policy, {"alertname": "X"}, T0).priority == "P2"     # no severity: default


def test_snapshot_and_state_round_trip_through_json(policy, lookup):
    snap = snapshot(policy, critical(), T0)
    assert EscalationSnapshot.from_json(snap.to_json()) == snap
    d = json.loads(snap.to_json())
    assert d["priority"] == "P0" and d["steps"][1] == {"level": 1, "target": "schedule:secondary",
                                                       "channels": ["page", "slack_dm"], "wait": 900.0}
    res = step(snap, start(snap, T0, lookup).state, T0 + 15 * MIN, lookup)
    restored = EscalationState.from_dict(json.loads(json.dumps(res.state.to_dict())))
    assert restored == res.state
    # A restarted daemon that replays the same step from the persisted state gets the same dedup keys.
    before = start(snap, T0, lookup).state
    a = step(snap, before, T0 + 15 * MIN, lookup).actions
    b = step(snap, EscalationState.from_dict(before.to_dict()), T0 + 15 * MIN, lookup).actions
    assert [x.dedup_key for x in a] == [x.dedup_key for x in b]


def test_late_step_catches_up_and_early_step_does_nothing(policy, lookup):
    snap = snapshot(policy, critical(), T0)
    s0 = start(snap, T0, lookup)
    assert step(snap, s0.state, T0 + 14 * MIN, lookup).actions == ()
    late = step(snap, s0.state, T0 + 50 * MIN, lookup)
    assert [a.person for a in late.actions] == ["bob", "em", "cto"]
    assert len({a.dedup_key for a in late.actions}) == 3


def test_deadlines_are_frozen_against_config_changes(shipped, lookup):
    snap = snapshot(EscalationPolicy.from_config(shipped.escalation), critical(), T0)
    shipped.escalation.priorities["P0"].ack = 3600
    res = step(snap, start(snap, T0, lookup).state, T0 + 15 * MIN, lookup)
    assert [a.person for a in res.actions] == ["bob"]
