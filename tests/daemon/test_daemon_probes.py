"""The real daemon, served by ``serve()``, probing and scraping real local servers: its
``/metrics``, ``/health`` and ``/api/v1/probes``, and bad targets that must never stop it."""

from __future__ import annotations

from examples.tls_endpoint import start as start_tls
from tests.support.daemon_helpers import (TinyHttpServer, eventually, health_routes, metric_values, run_daemon,
                                          write_config)
from tests.support.probe_servers import SilentServer, closed_port


async def test_metrics_show_api_database_and_tls_probes(tmp_path, database_url):
    tls = await start_tls("127.0.0.1", 0, directory=tmp_path / "tls")
    try:
        async with TinyHttpServer(health_routes()) as api:
            cfg = write_config(tmp_path, f"""
                probes:
                  - name: backend-api
                    kind: api
                    url: {api.url}
                    interval: 2s
                    timeout: 2s
                  - name: postgres
                    kind: database
                    dsn: {database_url}
                    interval: 3s
                    timeout: 3s
                  - name: tls-endpoint
                    kind: tls
                    host: 127.0.0.1
                    server_name: localhost
                    port: {tls.port}
                    ca_file: {tls.cert_path}
                    interval: 3s
                    timeout: 3s
                """)
            async with run_daemon(cfg) as d:
                async def all_up():
                    text = await d.metrics()
                    got = {p: metric_values(text, "probe_success", probe=p)
                           for p in ("backend-api", "postgres", "tls-endpoint")}
                    return got if all(v == [1.0] for v in got.values()) else None

                await eventually(all_up, timeout=60, what="probe_success 1 for api, database and tls")
                text = await d.metrics()
                assert metric_values(text, "probe_http_status_code", probe="backend-api")
                assert metric_values(text, "probe_ssl_earliest_cert_expiry", probe="tls-endpoint")[0] > 0
                # the daemon's own metrics are there too
                assert "monitor_" in text

                r = await d.get("/health")
                assert r.status_code == 200
                body = r.json()
                assert body["status"] == "healthy"
                assert set(body) >= {"status", "timestamp", "version", "checks"}
                assert isinstance(body["checks"], dict) and body["checks"]
    finally:
        tls.close()
        await tls.wait_closed()


async def test_probes_api_lists_last_results_with_errors(tmp_path):
    refused = closed_port()
    async with TinyHttpServer(health_routes()) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: good
                kind: api
                url: {api.url}
                interval: 2s
                timeout: 2s
              - name: refused
                kind: api
                url: http://127.0.0.1:{refused}
                interval: 2s
                timeout: 2s
            """)
        async with run_daemon(cfg) as d:
            async def both_ran():
                r = await d.get("/api/v1/probes")
                assert r.status_code == 200
                data = {p["name"]: p for p in r.json()["data"]}
                return data if all(data[n]["last"] for n in ("good", "refused")) else None

            data = await eventually(both_ran, timeout=60, what="a result for both probes")
            assert data["good"]["kind"] == "api"
            assert data["good"]["last"]["success"] is True
            assert data["good"]["last"]["error"] in (None, "")
            bad = data["refused"]["last"]
            assert bad["success"] is False
            assert bad["error"]
            assert str(refused) in bad["error"] or "refused" in bad["error"].lower()
            assert data["refused"]["history"] and data["refused"]["history"][-1]["success"] is False


async def test_hung_target_times_out_without_delaying_another_probe(tmp_path):
    """A target that accepts and never answers (timeout 3 s, interval 3 s) must not hold back a
    healthy 1 s probe: while the hung probe completes a few runs, the healthy one completes many
    more (counts, not times)."""
    async with SilentServer() as silent, TinyHttpServer(health_routes()) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: hung
                kind: api
                url: http://127.0.0.1:{silent.port}
                interval: 3s
                timeout: 3s
              - name: healthy
                kind: api
                url: {api.url}
                interval: 1s
                timeout: 1s
            """)
        async with run_daemon(cfg) as d:
            async def hung_timed_out_twice():
                text = await d.metrics()
                vals = metric_values(text, "probe_success", probe="hung")
                runs = len(d.daemon.probes.history.get("hung", ()))
                return runs >= 2 and vals == [0.0]

            await eventually(hung_timed_out_twice, timeout=90, what="two timed-out runs of the hung probe")
            last = d.daemon.probes.last["hung"]
            assert last.success is False
            assert "timeout" in (last.error or "").lower() or "timed out" in (last.error or "").lower()
            hung_runs = len(d.daemon.probes.history["hung"])
            healthy = d.daemon.probes.history["healthy"]
            # Two hung runs take >= 6 s of timeouts; a 1 s probe kept on schedule did about 6 runs
            # meanwhile. A probe blocked behind the hung one would have at most as many as it.
            assert len(healthy) > hung_runs
            assert silent.connections >= 2
            assert (await d.get("/health")).status_code in (200, 503)


