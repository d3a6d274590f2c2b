"""Messages about one alert through the outbox: escalation notices (which integration, what
payload, the failure code) and acknowledge/resolve updates to the alert's receivers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml

from model.alert import Alert
from model.labels import Labels
from monitor.alerting.route import build_route
from monitor.config.alerting import AlertingConfig
from monitor.escalation.notices import Notice
from monitor.escalation.policy import EscalationPolicy, Priority, Step, snapshot
from monitor.notify.base import Integration, Message, NotifyResult
from monitor.notify.links import LinkBuilder
from monitor.notify.notices import AlertUpdates, EscalationNotices
from monitor.notify.outbox_stage import OutboxStage
from monitor.notify.payload import alert_payload
from monitor.store.sqlite import SQLiteStore

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


class Quiet:
    send_resolved = True

    async def notify(self, message: Message) -> NotifyResult:
        return NotifyResult()

    def secrets(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        pass


def integrations(**receivers: list[str]) -> dict[str, list[Integration]]:
    return {r: [Integration(name, r, Quiet()) for name in names] for r, names in receivers.items()}


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(tmp_path / "state.db")
    await s.open()
    yield s
    await s.close()


def critical() -> Alert:
    return Alert(Labels.of(alertname="ApiDown", severity="critical"), {"summary": "down"}, T0 - 60, value="1")


def notice(kind: str = "escalation", channel: str = "page", alert: Alert | None = None) -> Notice:
    a = critical()
    return Notice(kind, snapshot(POLICY, a, T0), alert, "alice", channel, "R0ALICE", "P0: paging alice",
                  f"{a.fingerprint}@0:0:0:notify:{channel}")


async def test_notice_goes_through_the_alerts_own_receivers_first(store):
    # both "chat" and "pager" have PagerDuty; the alert routes to pager, so pager's is used
    outbox = OutboxStage(store, integrations(chat=["pagerduty[0]"], pager=["slack[0]", "pagerduty[0]"],
                                             incidents=["slack[0]"]))
    sink = EscalationNotices(outbox, LINKS, ROUTE, clock=lambda: T0)
    a = critical()
    assert await sink(notice(alert=a), T0) == ""
    [row] = await store.list_outbox()
    assert (row["receiver"], row["integration"]) == ("pager", "pagerduty[0]")
    msg = Message.from_dict(row["payload"])
    assert (msg.kind, msg.recipient, msg.priority, msg.title, msg.dedup_key) == (
        "escalation", "R0ALICE", "P0", "P0: paging alice", a.fingerprint)
    assert msg.alerts == (alert_payload(a, T0),) and msg.extra == {"person": "alice", "channel": "page"}
    assert msg.ack_url.startswith("http://mon.example/ack/")
    assert await sink(notice(alert=a), T0 + 5) == ""  # the same step replayed: the same row
    assert len(await store.list_outbox()) == 1
    assert await sink(notice(channel="slack_dm", alert=a), T0) == ""  # slack_dm: the first Slack in route order
    assert (await store.list_outbox())[-1]["integration"] == "slack[0]"


async def test_notice_without_integration_fails_and_writes_nothing(store, caplog):
    sink = EscalationNotices(OutboxStage(store, integrations(pager=["slack[0]"])), LINKS, ROUTE, clock=lambda: T0)
    assert await sink(notice(channel="email", alert=critical()), T0) == "no_integration"
    assert await store.list_outbox() == []
    assert any(r.getMessage() == "no integration for escalation channel" for r in caplog.records)


async def test_notice_about_an_alert_no_longer_held_and_resolved_notices(store):
    sink = EscalationNotices(OutboxStage(store, integrations(pager=["pagerduty[0]"])), LINKS, ROUTE,
                             clock=lambda: T0)
    await sink(notice(), T0)  # the pipeline holds the alert no more: what the snapshot knows
    gone = Message.from_dict((await store.list_outbox())[0]["payload"]).alerts[0]
    assert gone["labels"] == {"alertname": "ApiDown", "severity": "critical"}
    assert (gone["status"], gone["starts_at"], gone["annotations"]) == ("firing", "", {})
    await sink(notice("resolved", alert=critical()), T0)
    done = Message.from_dict((await store.list_outbox())[1]["payload"])
    assert done.kind == "resolved" and done.alerts[0]["status"] == "resolved"
    assert done.alerts[0]["ends_at"] == ""  # the alert fires on; the walk was resolved by hand


async def test_updates_reach_every_receiver_of_the_alert(store):
    outbox = OutboxStage(store, integrations(chat=["slack[0]"], pager=["pagerduty[0]", "webhook[0]"],
                                             incidents=["slack[0]"]))
    updates = AlertUpdates(outbox, LINKS, ROUTE)
    a = critical()
    await updates(a, "acknowledged", T0, f"ack:{a.fingerprint}:1", ["slack", "pagerduty"])
    rows = await store.list_outbox()
    assert [(r["receiver"], r["integration"]) for r in rows] == [("pager", "pagerduty[0]"), ("incidents", "slack[0]")]
    msg = Message.from_dict(rows[0]["payload"])
    assert (msg.kind, msg.dedup_key, msg.recipient) == ("acknowledged", a.fingerprint, "")
    await updates(a, "resolved", T0 + 60, f"resolve:{a.fingerprint}:2", None)
    rows = await store.list_outbox()
    assert len(rows) == 5  # every integration of both receivers
    payload = Message.from_dict(rows[-1]["payload"]).alerts[0]
    assert (payload["status"], payload["ends_at"]) == ("resolved", "2026-11-30T10:01:00Z")
    await updates(a, "resolved", T0 + 60, f"resolve:{a.fingerprint}:2", None)
    assert len(await store.list_outbox()) == 5  # the same update twice: no new rows
