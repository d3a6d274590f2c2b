"""Ordered, honest delivery (issue 9, item 5): per group and integration in order, vendor answers of
the wrong shape fail permanently, every outcome is on the alert's timeline, one slow integration
never delays another, and retries stay close enough to catch a vendor's recovery."""

from __future__ import annotations

import asyncio

from monitor.config.receivers import ReceiverConfig
from monitor.notify import OutboxStage, OutboxWorker, build_integrations
from monitor.notify.base import Message
from monitor.notify.retry import Backoff
from tests.notify.notify_kit import firing_message, resolved_message, sample_alerts
from tests.notify.test_notify_outbox import T0, TOKEN, Clock, close_all, receivers
from tests.support.notify_servers import FakeHTTP, Reply, slack_api, webhook_sink


async def test_resolved_never_overtakes_its_firing(sqlite_store):
    store = sqlite_store
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        # Retry-After (600 s) longer than the group interval (300 s)
        slack.script("/api/chat.postMessage", Reply(429, {"ok": False, "error": "ratelimited"},
                                                    {"Retry-After": "600"}))
        clock = Clock()
        integrations = build_integrations(receivers(slack.url), clock=clock)
        stage, worker = OutboxStage(store, integrations), OutboxWorker(store, integrations, clock=clock)
        await stage.enqueue(firing_message(), T0)
        assert (await worker.run_once(T0)).retried == 1
        await stage.enqueue(resolved_message(), T0 + 300)
        assert (await worker.run_once(T0 + 300)).claimed == 0   # waits behind its FIRING
        for t in (600, 601, 602):
            await worker.run_once(T0 + t)
        texts = [str(r.data.get("text", "")) for r in slack.requests if r.path.startswith("/api/chat.")]
        assert [t.split("]")[0] for t in texts] == ["[FIRING:2", "[FIRING:2", "[RESOLVED"]
        assert slack.requests[-1].path == "/api/chat.update"   # the FIRING message is updated in place
        await close_all(integrations)


async def test_slack_200_that_is_not_json_fails_once_and_is_on_the_timeline(sqlite_store, caplog):
    store = sqlite_store
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        slack.script("/api/chat.postMessage", Reply(200, b"<html>gateway says hi</html>",
                                                    {"Content-Type": "text/html"}))
        clock = Clock()
        integrations = build_integrations(receivers(slack.url), clock=clock)
        stage, worker = OutboxStage(store, integrations), OutboxWorker(store, integrations, clock=clock)
        msg = firing_message()
        await stage.enqueue(msg, T0)
        assert (await worker.run_once(T0)).failed == 1
        for t in range(1, 90, 5):
            assert (await worker.run_once(T0 + t)).claimed == 0
        assert len(slack.on("/api/chat.postMessage")) == 1
        assert "notification failed permanently" in caplog.text
        fp = msg.alerts[0]["fingerprint"]
        events = [e["event"] for e in await store.list_timeline(fp)]
        assert events == ["notification_failed"]
        detail = (await store.list_timeline(fp))[0]["detail"]
        assert detail["integration"] == "ops/slack[0]" and "not JSON" in detail["error"]
        await close_all(integrations)


async def test_every_outcome_is_on_the_timeline(sqlite_store):
    store = sqlite_store
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        slack.script("/api/chat.postMessage", Reply(503, {"ok": False, "error": "service_unavailable"}))
        clock = Clock()
        integrations = build_integrations(receivers(slack.url), clock=clock)
        stage = OutboxStage(store, integrations)
        worker = OutboxWorker(store, integrations, clock=clock, rng=lambda: 0.0)
        msg = firing_message()
        await stage.enqueue(msg, T0)
        await worker.run_once(T0)
        await worker.run_once(T0 + 30)
        timeline = await store.list_timeline(msg.alerts[0]["fingerprint"])
        assert [e["event"] for e in timeline] == ["notification_retry", "notification_sent"]
        assert "503" in timeline[0]["detail"]["error"] and timeline[0]["detail"]["retry_at"] > T0
        await close_all(integrations)


def test_backoff_is_capped_so_a_recovered_vendor_is_retried_within_30s():
    for rng in (lambda: 0.0, lambda: 0.999):
        b = Backoff(rng=rng)
        assert all(b.delay(n) <= 20.0 for n in range(40))
    assert Backoff(rng=lambda: 0.0).delay(10) > 0        # jittered, never a retry storm at 0


async def test_a_hung_webhook_does_not_delay_slack(sqlite_store):
    store = sqlite_store
    async with FakeHTTP(slack_api(TOKEN)) as slack, FakeHTTP(webhook_sink) as hook:
        hook.default = lambda rec: Reply(200, b"", delay=30)  # never answers within its timeout
        conf = [ReceiverConfig.model_validate({"name": "hook", "webhook_configs": [
                    {"url": hook.url + "/hook", "timeout": 10}]}), *receivers(slack.url)]
        integrations = build_integrations(conf)
        stage = OutboxStage(store, integrations)
        worker = OutboxWorker(store, integrations)
        await stage.enqueue(Message.build("firing", "hook", sample_alerts("firing"), group_key="g1"), clock_now())
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, interval=0.2))
        try:
            for _ in range(100):                       # the webhook call is in flight ...
                if hook.requests:
                    break
                await asyncio.sleep(0.05)
            assert hook.requests
            await stage.enqueue(firing_message(), clock_now())   # ... when a Slack message is due
            for _ in range(100):
                if slack.on("/api/chat.postMessage"):
                    break
                await asyncio.sleep(0.05)
            assert slack.on("/api/chat.postMessage"), "slack waited for the hung webhook"
            assert not (await store.list_outbox("sent")) or all(
                r["receiver"] == "ops" for r in await store.list_outbox("sent"))
        finally:
            stop.set()
            worker.wake()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await close_all(integrations)


def clock_now() -> float:
    import time
    return time.time()
