"""The alert pipeline's run-time flow and its people-facing parts, with recording stand-ins for
the later stages (receiver stages, escalation) and a real SQLite store."""

from __future__ import annotations

import pytest
from tests.support.alerting_helpers import unix

from model.alert import Alert
from monitor.alerting.acks import Acknowledgements
from monitor.alerting.pipeline import AlertPipeline
from monitor.alerting.provider import AlertProvider
from monitor.alerting.route import build_route
from monitor.alerting.silence import SilenceError, Silences
from monitor.alerting.silence_admin import SilenceAdmin
from monitor.alerting.views import AlertViews
from monitor.errors import NotFoundError
from monitor.store.sqlite import SQLiteStore

T0 = unix(2026, 11, 30, 10, 0)
CRIT = {"alertname": "ApiDown", "severity": "critical", "service": "api"}


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Deliver:
    """The receiver stages: records each group handed over."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, list[str]]] = []

    async def __call__(self, ctx, alerts):
        self.groups.append((ctx.receiver, [a.name for a in alerts]))
        return ctx, alerts


class Escalations:
    """The escalation stage and walks: records what it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def resolve(self, fingerprint, now, by, alert=None, comment=""):
        self.calls.append(("resolve", fingerprint, by, alert is not None))

    async def advance(self, now, marked, held, only=None, waiting=None):
        self.calls.append(("advance", [(a.name, a.state) for a in marked], sorted(only) if only else None))

    async def prune(self, now, retention):
        self.calls.append(("prune",))

    def get(self, fingerprint):
        return None

    def status(self, fingerprint):
        return {"fingerprint": fingerprint, "status": "no_escalation"}

    async def acknowledge(self, fingerprint, now, by, source, comment=""):
        self.calls.append(("ack", fingerprint, by))

    async def unacknowledge(self, fingerprint, now, by, alert=None):
        self.calls.append(("unack", fingerprint, by))

    async def notify_notified(self, fingerprint, kind, now, transition, alert=None):
        self.calls.append(("notified", kind, transition))


class Updates:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def __call__(self, alert, kind, now, transition, only, *, receivers=None):
        self.sent.append((alert.name, kind, transition, only))
        self.receivers = receivers


@pytest.fixture
async def parts(tmp_path, shipped):
    store = SQLiteStore(tmp_path / "state.db")
    await store.open()
    clock, deliver, esc, silences = Clock(), Deliver(), Escalations(), Silences()
    pipeline = AlertPipeline(AlertProvider(store), esc, silences, clock=clock)
    pipeline.configure(shipped, route=build_route(shipped.route), deliver=deliver, external_url="http://mon",
                       send_resolved=lambda r: True)
    yield store, clock, deliver, esc, silences, pipeline
    await store.close()


async def test_ingest_is_durable_first_then_groups_then_escalation(parts):
    store, clock, deliver, esc, _, pipeline = parts
    a = Alert.firing(CRIT, starts_at=T0)
    assert await pipeline.ingest([a], source="api:10.0.0.5") == 1
    assert (await store.get_alert(a.fingerprint))["state"] == "firing"
    assert deliver.groups == []  # new groups wait group_wait; escalation does not
    assert esc.calls == [("advance", [("ApiDown", "active")], [a.fingerprint])]
    for t in (T0 + 10, T0 + 20, T0 + 30):
        clock.t = t
        await pipeline.tick()
    assert deliver.groups == [("pager", ["ApiDown"]), ("slack-incidents", ["ApiDown"])]  # 10s and 30s
    assert esc.calls[1:3] == [("advance", [("ApiDown", "active")], None), ("prune",)]
    old = Alert.firing(dict(CRIT, alertname="DbDown"), starts_at=T0 - 3600)
    await pipeline.ingest([old])
    assert deliver.groups[2:] == [("pager", ["DbDown"]), ("slack-incidents", ["DbDown"])]  # older: at once
    assert pipeline.receivers_for(a.labels) == ["pager", "slack-incidents"]


async def test_resolved_alerts_end_their_walk_and_timeouts_resolve(parts):
    store, clock, _, esc, _, pipeline = parts
    a = Alert.firing(CRIT, starts_at=T0 - 60)
    await pipeline.ingest([a.resolve(T0)], source="webhook:1.2.3.4")
    assert esc.calls[0] == ("resolve", a.fingerprint, "webhook", True)
    timeout = Alert(a.labels, {}, T0, T0 + 300, timeout=True)
    await pipeline.ingest([timeout])
    clock.t = T0 + 301
    await pipeline.tick()
    assert ("resolve", a.fingerprint, "timeout", True) in esc.calls
    assert (await store.get_alert(a.fingerprint))["state"] == "resolved"


async def test_pending_rule_alerts_are_skipped(parts):
    from model.labels import Labels
    from monitor.rules.alerting import Alert as RuleAlert

    *_, pipeline = parts
    assert await pipeline.ingest([RuleAlert(Labels.of(CRIT), {}, "pending", T0)]) == 0


