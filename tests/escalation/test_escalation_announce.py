"""Handoff announcements: the pure due-computation across DST and overrides, and the daemon glue
(store kv + outbox + a local Slack Web API through slack-sdk) with a manual clock and restarts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from monitor.config.model import Config
from monitor.escalation.announce import current_shift, due_announcements
from monitor.escalation.schedule import Override, Schedule
from monitor.notify.handoff import ANNOUNCED_KEY, announce_handoffs
from monitor.notify.outbox import OutboxWorker
from monitor.notify.registry import build_integrations
from monitor.store import open_store
from tests.support.notify_servers import FakeHTTP, slack_api

TOKEN = "xoxb-5555555555-6666666666-AnNoUnCeToKeN"
BERLIN = timezone(timedelta(hours=1))


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


def weekly(members=("alice", "bob"), overrides=(), tz="Europe/Berlin") -> Schedule:
    return Schedule("primary", tz, tuple(members), date(2026, 1, 5), time(9, 0), "weekly", 0, 7, None,
                    tuple(overrides))


# -- pure ------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    (utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)),     # 09:00 CET -> 09:00 CEST (spring)
    (utc(2026, 10, 19, 7), utc(2026, 10, 26, 8)),   # 09:00 CEST -> 09:00 CET (autumn)
])
def test_current_shift_across_dst(before, after):
    s = weekly()
    mid = before + timedelta(days=3)
    shift = current_shift(s, mid)
    assert shift.since == before and shift.until == after
    assert shift.since.strftime("%H:%M") == shift.until.strftime("%H:%M") == "09:00"  # local wall clock
    # One second before the handoff the previous shift is current; at it, the new one.
    assert current_shift(s, after - timedelta(seconds=1)).since == before
    assert current_shift(s, after).since == after and current_shift(s, after).person != shift.person


def test_nobody_before_the_start_and_one_member_since_start():
    s = weekly(members=("alice",))
    assert current_shift(s, utc(2026, 1, 5, 7)) is None
    shift = current_shift(s, utc(2026, 6, 1))
    assert shift.person == "alice" and shift.since == utc(2026, 1, 5, 8) and shift.until is None


def test_override_extending_a_shift_is_not_a_handoff():
    # bob's week starts Monday 2026-03-23 09:00 CET; bob covering from 07:00 to 12:00 local makes
    # the override start the handoff, and the rotation boundary inside it is no handoff.
    ov = Override(utc(2026, 3, 23, 6), utc(2026, 3, 23, 11), "bob")
    s = weekly(overrides=(ov,))
    shift = current_shift(s, utc(2026, 3, 24))
    assert shift.person == "bob" and shift.since == utc(2026, 3, 23, 6)
    # An override of the current person extending past the next boundary moves the handoff.
    ov2 = Override(utc(2026, 3, 30, 6), utc(2026, 3, 30, 10), "bob")
    s2 = weekly(overrides=(ov2,))
    shift2 = current_shift(s2, utc(2026, 3, 30, 8))
    assert shift2.person == "bob" and shift2.since == utc(2026, 3, 23, 8) and shift2.until == utc(2026, 3, 30, 10)


def test_due_announcements_first_run_is_silent_then_each_change_once():
    s = weekly()
    schedules, receivers = {"primary": s}, {"primary": "oncall"}
    due, state = due_announcements(schedules, receivers, None, utc(2026, 3, 22, 12))
    assert due == [] and state == {"primary": {"at": int(utc(2026, 3, 16, 8).timestamp()), "person": "alice"}}
    due, state = due_announcements(schedules, receivers, state, utc(2026, 3, 23, 8, 0, 20))
    assert [(a.schedule, a.receiver, a.shift.person) for a in due] == [("primary", "oncall", "bob")]
    assert due[0].key == f"handoff:primary:{int(utc(2026, 3, 23, 8).timestamp())}"
    again, state2 = due_announcements(schedules, receivers, state, utc(2026, 3, 23, 8, 0, 50))
    assert again == [] and state2 == state
    # Down over the next handoff for more than max_age: recorded, not announced late.
    late, state3 = due_announcements(schedules, receivers, state, utc(2026, 3, 30, 9), max_age=3600)
    assert late == [] and state3["primary"]["person"] == "alice"
    # ... within max_age: announced late.
    late, _ = due_announcements(schedules, receivers, state, utc(2026, 3, 30, 7, 40), max_age=3600)
    assert [a.shift.person for a in late] == ["alice"]
    # Schedules without an announce receiver are never announced.
    assert due_announcements(schedules, {}, None, utc(2026, 3, 23, 8, 0, 20)) == ([], {})


# -- glue: store, outbox, Slack -------------------------------------------------------------------

CONFIG = {
    "server": {"external_url": "http://monitor.example"},
    "alerting": {
        "people": {"alice": {"name": "Alice Martin", "slack_user_id": "U01ALICE"},
                   "bob": {"name": "Bob Schulz", "slack_user_id": "U01BOB"}},
        "schedules": {
            "primary": {"time_zone": "Europe/Berlin", "start": "2026-01-05", "members": ["alice", "bob"],
                        "rotation": {"type": "weekly", "handoff_weekday": "monday", "handoff_time": "09:00"},
                        "announce_receiver": "oncall",
                        "overrides": [{"start": "2026-03-25T12:00:00", "end": "2026-03-26T12:00:00",
                                       "person": "alice"}]},
            "secondary": {"time_zone": "Europe/Berlin", "start": "2026-01-05", "members": ["bob", "alice"]},
        },
    },
}


class Replica:
    """Store + integrations + outbox worker over one SQLite file (rebuilt on 'restart')."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = None
        self.integrations = None
        self.worker = None

    async def start(self) -> "Replica":
        self.store = await open_store(self.config.state)
        self.integrations = build_integrations(self.config.receivers)
        self.worker = OutboxWorker(self.store, self.integrations, rng=lambda: 0.0)
        return self

    async def stop(self) -> None:
        for items in self.integrations.values():
            for i in items:
                await i.notifier.aclose()
        await self.store.close()

    async def run(self, t: datetime):
        due = await announce_handoffs(self.config, self.store, self.integrations, t.timestamp())
        await self.worker.run_once(t.timestamp())
        return due


