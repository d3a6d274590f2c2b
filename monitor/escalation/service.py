"""The escalation runtime: persisted walks over :mod:`monitor.escalation.engine`, sent through the outbox.

:class:`EscalationRunner` keeps one ``(snapshot, state)`` per alert fingerprint, in memory and
in the state store (``save_escalation``), and turns every engine :class:`~monitor.escalation.engine.Action`
into outbox rows addressed to the person's contact through an integration of the matching kind:

====================  ==============  ===============================================
escalation channel    integration     recipient (``Message.recipient``)
====================  ==============  ===============================================
``page``              ``pagerduty``   the person's ``pagerduty_routing_key``
``slack_dm``          ``slack``       the person's ``slack_user_id`` (a DM)
``email``             ``email``       the person's ``email``
====================  ==============  ===============================================

The integration is taken from the receivers the alert routes to first (config order), then from
any receiver. Order of effects (DESIGN.md "Durable state"): outbox rows first, then the timeline,
then the new state — a crash in between replays the step after a restart, and the outbox
``dedup_key`` (``<action dedup key>:<channel>``) makes the replay a no-op, so nothing pages twice.

Each step writes ``triggered`` or ``failed: <code>`` (``no_one_on_call``, ``no_contact``,
``no_integration``) to the alert timeline (Grafana OnCall
``escalation_snapshot/snapshot_classes/escalation_policy_snapshot.py``; STYLE guideline 14).
Times are Unix seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.escalation import engine
from monitor.escalation.engine import (NOTIFY, RESOLVED_NOTICE, SLA_BREACH, Action, EscalationState,
                                       StepResult, TimelineEntry)
from monitor.escalation.policy import EscalationPolicy, EscalationSnapshot, snapshot
from monitor.escalation.schedule import OnCallLookup
from monitor.notify.base import Integration, Message
from monitor.notify.pipeline import OutboxStage

__all__ = ["EscalationRunner", "EscalationMetrics", "CHANNEL_INTEGRATION", "Escalation"]

#: Escalation channel -> integration kind that delivers it.
CHANNEL_INTEGRATION = {"page": "pagerduty", "slack_dm": "slack", "email": "email"}
#: Escalation channel -> the person's contact field.
CHANNEL_CONTACT = {"page": "pagerduty_routing_key", "slack_dm": "slack_user_id", "email": "email"}
#: Engine action kind -> message kind.
MESSAGE_KIND = {NOTIFY: "escalation", SLA_BREACH: "sla_breach", RESOLVED_NOTICE: "resolved"}
#: Seconds-buckets of the time-to-acknowledge histogram (1 min .. 1 day).
MTTA_BUCKETS = (60, 120, 300, 600, 900, 1800, 2700, 3600, 7200, 14400, 43200, 86400)


class EscalationMetrics:
    """Escalation metrics on an injected registry.

    * ``monitor_escalation_steps_total{level, outcome}``: steps run (``level`` 1-based,
      ``outcome`` = ``triggered`` | ``failed``);
    * ``monitor_acknowledgements_total{source}``: acknowledgements by source (``api``, ``cli``,
      ``slack``, ``link``);
    * ``monitor_time_to_acknowledge_seconds{priority}``: escalation start to first ack (MTTA);
    * ``monitor_sla_breaches_total{priority}``: resolve deadlines passed while unresolved;
    * ``monitor_escalations_active``: escalations not resolved.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Counter("monitor_escalation_steps", "Escalation steps run, by level (1-based) and outcome.",
                             ["level", "outcome"], registry=registry)
        self.acks = Counter("monitor_acknowledgements", "Alert acknowledgements, by source.",
                            ["source"], registry=registry)
        self.mtta = Histogram("monitor_time_to_acknowledge_seconds",
                              "Seconds from escalation start to the first acknowledgement.",
                              ["priority"], buckets=MTTA_BUCKETS, registry=registry)
        self.sla_breaches = Counter("monitor_sla_breaches", "Alerts still unresolved at their resolve deadline.",
                                    ["priority"], registry=registry)
        self.active = Gauge("monitor_escalations_active", "Escalations started and not resolved.",
                            registry=registry)
        for source in ("api", "cli", "slack", "link"):
            self.acks.labels(source)


