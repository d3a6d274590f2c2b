"""Walks started together share store transactions (issue 9: 1,000 walks started in one tick,
each write its own commit, held the pipeline lock ~0.9 s)."""

from __future__ import annotations

import math

import pytest

from model.alert import Alert
from monitor.escalation.runner import START_BATCH, EscalationRunner
from tests.escalation.test_escalation_runner import T0, Sink


class Transactions:
    """Counts the transactions SQLite runs: each ``BEGIN`` and each statement outside one."""

    def __init__(self) -> None:
        self.count = 0
        self._open = False

    def __call__(self, sql: str) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head == "BEGIN":
            self.count += 1
            self._open = True
        elif head in ("COMMIT", "ROLLBACK", "END"):
            self._open = False
        elif not self._open:
            self.count += 1


def storm(n: int) -> list[Alert]:
    return [Alert.firing({"alertname": "ApiDown", "severity": "critical", "instance": f"host-{i}"}, starts_at=T0)
            for i in range(n)]


async def test_walks_started_together_are_written_a_batch_per_transaction(shipped, sqlite_store):
    sink, seen = Sink(), Transactions()
    runner = EscalationRunner(shipped, sqlite_store, sink)
    alerts = storm(2 * START_BATCH + 5)
    await sqlite_store._db.set_trace_callback(seen)
    await runner.advance(T0, alerts, {a.fingerprint: a for a in alerts})
    await sqlite_store._db.set_trace_callback(None)
    assert seen.count == math.ceil(len(alerts) / START_BATCH)
    assert len(runner.escalations) == len(alerts) and len(sink.notices) == 2 * len(alerts)
    for a in (alerts[0], alerts[-1]):
        assert [r["event"] for r in await sqlite_store.list_timeline(a.fingerprint)] == [
            "escalation started", "triggered"]
        assert (await sqlite_store.load_escalation(a.fingerprint))["state"]["level"] == 1


async def test_a_failed_batch_starts_none_of_its_walks(shipped, sqlite_store):
    runner = EscalationRunner(shipped, sqlite_store, Sink())
    alerts = storm(3)

    class Boom(Sink):
        async def __call__(self, notice, now):
            if notice.snap.fingerprint == alerts[2].fingerprint:
                raise RuntimeError("outbox down")
            return await super().__call__(notice, now)

    runner.deliver = Boom()
    with pytest.raises(RuntimeError):
        await runner.advance(T0, alerts, {a.fingerprint: a for a in alerts})
    assert runner.escalations == {}
    assert await sqlite_store.list_timeline(alerts[0].fingerprint) == []  # rolled back with the batch
    runner.deliver = Sink()
    await runner.advance(T0 + 1, alerts, {a.fingerprint: a for a in alerts})
    assert set(runner.escalations) == {a.fingerprint for a in alerts}


def test_snapshot_and_state_dicts_are_what_asdict_gave_and_round_trip(shipped):
    from dataclasses import asdict

    from monitor.escalation.engine import EscalationState, Notified
    from monitor.escalation.policy import EscalationPolicy, EscalationSnapshot, snapshot

    snap = snapshot(EscalationPolicy.from_config(shipped.escalation), storm(1)[0], T0)
    legacy = asdict(snap)
    legacy["labels"] = dict(snap.labels)
    legacy["steps"] = [dict(asdict(s), channels=list(s.channels)) for s in snap.steps]
    assert snap.to_dict() == legacy and list(snap.to_dict()) == list(legacy)
    assert EscalationSnapshot.from_json(snap.to_json()) == snap
    state = EscalationState(snap.fingerprint, level=1, next_at=T0 + 900, notified=(Notified("alice", 0, ("page",)),))
    legacy_state = asdict(state)
    legacy_state["notified"] = [dict(asdict(n), channels=list(n.channels)) for n in state.notified]
    assert state.to_dict() == legacy_state
    assert EscalationState.from_dict(state.to_dict()) == state