async def test_announcements_across_dst_override_and_restarts(tmp_path):
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        config = Config.model_validate({
            **CONFIG,
            "receivers": [{"name": "oncall",
                           "slack_configs": [{"channel": "#oncall", "token": TOKEN, "api_url": slack.url + "/api/"}],
                           "webhook_configs": [{"url": slack.url + "/hook"}]}],
            "state": {"backend": "sqlite", "path": str(tmp_path / "state.db")},
        })
        r = await Replica(config).start()
        t = utc(2026, 3, 22, 12)  # Sunday: alice's week (since 2026-03-16) — first run is silent
        restarted = False
        try:
            while t <= utc(2026, 3, 31):
                due = await r.run(t)
                if due and not restarted:
                    # Crash right after enqueueing the first announcement, before anything else:
                    # a new process over the same file, with the announced state lost too.
                    restarted = True
                    await r.stop()
                    r = await Replica(config).start()
                    await r.store.kv_set(ANNOUNCED_KEY, {}, t.timestamp())
                    assert [a.shift.person for a in await r.run(t)] == ["bob"]  # due again ...
                    await r.stop()
                    r = await Replica(config).start()  # ... and a plain restart
                    assert await r.run(t) == []
                t += timedelta(seconds=600)
            texts = [req.data["text"] for req in slack.on("/api/chat.postMessage")]
            assert restarted
        finally:
            await r.stop()
        assert texts == [
            "On call for primary now: Bob Schulz (<@U01BOB>), until Wed 2026-03-25 12:00 CET",
            "On call for primary now: Alice Martin (<@U01ALICE>), until Thu 2026-03-26 12:00 CET",
            "On call for primary now: Bob Schulz (<@U01BOB>), until Mon 2026-03-30 09:00 CEST",
            "On call for primary now: Alice Martin (<@U01ALICE>), until Mon 2026-04-06 09:00 CEST",
        ]
        assert all(req.data["channel"] == "#oncall" for req in slack.on("/api/chat.postMessage"))
        assert slack.on("/hook") == []  # Slack only: no webhook row at all
        r2 = await Replica(config).start()
        try:
            rows = await r2.store.list_outbox()
            assert [row["integration"] for row in rows] == ["slack[0]"] * 4
            assert {row["status"] for row in rows} == {"sent"}
            assert rows[0]["payload"]["dedup_key"] == f"handoff:primary:{int(utc(2026, 3, 23, 8).timestamp())}"
            assert rows[3]["payload"]["dedup_key"] == f"handoff:primary:{int(utc(2026, 3, 30, 7).timestamp())}"
        finally:
            await r2.stop()


async def test_an_override_made_through_the_api_is_announced(tmp_path):
    """The leader hands the escalation's schedules (stored overrides merged) to the announcer."""
    from monitor.escalation.runner import EscalationRunner

    async with FakeHTTP(slack_api(TOKEN)) as slack:
        config = Config.model_validate({
            **CONFIG,
            "receivers": [{"name": "oncall", "slack_configs": [
                {"channel": "#oncall", "token": TOKEN, "api_url": slack.url + "/api/"}]}],
            "state": {"backend": "sqlite", "path": str(tmp_path / "state.db")},
        })
        r = await Replica(config).start()
        try:
            # alice's week (since Monday 2026-03-16); bob takes Wednesday 12:00 to Thursday 12:00 CET
            await r.store.create_override("primary", "bob", utc(2026, 3, 18, 11).timestamp(),
                                          utc(2026, 3, 19, 11).timestamp(), "alice", utc(2026, 3, 17).timestamp())
            runner = EscalationRunner(config.alerting, r.store, deliver=None)
            await runner.refresh_overrides(utc(2026, 3, 17).timestamp())
            for t in (utc(2026, 3, 17, 12), utc(2026, 3, 18, 11, 1), utc(2026, 3, 19, 11, 1)):
                await announce_handoffs(config, r.store, r.integrations, t.timestamp(),
                                        running=runner.lookup.schedules)
                await r.worker.run_once(t.timestamp())
            texts = [req.data["text"] for req in slack.on("/api/chat.postMessage")]
        finally:
            await r.stop()
        assert texts == [
            "On call for primary now: Bob Schulz (<@U01BOB>), until Thu 2026-03-19 12:00 CET",
            "On call for primary now: Alice Martin (<@U01ALICE>), until Mon 2026-03-23 09:00 CET",
        ]
