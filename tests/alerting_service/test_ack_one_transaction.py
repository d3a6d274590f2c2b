"""An acknowledgement, unacknowledgement or resolve by hand is one store transaction (issue 9:
each of its writes took the connection again, behind an intake's writes: acks waited 0.1-0.3 s
during a 5,000-alert intake)."""

from __future__ import annotations

from tests.alerting_service.conftest import T0, firing_rule_alert
from tests.escalation.test_escalation_start_batches import Transactions

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}


async def test_ack_unack_and_resolve_each_commit_once(harness):
    svc = await harness.new_service()
    alert = firing_rule_alert(LABELS, T0 - 60)
    await svc.ingest([alert])
    await harness.deliver()
    db = harness.store._db
    for action in ("acknowledge", "unacknowledge", "resolve"):
        seen = Transactions()
        await db.set_trace_callback(seen)
        await getattr(svc, action)(alert.fingerprint, "carol", "api:test", now=T0 + 120)
        await db.set_trace_callback(None)
        assert seen.count == 1, action
    rows = await harness.store.list_acks(alert.fingerprint)
    assert [r["action"] for r in rows][:2] == ["ack", "unack"]
