"""On-call API over real HTTP (uvicorn on 127.0.0.1) and the real state store (SQLite and PostgreSQL):
schedules now/next in the viewer's zone, the calendar, overrides created/removed and audited,
iCal feeds behind secret URLs (parsed back with ``icalendar``)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from icalendar import Calendar

from monitor.api.deps import ApiDeps
from monitor.api.oncall import OnCallDeps
from monitor.api.oncall_feeds import feed_token
from monitor.config.model import ApiConfig
from monitor.escalation.runner import EscalationRunner
from monitor.store import open_store
from tests.alerting_service.conftest import ApiServer
from tests.support.alerting_helpers import load_alerting, utc
from tests.support.state_helpers import Clock

RW, RO = "ck_live_oncall_rw_token_000000001", "ck_live_oncall_ro_token_000000002"
LINK_KEY = "link-key-for-feeds-0123456789abcdef"
#: Friday 2026-01-09 12:00 UTC = 13:00 in Berlin, inside business hours (alice's first week).
NOW = utc(2026, 1, 9, 12).timestamp()

ALERTING = """
people: {alice: {}, bob: {}, carol: {}}
schedules:
  office:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [alice, bob]
    rotation:
      restrictions: [{weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}]
  primary:
    time_zone: Europe/Berlin
    start: 2026-01-05
    members: [alice, bob, carol]
    overrides: [{start: 2026-01-20T09:00:00, end: 2026-01-21T09:00:00, person: alice}]
