"""The alerting runtime: rule and intake alerts -> store -> mutes -> dispatcher -> outbox, plus escalation.

:class:`AlertService` joins the pure parts (``route``, ``dispatch``, ``inhibit``, ``silence``,
``maintenance``, ``monitor.escalation``) to the durable store and the outbox:

1. :meth:`AlertService.ingest` converts alerts (rule alerts: ``starts_at = active_at``,
   ``ends_at = resolved_at``; intake alerts as parsed), writes them to the store **before** any
   effect, feeds the :class:`~monitor.alerting.dispatch.Dispatcher` (which marks muted alerts
   via silences, inhibition and maintenance windows), writes each
   :class:`~monitor.alerting.dispatch.Notification` to the outbox through
   :class:`~monitor.notify.pipeline.OutboxStage`, starts escalation for firing unmuted alerts
   and ends it for resolved ones.
2. :meth:`AlertService.tick` (every second) flushes due aggregation groups, starts escalations
   of alerts that became unmuted, resolves intake alerts whose ``endsAt`` passed and steps due
   escalation deadlines.
3. People act through :meth:`acknowledge`, :meth:`unacknowledge`, :meth:`resolve` and the
   silence methods; each writes the audit log (who, what, when, from where).

While an alert is muted (silence, inhibition, maintenance window) its escalation is held; if a
step fell due meanwhile, the walk restarts at the first step when the mute ends.

Restart recovery (:meth:`start`): silences, escalations and firing alerts are reloaded from the
store; deadlines continue from the persisted state. Re-sent notifications are deduplicated by
the outbox key: a group's transitions are numbered in the store (``kv`` ``nflog:<group key>``),
so the same content within ``repeat_interval`` is the same row, and a ``repeat_interval``
repeat is a new one (Alertmanager ``nflog`` + ``DedupStage``, persisted).

All times are Unix seconds; methods take ``now`` (default: the injected clock).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.alerting.alert import Alert, rfc3339, to_datetime
from monitor.alerting.dispatch import Dispatcher, MuteStages, Notification
from monitor.alerting.inhibit import Inhibitor
from monitor.alerting.maintenance import MaintenanceWindows, TimeIntervals
from monitor.alerting.route import Route, build_route
from monitor.alerting.silence import Silence, Silences, SilenceError, matcher_from_api
from monitor.errors import NotFoundError
from monitor.escalation.service import EscalationMetrics, EscalationRunner
from monitor.notify.base import Integration, Message
from monitor.notify.links import make_token
from monitor.notify.pipeline import OutboxStage, transition_id

__all__ = ["AlertService", "AlertingMetrics", "from_rule_alert", "alert_payload"]

#: Seconds a resolved escalation is remembered (so a by-hand resolved alert does not page again).
ESCALATION_RETENTION = 7 * 86400.0


class AlertingMetrics:
    """Alert-level gauges and counters on an injected registry.

    * ``monitor_alerts{state}``: alerts held by the dispatcher, ``active`` or ``suppressed``;
    * ``monitor_alerts_silenced`` / ``monitor_alerts_inhibited`` / ``monitor_alerts_muted``:
      alerts currently muted by a silence, an inhibition rule, a maintenance window;
    * ``monitor_alerts_received_total{source}``: alerts handed to :meth:`AlertService.ingest`;
    * ``monitor_notifications_enqueued_total{receiver}``: outbox rows written for groups.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Gauge("monitor_alerts", "Alerts held for routing, by state (active, suppressed).",
                            ["state"], registry=registry)
        self.silenced = Gauge("monitor_alerts_silenced", "Alerts muted by a silence.", registry=registry)
        self.inhibited = Gauge("monitor_alerts_inhibited", "Alerts muted by an inhibition rule.", registry=registry)
        self.muted = Gauge("monitor_alerts_muted", "Alerts muted by a maintenance window.", registry=registry)
        self.received = Counter("monitor_alerts_received", "Alerts received, by source (rules, api, webhook).",
                                ["source"], registry=registry)
        self.enqueued = Counter("monitor_notifications_enqueued", "Outbox rows written for alert groups.",
                                ["receiver"], registry=registry)
        for s in ("active", "suppressed"):
            self.alerts.labels(s)


