"""The outbox end to end: stage -> store -> worker -> real local vendor servers, with a fake clock."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from monitor.config.receivers import ReceiverConfig
from monitor.notify import NotifyMetrics, OutboxStage, OutboxWorker, build_integrations
from monitor.notify.base import Message
from monitor.notify.retry import Backoff
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SQLiteStore
from tests.notify.notify_kit import firing_message, resolved_message
from tests.support.notify_servers import FakeHTTP, Recorded, Reply, echo, pagerduty_api, slack_api

T0 = 1_800_000_000.0
TOKEN = "xoxb-9999999999-8888888888-OutboxSlackToken"
ROUTING_KEY = "OUTBOXR0UT1NGKEY000000000000000"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def receivers(slack_url: str = "", pd_url: str = "", **slack_kw) -> list[ReceiverConfig]:
    conf: dict = {"name": "ops"}
    if slack_url:
        conf["slack_configs"] = [{"channel": "#incidents", "token": TOKEN, "api_url": slack_url + "/api/",
                                  **slack_kw}]
    if pd_url:
        conf["pagerduty_configs"] = [{"routing_key": ROUTING_KEY, "url": pd_url, "timeout": 2}]
    return [ReceiverConfig.model_validate(conf)]


@pytest.fixture
def store(sqlite_store):
    return sqlite_store


def sample(registry: CollectorRegistry, outcome: str, integration: str) -> float:
    return registry.get_sample_value("monitor_notifications_total",
                                     {"receiver": "ops", "integration": integration, "outcome": outcome}) or 0.0


async def close_all(integrations) -> None:
    for items in integrations.values():
        for i in items:
            await i.notifier.aclose()


async def test_slack_429_with_retry_after_then_200_then_ack_updates(store):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        slack.script("/api/chat.postMessage",
                     Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
        clock, registry = Clock(), CollectorRegistry()
        integrations = build_integrations(receivers(slack.url), clock=clock)
        stage = OutboxStage(store, integrations)
        worker = OutboxWorker(store, integrations, clock=clock, rng=lambda: 0.5,
                              metrics=NotifyMetrics(registry))
        msg = firing_message()
        assert await stage.enqueue(msg, T0) == ["slack[0]"]
        assert await stage.enqueue(msg, T0 + 1) == []  # the same transition never goes twice

        stats = await worker.run_once(T0)
        assert (stats.claimed, stats.retried) == (1, 1)
        assert (await worker.run_once(T0 + 29)).claimed == 0  # Retry-After honoured
        stats = await worker.run_once(T0 + 30)
        assert stats.sent == 1 and len(slack.on("/api/chat.postMessage")) == 2
        assert await worker.run_once(T0 + 3000) == type(stats)()  # nothing left

        row = (await store.list_outbox())[0]
        assert row["status"] == "sent" and row["attempts"] == 2 and row["response"]["channel"] == "CINCIDENTS"
        assert sample(registry, "retry", "slack[0]") == 1 and sample(registry, "sent", "slack[0]") == 1
        assert registry.get_sample_value("monitor_outbox_depth") == 0

        ack = Message.build("acknowledged", "ops", msg.alerts, group_key=msg.group_key,
                            extra={"acked_by": "alice"})
        await stage.enqueue(ack, T0 + 100)
        await stage.enqueue(resolved_message(), T0 + 200)
        await worker.run_once(T0 + 200)  # both due in one run: they go out in order
        updates = slack.on("/api/chat.update")
        assert [u.data["ts"] for u in updates] == [row["response"]["ts"]] * 2
        assert updates[-1].data["text"].startswith("[RESOLVED]")
        assert len(slack.on("/api/chat.postMessage")) == 2
        await close_all(integrations)


async def test_pagerduty_down_for_ten_minutes_then_back_delivers_once(store, caplog):
    clock = Clock()

    def flaky(req: Recorded) -> Reply:
        if clock.now < T0 + 600:
            return echo(503)(req)  # down, and echoing the request (routing key) back
        return pagerduty_api(req)

    async with FakeHTTP(flaky) as pd:
        registry = CollectorRegistry()
        integrations = build_integrations(receivers(pd_url=pd.url), clock=clock)
        worker = OutboxWorker(store, integrations, clock=clock, metrics=NotifyMetrics(registry),
                              backoff=Backoff(base=5, cap=120, rng=lambda: 1.0))
        await OutboxStage(store, integrations).enqueue(
            Message.build("firing", "ops", firing_message().alerts[:1]), T0)
        caplog.set_level(logging.DEBUG)
        while clock.now <= T0 + 1200:
            await worker.run_once()
            clock.now += 5
        sent = [r for r in pd.requests if r.data.get("event_action") == "trigger"]
        attempts = len(sent)
        assert 5 <= attempts <= 12, attempts  # 5, 10, 20, 40, 80, 120, 120... seconds apart
        row = (await store.list_outbox())[0]
        assert row["status"] == "sent" and row["attempts"] == attempts
        assert sample(registry, "sent", "pagerduty[0]") == 1
        assert sample(registry, "retry", "pagerduty[0]") == attempts - 1
        assert ROUTING_KEY not in str(await store.list_outbox())
        ours = [r for r in caplog.records if r.name == "monitor.notify.outbox"]
        assert len(ours) == attempts - 1 and "503" in ours[0].error
        for rec in caplog.records:  # message and every bound field of every log line
            assert ROUTING_KEY not in str(rec.__dict__)
        await close_all(integrations)


async def test_expiry_when_never_delivered(store):
    async with FakeHTTP(lambda req: Reply(500, b"boom")) as pd:
        clock, registry = Clock(), CollectorRegistry()
        integrations = build_integrations(receivers(pd_url=pd.url), clock=clock)
        worker = OutboxWorker(store, integrations, clock=clock, metrics=NotifyMetrics(registry),
                              backoff=Backoff(base=10, cap=10, rng=lambda: 1.0))
        await OutboxStage(store, integrations, ttl=60).enqueue(firing_message(), T0)
        for t in range(0, 120, 10):
            await worker.run_once(T0 + t)
        row = (await store.list_outbox())[0]
        assert row["status"] == "expired" and row["attempts"] == 7  # at 0, 10, ..., 60
        assert "500" in row["last_error"]
        assert sample(registry, "expired", "pagerduty[0]") == 1
        assert await store.depth() == 0
        await close_all(integrations)


async def test_permanent_failure_is_not_retried(store):
    invalid = {"status": "invalid event", "message": "Event object is invalid"}
    async with FakeHTTP(lambda req: Reply(400, invalid)) as pd:
        clock = Clock()
        integrations = build_integrations(receivers(pd_url=pd.url), clock=clock)
        worker = OutboxWorker(store, integrations, clock=clock)
        await OutboxStage(store, integrations).enqueue(firing_message(), T0)
        stats = await worker.run_once(T0)
        assert stats.failed == 1
        for t in (60, 600):
            assert (await worker.run_once(T0 + t)).claimed == 0
        assert len(pd.requests) == 1 and (await store.list_outbox())[0]["status"] == "failed"
        await close_all(integrations)


async def test_send_resolved_false_skips_resolved(store):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        integrations = build_integrations(receivers(slack.url, send_resolved=False))
        stage = OutboxStage(store, integrations)
        assert await stage.enqueue(resolved_message(), T0) == []
        assert await stage.enqueue(firing_message(), T0) == ["slack[0]"]
        await close_all(integrations)


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request, tmp_path):
    """A factory of stores over one database, so the test can restart."""
    if request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        return lambda: PostgresStore(dsn, schema=schema)
    return lambda: SQLiteStore(tmp_path / "state.db")


async def test_restart_resumes_and_never_sends_twice(make_store):
    async with FakeHTTP(pagerduty_api) as pd:
        pd.script("/v2/enqueue", Reply(503, b"down"))
        clock = Clock()
        integrations = build_integrations(receivers(pd_url=pd.url), clock=clock)
        first = make_store()
        await first.open()
        stage = OutboxStage(first, integrations)
        await stage.enqueue(firing_message(), T0)
        await OutboxWorker(first, integrations, clock=clock, rng=lambda: 1.0).run_once(T0)
        await first.close()  # the daemon dies

        second = make_store()
        await second.open()
        assert await OutboxStage(second, integrations).enqueue(firing_message(), T0 + 1) == []  # replayed intent
        worker = OutboxWorker(second, integrations, clock=clock, rng=lambda: 1.0)
        assert (await worker.run_once(T0 + 1)).claimed == 0  # still backing off (5 s)
        assert (await worker.run_once(T0 + 5)).sent == 1
        assert (await worker.run_once(T0 + 100)).claimed == 0
        assert [r.data["event_action"] for r in pd.requests] == ["trigger", "trigger"]
        await second.close()
        await close_all(integrations)


async def test_row_for_a_removed_integration_fails_permanently(store):
    await store.enqueue("k", "ops", "slack[3]", firing_message().to_dict(), T0 + 60, T0)
    stats = await OutboxWorker(store, {"ops": []}, clock=Clock()).run_once(T0)
    assert stats.failed == 1
    assert (await store.list_outbox())[0]["last_error"] == "no integration ops/slack[3] in config"


async def test_run_loop_until_stopped(store):
    import asyncio

    async with FakeHTTP(slack_api(TOKEN)) as slack:
        integrations = build_integrations(receivers(slack.url))
        await OutboxStage(store, integrations).enqueue(firing_message(), T0)
        stop, ticks = asyncio.Event(), []

        async def sleep(seconds: float) -> None:
            ticks.append(seconds)
            if len(ticks) == 2:
                stop.set()

        await OutboxWorker(store, integrations, clock=Clock(), sleep=sleep).run(stop, interval=0.5)
        assert ticks == [0.5, 0.5] and len(slack.on("/api/chat.postMessage")) == 1
        await close_all(integrations)


async def test_an_attempt_that_hung_its_whole_timeout_backs_off_from_its_end(tmp_path):
    """A retry is due ``delay`` after the failure, not after the attempt's start: an attempt that
    hung for its timeout was otherwise due again while its task was still ending, and a run that
    claimed it then skipped it as in flight, hiding it for the whole 60 s lease (found by
    benchmarks/vendor_outage.py: a never-answering webhook's last message came 60 s after recovery)."""
    import asyncio
    import time

    class SlowTimeline(SQLiteStore):  # a loaded store: a timeline write takes 0.25 s (0.5 s for 2 alerts)
        async def append_timeline(self, *args, **kw):
            await asyncio.sleep(0.25)
            return await super().append_timeline(*args, **kw)

    answered: list[float] = []

    def hook(req: Recorded) -> Reply:
        if not answered and len(srv.requests) == 1:
            return Reply(200, b"", delay=5.0)  # never answers in time: the client gives up after 1 s
        answered.append(time.time())
        return Reply(200, b"")

    store = SlowTimeline(tmp_path / "state.db")
    await store.open()
    async with FakeHTTP(hook) as srv:
        conf = ReceiverConfig.model_validate({"name": "ops", "webhook_configs": [{"url": srv.url + "/hook",
                                                                                   "timeout": 1.0}]})
        integrations = build_integrations([conf])
        worker = OutboxWorker(store, integrations, backoff=Backoff(base=1.2, cap=1.2, rng=lambda: 0.5))
        started = time.time()
        await OutboxStage(store, integrations).enqueue(firing_message(), started)
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run(stop, interval=0.05))
        deadline = time.time() + 6
        while not answered and time.time() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await runner
        assert answered, "the retry was hidden by a claim taken while its attempt was ending"
        assert answered[0] - started < 4.0  # 1 s timeout + 0.5 s timeline + 0.9 s backoff
        await close_all(integrations)
    await store.close()
