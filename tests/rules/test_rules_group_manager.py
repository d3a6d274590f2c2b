"""Groups and the manager over the real SampleStore and Engine: ordering, isolation, reload, restore, wake-ups."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from monitor.promql.engine import Engine
from monitor.rules.group import RuleGroup, engine_query_fn
from monitor.rules.alerting import AlertingRule
from monitor.rules.state import JsonFileAlertStateStore, MemoryAlertStateStore
from monitor.rules.manager import (
    RuleLoadError,
    RuleManager,
)
from monitor.rules.recording import RecordingRule
from model.labels import Labels
from model.matchers import Matcher
from monitor.tsdb.series import is_stale
from monitor.tsdb.store import SampleStore

M = 60.0
T0 = 1_700_000_000.0  # a fixed wall-clock origin, seconds

RULES = """
groups:
  - name: svc
    interval: 1m
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors)
      - alert: Errors
        expr: job:errors:sum > 0
        for: 2m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} has {{ $value }} errors"}
"""


def write(tmp_path: Path, text: str, name: str = "svc.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def feed(store: SampleStore, t: float, value: float, job: str = "api") -> None:
    store.append(Labels.of(__name__="errors", job=job), int(t * 1000), value)


def last_value(store: SampleStore, name: str, **labels: str):
    ms = [Matcher("__name__", "=", name)] + [Matcher(k, "=", v) for k, v in labels.items()]
    out = {}
    for s in store.select(ms, 0, 2**62):
        out[s.labels] = list(s.values)[-1]
    return out


@pytest.fixture
def env():
    store = SampleStore(retention_seconds=None)
    return store, Engine(store)


def test_recording_results_are_visible_to_later_rules_in_the_same_round(env, tmp_path):
    store, engine = env
    mgr = RuleManager(store, engine)
    assert mgr.load([write(tmp_path, RULES)]) == []
    feed(store, T0, 3)
    (group,) = mgr.groups()
    alerts = group.eval(T0)
    assert alerts == []
    (a,) = mgr.alerts()
    assert (a.state, a.value, a.annotations) == ("pending", 3.0, {"summary": "api has 3 errors"})
    assert last_value(store, "job:errors:sum") == {Labels.of(__name__="job:errors:sum", job="api"): 3.0}
    assert list(last_value(store, "ALERTS").values()) == [1.0]
    assert list(last_value(store, "ALERTS_FOR_STATE").values()) == [T0]


def test_alert_lifecycle_through_the_group_writes_and_clears_alerts_series(env, tmp_path):
    store, engine = env
    mgr = RuleManager(store, engine)
    mgr.load([write(tmp_path, RULES)])
    (group,) = mgr.groups()
    sent = []
    for minute in range(4):
        feed(store, T0 + minute * M, 1)
        sent.append([a.state for a in group.eval(T0 + minute * M)])
    assert sent == [[], [], ["firing"], ["firing"]]
    firing = Labels.of(__name__="ALERTS", alertname="Errors", alertstate="firing", job="api", severity="warning")
    assert last_value(store, "ALERTS", alertstate="firing") == {firing: 1.0}
    # the condition clears: resolved, handed on once, ALERTS marked stale at once
    feed(store, T0 + 4 * M, 0)
    (resolved,) = group.eval(T0 + 4 * M)
    assert (resolved.state, resolved.resolved_at) == ("inactive", T0 + 4 * M)
    assert is_stale(last_value(store, "ALERTS", alertstate="firing")[firing])
    feed(store, T0 + 5 * M, 0)
    assert group.eval(T0 + 5 * M) == []


def test_a_failing_rule_never_stops_the_others(env):
    store, engine = env
    query = engine_query_fn(engine)
    rules = [RecordingRule("a:one", "vector(1)"),
             AlertingRule("Dup",
                          'label_replace(vector(1), "x", "1", "", "") or label_replace(vector(2), "y", "1", "", "")',
                          labels={"x": "", "y": ""}),
             RecordingRule("a:two", "a:one * 2")]
    g = RuleGroup("g", "f.yaml", 60, rules, store=store, query=query)
    g.eval(T0)
    assert [s.health for s in g.status] == ["ok", "err", "ok"]
    assert "same labelset" in g.status[1].last_error
    assert g.health() == "err" and g.failures_total == 1
    assert list(last_value(store, "a:two").values()) == [2.0]
    api = g.to_api()
    assert [r["health"] for r in api["rules"]] == ["ok", "err", "ok"]
    assert api["rules"][1]["lastError"].startswith("vector contains metrics with the same labelset")
    assert api["rules"][0]["lastEvaluation"] == "2023-11-14T22:13:20.000Z"
    assert set(api) == {"name", "file", "interval", "limit", "rules", "lastEvaluation", "evaluationTime"}


def test_eval_timestamp_is_slotted_and_stable():
    g = RuleGroup("g", "f.yaml", 60, [], store=None, query=None)
    ts = g.eval_timestamp(T0 + 1234.5)
    assert ts <= T0 + 1234.5 < ts + 60
    assert g.eval_timestamp(ts + 59.9) == pytest.approx(ts)
    assert g.eval_timestamp(ts + 60) == pytest.approx(ts + 60)


async def test_reload_is_all_or_nothing_and_keeps_for_timers(env, tmp_path):
    store, engine = env
    path = write(tmp_path, RULES)
    mgr = RuleManager(store, engine)
    mgr.update([path])
    feed(store, T0, 1)
    await mgr.eval_all(T0)
    (a,) = mgr.alerts()
    assert a.state == "pending"

    # a broken file: every error reported, the running rules untouched
    bad = write(tmp_path, RULES.replace("> 0", "> ").replace("severity: warning", "sev: x"), "bad.yaml")
    with pytest.raises(RuleLoadError) as exc:
        mgr.update([path, bad])
    assert len(exc.value.errors) == 2 and all("bad.yaml:" in e for e in exc.value.errors)
    assert mgr.last_reload_successful is False
    assert [g.file for g in mgr.groups()] == [path] and mgr.alerts()[0] is a

    # an unchanged rule in a changed file keeps its active_at; a changed rule starts afresh
    write(tmp_path, RULES + """      - alert: Other
        expr: job:errors:sum > 0
        labels: {severity: info}
