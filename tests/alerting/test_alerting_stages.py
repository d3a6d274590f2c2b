"""The alert pipeline's front stages, each alone: mute stages, the notification log (in memory
and persisted), the stage protocol, the held alerts (provider)."""

from __future__ import annotations

from tests.support.alerting_helpers import unix

from model.alert import Alert
from model.labels import Labels
from monitor.alerting.inhibit import Inhibitor
from monitor.alerting.maintenance import MaintenanceWindows
from monitor.alerting.mute import MuteStages, muted_firing
from monitor.alerting.nflog import NotificationLog, TransitionLog
from monitor.alerting.provider import AlertProvider
from monitor.alerting.silence import Silence, Silences
from monitor.alerting.stage import Context, MultiStage
from monitor.store.sqlite import SQLiteStore

T0 = unix(2026, 11, 30, 10, 0)  # a Monday, outside the maintenance window
SATURDAY = unix(2026, 11, 7, 3, 0)  # first Saturday of the month, inside it


def firing(**labels: str) -> Alert:
    return Alert.firing(labels, starts_at=T0 - 60)


# -- mute stages ----------------------------------------------------------------------------------


def test_mute_stages_mark_each_muter_and_keep_the_alert(shipped):
    sil = Silences([Silence.create("s1", 'service="db"', T0 - 10, T0 + 3600, "ops")])
    mutes = MuteStages(Inhibitor.from_config(shipped.inhibit_rules), sil, MaintenanceWindows.from_config(shipped))
    crit = firing(alertname="LatencyCritical", severity="critical", service="api", family="latency")
    warn = firing(alertname="LatencyHigh", severity="warning", service="api", family="latency")
    db = firing(alertname="DbSlow", severity="warning", service="db")
    sources = mutes.index([crit, warn, db], T0)
    marked = {a.name: mutes.mark(a, sources, T0) for a in (crit, warn, db)}
    assert marked["LatencyCritical"].state == "active"
    assert marked["LatencyHigh"].inhibited_by == (crit.fingerprint,) and marked["LatencyHigh"].state == "suppressed"
    assert marked["DbSlow"].silenced_by == ("s1",) and not marked["DbSlow"].inhibited_by
    assert mutes.mark(db, [crit, warn, db], SATURDAY).muted_by == ("monthly-maintenance",)
    assert marked["DbSlow"].labels == db.labels  # a marked copy, the same alert
    assert muted_firing(marked.values(), T0) == {warn.fingerprint, db.fingerprint}
    assert muted_firing([marked["DbSlow"].resolve(T0)], T0) == set()  # resolved: nothing to hold


def test_no_mute_stages_mark_nothing():
    a = firing(alertname="X")
    assert MuteStages().mark(a, [a], T0).state == "active"


# -- notification log -----------------------------------------------------------------------------


def test_notification_log_dedup_decision():
    log = NotificationLog()
    a, b = frozenset({"a"}), frozenset({"b"})
    none = frozenset()
    kw = {"send_resolved": True, "repeat_interval": 3600}
    assert not log.needs_update("g", none, b, now=T0, **kw)  # nothing ever fired: no resolved-only message
    assert log.needs_update("g", a, none, now=T0, **kw)
    log.log("g", a, none, T0)
    assert not log.needs_update("g", a, none, now=T0 + 60, **kw)  # unchanged
    assert log.needs_update("g", a | b, none, now=T0 + 60, **kw)  # a new firing alert
    assert log.needs_update("g", a, b, now=T0 + 60, **kw)  # a new resolved alert ...
    assert not log.needs_update("g", a, b, now=T0 + 60, send_resolved=False, repeat_interval=3600)  # ... if sent
    assert log.needs_update("g", none, a, now=T0 + 60, **kw)  # all resolved now
    assert log.needs_update("g", a, none, now=T0 + 3600, **kw)  # repeat_interval passed
    assert log.state() == {"g": {"firing": ["a"], "resolved": [], "at": T0}}


def test_notification_log_keeps_entries_of_live_groups_and_forgets_old_ones():
    log = NotificationLog(retention=3600)
    log.log("gone", frozenset({"a"}), frozenset(), T0)
    log.log("live", frozenset({"a"}), frozenset(), T0)
    log.gc(T0 + 3599, live=[])
    assert set(log.state()) == {"gone", "live"}
    log.gc(T0 + 3601, live=["live"])
    assert set(log.state()) == {"live"}