async def test_acknowledgements_audit_first_and_tell_receivers(parts):
    store, clock, _, esc, _, pipeline = parts
    updates = Updates()
    acks = Acknowledgements(store, pipeline, esc, updates, clock=clock)
    with pytest.raises(NotFoundError):
        await acks.acknowledge("0000000000000000", "alice", "api:test")
    a = Alert.firing(CRIT, starts_at=T0 - 60)
    await pipeline.ingest([a])
    out = await acks.acknowledge(a.fingerprint, "alice", "api:10.0.0.5", comment="on it")
    assert out == {"fingerprint": a.fingerprint, "status": "no_escalation",
                   "notified_receivers": ["pager", "slack-incidents"],
                   "outcome": "acknowledged; no escalation was running (its severity has no escalation policy "
                              "or its receivers do not page); updated receivers: pager, slack-incidents"}
    assert updates.receivers == ["pager", "slack-incidents"]  # those the notification log says were told
    [audit] = await store.list_audit(target=a.fingerprint)
    assert (audit["actor"], audit["action"], audit["source"]) == ("alice", "ack", "api:10.0.0.5")
    transition = f"ack:{a.fingerprint}:{int(T0 * 1000)}"
    assert updates.sent == [("ApiDown", "acknowledged", transition, ["slack", "pagerduty"])]
    assert esc.calls[-2:] == [("ack", a.fingerprint, "alice"), ("notified", "acknowledged", transition)]
    await acks.unacknowledge(a.fingerprint, "alice", "api:10.0.0.5")
    assert esc.calls[-1] == ("unack", a.fingerprint, "alice")
    await acks.resolve(a.fingerprint, "bob", "cli:x")
    assert updates.sent[-1][:2] == ("ApiDown", "resolved")
    # held resolved; its groups drop it, as its receivers were told (no flush announces it again)
    assert pipeline.provider.get(a.fingerprint).resolved(T0) and pipeline.marked(T0) == []
    assert [e["event"] for e in await store.list_timeline(a.fingerprint)] == [
        "acknowledged", "unacknowledged", "resolved"]  # no walk: acks write the timeline themselves
    assert [r["action"] for r in await store.list_acks(a.fingerprint)] == ["ack", "unack", "resolve"]


async def test_silence_admin_persists_audits_and_mutes(parts):
    store, clock, _, _, silences, pipeline = parts
    admin = SilenceAdmin(store, silences, pipeline, clock=clock)
    a = Alert.firing(CRIT, starts_at=T0 - 60)
    await pipeline.ingest([a])
    sid = await admin.create_silence('{service="api"}', T0, T0 + 3600, "alice", "deploy", source="api:x")
    assert [m.silenced_by for m in pipeline.marked(T0)] == [(sid,)]
    assert admin.get_silence(sid)["status"] == {"state": "active"}
    with pytest.raises(SilenceError, match="in the past"):
        await admin.create_silence('{service="api"}', T0 - 7200, T0 - 3600, "alice")
    with pytest.raises(NotFoundError):
        await admin.create_silence('{service="api"}', T0, T0 + 60, "alice", silence_id="nope")
    await admin.expire_silence(sid, "bob", "cli:y", now=T0 + 60)
    assert [s["status"]["state"] for s in admin.list_silences(T0 + 61)] == ["expired"]
    assert {r["action"] for r in await store.list_audit()} == {"silence.create", "silence.expire"}
    restored = Silences()
    assert await SilenceAdmin(store, restored, pipeline, clock=clock).restore(T0 + 61) == 1
    assert restored.get(sid).ends_at == T0 + 60


async def test_views_show_markers_receivers_and_timeline(parts):
    store, clock, _, esc, _, pipeline = parts
    views = AlertViews(store, pipeline, esc, clock=clock)
    a = Alert.firing(CRIT, starts_at=T0 - 60)
    await pipeline.ingest([a])
    [shown] = views.alerts_api()
    assert shown["receivers"] == [{"name": "pager"}, {"name": "slack-incidents"}]
    assert shown["escalation"] == {"fingerprint": a.fingerprint, "status": "no_escalation"}
    assert shown["startsAt"] == "2026-11-30T09:59:00.000Z" and shown["endsAt"] == "0001-01-01T00:00:00Z"
    await store.append_timeline(a.fingerprint, T0 + 1.5, "triggered", {"level": 0})
    assert await views.timeline(a.fingerprint) == [
        {"at": T0 + 1.5, "time": "2026-11-30T10:00:01.500Z", "event": "triggered", "detail": {"level": 0}}]
    with pytest.raises(NotFoundError):
        await views.timeline("0000000000000000")


async def test_a_big_intake_is_taken_in_chunks_and_escalated_as_one_batch(parts):
    store, clock, deliver, esc, _, pipeline = parts
    storm = [Alert.firing(dict(CRIT, instance=f"host-{i}"), starts_at=T0 - 3600) for i in range(500)]
    assert await pipeline.ingest(storm, source="api:10.0.0.5") == 500
    assert len(await store.list_alerts("firing")) == 500
    # the escalation stage sees the whole batch once (not once per chunk)
    [(kind, marked, only)] = esc.calls
    assert kind == "advance" and len(marked) == 500 and only == sorted(a.fingerprint for a in storm)
    # started an hour ago: their groups (one per receiver) flushed at once, all 500 alerts in each
    assert [(r, len(names)) for r, names in deliver.groups] == [("pager", 500), ("slack-incidents", 500)]
