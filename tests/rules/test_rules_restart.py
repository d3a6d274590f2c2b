"""Alert state across a restart, over a real SQLite state store and a fresh sample store each
"process" (issue 9, item 4): Prometheus ``RestoreForState`` semantics (downtime shift, outage
tolerance, ``for`` grace period) and restored alerts held until the new process has data."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.model import RulesConfig
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.store.sqlite import SQLiteStore
from monitor.tsdb.store import SampleStore
from model.labels import Labels

T0 = 1_700_000_000.0

RULES = """
groups:
  - name: probes
    interval: 15s
    rules:
      - alert: ApiDown
        expr: probe_success == 0
        for: 1m
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.probe }} is down"}
"""


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Process:
    """One daemon process: a fresh in-memory sample store, the rule manager, the SQLite state."""

    def __init__(self, rules: str, db: Path, t: float, **kw) -> None:
        self.clock = Clock(t)
        self.samples = SampleStore(retention_seconds=None)
        self.state = SQLiteStore(str(db))
        self.handed_on: list[tuple[float, str, str]] = []
        self.mgr = RuleManager(self.samples, Engine(self.samples), state_store=self.state, clock=self.clock,
                               on_alerts=lambda alerts: self.handed_on.extend(
                                   (self.clock.t, a.name, a.state) for a in alerts), **kw)
        assert self.mgr.load([rules]) == []

    async def start(self) -> int:
        await self.state.open()
        return await self.mgr.restore()

    def probe(self, t: float, value: float, probe: str = "api") -> None:
        self.samples.append(Labels.of(__name__="probe_success", probe=probe), int(t * 1000), value)

    async def eval(self, t: float) -> None:
        self.clock.t = t
        await self.mgr.eval_all(t)

    def alert(self):
        alerts = self.mgr.alerts()
        assert len(alerts) <= 1
        return alerts[0] if alerts else None

    def listed(self) -> list[str]:
        return [a["state"] for a in self.mgr.alerts_api()["alerts"]]


@pytest.fixture
def rules(tmp_path: Path) -> str:
    p = tmp_path / "probes.yaml"
    p.write_text(RULES)
    return str(p)


async def crash(p: Process) -> None:
    """Stop as by kill -9: nothing more is saved (the connection is only closed to free the file)."""
    await p.state.close()


async def failing_then_crashed(rules: str, db: Path, until: int) -> Process:
    """A process whose api probe fails every 15 s from T0 to ``T0 + until``, then is killed."""
    p1 = Process(rules, db, T0)
    await p1.start()
    for t in range(0, until + 1, 15):
        p1.probe(T0 + t, 0)
        await p1.eval(T0 + t)
    await crash(p1)
    return p1


async def test_pending_alert_keeps_its_for_timer_across_a_20s_restart(rules, tmp_path):
    db = tmp_path / "state.db"
    p1 = Process(rules, db, T0)
    await p1.start()
    for t in (T0, T0 + 15, T0 + 30):
        p1.probe(t, 0)
        await p1.eval(t)
    assert (p1.alert().state, p1.alert().active_at) == ("pending", T0)
    await crash(p1)

    # 20 s of downtime: the alert was pending for 30 s, 30 s of its 1m `for` are left.
    p2 = Process(rules, db, T0 + 50)
    assert await p2.start() == 1
    a = p2.alert()
    assert (a.state, a.active_at) == ("pending", T0 + 20)  # shifted by the downtime
    await p2.eval(T0 + 50)  # the first evaluation, before any probe result: kept
    assert (p2.alert().state, p2.alert().active_at) == ("pending", T0 + 20)
    assert p2.mgr._next_for_deadline(p2.mgr.groups()[0]) == T0 + 80
    p2.probe(T0 + 55, 0)
    await p2.eval(T0 + 55)
    assert (p2.alert().state, p2.alert().active_at) == ("pending", T0 + 20)
    p2.probe(T0 + 79, 0)
    await p2.eval(T0 + 79.9)
    assert p2.alert().state == "pending"
    await p2.eval(T0 + 80)  # 30 s before the crash + 30 s after the restart
    assert (p2.alert().state, p2.alert().fired_at) == ("firing", T0 + 80)
    assert p2.handed_on == [(T0 + 80, "ApiDown", "firing")]
    rows = await p2.state.load_rule_alerts()
    assert [(r["state"], r["active_at"], r["fired_at"]) for r in rows] == [("firing", T0 + 20, T0 + 80)]
    await p2.state.close()


async def test_firing_alert_stays_firing_through_evaluations_before_probe_data(rules, tmp_path):
    db = tmp_path / "state.db"
    p1 = Process(rules, db, T0)
    await p1.start()
    for t in range(0, 76, 15):
        p1.probe(T0 + t, 0)
        await p1.eval(T0 + t)
    assert (p1.alert().state, p1.alert().fired_at) == ("firing", T0 + 60)
    await crash(p1)

    p2 = Process(rules, db, T0 + 95)
    assert await p2.start() == 1
    assert p2.listed() == ["firing"]  # before any evaluation too
    assert p2.alert().annotations == {"summary": "api is down"}
    # Evaluations with no data, then with data of another probe only: still firing, handed on.
    await p2.eval(T0 + 95)
    p2.probe(T0 + 100, 1, probe="db")
    await p2.eval(T0 + 100.1)
    await p2.eval(T0 + 110)
    assert p2.listed() == ["firing"]
    assert [s for _, _, s in p2.handed_on] == ["firing"] * 3
    rows = await p2.state.load_rule_alerts()
    assert [(r["state"], r["active_at"], r["fired_at"]) for r in rows] == [("firing", T0, T0 + 60)]
    # Its probe answers, still failing: it goes on firing with its original times, never pending.
    p2.probe(T0 + 112, 0)
    await p2.eval(T0 + 112.1)
    a = p2.alert()
    assert (a.state, a.active_at, a.fired_at) == ("firing", T0, T0 + 60)
    assert all(s == "firing" for _, _, s in p2.handed_on)
    await p2.state.close()


async def test_restored_firing_alert_resolves_once_its_probe_reports_success(rules, tmp_path):
    db = tmp_path / "state.db"
    await failing_then_crashed(rules, db, 60)

    p2 = Process(rules, db, T0 + 80)
    await p2.start()
    await p2.eval(T0 + 80)
    assert p2.alert().state == "firing"
    p2.probe(T0 + 85, 1)
    await p2.eval(T0 + 85.1)
    a = p2.alert()
    assert (a.state, a.resolved_at) == ("inactive", T0 + 85.1)
    assert p2.handed_on[-1] == (T0 + 85.1, "ApiDown", "inactive")
    await p2.state.close()


async def test_held_alert_is_released_after_the_grace_period_without_data(rules, tmp_path):
    db = tmp_path / "state.db"
    await failing_then_crashed(rules, db, 60)

    p2 = Process(rules, db, T0 + 80, for_grace_period=300.0)
    await p2.start()
    await p2.eval(T0 + 80 + 299)
    assert p2.alert().state == "firing"
    await p2.eval(T0 + 80 + 300)  # its probe never came back (removed from the config)
    assert p2.alert().state == "inactive"
    await p2.state.close()


async def test_state_older_than_the_outage_tolerance_is_not_restored(rules, tmp_path):
    db = tmp_path / "state.db"
    p1 = Process(rules, db, T0)
    await p1.start()
    for t in range(0, 76, 15):
        p1.probe(T0 + t, 0)
        await p1.eval(T0 + t)
    assert p1.alert().state == "firing"
    await crash(p1)

    # Last seen at T0 + 75; an hour and a second later is over the (default 1 h) tolerance.
    p2 = Process(rules, db, T0 + 75 + 3601)
    assert await p2.start() == 0
    assert p2.mgr.alerts() == []
    t = T0 + 75 + 3601
    await p2.eval(t)
    assert await p2.state.load_rule_alerts() == []  # the stale rows are gone
    p2.probe(t + 5, 0)
    await p2.eval(t + 5)
    assert (p2.alert().state, p2.alert().active_at) == ("pending", t + 5)  # a new `for`
    await p2.state.close()

    # Within a shorter configured tolerance the same holds; within it, restored.
    p3 = Process(rules, db, t + 5 + 20, outage_tolerance=30.0)
    assert await p3.start() == 1
    await p3.state.close()
    p4 = Process(rules, db, t + 5 + 31, outage_tolerance=30.0)
    assert await p4.start() == 0
    await p4.state.close()


async def test_a_graceful_stop_saves_the_last_evaluation_time(rules, tmp_path):
    db = tmp_path / "state.db"
    p1 = Process(rules, db, T0)
    await p1.start()
    p1.probe(T0, 0)
    await p1.eval(T0)
    p1.probe(T0 + 3, 0)
    await p1.eval(T0 + 3)  # within the refresh interval: not rewritten ...
    assert [r["seen_at"] for r in await p1.state.load_rule_alerts()] == [T0]
    await p1.mgr.persist(force=True)  # ... but at shutdown
    assert [r["seen_at"] for r in await p1.state.load_rule_alerts()] == [T0 + 3]
    await p1.state.close()


def test_rules_config_restart_settings():
    c = RulesConfig()
    assert (c.outage_tolerance, c.for_grace_period) == (3600.0, 600.0)
    c = RulesConfig.model_validate({"outage_tolerance": "30m", "for_grace_period": "2m"})
    assert (c.outage_tolerance, c.for_grace_period) == (1800.0, 120.0)


RATE_RULES = """
groups:
  - name: api
    interval: 15s
    rules:
      - alert: HighErrorRate
        expr: |
          (sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05)
          or
          (1 - avg(avg_over_time(probe_success[5m])) > 0.05 and on() absent(http_requests_total))
        for: 5m
        labels: {severity: critical, service: api}
