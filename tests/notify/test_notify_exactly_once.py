"""Exactly-once effects across a crash between a send and its mark, with the vendors' own mechanisms.

A "dead leader" claims a row and sends it (the send completes), then dies before marking it; a new
worker recovers the claims and runs. Webhook: the same ``Idempotency-Key`` on both attempts (the
receiver drops the redelivery). Slack: the new worker finds the first post in the channel's history
by its metadata and marks the row sent with its ``ts``, no second post; acknowledge/resolve then
update that message. PagerDuty: a repeated event is deduplicated by ``dedup_key`` (the sink
models it). Real local vendor servers, SQLite and PostgreSQL.
"""

from __future__ import annotations

import time

import pytest

from monitor.config.receivers import ReceiverConfig, SlackConfig
from monitor.notify import OutboxStage, OutboxWorker, build_integrations
from monitor.notify import slack as slack_mod
from monitor.notify.base import Message
from monitor.notify.outbox import delivery_id
from monitor.notify.slack import SlackNotifier
from monitor.notify.webhook import IDEMPOTENCY_HEADER, idempotency_key
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SQLiteStore
from tests.notify.notify_kit import firing_message, resolved_message
from tests.support.notify_servers import FakeHTTP, PagerDutyEvents, Reply, slack_api, webhook_sink

TOKEN = "xoxb-7777777777-6666666666-ExactlyOnceToken"


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request, tmp_path):
    """A factory of stores over one database, so the test can restart."""
    if request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        return lambda: PostgresStore(dsn, schema=schema)
    return lambda: SQLiteStore(tmp_path / "state.db")


def receivers(slack_url: str = "", hook_url: str = "", channel: str = "#incidents") -> list[ReceiverConfig]:
    conf: dict = {"name": "ops"}
    if slack_url:
        conf["slack_configs"] = [{"channel": channel, "token": TOKEN, "api_url": slack_url + "/api/"}]
    if hook_url:
        conf["webhook_configs"] = [{"url": hook_url + "/hook"}]
    return [ReceiverConfig.model_validate(conf)]


async def close_all(integrations) -> None:
    for items in integrations.values():
        for i in items:
            await i.notifier.aclose()


async def crash_after_send(store, integrations, now: float) -> list[dict]:
    """A leader claims every due row and sends it, then dies before marking any (kill -9)."""
    rows = await store.claim_due(now, 50, 60.0)
    for row in rows:
        integ = next(i for i in integrations[row["receiver"]] if i.name == row["integration"])
        await integ.notify(Message.from_dict(row["payload"]).with_delivery_id(delivery_id(row["dedup_key"])))
    await store.close()
    return rows


async def test_slack_post_in_flight_at_a_crash_is_found_not_posted_again(make_store):
    slack = slack_api(TOKEN)
    async with FakeHTTP(slack) as srv:
        integrations = build_integrations(receivers(srv.url))
        first = make_store()
        await first.open()
        now = time.time()
        await OutboxStage(first, integrations).enqueue(firing_message(), now)
        [row] = await crash_after_send(first, integrations, now)
        assert len(slack.posts) == 1
        posted = slack.posts[0]
        assert posted["metadata"] == {"event_type": "codebook_notification",
                                      "event_payload": {"delivery_id": delivery_id(row["dedup_key"]),
                                                        "kind": "firing"}}

        second = make_store()
        await second.open()
        fresh = build_integrations(receivers(srv.url))  # a new process: no channel id cached
        worker = OutboxWorker(second, fresh)
        assert await worker.recover_claims() == 1
        stats = await worker.run_once()
        assert stats.sent == 1 and len(slack.posts) == 1 and slack.duplicates() == {}
        history = srv.on("/api/conversations.history")[0].query
        assert history["channel"] == "CINCIDENTS" and float(history["oldest"]) <= now
        assert history["include_all_metadata"] in ("1", "true")
        [sent] = await second.list_outbox("sent")
        assert sent["response"] == {"channel": "CINCIDENTS", "ts": posted["ts"], "found": True}
        timeline = await second.list_timeline(firing_message().fingerprints[0])
        assert timeline[-1]["detail"].get("found_delivered") is True

        # the resolved message updates the message found, it is not a new post
        await OutboxStage(second, fresh).enqueue(resolved_message(), now)
        assert (await worker.run_once()).sent == 1
        assert len(slack.posts) == 1 and srv.on("/api/chat.update")[0].data["ts"] == posted["ts"]
        await second.close()
        await close_all(integrations)
        await close_all(fresh)