def from_rule_alert(a: Any, generator_url: str = "") -> Alert | None:
    """Convert a ``monitor.rules.alerting.Alert`` (``None`` for a pending one).

    Prometheus ``rules/alerting.go`` ``sendAlerts``: ``StartsAt = ActiveAt``, ``EndsAt =
    ResolvedAt`` for a resolved alert.
    """
    if a.state == "pending":
        return None
    ends = a.resolved_at if a.state == "inactive" else None
    if a.state == "inactive" and ends is None:
        ends = a.active_at
    return Alert(a.labels, dict(a.annotations), a.active_at, ends, generator_url)


def alert_payload(a: Alert, now: float, value: str = "") -> dict[str, Any]:
    """The normalised dict every channel reads (``monitor.notify.base.alert_dict`` shape)."""
    return {"status": a.status(now), "labels": a.labels.as_dict(), "annotations": dict(a.annotations),
            "starts_at": rfc3339(a.starts_at), "ends_at": rfc3339(a.ends_at) if a.ends_at else "",
            "generator_url": a.generator_url, "fingerprint": a.fingerprint,
            "value": value or a.annotations.get("value", "")}


def _silence_from_row(row: Mapping[str, Any]) -> Silence:
    return Silence(row["id"], tuple(matcher_from_api(m) for m in row["matchers"]), row["starts_at"],
                   row["ends_at"], row.get("created_by") or "", row.get("comment") or "",
                   row.get("updated_at") or row["starts_at"])


