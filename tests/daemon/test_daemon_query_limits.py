"""The query API of the real daemon under its limits (``rules.query_max_samples``,
``rules.query_timeout``): 422 ``execution`` for too many samples, 503 ``timeout`` for a query
past its deadline, rules evaluated as before; POST form queries (Grafana's default); bad
``time``/``start``/``end``/``step`` and rule ``type`` parameters answered 400 ``bad_data``;
one RFC 3339 shape for ``activeAt`` and ``lastEvaluation``."""

from __future__ import annotations

import re

import pytest

from tests.support.daemon_helpers import PENDING_RULES, eventually, run_daemon, write_config


RULES = PENDING_RULES + """\
      - record: one
        expr: vector(1)
"""

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def limits_config(tmp_path, limits: str, with_rules: bool = True):
    rules = ""
    if with_rules:
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / "r.yaml").write_text(RULES)
        rules = "files: [rules/*.yaml]\n          evaluation_interval: 1s\n          "
    return write_config(tmp_path, f"""
        rules:
          {rules}{limits}
        """)


async def pending(d):
    r = await d.get("/api/v1/alerts")
    assert r.status_code == 200
    return [a for a in r.json()["data"]["alerts"] if a["state"] == "pending"]


async def test_too_many_samples_is_422_and_rules_keep_working(tmp_path):
    cfg = limits_config(tmp_path, "query_max_samples: 100000")
    async with run_daemon(cfg) as d:
        assert d.daemon.engine.max_samples == 100_000 and d.daemon.engine.timeout == 10.0
        # 3.15e10 subquery steps: rejected before anything is evaluated.
        for expr in ("max_over_time(vector(1)[1y:1ms])", "count_over_time(vector(1)[1h:1ms])",
                     "count_over_time(vector(1)[2d:1s])"):  # 172,801 steps > 100,000
            r = await d.query(expr)
            assert r.status_code == 422, (expr, r.text)
            body = r.json()
            assert body["status"] == "error" and body["errorType"] == "execution"
            assert body["error"].startswith(
                "query processing would load too many samples into memory in query execution")
        r = await d.get("/api/v1/query_range", params={
            "query": "max_over_time(vector(1)[1y:1ms])", "start": "1700000000", "end": "1700000060",
            "step": "15"})
        assert r.status_code == 422 and r.json()["errorType"] == "execution"
        # Within the limit (43,200 steps in (t - 12h, t], each vector kept once and once in the
        # result): answered.
        r = await d.query("count_over_time(vector(1)[12h:1s])", time="1700000000")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"][0]["value"] == [1700000000, "43200"]
        # Rules are evaluated as before, and their timestamps have one shape.
        alerts = await eventually(lambda: pending(d), what="AlwaysPending pending")
        assert RFC3339_MS.match(alerts[0]["activeAt"]), alerts[0]
        r = await d.get("/api/v1/rules")
        group = r.json()["data"]["groups"][0]
        assert RFC3339_MS.match(group["lastEvaluation"]), group
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule
            assert RFC3339_MS.match(rule["lastEvaluation"]), rule
        r = await d.query("one")
        assert r.status_code == 200 and r.json()["data"]["result"][0]["value"][1] == "1"


async def test_timeout_is_503(tmp_path):
    # 86,401 subquery steps cannot finish within a millisecond.
    cfg = limits_config(tmp_path, "query_timeout: 1ms", with_rules=False)
    async with run_daemon(cfg) as d:
        assert d.daemon.engine.timeout == 0.001
        r = await d.query("count_over_time(vector(1)[1d:1s])")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["errorType"] == "timeout"
        assert body["error"].startswith("query timed out in expression evaluation")
        r = await d.post("/api/v1/query_range", data={
            "query": "vector(1)", "start": "1700000000", "end": "1700110000", "step": "10"})
        assert r.status_code == 503 and r.json()["errorType"] == "timeout"
        assert (await d.get("/health")).status_code == 200


async def test_post_form_queries(tmp_path):
    cfg = limits_config(tmp_path, "query_max_samples: 5000000", with_rules=False)
    async with run_daemon(cfg) as d:
        r = await d.post("/api/v1/query", data={"query": "vector(2)", "time": "1700000000"})
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"resultType": "vector",
                                    "result": [{"metric": {}, "value": [1700000000, "2"]}]}
        r = await d.post("/api/v1/query_range", data={
            "query": "vector(3)", "start": "1700000000", "end": "1700000030", "step": "15s"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"][0]["values"] == [
            [1700000000, "3"], [1700000015, "3"], [1700000030, "3"]]
        # The form overrides the URL, as in Prometheus (r.FormValue).
        r = await d.post("/api/v1/query?query=vector(9)", data={"query": "vector(4)", "time": "0"})
        assert r.status_code == 200 and r.json()["data"]["result"][0]["value"] == [0, "4"]
        r = await d.post("/api/v1/query", data={"time": "0"})
        assert r.status_code == 400 and r.json()["errorType"] == "bad_data"


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "+Inf", "1e400", "-1e400", "1e300", "x"])
async def test_bad_times_and_steps_are_400(tmp_path, value):
    cfg = limits_config(tmp_path, "query_timeout: 10s", with_rules=False)
    async with run_daemon(cfg) as d:
        r = await d.query("vector(1)", time=value)
        assert r.status_code == 400, r.text
        assert r.json()["errorType"] == "bad_data"
        assert r.json()["error"].startswith('invalid parameter "time": ')
        good = {"query": "vector(1)", "start": "1700000000", "end": "1700000060", "step": "15"}
        for name in ("start", "end", "step"):
            r = await d.get("/api/v1/query_range", params={**good, name: value})
            assert r.status_code == 400, (name, r.text)
            assert r.json()["errorType"] == "bad_data"
            assert r.json()["error"].startswith(f'invalid parameter "{name}": '), r.json()
        r = await d.get("/api/v1/query_range", params=good)
        assert r.status_code == 200


async def test_rule_type_parameter(tmp_path):
    cfg = limits_config(tmp_path, "query_timeout: 10s")
    async with run_daemon(cfg) as d:
        await eventually(lambda: pending(d), what="AlwaysPending pending")
        r = await d.get("/api/v1/rules", params={"type": "bogus"})
        assert r.status_code == 400
        assert r.json()["errorType"] == "bad_data"
        assert 'invalid parameter "type": invalid rule type "bogus"' in r.json()["error"]
        kinds = {}
        for t in ("alert", "record", "", "ALERT"):
            r = await d.get("/api/v1/rules", params={"type": t})
            assert r.status_code == 200, (t, r.text)
            kinds[t] = {rule["type"] for g in r.json()["data"]["groups"] for rule in g["rules"]}
        assert kinds == {"alert": {"alerting"}, "record": {"recording"}, "": {"alerting", "recording"},
                         "ALERT": {"alerting"}}
