"""Aggregation groups with a manual clock: group_wait, group_interval, repeat_interval, resolved, mutes."""

from __future__ import annotations

import pytest
from tests.support.alerting_helpers import load_alerting, unix

from model.alert import Alert
from monitor.alerting.dispatch import Dispatcher
from monitor.alerting.mute import MuteStages
from monitor.alerting.inhibit import Inhibitor
from monitor.alerting.maintenance import MaintenanceWindows, TimeIntervals
from monitor.alerting.route import build_route
from monitor.alerting.silence import Silence, Silences

T0 = unix(2026, 11, 30, 10, 0)
CFG = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
"""


def at(minutes: float = 0, seconds: float = 0):
    return T0 + minutes * 60 + seconds


def firing(name: str, start=T0, **labels: str) -> Alert:
    return Alert.firing({"alertname": name, **labels}, starts_at=start)


@pytest.fixture
def d() -> Dispatcher:
    return Dispatcher(build_route(load_alerting(CFG).route))


def names(n) -> list[str]:
    return [a.labels.get("instance") or a.name for a in n.alerts]


def test_group_wait_then_group_interval_then_repeat(d):
    a1 = firing("Down", instance="a")
    assert d.process([a1], at(0)) == []
    assert d.next_wakeup() == at(0, 30)
    # A second alert of the same group during group_wait joins the first notification.
    a2 = firing("Down", start=at(0, 10), instance="b")
    assert d.process([a2], at(0, 10)) == []
    assert d.process([], at(0, 29)) == []
    (n,) = d.process([], at(0, 30))
    assert (n.receiver, n.group_labels.as_dict(), names(n), n.status) == ("default", {"alertname": "Down"},
                                                                          ["a", "b"], "firing")
    assert n.group_key == '{}:{alertname="Down"}'
    assert d.next_wakeup() == at(5, 30)
    # Nothing changed: the group_interval flush sends nothing.
    assert d.process([], at(5, 30)) == []
    # A new alert waits for the next group_interval tick, not for group_wait.
    a3 = firing("Down", start=at(7), instance="c")
    assert d.process([a3], at(7)) == []
    (n,) = d.process([], at(10, 30))
    assert names(n) == ["a", "b", "c"]
    # Unchanged: silent until repeat_interval (1h after the last notification) has passed.
    t = at(10, 30)
    sent = []
    while t <= at(75):
        t = d.next_wakeup()
        sent += [(t, names(x)) for x in d.process([], t)]
    assert sent[0] == (at(70, 30), ["a", "b", "c"])


def test_resolved_alerts_are_sent_then_dropped_and_group_deleted(d):
    a = firing("Down", instance="a")
    b = firing("Down", instance="b")
    d.process([a, b], at(0))
    d.process([], at(0, 30))
    (n,) = d.process([b.resolve(at(2))], at(5, 30))
    assert [x.labels.get("instance") for x in n.firing] == ["a"]
    assert [x.labels.get("instance") for x in n.resolved] == ["b"]
    assert n.status == "firing"
    assert [g.alerts[0].labels.get("instance") for g in d.groups()] == ["a"]
    (n,) = d.process([a.resolve(at(8))], at(10, 30))
    assert n.status == "resolved" and n.firing == []
    assert d.groups() == [] and d.next_wakeup() is None
    assert d.alerts(at(11)) == []


def test_resolved_only_new_resolution_respects_send_resolved():
    root = build_route(load_alerting(CFG).route)
    quiet = Dispatcher(root, send_resolved=lambda r: False)
    loud = Dispatcher(root)
    a, b = firing("Down", instance="a"), firing("Down", instance="b")
    for d in (quiet, loud):
        d.process([a, b], at(0))
        assert len(d.process([], at(0, 30))) == 1
        d.put([b.resolve(at(1))], at(1))
    assert quiet.flush(at(5, 30)) == []
    (n,) = loud.flush(at(5, 30))
    assert len(n.resolved) == 1


def test_alert_that_fired_and_resolved_unseen_sends_nothing(d):
    d.process([firing("Blip").resolve(at(0, 5))], at(0, 6))
    assert d.next_wakeup() == at(0, 36)
    assert d.process([], at(0, 36)) == []
    assert d.groups() == []


def test_old_alert_flushes_immediately(d):
    old = firing("Down", start=at(-10))
    (n,) = d.process([old], at(0))
    assert n.at == at(0)


def test_group_by_separates_groups_and_all_labels():
    d = Dispatcher(build_route(load_alerting(CFG).route))
    d.process([firing("A", instance="1"), firing("B", instance="1")], at(0))
    assert [n.group_labels.as_dict() for n in d.process([], at(0, 30))] == [{"alertname": "A"}, {"alertname": "B"}]
    every = Dispatcher(build_route(load_alerting("route: {receiver: r, group_by: ['...']}").route))
    every.process([firing("A", instance="1"), firing("A", instance="2")], at(0))
    assert len(every.process([], at(0, 30))) == 2
    one = Dispatcher(build_route(load_alerting("route: {receiver: r}").route))
    one.process([firing("A"), firing("B")], at(0))
    (n,) = one.process([], at(0, 30))
    assert n.group_key == "{}:{}" and len(n.alerts) == 2


def test_continue_fans_out_to_each_receiver_with_its_own_timers(shipped):
    d = Dispatcher(build_route(shipped.route))
    crit = firing("ApiDown", severity="critical", service="api")
    assert d.process([crit], at(0)) == []
    (pager,) = d.process([], at(0, 10))  # the pager route's group_wait is 10s
    assert pager.receiver == "pager"
    (slack,) = d.process([], at(0, 30))
    assert slack.receiver == "slack-incidents"
    assert pager.common_labels() == {"alertname": "ApiDown", "severity": "critical", "service": "api"}


def test_silenced_alert_is_not_sent_but_stays_visible():
    sil = Silences([Silence.create("s1", 'instance="b"', at(-1), at(60), "ops", "noisy")])
    d = Dispatcher(build_route(load_alerting(CFG).route), mutes=MuteStages(silences=sil))
    d.process([firing("Down", instance="a"), firing("Down", instance="b")], at(0))
    (n,) = d.process([], at(0, 30))
    assert names(n) == ["a"]
    visible = {a.labels.get("instance"): a for a in d.alerts(at(1))}
    assert visible["b"].silenced_by == ("s1",) and visible["b"].state == "suppressed"
    assert visible["a"].state == "active"
    # When the silence expires the alert appears at the next group_interval flush.
    sil.expire("s1", at(3))
    (n,) = d.process([], at(5, 30))
    assert names(n) == ["a", "b"]


def test_inhibited_alert_is_marked_with_the_source(shipped):
    mutes = MuteStages(inhibitor=Inhibitor.from_config(shipped.inhibit_rules))
    d = Dispatcher(build_route(shipped.route), mutes=mutes)
    crit = firing("LatencyCritical", severity="critical", service="api", family="latency")
    warn = firing("LatencyHigh", severity="warning", service="api", family="latency")
    d.process([crit, warn], at(0))
    out = d.process([], at(0, 10)) + d.process([], at(0, 30))
    assert sorted(n.receiver for n in out) == ["pager", "slack-incidents"]
    marked = {a.name: a for a in d.alerts(at(1))}
    assert marked["LatencyHigh"].inhibited_by == (crit.fingerprint,)
    # The critical resolves: the warning is no longer inhibited and is sent at the next tick.
    d.put([crit.resolve(at(2))], at(2))
    out = d.flush(at(5, 30))
    assert {n.receiver for n in out} == {"pager", "slack-alerts", "email", "slack-incidents"}
    assert all(n.status == "resolved" for n in out if n.receiver in ("pager", "slack-incidents"))
    warn_ns = [n for n in out if n.receiver == "slack-alerts"]
    assert [a.name for a in warn_ns[0].alerts] == ["LatencyHigh"]


def test_maintenance_window_mutes_and_route_mute_time_interval(shipped):
    mutes = MuteStages(maintenance=MaintenanceWindows.from_config(shipped))
    d = Dispatcher(build_route(shipped.route), mutes=mutes)
    first_saturday = unix(2026, 11, 7, 3, 0)
    d.process([firing("DiskFull", start=first_saturday, severity="warning")], first_saturday)
    assert d.process([], first_saturday + 30) == []
    (a,) = d.alerts(first_saturday + 60)
    assert a.muted_by == ("monthly-maintenance",)
    # 06:00 the window closes; the next flush notifies.
    out = d.process([], unix(2026, 11, 7, 6, 0, 30))
    while not out:
        out = d.process([], d.next_wakeup())
    assert out[0].at >= unix(2026, 11, 7, 6, 0)

    cfg = load_alerting("""
