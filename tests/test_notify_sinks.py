"""The demo's Slack and PagerDuty sinks (examples/notify_sinks.py) through real clients.

slack-sdk's AsyncWebClient and httpx talk to the sinks over real sockets; so do our own Slack
and PagerDuty notifiers, which is what the demo relies on.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from examples.notify_sinks import start
from monitor.config.receivers import PagerDutyConfig, SlackConfig, WebhookConfig
from monitor.notify.base import Message
from monitor.notify.pagerduty import PagerDutyNotifier
from monitor.notify.slack import SlackNotifier
from monitor.notify.webhook import WebhookNotifier

ROOT = Path(__file__).resolve().parents[1]

TOKEN = "xoxb-demo-0000-test-token"
ALICE_KEY = "R0ALICE0" + "a" * 24


@pytest.fixture
async def sinks():
    lines: list[str] = []
    running = await start("127.0.0.1", 0, echo=lines.append)
    running.lines = lines  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def slack(sinks):
    client = AsyncWebClient(token=TOKEN, base_url=sinks.slack_api_url, retry_handlers=[])
    yield client
    if client.session is not None:
        await client.session.close()


async def messages(sinks, **params) -> list[dict]:
    async with httpx.AsyncClient(base_url=sinks.url) as http:
        resp = await http.get("/messages", params=params)
    assert resp.status_code == 200
    return resp.json()


async def test_slack_sdk_posts_updates_and_opens_dms(sinks, slack):
    auth = await slack.auth_test()
    assert auth["ok"] and auth["team_id"] == "T0DEMO"

    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "HighErrorRate"}}]
    posted = await slack.chat_postMessage(channel="#incidents", text="[FIRING:1] HighErrorRate api", blocks=blocks)
    assert posted["ok"] and posted["channel"] == "CINCIDENTS"
    assert posted["ts"].split(".")[0].isdigit()

    updated = await slack.chat_update(channel=posted["channel"], ts=posted["ts"], text="[ACKNOWLEDGED] HighErrorRate")
    assert (updated["channel"], updated["ts"]) == (posted["channel"], posted["ts"])

    dm = await slack.conversations_open(users="U01ALICE")  # sent as query parameters
    assert dm["channel"]["id"] == "D01ALICE"
    direct = await slack.chat_postMessage(channel=dm["channel"]["id"], text="Escalated to you")
    assert direct["channel"] == "D01ALICE"

    form = await slack.api_call("chat.postMessage", data={"channel": "alerts", "text": "form body"})
    assert form["channel"] == "CALERTS"

    got = await messages(sinks, sink="slack")
    assert [(m["method"], m["channel_name"], m["text"]) for m in got] == [
        ("chat.postMessage", "#incidents", "[FIRING:1] HighErrorRate api"),
        ("chat.update", "#incidents", "[ACKNOWLEDGED] HighErrorRate"),
        ("chat.postMessage", "@U01ALICE", "Escalated to you"),
        ("chat.postMessage", "#alerts", "form body"),
    ]
    assert got[0]["blocks"] == blocks
    assert sinks.lines[0] == "[slack] #incidents: [FIRING:1] HighErrorRate api"
    assert sinks.lines[1].startswith("[slack] update #incidents ts=")
    assert sinks.lines[2] == "[slack] DM @U01ALICE: Escalated to you"
    assert all(TOKEN not in str(m) for m in got)


async def test_slack_errors_have_slacks_shapes(sinks, slack):
    with pytest.raises(SlackApiError) as exc:
        await slack.chat_update(channel="CINCIDENTS", ts="1.000001", text="x")
    assert exc.value.response["error"] == "channel_not_found"
    await slack.chat_postMessage(channel="#incidents", text="first")
    with pytest.raises(SlackApiError) as exc:
        await slack.chat_update(channel="CINCIDENTS", ts="1.000001", text="x")
    assert exc.value.response["error"] == "message_not_found"
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError) as exc:
        await slack.chat_postMessage(channel="#incidents")
    assert exc.value.response["error"] == "no_text"
    anonymous = AsyncWebClient(base_url=sinks.slack_api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as exc:
        await anonymous.chat_postMessage(channel="#incidents", text="x")
    assert exc.value.response["error"] == "not_authed"


async def test_required_token_rejects_others():
    running = await start("127.0.0.1", 0, slack_token=TOKEN, echo=lambda line: None)
    try:
        wrong = AsyncWebClient(token="xoxb-wrong", base_url=running.slack_api_url, retry_handlers=[])
        with pytest.raises(SlackApiError) as exc:
            await wrong.chat_postMessage(channel="#incidents", text="x")
        assert exc.value.response["error"] == "invalid_auth"
        right = AsyncWebClient(token=TOKEN, base_url=running.slack_api_url, retry_handlers=[])
        assert (await right.chat_postMessage(channel="#incidents", text="x"))["ok"]
    finally:
        await running.stop()


async def test_pagerduty_events_v2(sinks):
    event = {"routing_key": ALICE_KEY, "event_action": "trigger", "dedup_key": "fp123",
             "payload": {"summary": "HighErrorRate on api", "source": "codebook-monitor", "severity": "critical"}}
    async with httpx.AsyncClient(base_url=sinks.pagerduty_url) as http:
        resp = await http.post("/v2/enqueue", json=event)
        assert resp.status_code == 202
        assert resp.json() == {"status": "success", "message": "Event processed", "dedup_key": "fp123"}
        resp = await http.post("/v2/enqueue", json={"routing_key": ALICE_KEY, "event_action": "acknowledge",
                                                     "dedup_key": "fp123"})
        assert resp.status_code == 202
        bad = await http.post("/v2/enqueue", json={"event_action": "trigger", "payload": {}})
        assert bad.status_code == 400 and bad.json()["status"] == "invalid event"
        assert any("routing_key" in e for e in bad.json()["errors"])
        generated = await http.post("/v2/enqueue", json={**event, "dedup_key": None})
        assert generated.json()["dedup_key"]
        incidents = (await http.get("/incidents")).json()
    assert incidents["fp123"]["status"] == "acknowledged"

    got = await messages(sinks, sink="pager")
    assert [(m["event_action"], m["dedup_key"], m["routing_key"]) for m in got[:2]] == [
        ("trigger", "fp123", "R0ALICE0..."), ("acknowledge", "fp123", "R0ALICE0...")]
    assert sinks.lines[0] == ("[pager] trigger to routing key R0ALICE0... dedup=fp123 severity=critical: "
                              "HighErrorRate on api")
    assert ALICE_KEY not in str(got) and all(ALICE_KEY not in line for line in sinks.lines)
    assert [m["id"] for m in await messages(sinks, since=got[0]["id"])] == [m["id"] for m in got[1:]]


async def test_our_notifiers_reach_the_sinks(sinks):
    alert = {"labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
             "annotations": {"summary": "error rate 100%"}, "fingerprint": "a1b2c3d4e5f60718",
             "starts_at": "2026-11-29T15:00:00Z"}
    slack = SlackNotifier(SlackConfig(channel="#incidents", token=TOKEN, api_url=sinks.slack_api_url))
    pager = PagerDutyNotifier(PagerDutyConfig(routing_key=ALICE_KEY, url=sinks.pagerduty_url))
    hook = WebhookNotifier(WebhookConfig(url=sinks.url + "/webhook/email"))
    try:
        posted = await slack.notify(Message.build("firing", "slack-incidents", [alert]))
        acked = Message.build("acknowledged", "slack-incidents", [alert]).with_previous(posted.meta)
        assert (await slack.notify(acked)).meta["updated"] is True
        dm = await slack.notify(Message.build("escalation", "slack-incidents", [alert], recipient="U01BOB"))
        assert dm.meta["channel"] == "D01BOB"
        sent = await pager.notify(Message.build("firing", "pager", [alert]))
        assert sent.meta == {"status": 202, "dedup_key": "a1b2c3d4e5f60718"}
        assert (await hook.notify(Message.build("firing", "email", [alert]))).meta == {"status": 200}
    finally:
        await slack.aclose()
        await pager.aclose()
        await hook.aclose()
    got = await messages(sinks)
    assert [(m["sink"], m.get("method") or m.get("event_action") or m["name"]) for m in got] == [
        ("slack", "chat.postMessage"), ("slack", "chat.update"), ("slack", "chat.postMessage"),
        ("pager", "trigger"), ("webhook", "email")]
    assert got[3]["event"]["payload"]["summary"]
    assert got[4]["payload"]["version"] == "4" and got[4]["kind"] == "firing"
    assert sinks.lines[-1] == "[webhook] email: [FIRING] HighErrorRate (1 alert)"


async def test_busy_port_is_an_error_not_an_exit():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RuntimeError, match="notify sinks could not start"):
            await start("127.0.0.1", port, echo=lambda line: None)