"""


@pytest.fixture
async def oncall_api(state_config):
    store = await open_store(state_config)
    alerting = load_alerting(ALERTING)
    api = ApiConfig.model_validate({"link_key": LINK_KEY, "tokens": [
        {"name": "alice", "token": RW}, {"name": "viewer", "token": RO, "scopes": ["read"]}]})
    clock = Clock(NOW)
    deps = ApiDeps(settings=lambda: api, oncall=OnCallDeps(alerting=lambda: alerting, store=lambda: store,
                                                           clock=clock))
    async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
        srv.client, srv.store, srv.alerting, srv.clock = client, store, alerting, clock
        yield srv
    await store.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_schedules_show_current_and_next_in_the_viewers_zone(oncall_api):
    r = await oncall_api.client.get("/api/v1/oncall/schedules", params={"tz": "America/New_York", "count": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    office = next(s for s in body["schedules"] if s["name"] == "office")
    assert office["restrictions"] == [{"weekdays": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                                       "time_zone": "Europe/Berlin", "start_time": "08:30", "end_time": "17:30"}]
    # 13:00 Berlin = 07:00 New York; the window closes at 17:30 Berlin = 11:30 New York
    assert office["current"] == {"person": "alice", "source": "rotation", "start": "2026-01-09T02:30:00-05:00",
                                 "end": "2026-01-09T11:30:00-05:00"}
    assert [(s["person"], s["start"]) for s in office["next"]] == [
        ("alice", "2026-01-12T02:30:00-05:00"), ("bob", "2026-01-12T03:00:00-05:00")]
    assert office["next_handoffs"][0] == {"at": "2026-01-09T11:30:00-05:00", "person": None}
    bad = await oncall_api.client.get("/api/v1/oncall/schedules", params={"tz": "Mars/Olympus"})
    assert bad.status_code == 400 and "Mars/Olympus" in bad.json()["error"]
    folder = await oncall_api.client.get("/api/v1/oncall/schedules", params={"tz": "America"})  # a folder of zones
    assert folder.status_code == 400 and "America" in folder.json()["error"]


async def test_current_shift_whatever_the_sub_microsecond_part_of_now(oncall_api):
    # a datetime rounds now to the microsecond, here up: the shift cut at now still counts as current
    for frac in (0.0, 0.4999996, 0.9999996):
        oncall_api.clock.t = NOW + frac
        body = (await oncall_api.client.get("/api/v1/oncall/schedules")).json()
        assert all(s["current"] is not None for s in body["schedules"] if s["name"] == "primary"), (frac, body)


async def test_current_shift_is_found_whatever_the_clock_readings_sub_microsecond_digits(oncall_api):
    # a reading that rounds up on its way to a (microsecond) datetime: the shift cut at "now" began
    # after the float, and a float comparison called nobody on call (the 39-in-100 "current": null)
    t = 1767960069.8658836
    assert datetime.fromtimestamp(t, timezone.utc).timestamp() > t
    oncall_api.clock.t = t
    r = await oncall_api.client.get("/api/v1/oncall/schedules", params={"tz": "America/New_York"})
    by_name = {s["name"]: s for s in r.json()["schedules"]}
    assert by_name["office"]["current"] == {"person": "alice", "source": "rotation",
                                            "start": "2026-01-09T02:30:00-05:00", "end": "2026-01-09T11:30:00-05:00"}
    assert by_name["primary"]["current"]["person"] == "alice"
    assert by_name["primary"]["next"][0]["person"] == "bob"


async def test_calendar_of_the_coming_weeks_includes_config_overrides(oncall_api):
    r = await oncall_api.client.get("/api/v1/oncall/schedules/primary/shifts",
                                    params={"start": "2026-01-12T00:00:00Z", "end": "2026-01-26T00:00:00Z"})
    assert r.status_code == 200, r.text
    got = [(s["person"], s["source"], s["start"], s["end"]) for s in r.json()["shifts"]]
    assert got == [
        ("alice", "rotation", "2026-01-12T00:00:00+00:00", "2026-01-12T08:00:00+00:00"),
        ("bob", "rotation", "2026-01-12T08:00:00+00:00", "2026-01-19T08:00:00+00:00"),
        ("carol", "rotation", "2026-01-19T08:00:00+00:00", "2026-01-20T08:00:00+00:00"),
        ("alice", "override", "2026-01-20T08:00:00+00:00", "2026-01-21T08:00:00+00:00"),
        ("carol", "rotation", "2026-01-21T08:00:00+00:00", "2026-01-26T00:00:00+00:00")]
    assert (await oncall_api.client.get("/api/v1/oncall/schedules/nope/shifts")).status_code == 404
    too_long = await oncall_api.client.get("/api/v1/oncall/schedules/primary/shifts",
                                           params={"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"})
    assert too_long.status_code == 400


async def test_override_create_list_remove_is_audited_and_reaches_the_lookup(oncall_api):
    c = oncall_api.client
    body = {"schedule": "office", "person": "carol", "start": "2026-01-10T09:00:00+01:00",
            "end": "2026-01-10T18:00:00+01:00", "comment": "Saturday release"}
    assert (await c.post("/api/v1/oncall/overrides", json=body)).status_code == 401
    assert (await c.post("/api/v1/oncall/overrides", json=body, headers=_auth(RO))).status_code == 403
    r = await c.post("/api/v1/oncall/overrides", json=body, headers=_auth(RW))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["person"] == "carol" and created["created_by"] == "alice"
    assert created["start"] == "2026-01-10T08:00:00+00:00"

    listed = (await c.get("/api/v1/oncall/overrides", params={"schedule": "office"})).json()["overrides"]
    assert [o["id"] for o in listed] == [created["id"]]
    cal = (await c.get("/api/v1/oncall/schedules/office/shifts",
                       params={"start": "2026-01-10T00:00:00Z", "end": "2026-01-11T00:00:00Z"})).json()
    assert [(s["person"], s["source"]) for s in cal["shifts"]] == [("carol", "override")]

    # the leader's escalation runner reads it from the store on its next refresh
    runner = EscalationRunner(oncall_api.alerting, oncall_api.store, deliver=None)
    await runner.refresh_overrides(NOW)
    assert runner.lookup("schedule:office", utc(2026, 1, 10, 12).timestamp()) == "carol"

    audit = await oncall_api.store.list_audit(target="schedule:office")
    assert [(a["action"], a["actor"]) for a in audit] == [("oncall.override.create", "alice")]
    assert audit[0]["detail"]["comment"] == "Saturday release"

    d = await c.delete(f"/api/v1/oncall/overrides/{created['id']}", headers=_auth(RW))
    assert d.status_code == 200, d.text
    assert (await c.delete(f"/api/v1/oncall/overrides/{created['id']}", headers=_auth(RW))).status_code == 404
    assert (await c.get("/api/v1/oncall/overrides")).json()["overrides"] == []
    audit = await oncall_api.store.list_audit(target="schedule:office")
    assert [a["action"] for a in audit] == ["oncall.override.remove", "oncall.override.create"]
    await runner.refresh_overrides(NOW + 60)
    assert runner.lookup("schedule:office", utc(2026, 1, 10, 12).timestamp()) is None


@pytest.mark.parametrize("change, message", [
    ({"schedule": "nope"}, "unknown schedule"),
    ({"person": "mallory"}, "unknown person"),
    ({"end": "2026-01-10T08:00:00+01:00"}, "after start"),
    ({"start": "2026-01-10 09:00"}, "no time zone"),
    ({"start": "2026-01-10T09:00:00"}, 'start: invalid RFC 3339 time "2026-01-10T09:00:00" (no time zone)'),
    ({"end": "tomorrow"}, 'end: invalid RFC 3339 time "tomorrow"'),
    ({"end": "2026-06-10T09:00:00+01:00"}, "92 days"),
    ({"start": "2026-01-01T09:00:00Z", "end": "2026-01-02T09:00:00Z"}, "over already"),
    ({"comment": "x" * 1001}, "comment"),
    ({"person": 7}, "person: expected a non-empty string"),
])
async def test_bad_overrides_are_refused_naming_the_field(oncall_api, change, message):
    body = {"schedule": "office", "person": "carol", "start": "2026-01-10T09:00:00+01:00",
            "end": "2026-01-10T18:00:00+01:00", **change}
    r = await oncall_api.client.post("/api/v1/oncall/overrides", json=body, headers=_auth(RW))
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert await oncall_api.store.list_overrides() == []


async def test_ical_feeds_behind_secret_urls(oncall_api):
    c = oncall_api.client
    assert (await c.get("/api/v1/oncall/feeds")).status_code == 401
    feeds = (await c.get("/api/v1/oncall/feeds", headers=_auth(RO))).json()
    url = feeds["schedules"]["office"]
    assert url.endswith(f"/api/v1/oncall/schedules/office.ics?token={feed_token(LINK_KEY, 'schedule', 'office')}")

    r = await c.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(r.content).walk("VEVENT")
    starts = [e.decoded("dtstart") for e in events]
    assert datetime(2026, 1, 9, 7, 30, tzinfo=timezone.utc) in starts  # Friday 08:30 Berlin
    assert all(e.decoded("dtend") > e.decoded("dtstart") for e in events)
    assert str(events[0]["summary"]).startswith("On call: ")

    bob = (await c.get(feeds["people"]["bob"])).content
    bob_events = Calendar.from_ical(bob).walk("VEVENT")
    assert bob_events and all("bob" in str(e["summary"]) for e in bob_events)
    assert {str(e["summary"]) for e in bob_events} == {"On call: bob (office)", "On call: bob (primary)"}

    assert (await c.get("/api/v1/oncall/schedules/office.ics", params={"token": "0" * 32})).status_code == 403
    assert (await c.get("/api/v1/oncall/schedules/office.ics")).status_code == 403
    wrong_kind = feed_token(LINK_KEY, "person", "office")  # a token is bound to its kind and name
    assert (await c.get("/api/v1/oncall/schedules/office.ics", params={"token": wrong_kind})).status_code == 403


async def test_ical_uids_stay_the_same_from_fetch_to_fetch(oncall_api):
    """A shift's UID is its schedule, person and real start, not the feed window's moving edge."""
    c = oncall_api.client
    url = (await c.get("/api/v1/oncall/feeds", headers=_auth(RO))).json()["schedules"]["primary"]
    fetched = []
    for t in (NOW + 20 * 86400, NOW + 20 * 86400 + 3600.5):  # window starts Jan 15: inside bob's week
        oncall_api.clock.t = t
        events = Calendar.from_ical((await c.get(url)).content).walk("VEVENT")
        fetched.append([(str(e["uid"]), e.decoded("dtstart")) for e in events])
    first, second = fetched
    bob_week = datetime(2026, 1, 12, 8, tzinfo=timezone.utc)  # Monday 09:00 Berlin
    assert first[0] == second[0] == (f"primary-bob-{int(bob_week.timestamp())}@codebook-monitor", bob_week)
    assert first[:-1] == second[:len(first) - 1]