async def test_slack_claim_whose_post_never_left_is_posted_once(make_store):
    slack = slack_api(TOKEN, channels=("incidents",))
    async with FakeHTTP(slack) as srv:
        integrations = build_integrations(receivers(srv.url))
        first = make_store()
        await first.open()
        now = time.time()
        await OutboxStage(first, integrations).enqueue(firing_message(), now)
        await first.claim_due(now, 50, 60.0)  # claimed, then killed before the post
        await first.close()

        second = make_store()
        await second.open()
        worker = OutboxWorker(second, integrations)
        assert await worker.recover_claims() == 1
        assert (await worker.run_once()).sent == 1
        assert len(slack.posts) == 1 and len(srv.on("/api/conversations.history")) == 1
        await OutboxStage(second, integrations).enqueue(firing_message(title="again"), now)
        assert (await worker.run_once()).sent == 1
        assert len(srv.on("/api/conversations.history")) == 1  # only rows in flight at the crash are looked up
        await second.close()
        await close_all(integrations)


async def test_webhook_redelivery_after_a_crash_carries_the_same_idempotency_key(make_store):
    async with FakeHTTP(webhook_sink) as hook:
        integrations = build_integrations(receivers(hook_url=hook.url))
        first = make_store()
        await first.open()
        now = time.time()
        await OutboxStage(first, integrations).enqueue(firing_message(), now)
        [row] = await crash_after_send(first, integrations, now)

        second = make_store()
        await second.open()
        worker = OutboxWorker(second, integrations)
        assert await worker.recover_claims() == 1
        assert (await worker.run_once()).sent == 1
        keys = [idempotency_key(r.headers.get(IDEMPOTENCY_HEADER)) for r in hook.on("/hook")]
        assert keys == [delivery_id(row["dedup_key"])] * 2  # a redelivery the receiver can drop
        assert hook.on("/hook")[0].headers[IDEMPOTENCY_HEADER] == f'"{keys[0]}"'  # an sf-string
        await second.close()
        await close_all(integrations)


async def test_delivery_ids_are_stable_and_distinct_per_transition_and_integration():
    a, b = delivery_id("ops/webhook[0]|firing|fp|||t#0"), delivery_id("ops/webhook[1]|firing|fp|||t#0")
    assert a == delivery_id("ops/webhook[0]|firing|fp|||t#0") and a != b and len(a) == 32
    assert idempotency_key('"abc"') == "abc" and idempotency_key(None) == ""


async def test_slack_lookup_pages_through_history_and_resolves_the_channel_name(monkeypatch):
    monkeypatch.setattr(slack_mod, "PAGE_LIMIT", 1)
    slack = slack_api(TOKEN)
    async with FakeHTTP(slack) as srv:
        conf = SlackConfig(channel="#ops-alerts", token=TOKEN, api_url=srv.url + "/api/")
        poster, finder = SlackNotifier(conf), SlackNotifier(conf)
        since = time.time()
        target = firing_message().with_delivery_id("a" * 32)
        await poster.notify(target)
        for n in range(3):  # newer messages push it to the last page
            await poster.notify(firing_message(title=f"other {n}").with_delivery_id(f"{n:032d}"))
        found = await finder.find_delivery(target, since)
        assert found is not None and found.meta["ts"] == slack.posts[0]["ts"]
        assert found.meta["channel"] == "COPSALERTS" and len(srv.on("/api/conversations.list")) == 1
        assert len(srv.on("/api/conversations.history")) == 4
        assert await finder.find_delivery(firing_message().with_delivery_id("b" * 32), since) is None
        assert await finder.find_delivery(target, time.time() + 1) is None  # posted before ``since``
        # an update needs no look-up (chat.update twice has one effect); no id, nothing to find
        upd = resolved_message().with_delivery_id("a" * 32).with_previous(found.meta)
        assert await finder.find_delivery(upd, since) is None
        assert await finder.find_delivery(firing_message(), since) is None
        await poster.aclose()
        await finder.aclose()


async def test_pagerduty_sink_pages_once_per_open_incident():
    pd = PagerDutyEvents()
    pd.apply({"routing_key": "k", "event_action": "trigger", "dedup_key": "fp"})
    pd.apply({"routing_key": "k", "event_action": "trigger", "dedup_key": "fp"})  # deduplicated
    pd.apply({"routing_key": "k", "event_action": "resolve", "dedup_key": "fp"})
    pd.apply({"routing_key": "k", "event_action": "resolve", "dedup_key": "fp"})  # no open incident: ignored
    pd.apply({"routing_key": "k", "event_action": "trigger", "dedup_key": "fp"})  # a new incident
    assert pd.pages == 2 and pd.deduplicated == 1 and pd.resolve_repeated == 1
    assert pd.resolve_unknown == 0 and pd.open == {"fp"}
    pd.apply({"routing_key": "k", "event_action": "resolve", "dedup_key": "never"})
    assert pd.resolve_unknown == 1