class AlertService:
    """The alerting and escalation runtime of the daemon.

    :param config: the whole validated ``Config`` (``alerting``, ``receivers``, ``api``, ``server``).
    :param store: the opened state store.
    :param integrations: ``{receiver: [Integration, ...]}`` (``build_integrations``).
    :param clock: Unix-seconds clock (tests inject a manual one).
    :param registry: registry for the metrics (none registered when ``None``).
    :param logger: logger (``monitor.alerting`` by default).

    Example::

        svc = AlertService(config, store, integrations, clock=clock, registry=registry)
        await svc.start()                    # reload silences, escalations, firing alerts
        await svc.ingest(rule_alerts, source="rules")
        await svc.tick()                     # every second
        await svc.acknowledge(fp, "alice", "api:10.0.0.5")
    """

    def __init__(self, config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]], *,
                 clock: Callable[[], float] = time.time, registry: CollectorRegistry | None = None,
                 logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.clock = clock
        self.log = logger or logging.getLogger("monitor.alerting")
        self.metrics = AlertingMetrics(registry) if registry is not None else None
        self.esc_metrics = EscalationMetrics(registry) if registry is not None else None
        self.silences = Silences()
        self._lock = asyncio.Lock()
        self._values: dict[str, str] = {}
        self._persisted: dict[str, tuple] = {}
        self._current: dict[str, Alert] = {}
        self.stage = OutboxStage(store, integrations)
        self.escalation = EscalationRunner(
            config.alerting, store, integrations, self.stage, receivers_for=self.receivers_for,
            message_kw=self._message_kw, alert_for=self._alert_for, metrics=self.esc_metrics, logger=self.log)
        self.configure(config, integrations)

    # -- configuration --------------------------------------------------------------------------

    def configure(self, config: Any, integrations: Mapping[str, Sequence[Integration]]) -> None:
        """Swap route, inhibition, maintenance windows, receivers and policy (config reload).

        The dispatcher is rebuilt and its alerts carried over, so groups re-form under the new
        route; the outbox numbering keeps unchanged groups from sending again. Running
        escalations keep their frozen snapshots.
        """
        self.config = config
        alerting = config.alerting
        self.external_url = config.server.external_url
        api = config.api
        key = getattr(api, "link_key", None)
        self.link_key = key.get_secret_value() if key is not None else ""
        self.link_ttl = float(getattr(api, "link_ttl", 86400.0))
        self.resolve_timeout = float(alerting.resolve_timeout)
        self.integrations = integrations
        self.stage.integrations = integrations
        self.route: Route | None = build_route(alerting.route) if alerting.route is not None else None
        intervals = TimeIntervals.from_config(alerting.time_intervals)
        mutes = MuteStages(Inhibitor.from_config(alerting.inhibit_rules), self.silences,
                           MaintenanceWindows.from_config(alerting))
        old = getattr(self, "dispatcher", None)
        self.dispatcher = Dispatcher(self.route, mutes=mutes, time_intervals=intervals,
                                     send_resolved=self._send_resolved) if self.route is not None else None
        if old is not None and self.dispatcher is not None:
            now = self.clock()
            self.dispatcher.put(old.alerts(now), now)  # carry alerts over (markers are recomputed)
        self.escalation.configure(alerting, integrations)

    def _send_resolved(self, receiver: str) -> bool:
        return any(i.send_resolved for i in self.integrations.get(receiver, ()))

    def receivers_for(self, labels: Mapping[str, str] | Any) -> list[str]:
        """The receivers an alert with ``labels`` routes to, in route order."""
        if self.route is None:
            return []
        return list(dict.fromkeys(m.receiver for m in self.route.routes_for(labels)))

    def _message_kw(self, fingerprint: str) -> dict[str, Any]:
        kw: dict[str, Any] = {"external_url": self.external_url}
        if self.link_key:
            exp = self.clock() + self.link_ttl
            kw["ack_url"] = f"{self.external_url}/ack/{make_token(fingerprint, 'ack', exp, self.link_key)}"
            kw["resolve_url"] = f"{self.external_url}/ack/{make_token(fingerprint, 'resolve', exp, self.link_key)}"
        return kw

    def _alert_for(self, fingerprint: str) -> dict[str, Any] | None:
        a = self._current.get(fingerprint)
        return alert_payload(a, self.clock(), self._values.get(fingerprint, "")) if a is not None else None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, now: float | None = None) -> None:
        """Reload silences, escalations and firing alerts from the store (restart recovery)."""
        now = self.clock() if now is None else now
        async with self._lock:
            for row in await self.store.list_silences():
                try:
                    self.silences.set(_silence_from_row(row))
                except (KeyError, ValueError) as exc:
                    self.log.error("unreadable stored silence skipped", extra={"silence": row.get("id"),
                                                                               "error": str(exc)})
            n = await self.escalation.load()
            alerts = []
            for row in await self.store.list_alerts("firing"):
                a = Alert(row["labels"], row.get("annotations") or {}, row["starts_at"], row.get("ends_at"),
                          row.get("generator_url") or "")
                alerts.append(a)
                self._current[a.fingerprint] = a
                self._persisted[a.fingerprint] = self._persist_key(a, now)
            if self.dispatcher is not None:
                self.dispatcher.put(alerts, now)
        self.log.info("alerting state restored", extra={"alerts": len(alerts), "escalations": n,
                                                        "silences": len(self.silences.list(now))})

    # -- alerts ---------------------------------------------------------------------------------

    async def ingest(self, alerts: Iterable[Any], now: float | None = None, source: str = "rules") -> int:
        """Take firing and resolved alerts (rule alerts or :class:`Alert`) and act on them.

        :param source: ``rules``, ``api`` (v2 intake) or ``webhook`` (metrics label, audit).
        :return: the number of alerts taken (pending rule alerts are skipped).
        """
        now = self.clock() if now is None else now
        converted: list[Alert] = []
        for a in alerts:
            if not isinstance(a, Alert):
                value = getattr(a, "value", None)
                a2 = from_rule_alert(a, f"{self.external_url}/api/v1/alerts")
                if a2 is None:
                    continue
                if value is not None:
                    self._values[a2.fingerprint] = f"{value:g}" if isinstance(value, float) else str(value)
                a = a2
            converted.append(a)
        if not converted:
            return 0
        if self.metrics is not None:
            self.metrics.received.labels(source.split(":", 1)[0]).inc(len(converted))
        async with self._lock:
            for a in converted:  # durable first
                await self._persist(a, now)
            for a in converted:
                self._current[a.fingerprint] = a
                if a.resolved(now):
                    await self.escalation.resolve(a.fingerprint, now, by=source.split(":", 1)[0])
            if self.dispatcher is not None:
                self.dispatcher.put(converted, now)
                await self._deliver(self.dispatcher.flush(now), now)
            marked = self._marked(now)
            await self._start_escalations(now, marked, {a.fingerprint for a in converted})
            await self.escalation.step_due(now, self._suppressed(marked, now))
            self._gauges(now, marked)
        return len(converted)

    @staticmethod
    def _persist_key(a: Alert, now: float) -> tuple:
        return (a.status(now), a.starts_at, a.ends_at, tuple(sorted(a.annotations.items())), a.generator_url)

    async def _persist(self, a: Alert, now: float) -> None:
        key = self._persist_key(a, now)
        if self._persisted.get(a.fingerprint) == key:
            return
        await self.store.upsert_alert({
            "fingerprint": a.fingerprint, "labels": a.labels.as_dict(), "annotations": dict(a.annotations),
            "state": a.status(now), "starts_at": a.starts_at.timestamp(),
            "ends_at": a.ends_at.timestamp() if a.ends_at else None, "generator_url": a.generator_url}, now)
        self._persisted[a.fingerprint] = key

    async def tick(self, now: float | None = None) -> None:
        """Advance timers: resolve timed-out intake alerts, flush due groups, step escalations."""
        now = self.clock() if now is None else now
        async with self._lock:
            for fp, a in list(self._current.items()):
                if a.resolved(now):
                    if self._persisted.get(fp, ("",))[0] != "resolved":
                        await self._persist(a, now)
                    esc = self.escalation.get(fp)
                    if esc is not None and esc.state.resolved_at is None:
                        await self.escalation.resolve(fp, now, by="timeout" if a.timeout else "rule")
                    if a.ends_at is not None and a.ends_at.timestamp() < now - ESCALATION_RETENTION:
                        del self._current[fp]
            if self.dispatcher is not None:
                wake = self.dispatcher.next_wakeup()
                if wake is not None and wake.timestamp() <= now:
                    await self._deliver(self.dispatcher.flush(now), now)
            marked = self._marked(now)
            await self._start_escalations(now, marked, None)
            await self.escalation.step_due(now, self._suppressed(marked, now))
            await self.escalation.prune(now, ESCALATION_RETENTION)
            self._gauges(now, marked)

    def _marked(self, now: float) -> list[Alert]:
        if self.dispatcher is not None:
            return self.dispatcher.alerts(now)
        return sorted(self._current.values(), key=lambda a: a.labels)

    @staticmethod
    def _suppressed(marked: list[Alert], now: float) -> set[str]:
        """Fingerprints of firing alerts muted now (their escalations are held)."""
        return {a.fingerprint for a in marked if a.state != "active" and not a.resolved(now)}

    async def _start_escalations(self, now: float, marked: list[Alert], only: set[str] | None) -> None:
        if not self.escalation.enabled:
            return
        for a in marked:
            if only is not None and a.fingerprint not in only:
                continue
            if a.resolved(now) or a.state != "active":
                continue
            if not self.escalation.policy.escalates(a.labels):  # severity "none" (the Watchdog)
                continue
            if self.escalation.needs_start(a.fingerprint, a.starts_at.timestamp()):
                await self.escalation.start(a.labels.as_dict(), now)

    async def _deliver(self, notifications: list[Notification], now: float) -> None:
        for n in notifications:
            kind = "firing" if n.firing else "resolved"
            payload = [alert_payload(a, now, self._values.get(a.fingerprint, "")) for a in n.alerts]
            kw = self._message_kw(n.firing[0].fingerprint) if len(n.firing) == 1 else {
                "external_url": self.external_url}
            prio = ""
            if n.firing and self.escalation.enabled:
                prio = self.escalation.policy.priority_for(n.firing[0].labels).name
            msg = Message.build(kind, n.receiver, payload, group_key=n.group_key,
                                group_labels=n.group_labels.as_dict(), priority=prio, **kw)
            transition = await self._transition(n, msg, now)
            try:
                written = await self.stage.enqueue(msg, now, transition=transition)
            except KeyError:
                self.log.error("notification for an unknown receiver dropped", extra={"receiver": n.receiver})
                continue
            if written and self.metrics is not None:
                self.metrics.enqueued.labels(n.receiver).inc(len(written))

    async def _transition(self, n: Notification, msg: Message, now: float) -> str:
        """Number a group's transitions persistently: same content within ``repeat_interval`` =
        same number (a replay after restart is deduplicated); new content or a repeat = next."""
        tid = transition_id(msg)
        key = f"nflog:{n.group_key}"
        last = await self.store.kv_get(key)
        seq = 0
        if isinstance(last, dict):
            seq = int(last.get("seq", 0))
            replay = last.get("tid") == tid and now - float(last.get("at", 0)) < n.route.repeat_interval
            if replay:
                return f"{tid}#{seq}"
            seq += 1
        await self.store.kv_set(key, {"tid": tid, "seq": seq, "at": now}, now)
        return f"{tid}#{seq}"

    def _gauges(self, now: float, marked: list[Alert] | None = None) -> None:
        if self.metrics is None:
            return
        marked = [a for a in (self._marked(now) if marked is None else marked) if not a.resolved(now)]
        self.metrics.silenced.set(sum(1 for a in marked if a.silenced_by))
        self.metrics.inhibited.set(sum(1 for a in marked if a.inhibited_by))
        self.metrics.muted.set(sum(1 for a in marked if a.muted_by))
        self.metrics.alerts.labels("active").set(sum(1 for a in marked if a.state == "active"))
        self.metrics.alerts.labels("suppressed").set(sum(1 for a in marked if a.state != "active"))

    # -- people: acknowledge, resolve -----------------------------------------------------------

    async def _known(self, fingerprint: str) -> dict[str, Any]:
        row = await self.store.get_alert(fingerprint)
        if row is None and fingerprint not in self._current:
            raise NotFoundError("alert", fingerprint)
        return row or {}

    async def _to_receivers(self, fingerprint: str, kind: str, now: float, transition: str,
                            only: Sequence[str] | None) -> None:
        a = self._current.get(fingerprint)
        if a is None:
            return
        payload = alert_payload(a, now, self._values.get(fingerprint, ""))
        if kind == "resolved":
            payload["status"] = "resolved"
            payload["ends_at"] = payload["ends_at"] or rfc3339(to_datetime(now))
        for receiver in self.receivers_for(a.labels):
            msg = Message.build(kind, receiver, [payload], dedup_key=fingerprint, **self._message_kw(fingerprint))
            try:
                await self.stage.enqueue(msg, now, transition=transition, only=only)
            except KeyError:
                continue

    async def acknowledge(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                          comment: str = "") -> dict[str, Any]:
        """Acknowledge an alert: stop its escalation; update Slack messages, acknowledge pages.

        :param actor: who (token name, Slack user id, ...). :param source: from where
            (``api:10.0.0.5``, ``slack:U123``, ``link:10.0.0.5``, ``cli:...``).
        :return: ``{"fingerprint", "status", "acked_by", "acked_at", "ack_expires_at"}``.
        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        async with self._lock:
            await self._known(fingerprint)
            esc = self.escalation.get(fingerprint)
            if esc is not None and esc.state.resolved_at is not None:
                esc = None  # nothing to stop; the ack is still recorded
            expires = (now + esc.snap.ack_timeout) if esc is not None and esc.snap.ack_timeout > 0 else None
            await self.store.record_ack(fingerprint, "ack", actor, now, source=source, expires_at=expires,
                                        comment=comment)
            await self.store.audit(actor, "ack", now, target=fingerprint, source=source,
                                   detail={"comment": comment} if comment else None)
            await self.escalation.acknowledge(fingerprint, now, actor, source)
            if self.esc_metrics is not None:
                self.esc_metrics.acks.labels(source.split(":", 1)[0]).inc()
            transition = f"ack:{fingerprint}:{int(now * 1000)}"
            await self._to_receivers(fingerprint, "acknowledged", now, transition, ["slack", "pagerduty"])
            await self.escalation.notify_notified(fingerprint, "acknowledged", now, transition)
        self.log.info("alert acknowledged", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._status(fingerprint)

    async def unacknowledge(self, fingerprint: str, actor: str, source: str,
                            now: float | None = None) -> dict[str, Any]:
        """Withdraw an acknowledgement: escalation restarts from the first step at once.

        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        async with self._lock:
            await self._known(fingerprint)
            await self.store.record_ack(fingerprint, "unack", actor, now, source=source)
            await self.store.audit(actor, "unack", now, target=fingerprint, source=source)
            await self.escalation.unacknowledge(fingerprint, now, actor)
        self.log.info("alert unacknowledged", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._status(fingerprint)

    async def resolve(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                      comment: str = "") -> dict[str, Any]:
        """Resolve by hand: end escalation (resolved notices to everyone notified) and send
        ``resolved`` to the receivers (Slack message updated, PagerDuty incident resolved).

        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        async with self._lock:
            await self._known(fingerprint)
            await self.store.record_ack(fingerprint, "resolve", actor, now, source=source, comment=comment)
            await self.store.audit(actor, "resolve", now, target=fingerprint, source=source,
                                   detail={"comment": comment} if comment else None)
            await self.escalation.resolve(fingerprint, now, actor)
            await self._to_receivers(fingerprint, "resolved", now, f"resolve:{fingerprint}:{int(now * 1000)}", None)
            # The group must not announce it as firing afterwards (e.g. at its first flush).
            held = next((a for a in self.dispatcher.alerts(now) if a.fingerprint == fingerprint), None)
            if held is not None and not held.resolved(now):
                self.dispatcher.put([held.resolve(now).with_marks()], now)
        self.log.info("alert resolved by hand", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._status(fingerprint)

    def _status(self, fingerprint: str) -> dict[str, Any]:
        esc = self.escalation.get(fingerprint)
        out: dict[str, Any] = {"fingerprint": fingerprint, "status": "no_escalation"}
        if esc is not None:
            s = esc.state
            out.update(status=s.status, priority=esc.snap.priority, level=s.level, acked_by=s.acked_by,
                       acked_at=s.acked_at, ack_expires_at=s.ack_expires_at, resolved_at=s.resolved_at,
                       resolved_by=s.resolved_by, next_deadline=esc.deadline)
        return out

    # -- silences -------------------------------------------------------------------------------

    async def create_silence(self, matchers: Sequence[Mapping[str, Any]] | str, starts_at: float, ends_at: float,
                             created_by: str, comment: str = "", *, actor: str = "", source: str = "",
                             now: float | None = None, silence_id: str | None = None) -> str:
        """Validate and store a silence; return its id (Alertmanager ``PostSilences``).

        :param matchers: v2 API matchers ``[{name, value, isRegex, isEqual}]`` or a string
            ``{alertname="X", service=~"api|db"}``.
        :param silence_id: replace an existing silence (it is expired and a new one created,
            as Alertmanager does when a silence's matchers change).
        :raises SilenceError: invalid silence. :raises NotFoundError: unknown ``silence_id``.
        """
        now = self.clock() if now is None else now
        if isinstance(matchers, str):
            parsed = Silence.create("new", matchers, starts_at, ends_at, created_by, comment).matchers
        else:
            try:
                parsed = tuple(matcher_from_api(m) for m in matchers)
            except (KeyError, TypeError, ValueError) as exc:
                raise SilenceError(f"invalid matchers: {exc}") from None
        Silence.create("new", parsed, starts_at, ends_at, created_by, comment)  # validate
        if ends_at <= now:
            raise SilenceError("end time can't be in the past")
        api = [{"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"), "isEqual": m.op in ("=", "=~")}
               for m in parsed]
        async with self._lock:
            if silence_id:
                old = self.silences.get(silence_id)
                if old is None:
                    raise NotFoundError("silence", silence_id)
                if old.state(now) != "expired":
                    await self.store.expire_silence(silence_id, now)
                    self.silences.expire(silence_id, now)
            sid = await self.store.create_silence(api, starts_at, ends_at, created_by, now, comment=comment)
            self.silences.set(Silence(sid, parsed, starts_at, ends_at, created_by, comment, now))
            await self.store.audit(actor or created_by, "silence.create", now, target=sid, source=source,
                                   detail={"matchers": api, "starts_at": starts_at, "ends_at": ends_at,
                                           "comment": comment})
            self._gauges(now)
        self.log.info("silence created", extra={"silence": sid, "actor": actor or created_by, "source": source})
        return sid

    async def expire_silence(self, silence_id: str, actor: str, source: str = "", now: float | None = None) -> None:
        """Expire a silence now. :raises NotFoundError: unknown id. :raises SilenceError: already expired."""
        now = self.clock() if now is None else now
        async with self._lock:
            if self.silences.get(silence_id) is None:
                raise NotFoundError("silence", silence_id)
            self.silences.expire(silence_id, now)
            await self.store.expire_silence(silence_id, now)
            await self.store.audit(actor, "silence.expire", now, target=silence_id, source=source)
            self._gauges(now)
        self.log.info("silence expired", extra={"silence": silence_id, "actor": actor, "source": source})

    def list_silences(self, now: float | None = None) -> list[dict[str, Any]]:
        """Return every silence in the v2 API ``gettableSilence`` shape."""
        now = self.clock() if now is None else now
        return [s.to_api(now) for s in self.silences.list(now)]

    def get_silence(self, silence_id: str, now: float | None = None) -> dict[str, Any]:
        """Return one silence (v2 shape). :raises NotFoundError: unknown id."""
        s = self.silences.get(silence_id)
        if s is None:
            raise NotFoundError("silence", silence_id)
        return s.to_api(self.clock() if now is None else now)

    # -- views ----------------------------------------------------------------------------------

    def alerts_api(self, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts in the v2 ``gettableAlert`` shape (muted ones included, with markers), plus
        ``receivers`` and our ``escalation`` status."""
        now = self.clock() if now is None else now
        out = []
        for a in self._marked(now):
            d = a.to_api(now)
            d["receivers"] = [{"name": r} for r in self.receivers_for(a.labels)]
            esc = self._status(a.fingerprint)
            d["escalation"] = esc
            out.append(d)
        return out

    async def timeline(self, fingerprint: str) -> list[dict[str, Any]]:
        """The alert's timeline entries and ack history, oldest first.

        :raises NotFoundError: unknown alert.
        """
        rows = await self.store.list_timeline(fingerprint)
        if not rows and await self.store.get_alert(fingerprint) is None:
            raise NotFoundError("alert", fingerprint)
        return [{"at": r["at"], "time": rfc3339(to_datetime(r["at"])), "event": r["event"],
                 "detail": r.get("detail")} for r in rows]
