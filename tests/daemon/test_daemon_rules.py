"""Rules inside the real daemon: hot reload through ``POST /-/reload`` (all-or-nothing, state
carried over), persistence of a pending alert's ``activeAt`` across a restart, and the query API."""

from __future__ import annotations

import asyncio
import math
import textwrap
import time

from model.timestamps import parse_rfc3339

from tests.support.daemon_helpers import (PENDING_RULES, TinyHttpServer, eventually, metric_values, run_daemon,
                                          write_config)



EXTRA_RULE = """\
      - alert: AddedLater
        expr: vector(2) > 1
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: added by the second reload
"""

BROKEN_RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: AlwaysPending
        expr: sum(rate(foo[5m]) /
        labels:
          severity: warning
"""


def rules_config(tmp_path, extra: str = "") -> object:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "r.yaml").write_text(PENDING_RULES)
    return write_config(tmp_path, f"""
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        {textwrap.indent(textwrap.dedent(extra), '        ').strip()}
        """)


async def pending_alert(d, name: str = "AlwaysPending"):
    """The alert ``name`` from ``/api/v1/alerts`` once it is pending (else None)."""
    r = await d.get("/api/v1/alerts")
    assert r.status_code == 200
    for a in r.json()["data"]["alerts"]:
        if a["labels"].get("alertname") == name and a["state"] == "pending":
            return a
    return None


async def rule_names(d) -> set[str]:
    r = await d.get("/api/v1/rules")
    assert r.status_code == 200
    return {rule["name"] for g in r.json()["data"]["groups"] for rule in g["rules"]}


async def test_reload_rejects_a_broken_rule_file_and_keeps_state(tmp_path):
    cfg = rules_config(tmp_path)
    rule_file = tmp_path / "rules" / "r.yaml"
    async with run_daemon(cfg) as d:
        first = await eventually(lambda: pending_alert(d), what="AlwaysPending pending")
        active_at = first["activeAt"]
        assert metric_values(await d.metrics(), "monitor_config_last_reload_successful") == [1.0]

        rule_file.write_text(BROKEN_RULES)
        r = await d.post("/-/reload")
        assert r.status_code == 400
        body = r.json()
        assert body["status"] == "error"
        assert any("r.yaml:6:" in e and "AlwaysPending" in e and "parse" in e for e in body["errors"]), body
        assert await rule_names(d) == {"AlwaysPending"}
        assert metric_values(await d.metrics(), "monitor_config_last_reload_successful") == [0.0]
        # The previous rules keep running: the alert is still pending with the same activeAt,
        # and the group keeps being evaluated.
        r = await d.get("/api/v1/rules")
        before = r.json()["data"]["groups"][0]["lastEvaluation"]

        async def evaluated_again():
            g = (await d.get("/api/v1/rules")).json()["data"]["groups"][0]
            return g["lastEvaluation"] != before

        await eventually(evaluated_again, what="another evaluation after the rejected reload")
        assert (await pending_alert(d))["activeAt"] == active_at

        rule_file.write_text(PENDING_RULES + EXTRA_RULE)
        r = await d.post("/-/reload")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "success"
        assert metric_values(await d.metrics(), "monitor_config_last_reload_successful") == [1.0]
        assert await rule_names(d) == {"AlwaysPending", "AddedLater"}
        await eventually(lambda: pending_alert(d, "AddedLater"), what="AddedLater pending")
        # State carry-over: the unchanged rule's alert kept its activeAt across the reload.
        assert (await pending_alert(d))["activeAt"] == active_at
        assert (await d.get("/health")).status_code == 200


async def test_pending_alert_keeps_active_at_across_restart(tmp_path):
    cfg = rules_config(tmp_path)
    async with run_daemon(cfg) as d:
        first = await eventually(lambda: pending_alert(d), what="AlwaysPending pending")
        await asyncio.sleep(3)
        stopping = time.time()
        pending_before = stopping - parse_rfc3339(first["activeAt"])  # >= 3 s
    # A new daemon on the same state file: the for-timer resumes where it was. As in Prometheus
    # (RestoreForState) the downtime does not count: activeAt moves forward by it, not to now.
    await asyncio.sleep(2)  # the downtime
    async with run_daemon(cfg) as d2:
        again = await eventually(lambda: pending_alert(d2), what="AlwaysPending pending after restart")
        restarted = time.time()
        shift = parse_rfc3339(again["activeAt"]) - parse_rfc3339(first["activeAt"])
        # at least the downtime; at most from the last evaluation before the stop (1 s interval)
        # to the restore
        assert 2 <= shift <= restarted - stopping + 1.5, shift
        # the time spent pending before the stop still counts (a reset timer would be at ~0 s)
        assert restarted - parse_rfc3339(again["activeAt"]) >= pending_before - 1.5


async def test_query_api_errors_and_special_values(tmp_path):
    many = "".join(f'many_series{{i="{i}"}} {i}\n' for i in range(30))
    async with TinyHttpServer({"/metrics": (200, "text/plain", "# TYPE many_series gauge\n" + many)}) as t:
        cfg = write_config(tmp_path, f"""
            scrape:
              - name: many
                url: {t.url}/metrics
                interval: 1s
                timeout: 1s
            rules:
              query_max_series: 10
            """)
        async with run_daemon(cfg) as d:
            # malformed PromQL: 400 bad_data, and the daemon keeps answering
            for bad in ("sum(rate(x[5m])", "nosuchfunc(up)", "rate(up)", "up +"):
                r = await d.query(bad)
                assert r.status_code == 400, (bad, r.text)
                assert r.json()["status"] == "error" and r.json()["errorType"] == "bad_data"
                assert r.json()["error"]
            r = await d.get("/api/v1/query")
            assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
            r = await d.query("1", time="yesterday")
            assert r.status_code == 400

            # division by zero and NaN are values, encoded as strings
            r = await d.query("1/0")
            assert r.status_code == 200
            assert r.json()["data"]["resultType"] == "scalar"
            assert r.json()["data"]["result"][1] == "+Inf"
            r = await d.query("vector(-1) / 0")
            assert r.json()["data"]["result"][0]["value"][1] == "-Inf"
            r = await d.query("vector(0) / 0")
            assert r.json()["data"]["result"][0]["value"][1] == "NaN"

            # too many series: a clear error, not a crash
            async def scraped():
                r = await d.query('count(up{job="many"} == 1)')
                return r.status_code == 200 and r.json()["data"]["result"]

            await eventually(scraped, what="the many-series target scraped")
            r = await d.query("many_series")
            assert r.status_code in (400, 422), r.text
            assert r.json()["status"] == "error"
            assert "series" in r.json()["error"].lower()
            r = await d.query('many_series{i="3"}')
            assert r.status_code == 200
            assert [s["value"][1] for s in r.json()["data"]["result"]] == ["3"]

            # query_range shape
            now = time.time()
            r = await d.get("/api/v1/query_range",
                            params={"query": "vector(1)", "start": now - 60, "end": now, "step": "15s"})
            assert r.status_code == 200, r.text
            data = r.json()["data"]
            assert data["resultType"] == "matrix"
            (series,) = data["result"]
            assert series["metric"] == {}
            assert len(series["values"]) == 5
            for ts, v in series["values"]:
                assert isinstance(ts, (int, float)) and v == "1"
            stamps = [ts for ts, _ in series["values"]]
            assert all(math.isclose(b - a, 15) for a, b in zip(stamps, stamps[1:]))
            r = await d.get("/api/v1/query_range", params={"query": "vector(1)", "start": now, "end": now - 60,
                                                          "step": "15s"})
            assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
            r = await d.get("/api/v1/query_range", params={"query": "vector(1)", "start": now - 60, "end": now,
                                                          "step": "0"})
            assert r.status_code == 400
            assert (await d.get("/health")).status_code == 200
