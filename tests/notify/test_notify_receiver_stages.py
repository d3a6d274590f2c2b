"""The durable receiver stages, each alone and strung together: the payload edge, the message,
the transition number, the outbox rows, the count."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.notify.notify_kit import QuietNotifier
from prometheus_client import CollectorRegistry, Counter

from model.alert import Alert
from model.labels import Labels
from monitor.alerting.nflog import TransitionLog
from monitor.alerting.stage import Context
from monitor.escalation.policy import EscalationPolicy, Priority, Step
from monitor.notify.base import Integration, Message
from monitor.notify.links import LinkBuilder, verify
from monitor.notify.outbox_stage import OutboxStage, transition_id
from monitor.notify.payload import alert_payload, dedup_key, payload_time, with_defaults
from monitor.notify.receiver_stages import EnqueuedStage, MessageStage, NflogStage, receiver_stages
from monitor.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc).timestamp()
POLICY = EscalationPolicy({"P0": Priority("P0", 900, 14400), "P2": Priority("P2", 14400, 259200)},
                          (Step("schedule:primary"),), {"critical": "P0", "warning": "P2"})
LINKS = LinkBuilder("http://mon.example", "link-key", 3600, clock=lambda: T0)


INTEGRATIONS = {"ops": [Integration("slack[0]", "ops", QuietNotifier()),
                        Integration("webhook[0]", "ops", QuietNotifier(send_resolved=False))],
                "null": []}


def alert(name: str, severity: str = "critical", **kw) -> Alert:
    return Alert(Labels.of(alertname=name, severity=severity), {"summary": f"{name} fired"}, T0 - 60, **kw)


def ctx(receiver: str = "ops") -> Context:
    return Context(receiver, T0, '{}:{alertname="ApiDown"}', Labels.of(alertname="ApiDown"), 3600.0)


# -- the payload edge -----------------------------------------------------------------------------


def test_alert_payload_is_the_one_shape():
    a = alert("ApiDown", value="0.12", generator_url="http://p/graph")
    assert alert_payload(a, T0) == {
        "status": "firing", "labels": {"alertname": "ApiDown", "severity": "critical"},
        "annotations": {"summary": "ApiDown fired"}, "starts_at": "2026-11-30T09:59:00Z", "ends_at": "",
        "generator_url": "http://p/graph", "fingerprint": a.fingerprint, "value": "0.12"}
    done = alert_payload(a.resolve(T0 + 0.25), T0 + 1)
    assert (done["status"], done["ends_at"]) == ("resolved", "2026-11-30T10:00:00.250Z")
    no_value = Alert(Labels.of(alertname="X"), {"value": "42"}, T0)
    assert alert_payload(no_value, T0)["value"] == "42"  # the value annotation, as Prometheus templates use
    assert payload_time(None) == "" and payload_time(T0) == "2026-11-30T10:00:00Z"


def test_hand_built_payloads_get_the_missing_keys():
    d = with_defaults({"labels": {"alertname": "X"}}, "resolved")
    assert d == {"status": "resolved", "labels": {"alertname": "X"}, "annotations": {}, "starts_at": "",
                 "ends_at": "", "generator_url": "", "fingerprint": Labels.of(alertname="X").fingerprint(),
                 "value": ""}
    assert with_defaults(alert_payload(alert("A"), T0)) == alert_payload(alert("A"), T0)  # complete: unchanged


def test_dedup_key_of_one_or_many_alerts():
    assert dedup_key(["a1"]) == "a1"
    by_group = dedup_key(["a1", "b2"], group_key="{}:{}")
    assert len(by_group) == 32 and by_group == dedup_key(["b2", "a1", "c3"], group_key="{}:{}")
    assert dedup_key(["a1", "b2"]) == dedup_key(["b2", "a1"]) != dedup_key(["a1", "c3"])
    assert len(dedup_key(["a1", "b2"])) == 16


# -- one stage at a time --------------------------------------------------------------------------


async def test_message_stage_builds_the_group_message():
    one, other = alert("ApiDown"), alert("ApiSlow", "warning")
    c, alerts = await MessageStage(LINKS, POLICY)(ctx(), [one])
    msg = c.message
    assert (msg.kind, msg.receiver, msg.priority, msg.group_key) == ("firing", "ops", "P0", c.group_key)
    assert msg.alerts == (alert_payload(one, T0),) and alerts == [one]
    assert verify(msg.ack_url.rsplit("/", 1)[1], T0, "link-key") == (one.fingerprint, "ack")
    assert msg.group_labels == {"alertname": "ApiDown"} and msg.external_url == "http://mon.example"
    c, _ = await MessageStage(LINKS, POLICY)(ctx(), [one, other])
    assert c.message.ack_url == "" and c.message.priority == "P0"  # links only for one firing alert
    c, _ = await MessageStage(LINKS, POLICY)(ctx(), [one.resolve(T0)])
    assert (c.message.kind, c.message.priority) == ("resolved", "")
    no_chain = EscalationPolicy(POLICY.priorities, (), POLICY.severity_priority)
    c, _ = await MessageStage(LINKS, no_chain)(ctx(), [one])
    assert c.message.priority == ""  # no escalation chain: no priority shown


async def test_nflog_stage_numbers_the_transition(sqlite_store):
    c, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown")])
    stage = NflogStage(TransitionLog(sqlite_store))
    first, _ = await stage(c, [])
    assert first.transition == transition_id(c.message) + "#0"
    again, _ = await stage(c.with_(now=T0 + 60), [])
    assert again.transition == first.transition  # the same content within repeat_interval
    later, _ = await stage(c.with_(now=T0 + 3600), [])
    assert later.transition == transition_id(c.message) + "#1"


async def test_outbox_stage_writes_a_row_per_integration_once(sqlite_store):
    c, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown")])
    stage = OutboxStage(sqlite_store, INTEGRATIONS)
    done, _ = await stage(c.with_(transition="t#0"), [])
    assert done.written == ("slack[0]", "webhook[0]")
    again, _ = await stage(c.with_(transition="t#0"), [])
    assert again.written == ()  # the same transition never goes twice
    resolved, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown").resolve(T0)])
    done, _ = await stage(resolved.with_(transition="t#1"), [])
    assert done.written == ("slack[0]",)  # the webhook does not send resolved messages
    assert await stage(c.with_(receiver="nobody", message=Message.build("firing", "nobody", [])), []) is None
    rows = await sqlite_store.list_outbox()
    assert [(r["receiver"], r["integration"]) for r in rows] == [("ops", "slack[0]"), ("ops", "webhook[0]"),
                                                                 ("ops", "slack[0]")]
    assert Message.from_dict(rows[0]["payload"]) == c.message


async def test_enqueued_stage_counts_new_rows_per_receiver():
    registry = CollectorRegistry()
    counter = Counter("monitor_notifications_enqueued", "rows", ["receiver"], registry=registry)
    stage = EnqueuedStage(counter)
    await stage(ctx().with_(written=("slack[0]", "webhook[0]")), [])
    await stage(ctx().with_(written=()), [])
    assert registry.get_sample_value("monitor_notifications_enqueued_total", {"receiver": "ops"}) == 2
    assert await EnqueuedStage(None)(ctx(), []) == (ctx(), [])


# -- strung together ------------------------------------------------------------------------------


async def test_receiver_stages_from_group_to_rows_and_a_replay_is_a_no_op(sqlite_store, tmp_path):
    registry = CollectorRegistry()
    counter = Counter("monitor_notifications_enqueued", "rows", ["receiver"], registry=registry)
    outbox = OutboxStage(sqlite_store, INTEGRATIONS)
    pipeline = receiver_stages(TransitionLog(sqlite_store), outbox, LINKS, POLICY, counter)
    a = alert("ApiDown")
    c, _ = await pipeline(ctx(), [a])
    assert c.written == ("slack[0]", "webhook[0]") and c.transition.endswith("#0")
    again = SQLiteStore(tmp_path / "state.db")  # restarted: the dispatcher flushes the group again
    await again.open()
    try:
        replay = receiver_stages(TransitionLog(again), OutboxStage(again, INTEGRATIONS), LINKS, POLICY, counter)
        c2, _ = await replay(ctx().with_(now=T0 + 30), [a])
        assert c2.transition == c.transition and c2.written == ()
    finally:
        await again.close()
    assert registry.get_sample_value("monitor_notifications_enqueued_total", {"receiver": "ops"}) == 2
    c3, _ = await pipeline(ctx("null"), [a])
    assert c3.written == ()  # a receiver without integrations (Alertmanager's null receiver)


async def test_a_replayed_transition_is_the_same_row_when_only_ends_at_moved(sqlite_store):
    # A firing intake alert's endsAt moves forward with every re-post; a notification replayed after a
    # crash (rows written, notification log not) must number the same transition, not announce the
    # episode again (found by benchmarks/chaos.py: a kill inside a send, then a re-post of the alert).
    before, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown", ends_at=T0 + 3600)])
    after, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown", ends_at=T0 + 3700)])
    assert transition_id(before.message) == transition_id(after.message)
    stage = NflogStage(TransitionLog(sqlite_store))
    first, _ = await stage(before, [])
    replay, _ = await stage(after.with_(now=T0 + 5), [])
    assert replay.transition == first.transition
    resolved, _ = await MessageStage(LINKS, POLICY)(ctx(), [alert("ApiDown").resolve(T0)])
    assert transition_id(resolved.message) != transition_id(before.message)
