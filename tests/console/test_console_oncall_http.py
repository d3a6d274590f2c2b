"""The console's On-call and Incidents pages over HTTP against the real daemon: schedules with who is
on call now in the viewer's zone (``tz`` parameter, then cookie), restrictions, the calendar, feed
links; an override added and removed from the page changes "on call now" (there and on the overview)
and is audited with the console user; a critical alert opens an incident that the pages list with
MTTA/MTTR against the SLA; a note and a public update (shown on ``/status``) from the incident page;
a viewer sees but cannot act; every form needs its CSRF token; fuzzed forms get 303/400/403/404."""

from __future__ import annotations

import re
import sqlite3

import httpx
from hypothesis import strategies as st

from monitor.api.access import ROUTE_ACCESS
from monitor.api.console import ROUTES
from tests.console.helpers import console_config, fuzzed_posts, login
from tests.support.daemon_helpers import eventually, run_daemon

#: Two schedules: a weekly rotation (alice, bob) and business hours (carol, Monday to Friday 09:00–17:00 UTC).
ONCALL = """
    schedules:
      primary:
        time_zone: Europe/Berlin
        rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"}
        start: 2026-01-05
        members: [alice, bob]
      office:
        time_zone: UTC
        rotation:
          type: weekly
          handoff_weekday: monday
          handoff_time: "09:00"
          restrictions: [{weekdays: ["monday:friday"], start_time: "09:00", end_time: "17:00"}]
        start: 2026-01-05
        members: [carol]
"""
LINK_KEY = "console-oncall-link-key-000000000000001"


def oncall_config(tmp_path, sinks, extra: str = ""):
    """The console test config with :data:`ONCALL`'s schedules, Carol among the people, ``api.link_key``."""
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url, alerting_extra=ONCALL, extra=extra)
    text = cfg.read_text().replace("    bob: {name: Bob", "    carol: {name: Carol}\n    bob: {name: Bob")
    cfg.write_text(text.replace("api:\n  tokens:", f"api:\n  link_key: {LINK_KEY}\n  tokens:"))
    return cfg


def _now_on_call(html: str, schedule: str) -> str:
    section = html.split(f'data-schedule="{schedule}"', 1)[1]
    m = re.search(r'class="person oncall-now" data-person="([^"]*)"', section)
    assert m, section[:500]
    return m.group(1)