async def sent_then_restarted(make_store, integrations):
    """One firing message sent by a process killed before it marked the row; then the restarted
    process's store and outbox worker, its claims recovered: ``(store, worker)``."""
    first = make_store()
    await first.open()
    now = time.time()
    await OutboxStage(first, integrations).enqueue(firing_message(), now)
    await crash_after_send(first, integrations, now)
    second = make_store()
    await second.open()
    worker = OutboxWorker(second, integrations)
    await worker.recover_claims()
    return second, worker


async def test_slack_lookup_without_the_history_scope_posts_again_rather_than_lose(make_store):
    slack = slack_api(TOKEN, channels=("incidents",))
    async with FakeHTTP(slack) as srv:
        srv.script("/api/conversations.history", Reply(200, {"ok": False, "error": "missing_scope",
                                                             "needed": "channels:history"}))
        integrations = build_integrations(receivers(srv.url))
        second, worker = await sent_then_restarted(make_store, integrations)
        assert (await worker.run_once()).sent == 1
        assert len(slack.posts) == 2  # at-least-once: the row is not lost to a missing scope
        await second.close()
        await close_all(integrations)


async def test_slack_lookup_rate_limited_is_retried_before_posting(make_store):
    slack = slack_api(TOKEN)
    async with FakeHTTP(slack) as srv:
        srv.script("/api/conversations.history", Reply(429, {"ok": False, "error": "ratelimited"},
                                                       {"Retry-After": "1"}))
        integrations = build_integrations(receivers(srv.url))
        second, worker = await sent_then_restarted(make_store, integrations)
        assert (await worker.run_once()).retried == 1
        assert (await worker.run_once(time.time() + 2)).sent == 1
        assert len(slack.posts) == 1 and len(srv.on("/api/conversations.history")) == 2
        await second.close()
        await close_all(integrations)


async def test_a_crash_between_reference_and_mark_never_leaves_a_stale_slack_reference(tmp_path):
    """The delivery reference is written before the row is marked sent: killed between the two
    writes, the row is found delivered after the restart and the resolved message updates the
    episode's own message (found by benchmarks/chaos.py: killed after the mark, before the
    reference, the resolved updated the alert's previous message and left the new one FIRING)."""

    class DiesAtReference(SQLiteStore):  # killed as it writes the delivery reference
        async def put_message_ref(self, *args, **kw):
            raise RuntimeError("kill -9")

        async def put_message_refs(self, *args, **kw):  # the outbox's batched write (GroupCommit)
            raise RuntimeError("kill -9")

    slack = slack_api(TOKEN)
    async with FakeHTTP(slack) as srv:
        integrations = build_integrations(receivers(srv.url))
        now = time.time()
        earlier = SQLiteStore(tmp_path / "state.db")  # an earlier episode of the alert, delivered
        await earlier.open()
        await OutboxStage(earlier, integrations).enqueue(firing_message(title="episode 1"), now)
        await OutboxStage(earlier, integrations).enqueue(resolved_message(title="episode 1"), now)
        worker = OutboxWorker(earlier, integrations)
        await worker.run_once()
        await worker.run_once()
        await earlier.close()

        dying = DiesAtReference(tmp_path / "state.db")
        await dying.open()
        await OutboxStage(dying, integrations).enqueue(firing_message(title="episode 2"), now)
        with pytest.raises(RuntimeError):
            await OutboxWorker(dying, integrations).run_once()
        await dying.close()
        second_post = slack.posts[-1]["ts"]

        store = SQLiteStore(tmp_path / "state.db")
        await store.open()
        worker = OutboxWorker(store, integrations)
        await worker.recover_claims()
        await worker.run_once()
        await OutboxStage(store, integrations).enqueue(resolved_message(title="episode 2"), now)
        await worker.run_once()
        assert len(slack.posts) == 2  # episode 2 was found, not posted again
        assert srv.on("/api/chat.update")[-1].data["ts"] == second_post
        assert all(m["text"].startswith("[RESOLVED]") for m in slack.history["CINCIDENTS"])
        await store.close()
        await close_all(integrations)
