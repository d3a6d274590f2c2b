"""The state-store contract (monitor/store/base.py), run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from monitor.errors import NotFoundError
from monitor.store import migrations
from monitor.store.base import Store

T0 = 1_800_000_000.0


async def test_migrations_applied_once(backend, store):
    assert isinstance(store, Store)
    assert await store.schema_version() == migrations.LATEST
    again = await backend.open()  # a second start must not re-run anything
    assert await again.schema_version() == migrations.LATEST


async def test_alert_upsert_and_ack_lifecycle(store):
    alert = {"fingerprint": "fp1", "labels": {"alertname": "ApiDown", "severity": "critical"},
             "annotations": {"summary": "down"}, "state": "firing", "starts_at": T0}
    await store.upsert_alert(alert, now=T0)
    await store.upsert_alert({**alert, "annotations": {"summary": "still down"}}, now=T0 + 60)
    row = await store.get_alert("fp1")
    assert row["annotations"] == {"summary": "still down"}
    assert row["labels"]["alertname"] == "ApiDown" and row["updated_at"] == T0 + 60
    assert await store.get_alert("nope") is None

    await store.record_ack("fp1", "ack", "alice", T0 + 120, source="slack:U1", expires_at=T0 + 3720)
    row = await store.get_alert("fp1")
    assert (row["acked_by"], row["acked_at"], row["ack_expires_at"], row["ack_source"]) == \
        ("alice", T0 + 120, T0 + 3720, "slack:U1")
    await store.record_ack("fp1", "unack", "alice", T0 + 180, source="cli")
    assert (await store.get_alert("fp1"))["acked_by"] is None
    await store.record_ack("fp1", "resolve", "bob", datetime.fromtimestamp(T0 + 240, timezone.utc), source="api")
    row = await store.get_alert("fp1")
    assert row["state"] == "resolved" and row["resolved_by"] == "bob" and row["resolved_at"] == T0 + 240
    history = await store.list_acks("fp1")
    assert [(h["action"], h["actor"]) for h in history] == [("ack", "alice"), ("unack", "alice"), ("resolve", "bob")]
    assert [a["fingerprint"] for a in await store.list_alerts("resolved")] == ["fp1"]
    with pytest.raises(ValueError):
        await store.record_ack("fp1", "snooze", "x", T0)


async def test_batch_upsert_writes_all_rows_in_one_transaction(store):
    rows = [{"fingerprint": f"fp{i}", "labels": {"alertname": "Storm", "i": str(i)}, "state": "firing",
             "starts_at": T0 + i, "source": "token:prometheus"} for i in range(250)]
    await store.upsert_alerts(rows, now=T0)
    await store.upsert_alerts([], now=T0)  # nothing to write is fine
    listed = await store.list_alerts("firing")
    assert [r["fingerprint"] for r in listed] == [f"fp{i}" for i in range(250)]
    assert {r["source"] for r in listed} == {"token:prometheus"} and listed[7]["labels"]["i"] == "7"
    # an update of existing rows and a new one together; acknowledgement columns stay
    await store.record_ack("fp1", "ack", "alice", T0 + 5)
    await store.upsert_alerts([{**rows[1], "state": "resolved", "ends_at": T0 + 10},
                               {"fingerprint": "new", "labels": {"a": "b"}, "state": "firing", "starts_at": T0}],
                              now=T0 + 10)
    row = await store.get_alert("fp1")
    assert (row["state"], row["ends_at"], row["acked_by"], row["updated_at"]) == ("resolved", T0 + 10, "alice", T0 + 10)
    assert (await store.get_alert("new"))["source"] == ""
    # all or none: a bad row fails the whole batch and writes nothing of it
    with pytest.raises(Exception):
        await store.upsert_alerts([{**rows[2], "state": "resolved"}, {"labels": {}}], now=T0 + 20)
    assert (await store.get_alert("fp2"))["state"] == "firing"


async def test_escalation_snapshot_and_timeline(store):
    snapshot = {"priority": "P0", "ack_deadline_s": 900, "steps": ["primary", "secondary", "manager", "cto"]}
    await store.save_escalation("fp1", snapshot, {"step": 0, "next_at": T0 + 900}, now=T0)
    await store.save_escalation("fp1", snapshot, {"step": 1, "next_at": T0 + 1800}, now=T0 + 900)
    esc = await store.load_escalation("fp1")
    assert esc["snapshot"] == snapshot and esc["state"] == {"step": 1, "next_at": T0 + 1800}
    assert [e["fingerprint"] for e in await store.list_escalations()] == ["fp1"]
    await store.append_timeline("fp1", T0, "step 1 triggered", {"who": "alice", "channel": "slack"})
    await store.append_timeline("fp1", T0 + 900, "step 2 failed: no_one_on_call")
    tl = await store.list_timeline("fp1")
    assert [(e["at"], e["event"]) for e in tl] == [(T0, "step 1 triggered"),
                                                   (T0 + 900, "step 2 failed: no_one_on_call")]
    assert tl[0]["detail"] == {"who": "alice", "channel": "slack"}
    await store.delete_escalation("fp1")
    assert await store.load_escalation("fp1") is None
    assert len(await store.list_timeline("fp1")) == 2  # the timeline outlives the walk


async def test_silences(store):
    matchers = [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}]
    sid = await store.create_silence(matchers, T0, T0 + 3600, "alice", now=T0, comment="deploy")
    assert (await store.get_silence(sid))["matchers"] == matchers
    assert [s["id"] for s in await store.list_silences(active_at=T0 + 10)] == [sid]
    assert await store.list_silences(active_at=T0 + 3600) == []
    await store.expire_silence(sid, now=T0 + 60)
    assert (await store.get_silence(sid))["ends_at"] == T0 + 60
    assert await store.list_silences(active_at=T0 + 61) == []
    assert len(await store.list_silences()) == 1
    with pytest.raises(NotFoundError, match="silence 'missing' not found"):
        await store.expire_silence("missing", now=T0)


async def test_audit_log(store):
    await store.audit("alice", "ack", T0, target="fp1", source="api:10.0.0.5", detail={"comment": "on it"})
    await store.audit("bob", "silence.create", T0 + 1, target="s1", source="cli")
    rows = await store.list_audit()
    assert [(r["actor"], r["action"]) for r in rows] == [("bob", "silence.create"), ("alice", "ack")]
    assert (await store.list_audit(target="fp1"))[0]["detail"] == {"comment": "on it"}


async def test_rule_alert_rows_replace_and_roundtrip(backend, store):
    rows = [{"key": "r1|a", "active_at": T0, "fired_at": None, "state": "pending",
             "labels": {"alertname": "A"}, "value": 3.5},
            {"key": "r1|b", "active_at": T0 - 60, "fired_at": T0, "state": "firing", "labels": {"alertname": "B"}}]
    await store.save_rule_alerts(rows)
    reopened = await backend.open()
    assert await reopened.load_rule_alerts() == rows
    await reopened.save_rule_alerts(rows[1:])
    assert [r["key"] for r in await store.load_rule_alerts()] == ["r1|b"]


async def test_outbox_dedup(store):
    assert await store.enqueue("fp1:firing:ops/slack[0]", "ops", "slack[0]", {"kind": "firing"}, T0 + 3600, T0)
    assert not await store.enqueue("fp1:firing:ops/slack[0]", "ops", "slack[0]", {"kind": "firing"}, T0 + 3600, T0 + 5)
    assert len(await store.list_outbox()) == 1
    assert await store.depth() == 1


async def test_release_claims_frees_a_dead_leaders_leases(store):
    """Regression (benchmarks/chaos.py): a row claimed by a process killed mid-send was held for the
    whole lease, and every later row of its chain behind it; a new leader releases the claims."""
    await store.enqueue("k1", "ops", "webhook[0]", {"n": 1}, T0 + 3600, T0)
    assert [r["dedup_key"] for r in await store.claim_due(T0 + 1)] == ["k1"]
    assert await store.claim_due(T0 + 2) == []  # leased by the dead process
    assert await store.release_claims() == 1
    assert [r["dedup_key"] for r in await store.claim_due(T0 + 2)] == ["k1"]
    assert await store.release_claims() == 1  # the new claim, released again (a second take-over)


async def test_outbox_claim_mark_and_backoff(store):
    await store.enqueue("k1", "ops", "slack[0]", {"n": 1}, T0 + 3600, T0)
    await store.enqueue("k2", "ops", "pagerduty[0]", {"n": 2}, T0 + 3600, T0 + 1)
    claimed = await store.claim_due(T0 + 1, limit=10)
    assert [r["dedup_key"] for r in claimed] == ["k1", "k2"]
    assert claimed[0]["payload"] == {"n": 1}
    assert await store.claim_due(T0 + 2) == []  # leased
    await store.mark_sent(claimed[0]["id"], T0 + 2, {"channel": "C1", "ts": "1.2"})
    await store.mark_failed(claimed[1]["id"], T0 + 2, "pagerduty: status 503", next_attempt_at=T0 + 30)
    assert await store.claim_due(T0 + 29) == []
    again = await store.claim_due(T0 + 30)
    assert [(r["dedup_key"], r["attempts"], r["last_error"]) for r in again] == [("k2", 1, "pagerduty: status 503")]
    await store.mark_failed(again[0]["id"], T0 + 31, "400 invalid event", next_attempt_at=None)
    rows = {r["dedup_key"]: r for r in await store.list_outbox()}
    assert rows["k1"]["status"] == "sent" and rows["k1"]["response"] == {"channel": "C1", "ts": "1.2"}
    assert rows["k2"]["status"] == "failed" and rows["k2"]["attempts"] == 2
    assert await store.depth() == 0


async def test_outbox_lease_expiry_and_not_after(store):
    await store.enqueue("k1", "ops", "slack[0]", {}, T0 + 100, T0)
    assert len(await store.claim_due(T0, lease=60)) == 1
    assert len(await store.claim_due(T0 + 60)) == 1  # the worker died: claimable again
    await store.enqueue("k2", "ops", "slack[0]", {}, T0 + 10, T0)
    assert [r["dedup_key"] for r in await store.claim_due(T0 + 11)] == []  # past not_after: never sent
    expired = await store.expire(T0 + 101)
    assert sorted(r["dedup_key"] for r in expired) == ["k1", "k2"]
    assert await store.depth() == 0
    assert {r["status"] for r in await store.list_outbox()} == {"expired"}


async def test_restart_keeps_pending_rows_due(backend, store):
    await store.enqueue("k1", "ops", "slack[0]", {"kind": "firing"}, T0 + 3600, T0)
    claimed = await store.claim_due(T0)
    await store.mark_failed(claimed[0]["id"], T0, "timeout", next_attempt_at=T0 + 10)
    await store.close()
    reopened = await backend.open()
    assert await reopened.depth() == 1
    due = await reopened.claim_due(T0 + 10)
    assert [(r["dedup_key"], r["attempts"]) for r in due] == [("k1", 1)]
    assert not await reopened.enqueue("k1", "ops", "slack[0]", {}, T0 + 3600, T0 + 11)


async def test_outbox_backlog_summarises_pending_rows_only(store):
    assert await store.outbox_backlog() == {"pending": 0, "oldest_created_at": None, "max_attempts": 0}
    await store.enqueue("sent", "ops", "slack[0]", {}, T0 + 3600, T0 - 50)
    await store.enqueue("k1", "ops", "slack[0]", {}, T0 + 3600, T0)
    await store.enqueue("k2", "ops", "webhook[0]", {}, T0 + 3600, T0 + 30)
    await store.enqueue("gone", "ops", "webhook[0]", {}, T0 + 10, T0 - 100)
    first = {r["dedup_key"]: r for r in await store.claim_due(T0 - 50, limit=10)}
    await store.mark_sent(first["sent"]["id"], T0 - 49)
    await store.mark_failed(first["gone"]["id"], T0 - 49, "timeout", next_attempt_at=T0 + 20)
    for attempt in range(3):  # k2 keeps failing; k1 is never tried
        row = next(r for r in await store.claim_due(T0 + 30 + 10 * attempt, limit=10) if r["dedup_key"] == "k2")
        await store.mark_failed(row["id"], T0 + 31 + 10 * attempt, "503", next_attempt_at=T0 + 40 + 10 * attempt)
    await store.expire(T0 + 60)  # "gone" passed its not_after
    assert await store.outbox_backlog() == {"pending": 2, "oldest_created_at": T0, "max_attempts": 3}
    assert await store.depth() == 2
    # status-page and maintenance mail (kind "maintenance") is not the paging path: not counted
    await store.enqueue("status/email[0]|maintenance|status-confirm:1|a@b.example|confirm-1", "status",
                        "email[0]", {}, T0 + 3600, T0 - 500)
    assert await store.outbox_backlog() == {"pending": 2, "oldest_created_at": T0, "max_attempts": 3}


async def test_message_refs_and_kv(store):
    await store.put_message_ref("fp1", "ops/slack[0]", "", {"channel": "C1", "ts": "1.1"}, now=T0)
    await store.put_message_ref("fp1", "ops/slack[0]", "", {"channel": "C1", "ts": "1.2"}, now=T0 + 1)
    assert await store.get_message_ref("fp1", "ops/slack[0]", "") == {"channel": "C1", "ts": "1.2"}
    assert await store.get_message_ref("fp1", "ops/slack[0]", "U1") is None
    assert await store.kv_get("k") is None
    await store.kv_set("k", {"a": [1, 2]}, now=T0)
    assert await store.kv_get("k") == {"a": [1, 2]}


async def test_leadership(backend, store):
    other = await backend.open()
    if backend.kind == "postgres":
        # A key of this test's own, so parallel runs against the same server do not interfere.
        other.lock_key = store.lock_key = 0x5EED0000 + int(backend.pg[1][2:], 16) % 100_000
    # SQLite: a flock on <file>.leader, so two daemons on one file do not both lead (and page)
    assert await store.try_acquire_leadership()
    assert await store.try_acquire_leadership()  # re-entrant for the holder
    assert not await other.try_acquire_leadership()
    await store.release_leadership()
    assert await other.try_acquire_leadership()
    await other.close()  # a dead leader's connection frees the lock
    assert await store.try_acquire_leadership()
