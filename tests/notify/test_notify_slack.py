"""Slack through the real slack-sdk AsyncWebClient, pointed at a local Slack Web API server."""

from __future__ import annotations

import pytest

from monitor.config.receivers import SlackConfig
from monitor.errors import NotifyError
from monitor.notify.base import Message
from monitor.notify.slack import SlackNotifier, build_payload
from monitor.notify.templates import Templates
from tests.notify.notify_kit import (ChannelCase, assert_golden, assert_no_secret, firing_message,
                                     resolved_message, run_kit)
from tests.support.notify_servers import FakeHTTP, Reply, slack_api

TOKEN = "xoxb-1111111111-2222222222-SeCrEtSlAcKtOkEn"


def make(url: str, timeout: float = 5.0, **kw) -> SlackNotifier:
    conf = SlackConfig(channel="#alerts", token=TOKEN, api_url=url + "/api/", timeout=timeout, **kw)
    return SlackNotifier(conf)


@pytest.fixture
async def slack():
    async with FakeHTTP(slack_api(TOKEN)) as srv:
        yield srv


@pytest.fixture
async def notifier(slack):
    n = make(slack.url)
    yield n
    await n.aclose()


async def test_conformance_kit():
    case = ChannelCase("slack", make, "/api/chat.postMessage", slack_api(TOKEN), [TOKEN])
    await run_kit(case, firing_message())


def test_golden_payloads():
    t = Templates()
    assert_golden("slack_firing", build_payload(firing_message(), t))
    assert_golden("slack_resolved", build_payload(resolved_message(), t))
    assert_golden("slack_acknowledged", build_payload(
        Message.build("acknowledged", "ops", firing_message().alerts, extra={"acked_by": "alice"}), t))


async def test_post_then_update_on_ack_and_resolve(slack, notifier):
    msg = firing_message()
    first = await notifier.notify(msg)
    assert first.meta["channel"] == "CALERTS" and first.meta["ts"]
    posted = slack.on("/api/chat.postMessage")[0].data
    assert posted["channel"] == "#alerts"
    actions = [b for b in posted["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        ("ack", "3f2a9c0e11d4b7a1,7b01de55c2aa9f30"), ("resolve", "3f2a9c0e11d4b7a1,7b01de55c2aa9f30")]

    ack = Message.build("acknowledged", "ops", msg.alerts, group_key=msg.group_key,
                        extra={"acked_by": "alice"}).with_previous(first.meta)
    res = await notifier.notify(ack)
    assert res.meta == {"channel": "CALERTS", "ts": first.meta["ts"], "updated": True}
    update = slack.on("/api/chat.update")[0].data
    assert (update["channel"], update["ts"]) == (first.meta["channel"], first.meta["ts"])
    assert "Acknowledged by *alice*" in update["blocks"][1]["text"]["text"]
    assert [e["action_id"] for e in update["blocks"][-1]["elements"]] == ["resolve"]

    resolved = resolved_message().with_previous(first.meta)
    await notifier.notify(resolved)
    last = slack.on("/api/chat.update")[-1].data
    assert not [b for b in last["blocks"] if b["type"] == "actions"]
    assert last["text"].startswith("[RESOLVED]")
    assert len(slack.on("/api/chat.postMessage")) == 1


async def test_dm_to_user_opens_conversation(slack, notifier):
    msg = Message.build("escalation", "ops", firing_message().alerts, recipient="U024BE7LH",
                        title="Escalated to secondary on-call", priority="P0")
    res = await notifier.notify(msg)
    assert slack.on("/api/conversations.open")[0].data["users"] == "U024BE7LH"
    assert slack.on("/api/chat.postMessage")[0].data["channel"] == "DU024BE7LH"
    assert res.meta["channel"] == "DU024BE7LH"


async def test_update_of_vanished_message_posts_anew(slack, notifier):
    slack.script("/api/chat.update", Reply(200, {"ok": False, "error": "message_not_found"}))
    res = await notifier.notify(resolved_message().with_previous({"channel": "C1", "ts": "1.000001"}))
    assert len(slack.on("/api/chat.postMessage")) == 1 and res.meta["channel"] == "CALERTS"


@pytest.mark.parametrize("error, retryable", [("channel_not_found", False), ("invalid_auth", False),
                                              ("ratelimited", True), ("internal_error", True)])
async def test_ok_false_errors(slack, notifier, error, retryable):
    slack.script("/api/chat.postMessage", Reply(200, {"ok": False, "error": error}))
    with pytest.raises(NotifyError) as info:
        await notifier.notify(firing_message())
    assert info.value.retryable is retryable
    assert (error if error != "ratelimited" else "rate limited") in str(info.value)
    assert_no_secret(str(info.value), [TOKEN])


async def test_wrong_token_is_permanent(slack):
    n = SlackNotifier(SlackConfig(channel="#alerts", token="xoxb-wrong-token-000000", api_url=slack.url + "/api/"))
    with pytest.raises(NotifyError) as info:
        await n.notify(firing_message())
    assert not info.value.retryable and "invalid_auth" in str(info.value)
    await n.aclose()


async def test_sdk_does_not_retry_by_itself(slack, notifier):
    slack.script("/api/chat.postMessage", Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
    with pytest.raises(NotifyError) as info:
        await notifier.notify(firing_message())
    assert info.value.retryable and info.value.retry_after == 30
    assert len(slack.on("/api/chat.postMessage")) == 1  # one request: our outbox decides when to retry


async def test_over_long_text_is_truncated_cleanly(slack, notifier):
    alerts = [{"labels": {"alertname": "Big" * 100, "severity": "warning"},
               "annotations": {"summary": "word " * 5000}, "fingerprint": "f" * 16}]
    msg = Message.build("firing", "ops", alerts)
    payload = build_payload(msg, Templates())
    header, section = payload["blocks"][0]["text"]["text"], payload["blocks"][1]["text"]["text"]
    assert len(header) <= 150 and header.endswith("\u2026")
    assert len(section) <= 3000 and section.endswith("\u2026") and not section.endswith("wor\u2026")
    assert len(payload["text"]) <= 40_000 and len(payload["blocks"]) <= 50
    await notifier.notify(msg)  # and the (limit-checking-free) server accepts it
    assert slack.on("/api/chat.postMessage")
