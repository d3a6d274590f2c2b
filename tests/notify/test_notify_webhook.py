"""Alertmanager-compatible webhook (version 4) against a local receiver."""

from __future__ import annotations

from monitor.config.receivers import WebhookConfig
from monitor.notify.webhook import (SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, build_payload,
                                    verify_signature)
from tests.notify.notify_kit import ChannelCase, assert_golden, firing_message, resolved_message, run_kit
from tests.support.notify_servers import FakeHTTP, webhook_sink

URL_TOKEN = "hooktoken-9f8e7d6c5b4a39281706"
HMAC_SECRET = "whsec-0123456789abcdefSECRET"
NOW = 1_800_000_000.0


def make(url: str, timeout: float = 5.0, **kw) -> WebhookNotifier:
    conf = WebhookConfig(url=f"{url}/hooks/{URL_TOKEN}", timeout=timeout, hmac_secret=HMAC_SECRET, **kw)
    return WebhookNotifier(conf, clock=lambda: NOW)


async def test_conformance_kit():
    case = ChannelCase("webhook", make, f"/hooks/{URL_TOKEN}", webhook_sink, [URL_TOKEN, HMAC_SECRET],
                       ok_statuses=(200, 202, 204))
    await run_kit(case, firing_message())


def test_golden_payloads():
    assert_golden("webhook_firing", build_payload(firing_message()))
    assert_golden("webhook_resolved", build_payload(resolved_message()))


def test_max_alerts_truncation():
    body = build_payload(firing_message(), max_alerts=1)
    assert body["truncatedAlerts"] == 1 and len(body["alerts"]) == 1
    assert build_payload(firing_message(), max_alerts=0)["truncatedAlerts"] == 0


async def test_signed_request_verifies_at_the_receiver():
    async with FakeHTTP(webhook_sink) as srv:
        n = make(srv.url)
        await n.notify(firing_message())
        req = srv.requests[0]
        assert req.data["version"] == "4" and req.data["status"] == "firing"
        assert req.headers[TIMESTAMP_HEADER] == str(int(NOW))
        assert verify_signature(HMAC_SECRET, req.headers[TIMESTAMP_HEADER], req.body,
                                req.headers[SIGNATURE_HEADER], now=NOW + 10)
        assert not verify_signature(HMAC_SECRET, req.headers[TIMESTAMP_HEADER], req.body + b" ",
                                    req.headers[SIGNATURE_HEADER], now=NOW)
        assert not verify_signature(HMAC_SECRET, req.headers[TIMESTAMP_HEADER], req.body,
                                    req.headers[SIGNATURE_HEADER], now=NOW + 3600)  # replayed late
        await n.aclose()


async def test_unsigned_when_no_secret():
    async with FakeHTTP(webhook_sink) as srv:
        n = WebhookNotifier(WebhookConfig(url=srv.url + "/plain"))
        await n.notify(resolved_message())
        assert SIGNATURE_HEADER not in srv.requests[0].headers
        assert srv.requests[0].data["alerts"][0]["endsAt"] == "2026-11-29T14:30:00Z"
        await n.aclose()
