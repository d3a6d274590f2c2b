"""The public status page over real HTTP with the real state store (SQLite and PostgreSQL): 90-day uptime
bars from the daily aggregates the probe results feed, current incidents with their public updates
only, the maintenance banner from 24 h before, /status.json, bad config refs."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace

import httpx
import pytest
import yaml

from monitor.api.deps import ApiDeps
from monitor.api.statuspage import StatusPageDeps, uptime_svg
from monitor.api.statuspage.data import public_title
from monitor.config.loader import check_config_file
from monitor.config.model import Config
from monitor.daemon.uptime import UptimeRecorder, probe_components
from monitor.store import open_store
from tests.alerting_service.conftest import ApiServer
from tests.support.state_helpers import Clock


def ts(*a: int) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


#: Friday 2026-12-04 03:00 UTC: the guide's monthly window (first Saturday, 02:00-06:00 UTC) starts in 23 h.
NOW = ts(2026, 12, 4, 3)

CONFIG = {
    "probes": [
        {"name": "api-health", "kind": "api", "url": "http://127.0.0.1:1/health"},
        {"name": "api-search", "kind": "api", "url": "http://127.0.0.1:1/search"},
        {"name": "postgres", "kind": "database", "dsn": "postgresql://127.0.0.1:1/x"},
    ],
    "alerting": {
        "time_intervals": [{"name": "first-saturday-night", "time_intervals": [
            {"weekdays": ["saturday"], "days_of_month": ["1:7"], "times": [{"start_time": "02:00",
                                                                            "end_time": "06:00"}]}]}],
        "maintenance_windows": [{"name": "monthly-maintenance", "time_intervals": ["first-saturday-night"],
                                 "notices": {"receiver": "clients", "message": "Search is read-only.",
                                             "audience": {"contacts": [{"name": "Acme", "email": "a@acme.example"}]}}},
                                {"name": "internal", "time_intervals": ["first-saturday-night"]}],
    },
    "receivers": [{"name": "clients", "email_configs": [{"to": "x@example.com", "from": "m@example.com",
                                                         "smarthost": "127.0.0.1:1"}]}],
}


def result(ok: bool, at: float):
    return SimpleNamespace(success=ok, finished_at=at)


@pytest.fixture
async def page(state_config):
    store = await open_store(state_config)
    config = Config.model_validate(CONFIG)
    clock = Clock(NOW)
    # two days of probe results through the recorder the daemon uses: yesterday 1 of 4 API runs
    # failed (75 %), today all passed; the database only today, all failing now
    rec = UptimeRecorder(lambda: probe_components(config))
    for i, ok in enumerate([True, True, False, True]):
        rec.observe("api-health", result(ok, NOW - 86400 + i))
    rec.observe("api-search", result(True, NOW))
    rec.observe("postgres", result(False, NOW))
    rec.observe("unknown-probe", result(False, NOW))
    assert await rec.flush(store, NOW) == 3
    rec.observe("api-health", result(True, NOW + 1))
    assert await rec.flush(store, NOW + 1) == 1  # increments the same day's row

    internal = "SLO db-availability: error budget burning 1000.0x over 1h"  # the alert's summary
    inc = await store.open_incident("g", internal, "P0", ["Database"], ["fp"], NOW - 600)
    await store.add_incident_event(inc["id"], NOW - 500, "note", actor="alice", text="SECRET internal note")
    await store.add_incident_event(inc["id"], NOW - 400, "update", actor="alice", public=True,
                                   text="We are investigating database errors.", detail={"status": "investigating"})
    probes = SimpleNamespace(last={"api-health": result(True, NOW), "api-search": result(True, NOW),
                                   "postgres": result(False, NOW)})
    deps = ApiDeps(status_page=StatusPageDeps(config=lambda: config, probes=lambda: probes, store=lambda: store,
                                              clock=clock))
    async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
        srv.client, srv.clock, srv.store = client, clock, store
        yield srv
    await store.close()


async def test_status_json(page):
    r = await page.client.get("/status.json")
    assert r.status_code == 200
    doc = r.json()
    comps = {c["name"]: c for c in doc["components"]}
    assert list(comps) == ["API", "Database"]  # one per probe kind in use, in the guide's order
    api, db = comps["API"], comps["Database"]
    assert len(api["days"]) == 90 and api["days"][-1]["day"] == "2026-12-04"
    assert api["days"][-2] == {"day": "2026-12-03", "checks": 4, "uptime": 0.75}
    assert api["days"][-1] == {"day": "2026-12-04", "checks": 2, "uptime": 1.0}
    assert api["days"][0]["uptime"] is None and api["uptime"] == 5 / 6
    assert (api["status"], db["status"]) == ("operational", "major_outage")
    [incident] = doc["incidents"]
    assert incident["title"] == "Database outage" and incident["open"]  # never the internal (alert) title
    assert [u["text"] for u in incident["updates"]] == ["We are investigating database errors."]
    [m] = doc["maintenance"]  # the internal window (no client notices) is not public
    assert (m["name"], m["starts_at"], m["in_progress"]) == ("monthly-maintenance", "2026-12-05T02:00:00+00:00",
                                                             False)


async def test_status_html_is_public_mobile_and_never_shows_internal_notes(page):
    r = await page.client.get("/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    body = r.text
    assert 'name="viewport"' in body and "<script" not in body
    assert "Scheduled maintenance" in body and "Search is read-only." in body
    assert "We are investigating database errors." in body
    assert "SECRET" not in body and "alice" not in body and "error budget" not in body
    assert "Database outage" in body
    assert body.count("<svg") == 2 and body.count("<rect") == 180
    assert "2026-12-03: 75.00% of 4 checks" in body


async def test_a_public_update_sets_the_public_title(page):
    [row] = await page.store.list_incidents(limit=10)
    await page.store.add_incident_event(int(row["id"]), NOW - 300, "update", actor="alice", public=True,
                                        text="Fix deployed.", detail={"status": "monitoring",
                                                                      "title": "Search is slow for some clients"})
    await page.store.add_incident_event(int(row["id"]), NOW - 200, "update", actor="alice", public=True,
                                        text="Still watching.", detail={"status": "monitoring"})
    [incident] = (await page.client.get("/status.json")).json()["incidents"]
    assert incident["title"] == "Search is slow for some clients"
    body = (await page.client.get("/status")).text
    assert "Search is slow for some clients" in body and "error budget" not in body


def test_public_title_without_updates():
    assert public_title(["API"], [], outage=False) == "API degraded"
    assert public_title(["API", "Database"], [{"detail": None}], outage=True) == "API, Database outage"
    assert public_title([], [], outage=False) == "Service degraded"


async def test_banner_shows_only_from_24_hours_before_and_while_in_progress(page):
    page.clock.t = ts(2026, 12, 5, 2) - 86400 - 60  # 24 h and a minute before
    assert (await page.client.get("/status.json")).json()["maintenance"] == []
    page.clock.t = ts(2026, 12, 5, 3)  # in progress (the 10 s cache is keyed on the clock)
    [m] = (await page.client.get("/status.json")).json()["maintenance"]
    assert m["in_progress"] and m["ends_at"] == "2026-12-05T06:00:00+00:00"
    assert "Maintenance in progress" in (await page.client.get("/status")).text


def test_uptime_svg_colours_and_titles():
    svg = uptime_svg([{"day": "2026-12-01", "checks": 0, "uptime": None},
                      {"day": "2026-12-02", "checks": 1000, "uptime": 0.9995},
                      {"day": "2026-12-03", "checks": 10, "uptime": 0.5}])
    assert re.findall(r'fill="(#[0-9a-f]{6})"', svg) == ["#c8ccd2", "#2e9e5b", "#d64545"]
    assert "<title>2026-12-02: 99.95% of 1000 checks</title>" in svg


def test_components_name_configured_probes(tmp_path):
    text = yaml.safe_dump({**CONFIG, "status_page": {"components": [
        {"name": "API", "probes": ["api-health", "nope"]}, {"name": "API", "probes": ["postgres"]}]}}, sort_keys=False)
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    errors = check_config_file(path)
    assert any(re.search(r"monitor.yaml:\d+:\d+: status_page.components\[0\].probes\[1\]: undefined probe \"nope\"", e)
               for e in errors), errors
    assert any('components[1].name: duplicate component name "API"' in e for e in errors), errors
