"""Slack actions on the real HTTP server: a replayed request is refused even after a restart (the
seen signatures are in the state store); a timestamp that is not whole Unix seconds (``nan``,
``inf``, ``1e400``...) is refused; a signed but malformed payload is a 400 naming the field."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import httpx
import pytest

from tests.alerting_service.conftest import SIGNING_SECRET, T0, firing_rule_alert

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api"}


def signed(body: bytes, ts: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    sig = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def form(payload) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


async def test_a_replay_is_refused_after_a_restart(harness, api):
    alert = firing_rule_alert(LABELS, T0 - 60)
    await harness.service.ingest([alert])
    body = form({"type": "block_actions", "user": {"id": "U1", "username": "bob"},
                 "actions": [{"action_id": "ack", "value": alert.fingerprint}]})
    headers = signed(body, str(int(harness.clock())))
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 200 and "1 alert(s) acknowledged" in r.text
        await harness.new_service()  # restart: a new service and a new store over the same database
        harness.clock.advance(30)
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "replayed request"
    assert await harness.store.kv_get("slack-replay:" + headers["X-Slack-Signature"]) is not None


@pytest.mark.parametrize("ts", ["nan", "NaN", "inf", "-inf", "1e400", "1e9", "-1", "1.5",
                                "+1764496800", "0x10", "1_764_496_800", ""])
async def test_a_timestamp_that_is_not_whole_seconds_is_refused(harness, api, ts):
    body = form({"actions": [{"action_id": "ack", "value": "0123456789abcdef"}]})
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.post("/api/v1/slack/actions", content=body, headers=signed(body, ts))
    assert r.status_code == 401
    assert r.json()["error"] in ("bad timestamp (expected whole Unix seconds)", "missing signature headers")


async def test_a_stale_integer_timestamp_is_refused(harness, api):
    body = form({"actions": [{"action_id": "ack", "value": "0123456789abcdef"}]})
    async with httpx.AsyncClient(base_url=api.url) as c:
        for ts in (str(int(T0) - 301), str(int(T0) + 301), "0", "999999999999"):
            r = await c.post("/api/v1/slack/actions", content=body, headers=signed(body, ts))
            assert r.status_code == 401 and r.json()["error"] == "stale timestamp", ts


@pytest.mark.parametrize("payload, reason", [
    ({"user": "U1", "actions": [{"action_id": "ack", "value": "x"}]}, "user: expected an object, got a string"),
    ({"user": [1], "actions": [{"action_id": "ack", "value": "x"}]}, "user: expected an object, got a list"),
    ({"actions": ["ack"]}, "actions[0]: expected an object, got a string"),
    ({"actions": [None]}, "actions[0]: expected an object, got null"),
    ({"actions": {"action_id": "ack"}}, "actions: expected a non-empty list"),
    ({"actions": []}, "actions: expected a non-empty list"),
    ({"actions": [{"action_id": "ack", "value": ["a"]}]}, "actions[0].value: expected a string, got a list"),
    ({"user": {"id": 5}, "actions": [{"action_id": "ack", "value": "a"}]}, "user.id: expected a string"),
    ([1, 2], "expected an object, got a list"),
    ("not json", "bad JSON"),
    ("[" * 5000 + "]" * 5000, "bad JSON: nested deeper than 32 levels"),
    ('{"actions": NaN}', "bad JSON: NaN is not valid JSON"),
    ({"actions": [{"action_id": {"x": 1}, "value": "a"}]}, "unknown action"),
])
async def test_a_signed_malformed_payload_is_a_400_naming_the_field(harness, api, payload, reason):
    body = form(payload)
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.post("/api/v1/slack/actions", content=body, headers=signed(body, str(int(harness.clock()))))
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]


async def test_a_body_without_a_payload_field_is_a_400(harness, api):
    async with httpx.AsyncClient(base_url=api.url) as c:
        for body in (b"", b"payload", b"other=1", b"\xff\xfe"):
            r = await c.post("/api/v1/slack/actions", content=body, headers=signed(body, str(int(harness.clock()))))
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"].startswith("bad Slack payload")
