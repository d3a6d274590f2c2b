"""The ``handoff`` message kind: Slack renders it (overridable template, no buttons) and posts it
through the real slack-sdk; PagerDuty, webhook and email skip it without a request."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from monitor.config.receivers import ReceiverConfig, SlackConfig
from monitor.escalation.announce import Announcement, Shift
from monitor.escalation.schedule import Schedule
from monitor.notify import NOTIFIERS, KINDS
from monitor.notify.base import Message
from monitor.notify.handoff import handoff_message
from monitor.notify.registry import build_integrations
from monitor.notify.slack import SlackNotifier, build_payload
from monitor.notify.templates import Templates
from tests.support.notify_servers import FakeHTTP, slack_api, webhook_sink
from tests.support.probe_servers import closed_port

TOKEN = "xoxb-3333333333-4444444444-HaNdOfFtOkEn"
BERLIN = Schedule("primary", "Europe/Berlin", ("alice", "bob"), date(2026, 1, 5), time(9, 0))


class Person:
    def __init__(self, name: str, slack_user_id: str | None) -> None:
        self.name = name
        self.slack_user_id = slack_user_id


PEOPLE = {"alice": Person("Alice Martin", "U01ALICE"), "bob": Person("Bob Schulz", None)}


def message(person: str = "alice", until: datetime | None = None) -> Message:
    since = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc).astimezone(BERLIN.zone)
    until = until if until is not None else datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc).astimezone(BERLIN.zone)
    a = Announcement("primary", "slack-alerts", Shift(person, since, until), "Europe/Berlin")
    return handoff_message(a, PEOPLE, "http://monitor.example")


def test_handoff_is_a_kind_and_the_message_carries_the_dedup_key():
    assert "handoff" in KINDS
    msg = message()
    assert msg.kind == "handoff" and msg.alerts == ()
    assert msg.dedup_key == f"handoff:primary:{int(datetime(2026, 11, 30, 8, tzinfo=timezone.utc).timestamp())}"
    assert Message.from_dict(msg.to_dict()) == msg  # survives the outbox


def test_slack_payload_text_and_no_buttons():
    payload = build_payload(message(), Templates())
    assert payload["text"] == "On call for primary now: Alice Martin (<@U01ALICE>), until Mon 2026-12-07 09:00 CET"
    assert [b["type"] for b in payload["blocks"]] == ["section", "context"]
    assert payload["blocks"][0]["text"]["text"] == payload["text"]
    assert "receiver: slack-alerts" in payload["blocks"][1]["elements"][0]["text"]


def test_slack_payload_without_slack_id_or_next_handoff():
    msg = message("bob")
    assert build_payload(msg, Templates())["text"].startswith("On call for primary now: Bob Schulz, until Mon")
    a = Announcement("primary", "slack-alerts", Shift("bob", datetime(2026, 11, 30, 8, tzinfo=timezone.utc), None),
                     "UTC")
    assert build_payload(handoff_message(a, PEOPLE), Templates())["text"] == (
        "On call for primary now: Bob Schulz, until further notice")


def test_user_template_overrides_the_handoff_text(tmp_path):
    (tmp_path / "slack_handoff.j2").write_text(
        ":rotating_light: {{ extra.schedule }} -> {{ extra.name }} since {{ extra.since }}")
    payload = build_payload(message(), Templates(tmp_path))
    assert payload["text"] == ":rotating_light: primary -> Alice Martin since Mon 2026-11-30 09:00 CET"


async def test_slack_posts_handoff_through_slack_sdk():
    async with FakeHTTP(slack_api(TOKEN)) as srv:
        n = SlackNotifier(SlackConfig(channel="#oncall", token=TOKEN, api_url=srv.url + "/api/"))
        try:
            result = await n.notify(message())
        finally:
            await n.aclose()
        [req] = srv.on("/api/chat.postMessage")
        assert req.data["channel"] == "#oncall"
        assert req.data["text"].startswith("On call for primary now: Alice Martin (<@U01ALICE>)")
        assert "actions" not in req.body.decode()
        assert result.meta["channel"] == "CONCALL" and not result.skipped


async def test_other_channels_skip_handoff_without_a_request():
    async with FakeHTTP(webhook_sink) as sink:
        receivers = [ReceiverConfig.model_validate({
            "name": "slack-alerts",
            "pagerduty_configs": [{"routing_key": "k" * 32, "url": sink.url}],
            "webhook_configs": [{"url": sink.url + "/hook"}],
            "email_configs": [{"to": "a@example.com", "from": "m@example.com",
                               "smarthost": f"127.0.0.1:{closed_port()}", "require_tls": False}],
        })]
        built = build_integrations(receivers)["slack-alerts"]
        # Every channel of the registry is exercised (slack is covered above).
        assert {i.kind for i in built} == set(NOTIFIERS) - {"slack"}
        try:
            for integ in built:
                result = await integ.notify(message())
                assert result.skipped, integ.name
        finally:
            for integ in built:
                await integ.notifier.aclose()
        assert sink.requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_slack(kind):
    alerts = [] if kind == "handoff" else [{"labels": {"alertname": "X"}, "fingerprint": "abc"}]
    payload = build_payload(Message.build(kind, "ops", alerts), Templates())
    assert payload["text"] and payload["blocks"]
