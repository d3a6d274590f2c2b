"""A firing rule alert's ``endsAt`` is its validity (issue 9, "Restart-exact delivery").

The rule groups hand firing alerts on with ``endsAt = now + 4 * max(group interval,
resend_delay)`` at each evaluation (Prometheus ``rules/alerting.go`` ``sendAlerts``,
``ValidUntil``); the alert pipeline resolves an alert whose ``endsAt`` passed without a refresh
(Alertmanager). Real parts: the rule manager over an in-memory sample store, the alert pipeline
over a SQLite state store, one manual clock for both; recording stand-ins for the receiver stages
and escalation (as ``test_alerting_pipeline.py``).
"""

from __future__ import annotations

import pytest

from model.labels import Labels
from monitor.alerting.intake import from_rule_alert
from monitor.alerting.pipeline import AlertPipeline
from monitor.alerting.provider import AlertProvider
from monitor.alerting.route import build_route
from monitor.alerting.silence import Silences
from monitor.notify.payload import alert_payload
from monitor.promql.engine import Engine
from monitor.rules.alerting import Alert as RuleAlert
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import RuleText
from monitor.store.sqlite import SQLiteStore
from monitor.tsdb.store import SampleStore
from tests.alerting.test_alerting_pipeline import Escalations
from tests.support.alerting_helpers import unix

T0 = unix(2026, 11, 30, 10, 0)