"""


async def test_pending_rate_alert_survives_the_first_scrapes_after_a_kill_9(tmp_path):
    """Issue 16 A: after a restart the first scrape gives ``rate`` one sample (no value) while
    the probe already has data; the restored alert must not be dropped and restarted then."""
    rules = tmp_path / "api.yaml"
    rules.write_text(RATE_RULES)
    db = tmp_path / "state.db"

    def feed(p: Process, t: float, n: int) -> None:
        p.probe(t, 0)
        p.samples.append(Labels.of(__name__="http_requests_total", status="500"), int(t * 1000), 10.0 * n)
        p.samples.append(Labels.of(__name__="http_requests_total", status="200"), int(t * 1000), 0.0)

    p1 = Process(str(rules), db, T0)
    await p1.start()
    for i, t in enumerate(range(0, 121, 15)):
        feed(p1, T0 + t, i)
        await p1.eval(T0 + t)
    assert (p1.alert().state, p1.alert().active_at) == ("pending", T0 + 15)
    await crash(p1)

    # Restarted 5 s later. The probe reports first (absent(http_requests_total) holds), then the
    # scrapes: rate() needs their second sample.
    p2 = Process(str(rules), db, T0 + 125)
    assert await p2.start() == 1
    await p2.eval(T0 + 125)
    p2.probe(T0 + 126, 0)
    await p2.eval(T0 + 126.1)
    for i, t in enumerate((T0 + 127, T0 + 132, T0 + 137)):
        p2.samples.append(Labels.of(__name__="http_requests_total", status="500"), int(t * 1000), 10.0 * i)
        p2.samples.append(Labels.of(__name__="http_requests_total", status="200"), int(t * 1000), 0.0)
        p2.probe(t + 0.5, 0)
        await p2.eval(t + 1)
        a = p2.alert()
        assert a is not None and (a.state, a.active_at) == ("pending", T0 + 20), (t, a)
    # 5m of pending = 4m45s before the kill (at T0 + 120) + 15 s after it.
    await p2.eval(T0 + 320)
    assert (p2.alert().state, p2.alert().active_at) == ("firing", T0 + 20)
    await p2.state.close()