route:
  receiver: default
  routes:
    - {matchers: ['team="db"'], receiver: db, mute_time_intervals: [weekend]}
time_intervals:
  - name: weekend
    time_intervals: [{weekdays: [saturday, sunday]}]
""")
    d = Dispatcher(build_route(cfg.route), time_intervals=TimeIntervals.from_config(cfg.time_intervals))
    sat = unix(2026, 11, 28, 12, 0)
    d.process([firing("X", start=sat, team="db")], sat)
    assert d.process([], sat + 30) == []
    mon = unix(2026, 11, 30, 0, 0)
    out = []
    t = sat
    while not out:
        t = d.next_wakeup()
        out = d.process([], t)
    assert t >= mon and out[0].receiver == "db"


def test_active_time_intervals():
    cfg = load_alerting("""
route:
  receiver: default
  routes:
    - {matchers: ['team="web"'], receiver: web, active_time_intervals: [office]}
time_intervals:
  - name: office
    time_intervals: [{weekdays: ["monday:friday"], times: [{start_time: "09:00", end_time: "17:00"}]}]
""")
    d = Dispatcher(build_route(cfg.route), time_intervals=TimeIntervals.from_config(cfg.time_intervals))
    night = unix(2026, 11, 30, 22, 0)
    d.process([firing("X", start=night, team="web")], night)
    out, t = [], night
    while not out:
        t = d.next_wakeup()
        out = d.process([], t)
    assert unix(2026, 12, 1, 9, 0) <= t < unix(2026, 12, 1, 9, 5)


def test_refiring_after_resolution_is_a_new_alert(d):
    a = firing("Down", instance="a")
    d.process([a], at(0))
    d.process([], at(0, 30))
    d.process([a.resolve(at(1))], at(5, 30))
    again = firing("Down", start=at(20), instance="a")
    d.put([again], at(20))
    (n,) = d.process([], d.next_wakeup())
    assert n.firing[0].starts_at == at(20)


def test_intake_alerts_go_through_routing_and_time_out(shipped):
    from monitor.alerting.intake import parse_v2_alerts

    d = Dispatcher(build_route(shipped.route))
    body = [{"labels": {"alertname": "ApiDown", "severity": "critical", "service": "api"}}]
    res = parse_v2_alerts(body, at(0), resolve_timeout=shipped.resolve_timeout)
    d.process(res.alerts, at(0))
    (pager,) = d.process([], at(0, 10))
    assert pager.receiver == "pager" and pager.status == "firing"
    # Not re-sent by Prometheus: it resolves after resolve_timeout (5m) and the next flush says so.
    (pager,) = d.process([], at(5, 10))
    assert pager.status == "resolved" and pager.resolved[0].ends_at == at(5)


def test_due_times_follow_groups_that_are_retimed_flushed_or_gone(d):
    # Many groups: the next due time is the earliest live one, whatever was re-timed or deleted.
    d.put([firing("A"), firing("B", start=at(0, 10))], at(0, 10))
    assert d.next_wakeup() == at(0, 40)  # both groups formed at 0:10, group_wait 30 s
    d.put([firing("C", start=at(-10))], at(0, 20))  # started long ago: its group flushes at once
    assert d.next_wakeup() == at(0, 20)
    assert [n.group_labels.get("alertname") for n in d.flush(at(0, 20))] == ["C"]
    assert d.next_wakeup() == at(0, 40)
    assert sorted(n.group_labels.get("alertname") for n in d.flush(at(0, 40))) == ["A", "B"]
    assert d.next_wakeup() == at(5, 20)  # C's group_interval
    # C resolves: announced at its next flush, then the group and the alert are gone.
    d.put([firing("C", start=at(-10)).resolve(at(1))], at(1))
    (n,) = d.flush(at(5, 20))
    assert n.status == "resolved"
    assert [g.labels.get("alertname") for g in d.groups()] == ["A", "B"]
    assert [a.name for a in d.alerts(at(5, 20))] == ["A", "B"]
    assert d.next_wakeup() == at(5, 40)
    assert d.flush(at(5, 39)) == []


def test_held_groups_wait_for_their_release(d):
    hold = d.hold()
    d.put([firing("Old", start=at(-10), instance="a")], at(0), hold=hold)
    d.put([firing("Other", start=at(-10))], at(0))  # not held: flushes as usual
    assert [n.group_labels.get("alertname") for n in d.flush(at(0))] == ["Other"]
    d.put([firing("Old", start=at(-10), instance="b")], at(0), hold=hold)
    assert d.flush(at(0)) == []
    d.release(hold)
    (n,) = d.flush(at(0))
    assert names(n) == ["a", "b"]  # one notification for the whole batch


def test_flush_takes_at_most_limit_groups_earliest_first(d):
    d.put([firing(f"G{i}", start=at(-10)) for i in range(5)], at(0))
    first = d.flush(at(0), limit=2)
    rest = d.flush(at(0))
    assert [n.group_labels.get("alertname") for n in first + rest] == ["G0", "G1", "G2", "G3", "G4"]
    assert d.next_wakeup() == at(5)


def test_refiring_after_the_group_was_deleted_waits_group_wait_not_group_interval(d):
    """Issue 16 B: Alertmanager deletes an empty group (all resolved and notified); an alert
    firing again starts a new group, first notified after ``group_wait``."""
    a = firing("Down", instance="a")
    d.process([a], at(0))
    d.process([], at(0, 30))
    (n,) = d.process([a.resolve(at(1))], at(5, 30))
    assert n.status == "resolved" and d.groups() == []
    again = firing("Down", start=at(7), instance="a")
    assert d.process([again], at(7)) == []
    assert d.next_wakeup() == at(7, 30)
    assert d.waiting(at(7, 29)) == {again.fingerprint}
    (n,) = d.process([], at(7, 30))
    assert n.firing[0].starts_at == at(7)
    assert d.waiting(at(7, 30)) == set()  # the escalation waited for that flush, no longer


def test_restored_group_whose_last_notification_was_resolved_starts_afresh(d):
    """Issue 16 B after a restart: a group whose last notification said "all resolved" was
    deleted; a restored log entry must not give the next firing alert its old group_interval
    timer (up to 5 minutes for the first page)."""
    a = firing("Down", instance="a")
    d.process([a], at(0))
    d.process([], at(0, 30))
    d.process([a.resolve(at(1))], at(5, 30))
    restarted = Dispatcher(d.route)
    restarted.restore({k: d.nflog.get(k) for k in d.state()})
    again = firing("Down", start=at(6), instance="a")
    assert restarted.process([again], at(6)) == []
    assert restarted.next_wakeup() == at(6, 30)
    assert restarted.waiting(at(6)) == {again.fingerprint}
    (n,) = restarted.process([], at(6, 30))
    assert [x.starts_at for x in n.firing] == [at(6)]
    assert restarted.waiting(at(6, 30)) == set()


def test_restored_group_that_had_firing_alerts_keeps_its_timers(d):
    a = firing("Down", instance="a")
    d.process([a], at(0))
    d.process([], at(0, 30))
    restarted = Dispatcher(d.route)
    restarted.restore({k: d.nflog.get(k) for k in d.state()})
    b = firing("Down", start=at(2), instance="b")
    assert restarted.process([a, b], at(2)) == []
    assert restarted.next_wakeup() == at(5, 30)