async def test_transition_log_numbers_survive_a_restart(sqlite_store, tmp_path):
    numbers = TransitionLog(sqlite_store)
    assert await numbers.number("g", "tid-a", T0, repeat_interval=3600) == "tid-a#0"
    assert await numbers.number("g", "tid-a", T0 + 60, repeat_interval=3600) == "tid-a#0"  # a replay
    assert await numbers.number("g", "tid-b", T0 + 120, repeat_interval=3600) == "tid-b#1"  # new content
    assert await numbers.number("other", "tid-b", T0 + 120, repeat_interval=3600) == "tid-b#0"  # per group
    assert await sqlite_store.kv_get("nflog:g") == {"tid": "tid-b", "seq": 1, "at": T0 + 120}
    again = SQLiteStore(tmp_path / "state.db")  # the daemon restarted: a new connection, same data
    await again.open()
    try:
        numbers = TransitionLog(again)
        assert await numbers.number("g", "tid-b", T0 + 180, repeat_interval=3600) == "tid-b#1"
        assert await numbers.number("g", "tid-b", T0 + 120 + 3600, repeat_interval=3600) == "tid-b#2"  # a repeat
    finally:
        await again.close()


# -- the stage protocol ---------------------------------------------------------------------------


async def test_multistage_threads_context_and_stops_at_none():
    seen = []

    async def number(ctx, alerts):
        seen.append("number")
        return ctx.with_(transition="t#0"), alerts

    async def drop_resolved(ctx, alerts):
        seen.append("drop")
        return ctx, [a for a in alerts if not a.resolved(ctx.now)]

    async def stop(ctx, alerts):
        seen.append("stop")
        return None

    a, b = firing(alertname="A"), firing(alertname="B").resolve(T0 - 1)
    ctx = Context("ops", T0, "{}:{}", Labels.of(alertname="A"), 3600.0)
    out_ctx, out = await MultiStage(number, drop_resolved)(ctx, [a, b])
    assert out_ctx.transition == "t#0" and out_ctx.receiver == "ops" and out == [a]
    assert await MultiStage(number, stop, drop_resolved)(ctx, [a]) is None
    assert seen == ["number", "drop", "number", "stop"]


def test_context_of_a_notification(shipped):
    from monitor.alerting.dispatch import Dispatcher
    from monitor.alerting.route import build_route

    d = Dispatcher(build_route(shipped.route))
    (n, *_) = d.process([firing(alertname="ApiDown", severity="critical", service="api")], T0)
    ctx = Context.of(n, T0)
    assert (ctx.receiver, ctx.group_key, ctx.repeat_interval) == ("pager", n.group_key, 3600.0)
    assert ctx.group_labels == n.group_labels and ctx.message is None and ctx.written == ()


# -- held alerts ----------------------------------------------------------------------------------


async def test_provider_writes_each_version_once_and_restores_firing_alerts(sqlite_store):
    calls = []
    upsert = sqlite_store.upsert_alert

    async def counting(row, now):
        calls.append((row["state"], now))
        await upsert(row, now)

    sqlite_store.upsert_alert = counting
    provider = AlertProvider(sqlite_store)
    a = Alert.firing({"alertname": "ApiDown"}, starts_at=T0, annotations={"summary": "down"})
    await provider.persist(a, T0)
    await provider.persist(a, T0 + 15)  # the rule re-sends it: nothing new
    provider.put(a)
    assert calls == [("firing", T0)] and provider.persisted_status(a.fingerprint) == "firing"
    resolved = a.resolve(T0 + 60)
    await provider.persist(resolved, T0 + 60)
    assert calls[-1] == ("resolved", T0 + 60)
    row = await sqlite_store.get_alert(a.fingerprint)
    assert (row["starts_at"], row["ends_at"], row["annotations"]) == (T0, T0 + 60, {"summary": "down"})

    b = Alert.firing({"alertname": "DbDown"}, starts_at=T0, generator_url="http://p/graph")
    await provider.persist(b, T0)
    restored = AlertProvider(sqlite_store)
    [back] = await restored.restore(T0 + 120)
    assert (back.labels, back.starts_at, back.ends_at, back.generator_url) == (b.labels, T0, None, "http://p/graph")
    assert back.fingerprint in restored and restored.get(a.fingerprint) is None
    await restored.persist(back, T0 + 120)  # restored versions count as written
    assert [c for c in calls if c[1] == T0 + 120] == []
    restored.forget(back.fingerprint)
    assert list(restored.items()) == []