RULES = """
groups:
  - name: probes
    interval: {interval}
    rules:
      - alert: ApiDown
        expr: probe_success == 0
        labels: {{severity: critical, service: api}}
        annotations: {{summary: "{{{{ $labels.probe }}}} is down"}}
"""


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Deliver:
    """The receiver stages: records each notification as (receiver, [(alertname, status)])."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[str, str]]]] = []

    async def __call__(self, ctx, alerts):
        self.sent.append((ctx.receiver, [(a.name, a.status(ctx.now)) for a in alerts]))
        return ctx, alerts

    def statuses(self, receiver: str = "pager") -> list[str]:
        return [s for r, alerts in self.sent if r == receiver for _, s in alerts]


class Daemon:
    """One process: a fresh sample store and rule manager, the alert pipeline on the shared state."""

    def __init__(self, state: SQLiteStore, shipped, clock: Clock, interval: str = "15s", **kw) -> None:
        self.clock, self.state = clock, state
        self.external_labels: dict[str, str] = {}  # rules.external_labels, as the wiring adds them
        self.samples = SampleStore(retention_seconds=None)
        self.deliver, self.esc = Deliver(), Escalations()
        self.pipeline = AlertPipeline(AlertProvider(state), self.esc, Silences(), clock=clock)
        self.pipeline.configure(shipped, route=build_route(shipped.route), deliver=self.deliver,
                                external_url="http://mon", send_resolved=lambda r: True)
        self.mgr = RuleManager(self.samples, Engine(self.samples), clock=clock,
                               on_alerts=lambda alerts: self.pipeline.ingest(
                                   [c for a in alerts
                                    if (c := from_rule_alert(a, "http://mon", self.external_labels)) is not None],
                                   source="rules"), **kw)
        assert self.mgr.load([RuleText("<test>", RULES.format(interval=interval))]) == []

    def probe(self, value: float) -> None:
        self.samples.append(Labels.of(__name__="probe_success", probe="api"), int(self.clock.t * 1000), value)

    async def step(self, t: float, value: float | None = None) -> None:
        """At ``t``: a probe sample (if given), one evaluation, one pipeline tick."""
        self.clock.t = t
        if value is not None:
            self.probe(value)
        await self.mgr.eval_all(t)
        await self.pipeline.tick(t)

    def held(self):
        (a,) = self.pipeline.provider.current.values()
        return a


@pytest.fixture
async def state(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    yield store
    await store.close()


def test_a_firing_rule_alert_is_handed_on_with_its_validity():
    a = RuleAlert(Labels.of(alertname="ApiDown", severity="critical"), {}, "firing", T0 - 60, fired_at=T0,
                  valid_until=T0 + 240)
    converted = from_rule_alert(a)
    assert converted is not None and (converted.starts_at, converted.ends_at) == (T0, T0 + 240)
    payload = alert_payload(converted, T0 + 10)  # a future endsAt is firing, as Alertmanager shows it
    assert payload["status"] == "firing" and payload["ends_at"] == "2026-11-30T10:04:00Z"
    assert alert_payload(converted, T0 + 240)["status"] == "resolved"


@pytest.mark.parametrize(("interval", "resend_delay", "valid"), [("15s", 60.0, 240.0), ("5m", 60.0, 1200.0),
                                                                  ("1s", 5.0, 20.0)])
async def test_the_validity_is_four_times_the_group_interval_or_resend_delay(state, shipped, interval,
                                                                              resend_delay, valid):
    d = Daemon(state, shipped, Clock(T0), interval=interval, resend_delay=resend_delay)
    await d.step(T0, 0)
    assert d.held().ends_at == T0 + valid
    assert (await state.get_alert(d.held().fingerprint))["ends_at"] == T0 + valid


async def test_a_firing_rule_alert_refreshed_each_evaluation_stays_firing(state, shipped):
    clock = Clock(T0)
    d = Daemon(state, shipped, clock)
    for i in range(0, 61):  # 15 minutes of 15 s evaluations, far past the first endsAt (4 min)
        await d.step(T0 + 15 * i, 0)
        a = d.held()
        assert not a.resolved(clock.t) and a.ends_at == clock.t + 240 and a.starts_at == T0
    assert set(d.deliver.statuses()) == {"firing"}
    assert not [c for c in d.esc.calls if c[0] == "resolve"]
    await d.step(T0 + 15 * 61, 1)  # the probe succeeds: resolved by the rule, at its evaluation
    assert d.held().ends_at == T0 + 15 * 61
    assert ("resolve", d.held().fingerprint, "rules", True) in d.esc.calls
    for i in range(62, 62 + 25):
        await d.step(T0 + 15 * i, 1)
    assert d.deliver.statuses()[-1] == "resolved"


async def test_an_orphaned_restored_rule_alert_resolves_after_its_ends_at(state, shipped):
    clock = Clock(T0)
    first = Daemon(state, shipped, clock)
    for i in range(0, 5):
        await first.step(T0 + 15 * i, 0)
    last = T0 + 60
    fp = first.held().fingerprint
    assert first.held().ends_at == last + 240

    # kill -9; the next process's rule manager has no state for the alert (it never re-sends it)
    clock.t = last + 30
    second = Daemon(state, shipped, clock)
    await second.pipeline.restore(clock.t)
    await second.pipeline.tick()  # the first tick after the restart: not resolved early
    assert not second.held().resolved(clock.t)
    for t in range(int(last) + 31, int(last) + 240, 5):
        await second.pipeline.tick(float(t))
    assert not second.held().resolved(last + 239)
    assert (await state.get_alert(fp))["state"] == "firing"
    for t in range(int(last) + 240, int(last) + 240 + 330, 5):
        clock.t = float(t)
        await second.pipeline.tick()
    assert second.held().resolved(clock.t)
    assert (await state.get_alert(fp))["state"] == "resolved"
    assert ("resolve", fp, "timeout", True) in second.esc.calls  # expired, not resolved by the rule
    assert second.deliver.statuses() == ["resolved"]  # the restored nflog said firing: resolved is news


async def test_a_restart_shorter_than_the_validity_keeps_the_alert_firing(state, shipped):
    clock = Clock(T0)
    first = Daemon(state, shipped, clock, state_store=state)
    for i in range(0, 5):
        await first.step(T0 + 15 * i, 0)
    await first.mgr.persist(force=True)
    clock.t = T0 + 60 + 200  # down 200 s, less than the 240 s validity
    second = Daemon(state, shipped, clock, state_store=state)
    await second.pipeline.restore(clock.t)
    await second.mgr.restore(clock.t)
    await second.pipeline.tick()
    assert not second.held().resolved(clock.t)
    for i in range(0, 30):
        await second.step(clock.t + 15 if i else clock.t, 0)
        assert not second.held().resolved(clock.t)
    assert second.held().starts_at == T0
    assert "resolved" not in second.deliver.statuses()
    assert not [c for c in second.esc.calls if c[0] == "resolve"]


async def test_a_rule_alert_firing_again_after_its_validity_passed_is_announced_again(state, shipped):
    clock = Clock(T0)
    first = Daemon(state, shipped, clock, state_store=state)
    for i in range(0, 5):
        await first.step(T0 + 15 * i, 0)
    await first.mgr.persist(force=True)
    # down 10 minutes, longer than the validity: resolved by the first tick and announced; then
    # the rule (its state restored, the same startsAt) still fires: a new firing notification
    clock.t = T0 + 60 + 600
    second = Daemon(state, shipped, clock, state_store=state)
    await second.pipeline.restore(clock.t)
    await second.mgr.restore(clock.t)
    await second.pipeline.tick()
    assert second.held().resolved(clock.t)
    while clock.t < T0 + 60 + 600 + 330:  # the group's next flush announces the resolution
        clock.t += 5
        await second.pipeline.tick()
    assert second.deliver.statuses() == ["resolved"]
    for _ in range(0, 40):
        await second.step(clock.t + 15, 0)
    assert not second.held().resolved(clock.t) and second.held().starts_at == T0
    assert second.deliver.statuses() == ["resolved", "firing"]


def test_rules_resend_delay_setting():
    from monitor.config.model import RulesConfig

    assert RulesConfig().resend_delay == 60.0
    assert RulesConfig.model_validate({"resend_delay": "5s"}).resend_delay == 5.0
    with pytest.raises(ValueError):
        RulesConfig.model_validate({"resend_delay": "0s"})


async def test_an_alert_orphaned_by_an_external_labels_change_resolves(state, shipped):
    clock = Clock(T0)
    d = Daemon(state, shipped, clock)
    await d.step(T0, 0)
    (old,) = d.pipeline.provider.current
    d.external_labels["cluster"] = "eu1"  # a reload: the alert's fingerprint changes
    for i in range(1, 40):
        await d.step(T0 + 15 * i, 0)
    now = clock.t
    new = [fp for fp in d.pipeline.provider.current if fp != old]
    assert len(new) == 1 and not d.pipeline.provider.get(new[0]).resolved(now)
    assert d.pipeline.provider.get(old).resolved(now) and d.pipeline.provider.get(old).ends_at == T0 + 240
    assert (await state.get_alert(old))["state"] == "resolved"
