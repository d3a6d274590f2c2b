"""Prometheus's metadata and status API on the real daemon (monitor/api/catalog.py, status.py),
and the daemon's own metrics as queryable series (monitor/daemon/self_scrape.py)."""

from __future__ import annotations

from tests.support.daemon_helpers import ADMIN_TOKEN, TinyHttpServer, eventually, run_daemon, write_config

EXPOSITION = """\
# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{endpoint="/a",code="200"} 5
app_requests_total{endpoint="/b",code="500"} 1
# TYPE app_temp gauge
app_temp 21.5
"""


def _config(tmp_path, url):
    return write_config(tmp_path, f"""
        scrape:
          - name: app
            url: {url}/metrics
            interval: 1s
            timeout: 1s
        api:
          tokens: [{{name: test-admin, token: {ADMIN_TOKEN}, scopes: [read, ack, admin]}}]
          link_key: "a-link-key-that-is-long-enough-0123456789"
    """)


async def test_labels_series_values_and_status(tmp_path):
    async with TinyHttpServer({"/metrics": (200, "text/plain", EXPOSITION)}) as app:
        async with run_daemon(_config(tmp_path, app.url)) as d:
            async def scraped():
                r = await d.get("/api/v1/series", params={"match[]": "app_requests_total"})
                return r.json()["data"] if r.status_code == 200 else None
            series = await eventually(scraped, what="the first scrape")
            assert {s["endpoint"] for s in series} == {"/a", "/b"}
            assert all(s["job"] == "app" and s["__name__"] == "app_requests_total" for s in series)

            r = await d.get("/api/v1/labels")
            assert r.status_code == 200 and r.json()["status"] == "success"
            assert {"__name__", "job", "instance", "endpoint", "code"} <= set(r.json()["data"])

            r = await d.get("/api/v1/labels", params={"match[]": "app_temp"})
            assert r.json()["data"] == ["__name__", "instance", "job"]

            r = await d.get("/api/v1/label/__name__/values")
            assert {"app_requests_total", "app_temp", "up"} <= set(r.json()["data"])
            r = await d.get("/api/v1/label/endpoint/values", params={"match[]": 'app_requests_total{code="500"}'})
            assert r.json()["data"] == ["/b"]

            r = await d.get("/api/v1/label/endpoint/values", params={"limit": "1"})
            assert r.json()["data"] == ["/a"] and r.json()["warnings"] == ["results truncated due to limit"]

            # POST form with two match[] and a time range ending now
            r = await d.post("/api/v1/series", data={"match[]": ["app_temp", 'up{job="app"}'],
                                                      "start": "0", "end": "9999999999"})
            assert sorted(s["__name__"] for s in r.json()["data"]) == ["app_temp", "up"]
            # a range before any sample: nothing
            r = await d.get("/api/v1/series", params={"match[]": "app_temp", "start": "0", "end": "1"})
            assert r.json()["data"] == []

            # errors: Prometheus's bad_data
            for path, params in [("/api/v1/series", {}), ("/api/v1/series", {"match[]": "sum(x)"}),
                                 ("/api/v1/series", {"match[]": '{a=~".*"}'}),
                                 ("/api/v1/series", {"match[]": "up", "start": "x"}),
                                 ("/api/v1/series", {"match[]": "up", "start": "5", "end": "1"}),
                                 ("/api/v1/labels", {"limit": "-1"}),
                                 ("/api/v1/format_query", {"query": "sum("}),
                                 ("/api/v1/query_exemplars", {})]:
                r = await d.get(path, params=params)
                assert r.status_code == 400, (path, params, r.text)
                assert r.json()["errorType"] == "bad_data"

            r = await d.get("/api/v1/format_query", params={"query": 'sum by(a)(rate(x{b=~"c.*"}[5m]))'})
            assert r.json() == {"status": "success", "data": 'sum by (a) (rate(x{b=~"c.*"}[5m]))'}
            r = await d.get("/api/v1/query_exemplars", params={"query": "up"})
            assert r.json() == {"status": "success", "data": []}

            info = (await d.get("/api/v1/status/buildinfo")).json()["data"]
            assert {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(info)
            rt = (await d.get("/api/v1/status/runtimeinfo")).json()["data"]
            assert rt["reloadConfigSuccess"] is True and rt["startTime"].endswith("Z")
            cfg = (await d.get("/api/v1/status/config")).json()["data"]["yaml"]
            assert "scrape:" in cfg and ADMIN_TOKEN not in cfg and "a-link-key" not in cfg
            assert "**********" in cfg
            assert (await d.get("/api/v1/status/flags")).json()["status"] == "success"

            targets = (await d.get("/api/v1/targets")).json()["data"]
            [t] = targets["activeTargets"]
            assert t["scrapePool"] == "app" and t["labels"]["job"] == "app" and t["health"] == "up"
            assert t["scrapeUrl"] == f"{app.url}/metrics" and t["scrapeInterval"] == "1s"
            assert targets["droppedTargets"] == []
            only = (await d.get("/api/v1/targets", params={"state": "active"})).json()["data"]
            assert "droppedTargets" not in only


async def test_status_config_needs_a_token_even_when_views_are_open(tmp_path):
    async with TinyHttpServer({"/metrics": (200, "text/plain", EXPOSITION)}) as app:
        async with run_daemon(_config(tmp_path, app.url)) as d:
            r = await d.client.get(d.url + "/api/v1/status/config", headers={"Authorization": ""})
            assert r.status_code == 401
            r = await d.client.get(d.url + "/api/v1/labels", headers={"Authorization": ""})
            assert r.status_code == 200


async def test_own_metrics_are_queryable_and_described(tmp_path):
    async with TinyHttpServer({"/metrics": (200, "text/plain", EXPOSITION)}) as app:
        async with run_daemon(_config(tmp_path, app.url)) as d:
            await d.daemon.self_scrape.run()
            r = await d.query('monitor_build_info{job="codebook-monitor"}')
            [s] = r.json()["data"]["result"]
            assert s["metric"]["instance"].startswith("127.0.0.1:"), s  # host:port of server.external_url
            r = await d.query('process_resident_memory_bytes{job="codebook-monitor"}')
            assert float(r.json()["data"]["result"][0]["value"][1]) > 0
            # probe_* and ALERTS come from the probes and rules, never twice from the registry
            r = await d.get("/api/v1/series", params={"match[]": '{job="codebook-monitor", __name__=~"probe_.*"}'})
            assert r.json()["data"] == []

            meta = (await d.get("/api/v1/metadata")).json()["data"]
            assert meta["monitor_scrapes_total"] == [{"type": "counter", "help": meta["monitor_scrapes_total"][0]
                                                      ["help"], "unit": ""}]
            assert meta["monitor_scrapes_total"][0]["help"]
            one = (await d.get("/api/v1/metadata", params={"metric": "process_resident_memory_bytes"})).json()
            assert list(one["data"]) == ["process_resident_memory_bytes"]
            assert one["data"]["process_resident_memory_bytes"][0]["type"] == "gauge"
