"""Maintenance notices: occurrences of the guide's window, which notice is due, and exactly-once
delivery through the real outbox (SQLite and PostgreSQL), a real Slack API stand-in and a real
SMTP server; the audience from config and from a SQL query on the real PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from types import SimpleNamespace

import asyncpg
import pytest
from pydantic import ValidationError

from monitor.alerting.maintenance import MaintenanceWindows
from monitor.config.alerting import AlertingConfig, validate_alerting_refs
from monitor.config.receivers import ReceiverConfig
from monitor.notify import OutboxWorker, build_integrations
from monitor.notify.maintenance_notices import (
    NOTICES_KEY, Contact, due_notice, notice_label, occurrence_end, occurrence_starts, read_audience,
    send_maintenance_notices,
)
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SQLiteStore
from model.labels import Labels
from tests.support.notify_servers import FakeHTTP, FakeSMTP, slack_api

TOKEN = "xoxb-5555555555-6666666666-MaInTeNaNcEtOkEn"
DAY, HOUR = 86400.0, 3600.0


def ts(*a: int) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


#: The guide's window: the first Saturday of the month, 02:00-06:00 UTC. 2026-12-05 is one.
START, END = ts(2026, 12, 5, 2), ts(2026, 12, 5, 6)
INTERVALS = [{"name": "first-saturday-night", "time_intervals": [
    {"weekdays": ["saturday"], "days_of_month": ["1:7"], "times": [{"start_time": "02:00", "end_time": "06:00"}]}]}]


def alerting(audience=None, **notices) -> AlertingConfig:
    return AlertingConfig.model_validate({
        "time_intervals": INTERVALS,
        "maintenance_windows": [{
            "name": "monthly-maintenance", "time_intervals": ["first-saturday-night"],
            "matchers": ['alertname!="Watchdog"'], "comment": "monthly",
            "notices": {"receiver": "clients", "message": "Search is read-only during the window.",
                        "audience": audience if audience is not None else {"contacts": [
                            {"name": "Acme", "email": "ops@acme.example", "slack_channel": "C0ACME"},
                            {"name": "Globex", "email": "it@globex.example"}]},
                        **notices}}]})


def periods(cfg: AlertingConfig):
    return {ti.name: list(ti.time_intervals) for ti in cfg.time_intervals}


# -- when ---------------------------------------------------------------------------------

def test_occurrences_of_the_first_saturday_window():
    p = periods(alerting())
    names = ["first-saturday-night"]
    assert occurrence_starts(p, names, ts(2026, 11, 28, 3), 7 * DAY) == [START]
    assert occurrence_starts(p, names, ts(2026, 11, 28, 1), 7 * DAY) == []   # 7 d + 1 h away
    assert occurrence_starts(p, names, ts(2026, 11, 1), 70 * DAY) == [
        ts(2026, 11, 7, 2), START, ts(2027, 1, 2, 2)]
    assert occurrence_starts(p, names, START, 7 * DAY) == []  # under way: no notice
    assert occurrence_end(p, names, START) == END


def test_occurrences_follow_the_interval_location_across_dst():
    cfg = AlertingConfig.model_validate({"time_intervals": [{"name": "berlin-night", "time_intervals": [
        {"weekdays": ["sunday"], "times": [{"start_time": "03:00", "end_time": "05:00"}],
         "location": "Europe/Berlin"}]}]})
    # 2026-10-25: Berlin leaves summer time; 03:00 CET = 02:00 UTC, the Sunday before 01:00 UTC
    assert occurrence_starts(periods(cfg), ["berlin-night"], ts(2026, 10, 17), 14 * DAY) == [
        ts(2026, 10, 18, 1), ts(2026, 10, 25, 2)]


def test_the_latest_due_notice_wins():
    before = [7 * DAY, HOUR]
    assert due_notice(before, START, START - 8 * DAY) is None
    assert due_notice(before, START, START - 7 * DAY) == 7 * DAY
    assert due_notice(before, START, START - 2 * HOUR) == 7 * DAY
    assert due_notice(before, START, START - HOUR) == HOUR     # a missed 7-day notice is not sent late
    assert due_notice(before, START, START) is None
    assert (notice_label(7 * DAY), notice_label(HOUR), notice_label(5400)) == ("7d", "1h", "1h30m")


def test_config_checks():
    with pytest.raises(ValidationError, match="a contact needs email or slack_channel"):
        alerting({"contacts": [{"name": "nobody"}]})
    with pytest.raises(ValidationError, match="audience needs contacts or sql"):
        alerting({})
    with pytest.raises(ValidationError, match="durations must be distinct"):
        alerting(before=["1h", "60m"])
    assert alerting(before=["1h", "2d"]).maintenance_windows[0].notices.before == [2 * DAY, HOUR]
    assert validate_alerting_refs(alerting(), {"ops"}) == [(
        "alerting.maintenance_windows[0].notices.receiver",
        'undefined receiver "clients" used in maintenance_windows[0].notices')]


def test_alerts_inside_the_window_stay_muted():
    mw = MaintenanceWindows.from_config(alerting())
    assert mw.mutes(Labels.of({"alertname": "HighErrorRate"}), START + HOUR) == ["monthly-maintenance"]
    assert mw.mutes(Labels.of({"alertname": "HighErrorRate"}), START - 60) == []
    assert mw.mutes(Labels.of({"alertname": "Watchdog"}), START + HOUR) == []


# -- who ----------------------------------------------------------------------------------

async def test_audience_from_contacts_and_a_sql_query(pg_schema):
    dsn, schema = pg_schema
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute("CREATE TABLE clients (name text, contact_email text, active bool)")
        await conn.execute("INSERT INTO clients VALUES ('Initech', 'ops@initech.example', true),"
                           " ('Gone', 'x@gone.example', false), ('NoMail', NULL, true)")
    finally:
        await conn.close()
    cfg = alerting({"contacts": [{"name": "Acme", "slack_channel": "C0ACME"}],
                    "sql": {"dsn": dsn, "search_path": schema,
                            "query": "SELECT name, contact_email AS email FROM clients WHERE active ORDER BY name"}})
    got = await read_audience(cfg.maintenance_windows[0].notices.audience)
    assert got == [Contact("Acme", None, "C0ACME"), Contact("Initech", "ops@initech.example", None)]


# -- exactly once, through the outbox -----------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path):
    """``(dsn, schema)`` of a fresh PostgreSQL schema, or a SQLite file path."""
    return request.getfixturevalue("pg_schema") if request.param == "postgres" else tmp_path / "state.db"


@pytest.fixture
async def store(where):
    s = PostgresStore(where[0], schema=where[1]) if isinstance(where, tuple) else SQLiteStore(where)
    await s.open()
    yield s
    await s.close()


def _config(cfg: AlertingConfig):
    return SimpleNamespace(alerting=cfg, server=SimpleNamespace(external_url=""))


async def _deliver(store, integrations, now):
    worker = OutboxWorker(store, integrations, clock=lambda: now)
    await worker.run_once()


async def test_seven_days_ahead_then_the_reminder_each_exactly_once(store):
    cfg = _config(alerting())
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        with FakeSMTP() as smtp:
            receivers = [ReceiverConfig.model_validate({
                "name": "clients",
                "slack_configs": [{"channel": "#ops", "token": TOKEN, "api_url": slack.url + "/api/"}],
                "email_configs": [{"to": "ops@codebook.example", "from": "status@codebook.example",
                                   "smarthost": smtp.smarthost, "require_tls": False}]})]
            integrations = build_integrations(receivers)
            try:
                now = START - 7 * DAY + 30
                assert await send_maintenance_notices(cfg, store, integrations, now) == [
                    ("monthly-maintenance", START, "7d")]
                await _deliver(store, integrations, now)
                # a later run, and a restart that lost nothing, write nothing
                assert await send_maintenance_notices(cfg, store, integrations, now + 30) == []
                # even without the sent marks (as if they were lost), the outbox keys hold
                marks = await store.kv_get(NOTICES_KEY)
                await store.kv_set(NOTICES_KEY, {}, now)
                assert await send_maintenance_notices(cfg, store, integrations, now + 60) == [
                    ("monthly-maintenance", START, "7d")]
                assert len(await store.list_outbox()) == 3  # Acme by Slack and email, Globex by email
                await store.kv_set(NOTICES_KEY, marks, now)
                await _deliver(store, integrations, now + 60)

                posts = slack.on("/api/chat.postMessage")
                assert [p.data["channel"] for p in posts] == ["C0ACME"]
                assert posts[0].data["text"].startswith(
                    "*Scheduled maintenance Sat 2026-12-05 02:00 UTC to Sat 2026-12-05 06:00 UTC*\n"
                    "Hello Acme, the Codebook service has scheduled maintenance from Sat 2026-12-05 02:00 UTC")
                mails = {tuple(rcpt): email.message_from_bytes(raw, policy=email.policy.default)
                         for _, rcpt, raw in smtp.handler.messages}
                assert set(mails) == {("ops@acme.example",), ("it@globex.example",)}
                globex = mails[("it@globex.example",)]
                assert globex["Subject"].strip() == (  # folded: longer than 78 with its name
                    "Scheduled maintenance Sat 2026-12-05 02:00 UTC to "
                                             "Sat 2026-12-05 06:00 UTC")
                body = globex.get_content().replace("\r\n", "\n")
                assert body.startswith("Hello Globex,\n\nThe Codebook service has scheduled maintenance\n"
                                       "from Sat 2026-12-05 02:00 UTC to Sat 2026-12-05 06:00 UTC.")
                assert "Search is read-only during the window." in body

                # nothing between the notices; the reminder an hour before, once
                assert await send_maintenance_notices(cfg, store, integrations, START - 2 * HOUR) == []
                assert await send_maintenance_notices(cfg, store, integrations, START - HOUR + 5) == [
                    ("monthly-maintenance", START, "1h")]
                assert await send_maintenance_notices(cfg, store, integrations, START - HOUR + 35) == []
                await _deliver(store, integrations, START - HOUR + 40)
                assert len(slack.on("/api/chat.postMessage")) == 2
                assert len(smtp.handler.messages) == 4
                last = email.message_from_bytes(smtp.handler.messages[-1][2], policy=email.policy.default)
                assert last["Subject"] == "Reminder: maintenance starts in 1h"
                # in the window: no notice; the next month's comes in time
                assert await send_maintenance_notices(cfg, store, integrations, START + HOUR) == []
            finally:
                for items in integrations.values():
                    for integ in items:
                        await integ.notifier.aclose()


async def test_an_unreadable_audience_is_retried_not_marked(store):
    cfg = _config(alerting({"sql": {"dsn": "postgresql://postgres@127.0.0.1:1/none", "query": "SELECT 1",
                                    "timeout": 2}}))
    receivers = [ReceiverConfig.model_validate({"name": "clients", "email_configs": [
        {"to": "a@example.com", "from": "m@example.com", "smarthost": "127.0.0.1:1", "require_tls": False}]})]
    integrations = build_integrations(receivers)
    assert await send_maintenance_notices(cfg, store, integrations, START - HOUR) == []
    assert await store.kv_get(NOTICES_KEY) is None
    assert await store.list_outbox() == []
