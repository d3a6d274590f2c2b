"""Messages about one alert through the outbox: escalation notices (which integration, what
payload, the failure code) and acknowledge/resolve updates to the alert's receivers."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import yaml
from tests.notify.notify_kit import quiet_integrations

from model.alert import Alert
from model.labels import Labels
from monitor.alerting.route import build_route
from monitor.config.alerting import AlertingConfig
from monitor.escalation.notices import Notice
from monitor.escalation.policy import EscalationPolicy, Priority, Step, snapshot
from monitor.notify.base import Message
from monitor.notify.links import LinkBuilder
from monitor.notify.notices import AlertUpdates, EscalationNotices
from monitor.notify.outbox_stage import OutboxStage
from monitor.notify.payload import alert_payload

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc).timestamp()
ROUTE = build_route(AlertingConfig.model_validate(yaml.safe_load("""
route:
  receiver: chat
  routes:
    - {matchers: ['severity="critical"'], receiver: pager, continue: true}
    - {matchers: ['severity="critical"'], receiver: incidents}
""")).route)
POLICY = EscalationPolicy({"P0": Priority("P0", 900, 14400)}, (Step("person:alice"),), {"critical": "P0"})
LINKS = LinkBuilder("http://mon.example", "link-key", 3600, clock=lambda: T0)


def critical() -> Alert:
    return Alert(Labels.of(alertname="ApiDown", severity="critical"), {"summary": "down"}, T0 - 60, value="1")


def notice(kind: str = "escalation", channel: str = "page", alert: Alert | None = None) -> Notice:
    a = critical()
    return Notice(kind, snapshot(POLICY, a, T0), alert, "alice", channel, "R0ALICE", "P0: paging alice",
                  f"{a.fingerprint}@0:0:0:notify:{channel}")


async def test_notice_goes_through_the_alerts_own_receivers_first(sqlite_store):
    # both "chat" and "pager" have PagerDuty; the alert routes to pager, so pager's is used
    outbox = OutboxStage(sqlite_store, quiet_integrations(chat=["pagerduty[0]"], pager=["slack[0]", "pagerduty[0]"],
                                             incidents=["slack[0]"]))
    sink = EscalationNotices(outbox, LINKS, ROUTE, clock=lambda: T0)
    a = critical()
    assert await sink(notice(alert=a), T0) == ""
    [row] = await sqlite_store.list_outbox()
    assert (row["receiver"], row["integration"]) == ("pager", "pagerduty[0]")
    msg = Message.from_dict(row["payload"])
    assert (msg.kind, msg.recipient, msg.priority, msg.title, msg.dedup_key) == (
        "escalation", "R0ALICE", "P0", "P0: paging alice", a.fingerprint)
    assert msg.alerts == (alert_payload(a, T0),) and msg.extra == {"person": "alice", "channel": "page"}
    assert msg.ack_url.startswith("http://mon.example/ack/")
    assert await sink(notice(alert=a), T0 + 5) == ""  # the same step replayed: the same row
    assert len(await sqlite_store.list_outbox()) == 1
    assert await sink(notice(channel="slack_dm", alert=a), T0) == ""  # slack_dm: the first Slack in route order
    assert (await sqlite_store.list_outbox())[-1]["integration"] == "slack[0]"


async def test_notice_without_integration_fails_and_writes_nothing(sqlite_store, caplog):
    outbox = OutboxStage(sqlite_store, quiet_integrations(pager=["slack[0]"]))
    sink = EscalationNotices(outbox, LINKS, ROUTE, clock=lambda: T0)
    assert await sink(notice(channel="email", alert=critical()), T0) == "no_integration"
    assert await sqlite_store.list_outbox() == []
    assert any(r.getMessage() == "no integration for escalation channel" for r in caplog.records)


async def test_notice_about_an_alert_no_longer_held_and_resolved_notices(sqlite_store):
    sink = EscalationNotices(OutboxStage(sqlite_store, quiet_integrations(pager=["pagerduty[0]"])), LINKS, ROUTE,
                             clock=lambda: T0)
    await sink(notice(), T0)  # the pipeline holds the alert no more: what the snapshot knows
    gone = Message.from_dict((await sqlite_store.list_outbox())[0]["payload"]).alerts[0]
    assert gone["labels"] == {"alertname": "ApiDown", "severity": "critical"}
    assert (gone["status"], gone["starts_at"], gone["annotations"]) == ("firing", "", {})
    await sink(notice("resolved", alert=critical()), T0)
    done = Message.from_dict((await sqlite_store.list_outbox())[1]["payload"])
    assert done.kind == "resolved" and done.alerts[0]["status"] == "resolved"
    assert done.alerts[0]["ends_at"] == ""  # the alert fires on; the walk was resolved by hand
    valid = Alert(critical().labels, {}, T0 - 60, T0 + 240)  # a rule alert's validity: firing
    n_rows = len(await sqlite_store.list_outbox())
    await sink(dataclasses.replace(notice("resolved", alert=valid), transition="valid"), T0)
    rows = await sqlite_store.list_outbox()
    assert len(rows) == n_rows + 1 and Message.from_dict(rows[-1]["payload"]).alerts[0]["ends_at"] == ""


async def test_updates_reach_every_receiver_of_the_alert(sqlite_store):
    outbox = OutboxStage(sqlite_store, quiet_integrations(chat=["slack[0]"], pager=["pagerduty[0]", "webhook[0]"],
                                             incidents=["slack[0]"]))
    updates = AlertUpdates(outbox, LINKS, ROUTE)
    a = critical()
    await updates(a, "acknowledged", T0, f"ack:{a.fingerprint}:1", ["slack", "pagerduty"])
    rows = await sqlite_store.list_outbox()
    assert [(r["receiver"], r["integration"]) for r in rows] == [("pager", "pagerduty[0]"), ("incidents", "slack[0]")]
    msg = Message.from_dict(rows[0]["payload"])
    assert (msg.kind, msg.dedup_key, msg.recipient) == ("acknowledged", a.fingerprint, "")
    await updates(a, "resolved", T0 + 60, f"resolve:{a.fingerprint}:2", None)
    rows = await sqlite_store.list_outbox()
    assert len(rows) == 5  # every integration of both receivers
    payload = Message.from_dict(rows[-1]["payload"]).alerts[0]
    assert (payload["status"], payload["ends_at"]) == ("resolved", "2026-11-30T10:01:00Z")
    await updates(a, "resolved", T0 + 60, f"resolve:{a.fingerprint}:2", None)
    assert len(await sqlite_store.list_outbox()) == 5  # the same update twice: no new rows
    valid = Alert(a.labels, {}, T0 - 60, T0 + 240)  # a rule alert's future endsAt is no end
    await updates(valid, "resolved", T0 + 60, f"resolve:{a.fingerprint}:3", None)
    payload = Message.from_dict((await sqlite_store.list_outbox())[-1]["payload"]).alerts[0]
    assert (payload["status"], payload["ends_at"]) == ("resolved", "2026-11-30T10:01:00Z")