""")
    assert mgr.load([path]) == [] and mgr.last_reload_successful
    feed(store, T0 + 2 * M, 1)
    await mgr.eval_all(T0 + 2 * M)
    by = {x.name: x for x in mgr.alerts()}
    assert (by["Errors"].state, by["Errors"].active_at) == ("firing", T0)
    assert (by["Other"].state, by["Other"].active_at) == ("firing", T0 + 2 * M)  # for: 0

    write(tmp_path, RULES.replace("for: 2m", "for: 3m").replace("severity: warning", "severity: critical"))
    mgr.update([path])
    assert mgr.alerts() == []  # labels changed: a different rule, no state copied


async def test_restore_keeps_active_at_across_a_restart(env, tmp_path):
    store, engine = env
    path = write(tmp_path, RULES)
    state = JsonFileAlertStateStore(tmp_path / "state" / "alerts.json")
    handed_on = []
    mgr = RuleManager(store, engine, state_store=state, on_alerts=handed_on.extend)
    mgr.load([path])
    for minute in range(3):
        feed(store, T0 + minute * M, 1)
        await mgr.eval_all(T0 + minute * M)
    rows = json.loads((tmp_path / "state" / "alerts.json").read_text())["rule_alerts"]
    (row,) = rows
    assert row["key"] == f"{path}|svc|Errors|{mgr.alerts()[0].fingerprint}"
    assert (row["state"], row["active_at"], row["fired_at"]) == ("firing", T0, T0 + 2 * M)
    assert row["labels"] == {"alertname": "Errors", "job": "api", "severity": "warning"}
    assert [a.state for a in handed_on] == ["firing"]

    # "restart": a new manager over the same store and state file
    mgr2 = RuleManager(store, engine, state_store=JsonFileAlertStateStore(tmp_path / "state" / "alerts.json"))
    mgr2.load([path])
    assert await mgr2.restore(T0 + 2 * M + 30) == 1  # 30 s after the last evaluation
    feed(store, T0 + 3 * M, 1)
    (a,) = await mgr2.eval_all(T0 + 3 * M)
    assert (a.state, a.active_at, a.fired_at) == ("firing", T0, T0 + 2 * M)


async def test_restore_of_a_pending_alert_does_not_restart_for(env, tmp_path):
    store, engine = env
    path = write(tmp_path, RULES)
    state = MemoryAlertStateStore()
    mgr = RuleManager(store, engine, state_store=state)
    mgr.load([path])
    feed(store, T0, 1)
    await mgr.eval_all(T0)
    feed(store, T0 + M, 1)
    await mgr.eval_all(T0 + M)
    await mgr.persist(force=True)
    assert [(r["state"], r["seen_at"]) for r in state.rows] == [("pending", T0 + M)]
    mgr2 = RuleManager(store, engine, state_store=state)
    mgr2.load([path])
    await mgr2.restore(T0 + M + 20)  # 20 s down: the alert becomes active 20 s later
    feed(store, T0 + 2 * M + 20, 1)
    (a,) = await mgr2.eval_all(T0 + 2 * M + 20)  # 1m before + 1m after the outage: fires now
    assert (a.state, a.active_at) == ("firing", T0 + 20)


async def test_new_samples_wake_the_groups_that_read_them(env, tmp_path):
    store, engine = env
    other = """