@dataclass
class Escalation:
    """One alert's escalation: the frozen snapshot and the walk state."""

    snap: EscalationSnapshot
    state: EscalationState

    @property
    def deadline(self) -> float | None:
        """When :func:`engine.step` should next run (Unix seconds), or ``None``."""
        if self.state.resolved_at is not None:
            return None
        times = [t for t in (self.state.next_at, self.state.ack_expires_at) if t is not None]
        if not self.state.sla_breached:
            times.append(self.snap.resolve_deadline)
        return min(times, default=None)


class EscalationRunner:
    """Run, persist and deliver escalations.

    :param alerting: the ``AlertingConfig`` (policy, schedules, people).
    :param store: the state store.
    :param integrations: ``{receiver: [Integration, ...]}``.
    :param stage: the :class:`OutboxStage` writing outbox rows.
    :param receivers_for: ``labels -> [receiver name]`` the alert routes to (integration preference).
    :param message_kw: ``fingerprint -> dict`` of extra ``Message.build`` keywords (links, URL).
    :param alert_for: ``fingerprint -> alert dict | None`` (the current alert, for message text).
    :param metrics: :class:`EscalationMetrics` or ``None``.

    Usage (the :class:`~monitor.alerting.service.AlertService` does this)::

        runner = EscalationRunner(cfg.alerting, store, integrations, stage, ...)
        await runner.load()                      # after a restart
        await runner.start(alert_labels, now)    # alert fires
        await runner.step_due(now)               # every tick
    """

    def __init__(self, alerting: Any, store: Any, integrations: Mapping[str, Sequence[Integration]],
                 stage: OutboxStage, *, receivers_for: Callable[[Mapping[str, str]], list[str]],
                 message_kw: Callable[[str], dict[str, Any]],
                 alert_for: Callable[[str], dict[str, Any] | None],
                 metrics: EscalationMetrics | None = None, logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.stage = stage
        self.receivers_for = receivers_for
        self.message_kw = message_kw
        self.alert_for = alert_for
        self.metrics = metrics
        self.log = logger or logging.getLogger("monitor.escalation")
        self.escalations: dict[str, Escalation] = {}
        self._held: set[str] = set()
        self.configure(alerting, integrations)

    def configure(self, alerting: Any, integrations: Mapping[str, Sequence[Integration]]) -> None:
        """Swap policy, schedules, people and integrations (reload). Running escalations keep
        their frozen snapshots; only on-call lookups and contacts use the new config."""
        self.alerting = alerting
        self.policy = EscalationPolicy.from_config(alerting.escalation)
        self.lookup = OnCallLookup.from_config(alerting)
        self.people = alerting.people
        self.integrations = integrations

    @property
    def enabled(self) -> bool:
        """Whether an escalation chain is configured."""
        return bool(self.policy.chain)

    # -- persistence ----------------------------------------------------------------------------

    async def load(self) -> int:
        """Reload every stored escalation (restart recovery); return how many."""
        self.escalations.clear()
        for row in await self.store.list_escalations():
            try:
                esc = Escalation(EscalationSnapshot.from_dict(row["snapshot"]),
                                 EscalationState.from_dict(row["state"]))
            except (KeyError, TypeError, ValueError) as exc:
                self.log.error("unreadable stored escalation skipped",
                               extra={"alert": row.get("fingerprint"), "error": str(exc)})
                continue
            self.escalations[esc.snap.fingerprint] = esc
        self._gauge()
        return len(self.escalations)

    def get(self, fingerprint: str) -> Escalation | None:
        """Return the escalation of an alert, or ``None``."""
        return self.escalations.get(fingerprint)

    def next_deadline(self) -> float | None:
        """The earliest deadline of any escalation (Unix seconds), or ``None``."""
        return min((d for e in self.escalations.values() if (d := e.deadline) is not None), default=None)

    def needs_start(self, fingerprint: str, starts_at: float) -> bool:
        """Whether an alert firing since ``starts_at`` should start a (new) escalation.

        Not when one runs, nor when the last one was resolved after the alert started (an alert
        resolved by hand keeps firing in the rule engine: it must not page again).
        """
        if not self.enabled:
            return False
        esc = self.escalations.get(fingerprint)
        if esc is None:
            return True
        resolved = esc.state.resolved_at
        return resolved is not None and starts_at > resolved

    async def _apply(self, esc: Escalation, res: StepResult, now: float) -> None:
        """Outbox rows, then timeline, then state (see the module docstring)."""
        fp = esc.snap.fingerprint
        failures: list[TimelineEntry] = []
        for action in res.actions:
            failures.extend(await self._send(esc.snap, action, now))
        for entry in list(res.timeline) + failures:
            await self.store.append_timeline(fp, entry.at, entry.event, {
                "level": entry.level, "person": entry.person, "detail": entry.detail})
            self._count(esc.snap, entry)
        esc.state = res.state
        await self.store.save_escalation(fp, esc.snap.to_dict(), esc.state.to_dict(), now)
        self._gauge()

    def _count(self, snap: EscalationSnapshot, entry: TimelineEntry) -> None:
        if self.metrics is None:
            return
        if entry.event == "triggered" and entry.level is not None:
            self.metrics.steps.labels(str(entry.level + 1), "triggered").inc()
        elif entry.event.startswith("failed") and entry.level is not None:
            self.metrics.steps.labels(str(entry.level + 1), "failed").inc()
        elif entry.event == "sla_breached":
            self.metrics.sla_breaches.labels(snap.priority).inc()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.active.set(sum(1 for e in self.escalations.values() if e.state.resolved_at is None))

    # -- transitions ----------------------------------------------------------------------------

    async def start(self, labels: Mapping[str, str], now: float) -> Escalation:
        """Freeze the policy for an alert with ``labels`` and run its first step."""
        snap = snapshot(self.policy, dict(labels), now)
        esc = Escalation(snap, EscalationState(snap.fingerprint))
        self.escalations[snap.fingerprint] = esc
        await self.store.append_timeline(snap.fingerprint, now, "escalation started",
                                         {"priority": snap.priority, "ack_deadline": snap.ack_deadline,
                                          "resolve_deadline": snap.resolve_deadline})
        await self._apply(esc, engine.start(snap, now, self.lookup), now)
        self.log.info("escalation started", extra={"alert": snap.fingerprint, "alertname": snap.alertname,
                                                   "priority": snap.priority})
        return esc

    async def step_due(self, now: float, suppressed: set[str] | None = None) -> int:
        """Run every escalation whose deadline is due; return how many were stepped.

        :param suppressed: fingerprints of alerts now silenced, inhibited or in a maintenance
            window: their escalations are held (no step runs). When one is released after a
            step fell due during the hold, the walk restarts from the first step (the primary is
            notified again) rather than catching up every missed level at once.
        """
        suppressed = suppressed or set()
        n = 0
        for fp, esc in list(self.escalations.items()):
            if esc.state.resolved_at is not None:
                self._held.discard(fp)
                continue
            if fp in suppressed:
                if fp not in self._held:
                    self._held.add(fp)
                    await self.store.append_timeline(fp, now, "paused", {"detail": "alert muted"})
                continue
            if fp in self._held:
                self._held.discard(fp)
                await self.store.append_timeline(fp, now, "resumed", {"detail": "alert no longer muted"})
                nxt = esc.state.next_at
                if nxt is not None and nxt < now and esc.state.acked_at is None:
                    await self._apply(esc, engine.unacknowledge(esc.snap, esc.state, now, self.lookup,
                                                                "unmuted"), now)
                    n += 1
                    continue
            d = esc.deadline
            if d is not None and d <= now:
                await self._apply(esc, engine.step(esc.snap, esc.state, now, self.lookup), now)
                n += 1
        return n

    async def acknowledge(self, fingerprint: str, now: float, by: str, source: str) -> Escalation | None:
        """Stop the walk (``ack_timeout`` re-triggers it); ``None`` when the alert has no escalation.

        The first acknowledgement of a walk is observed in the time-to-acknowledge histogram.
        """
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        first = esc.state.acked_at is None
        await self._apply(esc, engine.acknowledge(esc.snap, esc.state, now, by), now)
        if self.metrics is not None and first:
            self.metrics.mtta.labels(esc.snap.priority).observe(max(0.0, now - esc.snap.started_at))
        return esc

    async def unacknowledge(self, fingerprint: str, now: float, by: str) -> Escalation | None:
        """Restart the walk from the first step at once."""
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        await self._apply(esc, engine.unacknowledge(esc.snap, esc.state, now, self.lookup, by), now)
        return esc

    async def resolve(self, fingerprint: str, now: float, by: str) -> Escalation | None:
        """End the walk and send a resolved notice to everyone notified."""
        esc = self.escalations.get(fingerprint)
        if esc is None or esc.state.resolved_at is not None:
            return esc
        await self._apply(esc, engine.resolve(esc.snap, esc.state, now, by), now)
        return esc

    async def notify_notified(self, fingerprint: str, kind: str, now: float, transition: str,
                              channels: Iterable[str] = ("page", "slack_dm")) -> None:
        """Send ``kind`` (``acknowledged``) to everyone notified so far, on ``channels`` they had."""
        esc = self.escalations.get(fingerprint)
        if esc is None:
            return
        seen: set[tuple[str, str]] = set()
        for n in esc.state.notified:
            for ch in n.channels:
                if ch not in channels or (n.person, ch) in seen:
                    continue
                seen.add((n.person, ch))
                await self._send_one(esc.snap, kind, n.person, ch, now, f"{transition}:{n.person}:{ch}", "")

    async def prune(self, now: float, retention: float) -> None:
        """Forget escalations resolved more than ``retention`` seconds ago (store and memory)."""
        for fp, esc in list(self.escalations.items()):
            r = esc.state.resolved_at
            if r is not None and r < now - retention:
                del self.escalations[fp]
                await self.store.delete_escalation(fp)

    # -- delivery -------------------------------------------------------------------------------

    async def _send(self, snap: EscalationSnapshot, action: Action, now: float) -> list[TimelineEntry]:
        failures = []
        kind = MESSAGE_KIND[action.kind]
        title = self._title(snap, action)
        for ch in action.channels:
            code = await self._send_one(snap, kind, action.person, ch, now, f"{action.dedup_key}:{ch}", title)
            if code:
                failures.append(TimelineEntry(now, f"failed: {code}", action.level, action.person, ch))
        return failures

    async def _send_one(self, snap: EscalationSnapshot, kind: str, person: str, channel: str, now: float,
                        transition: str, title: str) -> str:
        """Enqueue one message; return ``""`` or a failure code (``no_contact``, ``no_integration``)."""
        contact = self._contact(person, channel)
        if not contact:
            self.log.warning("escalation contact missing", extra={"alert": snap.fingerprint, "person": person,
                                                                  "channel": channel})
            return "no_contact"
        integ = self._integration(CHANNEL_INTEGRATION[channel], snap.labels)
        if integ is None:
            self.log.warning("no integration for escalation channel", extra={
                "alert": snap.fingerprint, "channel": channel, "integration": CHANNEL_INTEGRATION[channel]})
            return "no_integration"
        alert = self.alert_for(snap.fingerprint) or {
            "labels": dict(snap.labels), "annotations": {}, "fingerprint": snap.fingerprint,
            "status": "resolved" if kind == "resolved" else "firing"}
        if kind == "resolved":
            alert = dict(alert, status="resolved")
        msg = Message.build(kind, integ.receiver, [alert], recipient=contact, priority=snap.priority,
                            title=title, dedup_key=snap.fingerprint,
                            extra={"person": person, "channel": channel}, **self.message_kw(snap.fingerprint))
        await self.stage.enqueue(msg, now, transition=transition, only=[integ.name])
        return ""

    def _title(self, snap: EscalationSnapshot, action: Action) -> str:
        who = self._name(action.person)
        if action.kind == RESOLVED_NOTICE:
            return f"Resolved ({action.reason})"
        if action.kind == SLA_BREACH:
            return f"{action.reason} - notifying {who}"
        target = snap.steps[action.level].target if action.level < len(snap.steps) else ""
        if action.level == 0:
            verb = "paging" if "page" in action.channels else "notifying"
            return f"{snap.priority}: {verb} {who} ({target})"
        return f"Escalated to level {action.level + 1}: {who} ({target}), {action.reason}"

    def _name(self, person: str) -> str:
        p = self.people.get(person)
        return f"{p.name} ({person})" if p is not None and p.name else person

    def _contact(self, person: str, channel: str) -> str:
        p = self.people.get(person)
        if p is None:
            return ""
        value = getattr(p, CHANNEL_CONTACT[channel], None)
        if value is None:
            return ""
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    def _integration(self, kind: str, labels: Mapping[str, str]) -> Integration | None:
        preferred = self.receivers_for(labels)
        order = list(dict.fromkeys(preferred + list(self.integrations)))
        for receiver in order:
            for integ in self.integrations.get(receiver, ()):
                if integ.kind == kind:
                    return integ
        return None
