"""Event-driven delivery through the leader's assembled pipeline (real receiver stages, real
SQLite store, a real outbox worker and a real webhook server on 127.0.0.1): a group is flushed
when it is due without any tick, the worker sends a row once it is committed without waiting for
its poll, and a storm of alerts becomes one notification per group, written in a few commits."""

from __future__ import annotations

import asyncio
import json
import math
import time

import yaml

from model.alert import Alert
from monitor.alerting.pipeline import DELIVER_BATCH
from monitor.config.loader import load_config_text
from monitor.daemon.leader_pipeline import LeaderPipeline
from monitor.notify.outbox import OutboxWorker
from monitor.notify.registry import build_integrations
from monitor.store import open_store
from tests.support.notify_servers import FakeHTTP


def config(tmp_path, hook_url: str, group_wait: str, group_by: list[str]):
    data = {"alerting": {"route": {"receiver": "hook", "group_by": group_by, "group_wait": group_wait,
                                   "group_interval": "5m", "repeat_interval": "4h"}},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url}]}],
            "state": {"backend": "sqlite", "path": str(tmp_path / "state.db")}}
    return load_config_text(yaml.safe_dump(data), "monitor.yaml", base_dir=tmp_path)


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(0.01)


class Leader:
    """The assembled pipeline, its timers task and its outbox worker (poll interval ``poll`` s)."""

    def __init__(self, cfg, store, poll: float) -> None:
        self.integrations = build_integrations(cfg.receivers)
        self.svc = LeaderPipeline(cfg, store, self.integrations)
        self.worker = OutboxWorker(store, self.integrations)
        self.svc.outbox.on_write = self.worker.wake
        self.poll = poll
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "Leader":
        await self.svc.start()
        # the safety polls far longer than any wait below: only wake-ups can explain a delivery
        self.tasks = [asyncio.create_task(self.svc.pipeline.run(self.stop, safety=self.poll), name="timers"),
                      asyncio.create_task(self.worker.run(self.stop, interval=self.poll))]
        await asyncio.sleep(0.05)  # both asleep
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        self.worker.wake()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 10)
        for items in self.integrations.values():
            for integ in items:
                await integ.notifier.aclose()


def received(hook: FakeHTTP) -> list[dict]:
    return [json.loads(r.body) for r in hook.on("/hook")]


async def test_a_group_is_flushed_and_sent_when_due_without_a_tick(tmp_path):
    async with FakeHTTP() as hook:
        cfg = config(tmp_path, hook.url + "/hook", "300ms", ["alertname"])
        store = await open_store(cfg.state)
        try:
            async with Leader(cfg, store, poll=60.0) as leader:
                now = time.time()
                await leader.svc.pipeline.ingest([Alert.firing({"alertname": "ApiDown"}, starts_at=now)],
                                                 now=now, source="rules")
                assert await store.list_outbox() == []  # group_wait is honoured
                await eventually(lambda: len(hook.on("/hook")) == 1)  # neither tick() nor a poll ran
            [row] = await store.list_outbox("sent")
            assert row["payload"]["kind"] == "firing"
            assert [a["labels"]["alertname"] for a in received(hook)[0]["alerts"]] == ["ApiDown"]
        finally:
            await store.close()


async def test_a_storm_is_one_notification_per_group_in_few_commits(tmp_path):
    async with FakeHTTP() as hook:
        cfg = config(tmp_path, hook.url + "/hook", "1s", ["alertname", "service"])
        store = await open_store(cfg.state)
        try:
            async with Leader(cfg, store, poll=60.0) as leader:
                begin, transactions = store._begin, [0]

                def counting():
                    if asyncio.current_task().get_name() == "timers":  # the flush's, not the worker's
                        transactions[0] += 1
                    return begin()

                store._begin = counting
                now = time.time()
                storm = [Alert.firing({"alertname": f"Storm{a}", "service": f"svc{s}", "instance": f"i{i}"},
                                      starts_at=now) for a in range(20) for s in range(10) for i in range(5)]
                await leader.svc.pipeline.ingest(storm, now=now, source="api:127.0.0.1")
                assert await store.list_outbox() == []  # every group waits its group_wait
                await eventually(lambda: len(hook.on("/hook")) == 200)
            # 200 notifications flushed together when due: numbers, rows and log entries written
            # DELIVER_BATCH per commit
            assert transactions[0] == math.ceil(200 / DELIVER_BATCH)
            rows = await store.list_outbox("sent")
            assert len(rows) == 200 and all(len(r["payload"]["alerts"]) == 5 for r in rows)
            assert sorted(len(m["alerts"]) for m in received(hook)) == [5] * 200
            assert len({m["groupKey"] for m in received(hook)}) == 200
            entries = await leader.svc.pipeline.transitions.entries()
            assert len(entries) == 200 and all(len(e.firing) == 5 for e in entries.values())
        finally:
            await store.close()
