"""The Grafana dashboards in dashboards/ are tested artefacts (STYLE guideline 15).

Each JSON file is a valid, provisionable dashboard (current schema, the Prometheus datasource as
the ``${datasource}`` variable, unique panel ids, panels on the 24-column grid without overlap),
it decodes into grafana-foundation-sdk's Dashboard model, it is what dashboards/generate.py
writes, every panel query parses as PromQL, and every metric a query names is exported by this
project, produced by a shipped recording rule, exposed by the sample backend or defined by the
example SQL probe (computed from the code, see shipped_helpers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from monitor.promql import parse_expr, selected_metric_names
from tests.shipped.shipped_helpers import ROOT, exported_metric_names, substitute_grafana_variables

DASHBOARDS = ROOT / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
IDS = [p.name for p in FILES]
#: Top-level keys a provisioned dashboard needs (Grafana's dashboard schema, v39).
REQUIRED = {"title", "uid", "schemaVersion", "panels", "templating", "time", "annotations", "editable"}
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "table", "gauge"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every panel target."""
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]


def _generator():
    from dashboards import generate  # needs grafana-foundation-sdk (the test extra)

    return generate


def test_the_six_dashboards_are_shipped():
    titles = {_load(p)["title"] for p in FILES}
    assert titles == {"Codebook · Backend", "Codebook · Business", "Codebook · Dependencies",
                      "Codebook · Alerts and on-call", "Codebook · The monitor itself", "Codebook · SLOs"}


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_is_what_the_generator_writes(path):
    gen = _generator()
    assert path.read_text() == gen.render(gen.DASHBOARDS[path.name]), (
        f"{path.name} is stale: run python -m dashboards.generate")


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_structure(path):
    d = _load(path)
    assert REQUIRED <= set(d), f"missing keys: {REQUIRED - set(d)}"
    assert d["schemaVersion"] >= 39
    assert "id" not in d or d["id"] is None, "a provisioned dashboard must not carry a database id"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"])
    assert d["annotations"]["list"][0]["builtIn"] == 1

    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"

    panels = _panels(d)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    occupied: dict[tuple[int, int], int] = {}
    for p in panels:
        assert p["type"] in PANEL_TYPES, p["type"]
        assert p.get("title"), f"panel {p['id']} has no title"
        g = p["gridPos"]
        assert {"h", "w", "x", "y"} <= set(g)
        assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in occupied, f"{p['title']!r} overlaps panel {occupied[(x, y)]}"
                occupied[(x, y)] = p["id"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert isinstance(p["options"], dict) and "defaults" in p["fieldConfig"]
        assert p["targets"], f"{p['title']!r} has no query"
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids)
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"])["uid"] == "${datasource}"

    # every variable a query uses is defined (Grafana built-ins aside)
    used = {m for _, expr in _queries(d) for m in re.findall(r"\$\{?(\w+)", expr)}
    assert {u for u in used if not u.startswith("__")} <= set(variables)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_decodes_with_grafana_foundation_sdk(path):
    sdk = pytest.importorskip("grafana_foundation_sdk.models.dashboard")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    data = _load(path)
    model = sdk.Dashboard.from_json(data)
    assert model.title == data["title"] and model.uid == data["uid"]
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert [p["id"] for p in again["panels"]] == [p["id"] for p in data["panels"]]
    assert [t["expr"] for p in again["panels"] for t in p.get("targets") or []] == \
        [t["expr"] for p in data["panels"] for t in p.get("targets", [])]


def _all_queries() -> list[tuple[str, str, str]]:
    return [(path.name, title, expr) for path in FILES for title, expr in _queries(_load(path))]


@pytest.mark.parametrize("name,title,expr", _all_queries(),
                         ids=[f"{n}:{t}:{i}" for i, (n, t, _) in enumerate(_all_queries())])
def test_panel_query_parses_and_names_exported_metrics(name, title, expr):
    query = substitute_grafana_variables(expr)
    parse_expr(query)
    names = selected_metric_names(query)
    assert names is not None, f"{title!r}: every selector should name its metric: {expr}"
    unknown = names - exported_metric_names()
    assert not unknown, f"{name} {title!r} names metrics nobody exports: {sorted(unknown)}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_variable_queries_name_exported_metrics(path):
    for v in _load(path)["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q)
        assert m, f"variable {v['name']}: unexpected query {q}"
        assert m.group(1) in exported_metric_names()


def test_every_requested_panel_is_there():
    """The panels issue 5 asks for, by dashboard."""
    expected = {
        "backend.json": ["Requests per second", "Latency p50 / p95 / p99", "Error rate (% 4xx and % 5xx)",
                         "Requests per second by endpoint", "Requests per second by client"],
        "business.json": ["Codebooks, items and refactor operations per day", "LLM tokens per hour by client",
                          "LLM tokens per day by client", "Recommendations per day and acceptance rate",
                          "Spend this month", "Month-end forecast", "Budget used", "Spend by client and model",
                          "Most expensive operations", "Provider rate-limit headroom"],
        "dependencies.json": ["Probe success (share of runs)", "Probe duration", "Connection saturation",
                              "Job-queue depth", "Oldest pending job age", "Slow queries",
                              "TLS days left (leaf and chain)", "LLM token quota used per client (this month)"],
        "alerts.json": ["Firing alerts by severity", "Notifications by receiver and outcome",
                        "Escalation steps by level", "Time to acknowledge (MTTA) by priority",
                        "SLA breaches by priority"],
        "monitor.json": ["Probe runs by outcome", "Probe failures by probe", "Scheduler lag p50 / p99",
                         "Rule group evaluation duration", "Outbox depth", "Memory"],
        "slos.json": ["Error budget remaining", "Burn rate by window", "SLI over time (1h) and objective",
                      "Budget burn-down"],
    }
    for name, titles in expected.items():
        have = {p["title"] for p in _panels(_load(DASHBOARDS / name))}
        assert set(titles) <= have, f"{name} lacks {set(titles) - have}"


def test_provisioning_file():
    doc = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards.yaml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["name"]
    assert provider["options"]["path"].startswith("/")
    assert isinstance(provider.get("updateIntervalSeconds", 10), int)