def _audit(tmp_path, target_prefix: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(tmp_path / "state.db") as db:
        return list(db.execute("SELECT action, actor, source FROM audit_log WHERE target LIKE ? ORDER BY id",
                               (target_prefix + "%",)))


def test_every_new_route_is_in_the_access_table():
    paths = {r.path for r in ROUTES}
    for p in ("/ui/oncall", "/ui/oncall/overrides", "/ui/oncall/overrides/{id}/remove", "/ui/incidents",
              "/ui/incidents/{id}", "/ui/incidents/{id}/notes", "/ui/incidents/{id}/updates"):
        assert p in paths
        assert any(path == p for _, path in ROUTE_ACCESS)


async def test_oncall_page_overrides_and_zone(tmp_path, sinks):
    cfg = oncall_config(tmp_path, sinks)
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice, \
            httpx.AsyncClient(timeout=30) as victor:
        csrf = await login(alice, d.url, "alice")
        vcsrf = await login(victor, d.url, "victor")
        api = (await d.get("/api/v1/oncall/schedules", params={"tz": "Asia/Tokyo"})).json()
        primary = next(s for s in api["schedules"] if s["name"] == "primary")

        r = await alice.get(d.url + "/ui/oncall?tz=Asia/Tokyo")
        assert r.status_code == 200, r.text[:500]
        assert re.match(r'cbm_tz="?Asia/Tokyo"?;', r.headers["set-cookie"])
        page = r.text
        assert _now_on_call(page, "primary") == primary["current"]["person"]
        # times in the viewer's zone: the current shift's start as the API gives it in Tokyo
        start = primary["current"]["start"]  # 2026-..T17:00:00+09:00
        assert start.endswith("+09:00") and start[11:16] in page
        assert "Asia/Tokyo" in page
        # restrictions (business hours), the calendar, the feed links
        assert "09:00–17:00 UTC" in page and "mon tue wed thu fri" in page.lower()
        assert page.count('<table class="cal">') == 2
        assert "/api/v1/oncall/schedules/primary.ics?token=" in page
        assert "/api/v1/oncall/people/carol.ics?token=" in page
        # the cookie keeps the zone without the parameter; an unknown zone is ignored
        again = await alice.get(d.url + "/ui/oncall")
        assert 'id="zone">Asia/Tokyo<' in again.text
        for bad_zone in ("Mars/Olympus", "America", "../../etc/passwd", "x" * 500):
            r = await victor.get(d.url + "/ui/oncall", params={"tz": bad_zone})
            assert r.status_code == 200 and 'id="zone">UTC<' in r.text, bad_zone

        # a viewer sees the page but no form, and is refused when forcing one
        vpage = (await victor.get(d.url + "/ui/oncall")).text
        assert 'id="new-override"' not in vpage and 'id="new-override"' in page
        other = "bob" if primary["current"]["person"] == "alice" else "alice"
        form = {"schedule": "primary", "person": other, "start": "2026-01-01T00:00", "end": "2099-01-01T00:00",
                "tz": "UTC", "comment": "swap"}
        r = await victor.post(d.url + "/ui/oncall/overrides", data={**form, "csrf": vcsrf})
        assert r.status_code == 403 and "may not" in r.text
        for bad in ({}, {"csrf": "forged"}):
            r = await alice.post(d.url + "/ui/oncall/overrides", data={**form, **bad})
            assert r.status_code == 403 and "CSRF" in r.text
        # the service's validation: over 92 days, unknown person, malformed time
        r = await alice.post(d.url + "/ui/oncall/overrides", data={**form, "csrf": csrf})
        assert r.status_code == 400 and "92 days" in r.text
        page_form = re.search(r'name="start" value="([^"]+)"', page).group(1)
        end_form = re.search(r'name="end" value="([^"]+)"', page).group(1)
        r = await alice.post(d.url + "/ui/oncall/overrides", data={**form, "csrf": csrf, "person": "mallory",
                                                                   "start": page_form, "end": end_form})
        assert r.status_code == 400 and "unknown person" in r.text
        r = await alice.post(d.url + "/ui/oncall/overrides", data={**form, "csrf": csrf, "start": "yesterday"})
        assert r.status_code == 400 and "start:" in r.text

        # add from the page's own prefilled times (now .. now + 8 h in Tokyo): on call now changes
        r = await alice.post(d.url + "/ui/oncall/overrides", data={**form, "csrf": csrf, "tz": "Asia/Tokyo",
                                                                   "start": page_form, "end": end_form})
        assert r.status_code == 303 and r.headers["location"] == "/ui/oncall", r.text[:500]
        page = (await alice.get(d.url + "/ui/oncall")).text
        assert _now_on_call(page, "primary") == other
        assert f"primary: <strong>{other}</strong>" in (await alice.get(d.url + "/ui/")).text  # the overview too
        [row] = (await d.get("/api/v1/oncall/overrides")).json()["overrides"]
        assert (row["person"], row["created_by"], row["comment"]) == (other, "alice", "swap")
        assert f'data-id="{row["id"]}"' in page

        # remove it: back to the rotation
        r = await alice.post(d.url + f"/ui/oncall/overrides/{row['id']}/remove", data={"csrf": csrf})
        assert r.status_code == 303
        assert _now_on_call((await alice.get(d.url + "/ui/oncall")).text, "primary") == primary["current"]["person"]
        assert f"primary: <strong>{primary['current']['person']}</strong>" in (await alice.get(d.url + "/ui/")).text
        r = await alice.post(d.url + f"/ui/oncall/overrides/{row['id']}/remove", data={"csrf": csrf})
        assert r.status_code == 404
        r = await alice.post(d.url + "/ui/oncall/overrides/nope/remove", data={"csrf": csrf})
        assert r.status_code == 404
    audit = _audit(tmp_path, "schedule:primary")
    assert [(a, who) for a, who, _ in audit] == [("oncall.override.create", "alice"),
                                                 ("oncall.override.remove", "alice")]
    assert all(src.startswith("console:") for _, _, src in audit)


async def test_incidents_pages_note_and_public_update(tmp_path, sinks):
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url, extra="status_page: {title: Codebook status}\n")
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice, \
            httpx.AsyncClient(timeout=30) as victor:
        csrf = await login(alice, d.url, "alice")
        vcsrf = await login(victor, d.url, "victor")

        async def opened():
            rows = (await d.get("/api/v1/incidents", params={"status": "open"})).json()["incidents"]
            return next((i for i in rows if i["title"] == "backend is down"), None)
        inc = await eventually(opened, timeout=60, what="an incident for BackendDown")

        r = await alice.get(d.url + "/ui/incidents?tz=Europe/Paris")
        assert r.status_code == 200, r.text[:500]
        page = r.text
        assert f'href="/ui/incidents/{inc["id"]}"' in page and inc["priority"] in page
        sla = page.split('id="sla"', 1)[1].split("</table>", 1)[0]
        # the SLA of the test config's priorities: P0 ack 20 s / resolve 1 h, P1 1 h / 24 h, P2 4 h / 3 d
        assert 'data-priority="P1"' in sla and "1h 00m" in sla and "1d 0h" in sla and "3d 0h" in sla
        assert "Times in Europe/Paris" in page

        url = f"/ui/incidents/{inc['id']}"
        detail = (await alice.get(d.url + url)).text
        assert 'id="add-note"' in detail and 'id="post-update"' in detail and inc["title"] in detail
        vdetail = (await victor.get(d.url + url)).text
        assert 'id="add-note"' not in vdetail
        assert (await alice.get(d.url + "/ui/incidents/999999")).status_code == 404
        assert (await alice.get(d.url + "/ui/incidents/abc")).status_code == 404

        r = await victor.post(d.url + url + "/notes", data={"csrf": vcsrf, "text": "x"})
        assert r.status_code == 403 and "may not" in r.text
        r = await alice.post(d.url + url + "/notes", data={"text": "x"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await alice.post(d.url + url + "/notes", data={"csrf": csrf, "text": "  "})
        assert r.status_code == 400
        r = await alice.post(d.url + url + "/updates", data={"csrf": csrf, "text": "x", "status": "panicking"})
        assert r.status_code == 400 and "status:" in r.text

        r = await alice.post(d.url + url + "/notes", data={"csrf": csrf, "text": "restarting the backend"})
        assert r.status_code == 303 and r.headers["location"] == url
        r = await alice.post(d.url + url + "/updates", data={"csrf": csrf, "status": "identified",
                                                             "text": "We found the cause of the API errors."})
        assert r.status_code == 303
        detail = (await alice.get(d.url + url)).text
        assert "restarting the backend" in detail and "We found the cause of the API errors." in detail
        timeline = (await d.get(f"/api/v1/incidents/{inc['id']}")).json()
        assert timeline["public_status"] == "identified"
        kinds = [(e["kind"], e["actor"], e["public"]) for e in timeline["timeline"] if e["actor"] == "alice"]
        assert kinds == [("note", "alice", False), ("update", "alice", True)]
        status = (await httpx.AsyncClient(timeout=30).get(d.url + "/status")).text
        assert "We found the cause of the API errors." in status and "restarting the backend" not in status
    audit = _audit(tmp_path, f"incident:{inc['id']}")
    assert [(a, who) for a, who, _ in audit] == [("incident.note", "alice"), ("incident.update", "alice")]


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_times = st.sampled_from(["2026-12-05T09:00", "9999-12-31T23:59", "0001-01-01T00:00", "2026-12-05T09:00+14:00",
                          "yesterday", ""]) | _text
_forms = st.fixed_dictionaries({}, optional={
    "schedule": st.sampled_from(["primary", "office", "nope"]) | _text, "person": st.sampled_from(["alice", "x"]),
    "start": _times, "end": _times, "tz": st.sampled_from(["UTC", "Pacific/Kiritimati", "America", ""]) | _text,
    "comment": _text, "text": _text, "status": st.sampled_from(["identified", "resolved", "bogus"]) | _text,
    "next": _text})


async def test_post_forms_survive_fuzzed_input(tmp_path, sinks):
    cfg = oncall_config(tmp_path, sinks)
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice:
        csrf = await login(alice, d.url, "alice")
        paths = ["/ui/oncall/overrides", "/ui/oncall/overrides/1/remove", "/ui/oncall/overrides/x/remove",
                 "/ui/incidents/1/notes", "/ui/incidents/1/updates", "/ui/incidents/zz/notes"]
        pending = fuzzed_posts(paths, _forms, 60)
        for path, form, with_csrf in pending:  # sent here, on the daemon's event loop
            r = await alice.post(d.url + path, data=dict(form, csrf=csrf) if with_csrf else form)
            assert r.status_code in (303, 400, 403, 404), (path, form, r.status_code, r.text[:300])
            if not with_csrf:
                assert r.status_code == 403
        assert (await d.get("/health")).status_code == 200