groups:
  - name: unrelated
    interval: 1h
    rules:
      - record: x:sum
        expr: sum(something_else)
"""
    mgr = RuleManager(store, engine, default_interval=3600, debounce=0.02)
    mgr.load([write(tmp_path, RULES.replace("interval: 1m", "interval: 1h")), write(tmp_path, other, "o.yaml")])
    svc, unrelated = mgr.groups()
    task = asyncio.create_task(mgr.run())
    try:
        await _until(lambda: svc.evaluations_total == 1 and unrelated.evaluations_total == 1)
        t = time.time()
        for i in range(20):  # a burst of appends -> one evaluation
            feed(store, t + i / 1000, 5)
        await _until(lambda: svc.evaluations_total == 2)
        await asyncio.sleep(0.1)
        assert svc.evaluations_total == 2 and unrelated.evaluations_total == 1
        assert [a.value for a in mgr.alerts()] == [5.0]
        # rule output (job:errors:sum, ALERTS) does not wake anyone
        assert svc.evaluations_total == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    feed(store, time.time() + 1, 6)  # after stopping: the listener is gone
    assert svc.evaluations_total == 2


async def test_reload_while_running_restarts_the_schedule(env, tmp_path):
    store, engine = env
    path = write(tmp_path, RULES)
    mgr = RuleManager(store, engine, default_interval=3600)
    mgr.load([path])
    task = asyncio.create_task(mgr.run())
    try:
        await _until(lambda: mgr.groups()[0].evaluations_total == 1)
        old = mgr.groups()[0]
        mgr.load([path])
        new = mgr.groups()[0]
        assert new is not old
        await _until(lambda: new.evaluations_total == 1)  # the new group's loop started
        await asyncio.sleep(0.05)
        assert old.evaluations_total == 1  # the old loop was cancelled
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(cond, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def test_api_shapes(env, tmp_path):
    store, engine = env
    mgr = RuleManager(store, engine)
    mgr.load([write(tmp_path, RULES)])
    feed(store, T0, 2)
    mgr.groups()[0].eval(T0)
    (g,) = mgr.to_api()["groups"]
    rec, alert = g["rules"]
    assert (g["name"], g["interval"]) == ("svc", 60.0)
    assert rec == {"type": "recording", "name": "job:errors:sum", "query": "sum by (job) (errors)", "labels": {},
                   "health": "ok", "lastError": "", "lastEvaluation": "2023-11-14T22:13:20.000Z",
                   "evaluationTime": rec["evaluationTime"]}
    assert (alert["type"], alert["state"], alert["duration"], len(alert["alerts"])) == ("alerting", "pending", 120.0, 1)
    assert mgr.alerts_api()["alerts"][0]["activeAt"] == "2023-11-14T22:13:20.000Z"
