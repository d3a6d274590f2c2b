"""The daemon wires the on-call API, incidents API and the public status page: a real daemon, a real
probe against a local server, the uptime written by the daemon's job, /status served without a token."""

from __future__ import annotations

import httpx

from tests.support.daemon_helpers import TinyHttpServer, eventually, health_routes, run_daemon, write_config


async def test_daemon_serves_status_page_and_oncall(tmp_path):
    async with TinyHttpServer(health_routes()) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: api-health
                kind: api
                url: {api.url}
                interval: 5s
                timeout: 5s
            alerting:
              people: {{alice: {{}}, bob: {{}}}}
              schedules:
                office:
                  time_zone: Europe/Berlin
                  start: 2026-01-05
                  members: [alice, bob]
                  rotation:
                    restrictions: [{{weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}}]
            """)
        async with run_daemon(cfg) as d:
            await eventually(lambda: _probed(d), what="a probe result")
            await d.daemon._uptime_job()  # the job the scheduler runs every minute
            async with httpx.AsyncClient(timeout=30) as anon:  # no token: public
                r = await anon.get(d.url + "/status.json")
                assert r.status_code == 200, r.text
                [comp] = r.json()["components"]
                assert comp["name"] == "API" and comp["status"] == "operational"
                assert comp["days"][-1]["checks"] >= 1 and comp["days"][-1]["uptime"] == 1.0
                assert (await anon.get(d.url + "/status")).status_code == 200
            s = await d.get("/api/v1/oncall/schedules", params={"tz": "Europe/Berlin"})
            assert s.status_code == 200, s.text
            [office] = s.json()["schedules"]
            assert office["name"] == "office" and len(office["next"]) == 5
            assert (await d.get("/api/v1/incidents")).json() == {"incidents": []}


async def _probed(d) -> bool:
    return "api-health" in d.daemon.probes.last


async def test_uptime_counts_are_written_when_the_daemon_stops(tmp_path):
    from monitor.config.model import StateConfig
    from monitor.store import open_store

    async with TinyHttpServer(health_routes()) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: api-health
                kind: api
                url: {api.url}
                interval: 5s
                timeout: 5s
            """)
        async with run_daemon(cfg) as d:
            await eventually(lambda: _probed(d), what="a probe result")
    store = await open_store(StateConfig.model_validate({"backend": "sqlite", "path": str(tmp_path / "state.db")}))
    try:
        rows = await store.list_uptime("2000-01-01")
    finally:
        await store.close()
    assert [(r["component"], r["checks"] >= 1) for r in rows] == [("API", True)]