async def test_probes_that_fail_to_connect_never_stop_the_daemon(tmp_path):
    async with TinyHttpServer(health_routes()) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: unresolvable
                kind: api
                url: http://no-such-host.invalid:80
                interval: 2s
                timeout: 2s
              - name: bad-dsn
                kind: database
                dsn: postgresql://nobody:secret-pw@127.0.0.1:{closed_port()}/nothing
                interval: 2s
                timeout: 2s
              - name: bad-tls
                kind: tls
                host: 127.0.0.1
                port: {closed_port()}
                interval: 2s
                timeout: 2s
              - name: good
                kind: api
                url: {api.url}
                interval: 2s
                timeout: 2s
            """)
        async with run_daemon(cfg) as d:
            async def each_failed_twice():
                hist = d.daemon.probes.history
                return all(len(hist.get(n, ())) >= 2 for n in ("unresolvable", "bad-dsn", "bad-tls", "good"))

            await eventually(each_failed_twice, timeout=90, what="every probe ran twice")
            text = await d.metrics()
            for name in ("unresolvable", "bad-dsn", "bad-tls"):
                assert metric_values(text, "probe_success", probe=name) == [0.0], name
                assert d.daemon.probes.last[name].error
            assert metric_values(text, "probe_success", probe="good") == [1.0]
            assert "secret-pw" not in text
            r = await d.get("/api/v1/probes")
            assert "secret-pw" not in r.text
            assert not d.task.done()


async def test_scrape_serves_metadata_then_a_malformed_exposition_fails_it_whole(tmp_path):
    good = (
        "# HELP http_requests_total Requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{endpoint="/a",status="200"} 42\n'
        'http_requests_total{endpoint="/b",status="500"} 7\n'
        "# TYPE queue_depth gauge\n"
        "queue_depth 3\n"
    )
    async with TinyHttpServer({"/metrics": (200, "text/plain; version=0.0.4", good)}) as target:
        cfg = write_config(tmp_path, f"""
            scrape:
              - name: messy
                url: {target.url}/metrics
                interval: 2s
                timeout: 2s
            """)
        async with run_daemon(cfg) as d:
            async def up_and_series():
                r = await d.query('up{job="messy"}')
                assert r.status_code == 200, r.text
                up = r.json()["data"]["result"]
                r2 = await d.query("http_requests_total")
                series = {s["metric"]["endpoint"]: s["value"][1] for s in r2.json()["data"]["result"]}
                return up and up[0]["value"][1] == "1" and series == {"/a": "42", "/b": "7"}

            await eventually(up_and_series, timeout=60, what="up 1 and the series queryable")
            meta = (await d.get("/api/v1/metadata")).json()["data"]
            assert meta["http_requests_total"] == [{"type": "counter", "help": "Requests.", "unit": ""}]
            assert meta["queue_depth"] == [{"type": "gauge", "help": "", "unit": ""}]
            assert meta["monitor_scrapes_total"][0]["type"] == "counter"  # the daemon's own beside
            one = (await d.get("/api/v1/metadata", params={"metric": "queue_depth"})).json()["data"]
            assert one == {"queue_depth": [{"type": "gauge", "help": "", "unit": ""}]}
            per_target = (await d.get("/api/v1/targets/metadata",
                                      params={"match_target": '{job="messy"}'})).json()["data"]
            target_labels = {"job": "messy", "instance": f"127.0.0.1:{target.port}"}
            assert per_target == [
                {"target": target_labels, "metric": "http_requests_total", "type": "counter", "help": "Requests.",
                 "unit": ""},
                {"target": target_labels, "metric": "queue_depth", "type": "gauge", "help": "", "unit": ""}]
            one = (await d.get("/api/v1/targets/metadata", params={"metric": "queue_depth", "limit": "1"})).json()
            assert one["data"] == [{"target": target_labels, "type": "gauge", "help": "", "unit": ""}]
            assert (await d.get("/api/v1/targets/metadata", params={"match_target": '{job="other"}'})).json()[
                "data"] == []
            bad = await d.get("/api/v1/targets/metadata", params={"match_target": "{job="})
            assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"

            # a second TYPE for one name: the whole scrape fails (as promtool / expfmt), nothing half-kept
            target.routes["/metrics"] = (200, "text/plain; version=0.0.4",
                                         good + "# TYPE queue_depth counter\nextra 1\n")

            async def failed():
                text = await d.metrics()
                errs = metric_values(text, "monitor_scrape_errors_total", job="messy", reason="parse")
                return errs and errs[0] > 0

            await eventually(failed, timeout=60, what="a parse scrape error")

            async def down():
                r = await d.query('up{job="messy"}')
                up = r.json()["data"]["result"]
                return up and up[0]["value"][1] == "0"

            await eventually(down, timeout=30, what="up 0")
            r = await d.query("extra")
            assert r.json()["data"]["result"] == []
            r = await d.query("queue_depth")
            assert r.json()["data"]["result"] == []  # stale: the failed scrape counts as an empty one
            failures = metric_values(await d.metrics(), "monitor_scrape_errors_total", job="messy", reason="failed")
            assert failures and failures[0] >= 1
            # metadata of the last good scrape is still served
            meta = (await d.get("/api/v1/metadata", params={"metric": "queue_depth"})).json()["data"]
            assert meta == {"queue_depth": [{"type": "gauge", "help": "", "unit": ""}]}
            assert target.hits["/metrics"] >= 2


async def test_metrics_follow_the_probes_of_a_reload(tmp_path):
    probe = "probes:\n  - {{name: disk, kind: disk, paths: [{path}], interval: 1s, timeout: 1s}}\n"
    cfg = write_config(tmp_path, probe.format(path="/"))
    async with run_daemon(cfg) as d:
        async def success_is(value: float):
            return metric_values(await d.metrics(), "probe_success", probe="disk") == [value]

        await eventually(lambda: success_is(1.0), what="probe_success 1 before the reload")
        cfg.write_text(cfg.read_text().replace("paths: [/]", f"paths: [{tmp_path / 'gone'}]"))
        r = await d.post("/-/reload")
        assert r.status_code == 200, r.text
        await eventually(lambda: success_is(0.0), what="probe_success 0 from the reloaded probe")
        assert d.daemon.probes.last["disk"].error
