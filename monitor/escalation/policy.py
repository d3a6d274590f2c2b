"""Escalation policy: severity -> priority -> deadlines, the step chain, and the frozen snapshot.

The policy (from ``alerting.escalation`` in monitor.yaml) maps an alert to a priority — the
alert's ``priority`` label when it names a configured priority (a rule may set
``priority: P1``), else ``severity_priority[severity]``, else ``default_priority`` — and each
priority to an acknowledge deadline and a resolve deadline. Shipped defaults (DESIGN.md):
critical -> P0 (ack 15 min, resolve 4 h), P1 (1 h, 24 h), warning/info -> P2 (4 h, 3 days).

The chain is primary on-call -> secondary on-call -> engineering manager -> CTO. Each step
notifies its target and then waits for an acknowledgement: its own ``wait`` if set, else the
priority's ack deadline — so with P0 the steps run at 0, 15, 30 and 45 minutes.

When an alert starts escalating, :func:`snapshot` freezes all of this into an
:class:`EscalationSnapshot` that the store persists as JSON (STYLE guideline 14, after Grafana
OnCall ``escalation_snapshot``): a config reload never changes a running escalation.
Times in snapshots are Unix seconds (float).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from model.alert import Alert
from model.labels import Labels

__all__ = ["Priority", "Step", "EscalationPolicy", "StepSnapshot", "EscalationSnapshot", "snapshot",
           "NEVER_ESCALATE"]

#: Severities that never escalate: ``none`` marks alerts meant for machines, such as the always-firing
#: ``Watchdog`` bound for an external dead-man's switch (Alertmanager's convention); no person is paged.
NEVER_ESCALATE = frozenset({"none"})


@dataclass(frozen=True, slots=True)
class Priority:
    """A priority: acknowledge within ``ack`` seconds, resolve within ``resolve`` seconds.

    :ivar channels: when set, replaces every step's channels for this priority.
    """

    name: str
    ack: float
    resolve: float
    channels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One chain step: ``target`` (``schedule:<name>`` | ``person:<id>``), channels, optional wait."""

    target: str
    channels: tuple[str, ...] = ("page", "slack_dm")
    wait: float | None = None


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """The escalation policy with concrete values (built once from config)."""

    priorities: Mapping[str, Priority]
    chain: tuple[Step, ...]
    severity_priority: Mapping[str, str]
    default_priority: str = "P2"
    priority_label: str = "priority"
    ack_timeout: float = 4 * 3600.0

    @classmethod
    def from_config(cls, cfg: Any) -> "EscalationPolicy":
        """Build from a ``monitor.config.alerting.EscalationConfig``."""
        prios = {name: Priority(name, float(p.ack), float(p.resolve), tuple(p.channels) if p.channels else None)
                 for name, p in cfg.priorities.items()}
        chain = tuple(Step(s.target, tuple(s.channels), float(s.wait) if s.wait is not None else None)
                      for s in cfg.chain)
        return cls(prios, chain, dict(cfg.severity_priority), cfg.default_priority, cfg.priority_label,
                   float(cfg.ack_timeout))

    def escalates(self, labels: Labels | Mapping[str, str]) -> bool:
        """Return whether an alert with ``labels`` may escalate to a person (not ``severity="none"``)."""
        return (labels.get("severity") or "") not in NEVER_ESCALATE

    def priority_for(self, labels: Labels | Mapping[str, str]) -> Priority:
        """Return the priority of an alert with ``labels`` (label, then severity, then default)."""
        get = labels.get
        explicit = get(self.priority_label) or ""
        if explicit in self.priorities:
            return self.priorities[explicit]
        name = self.severity_priority.get(get("severity") or "", self.default_priority)
        return self.priorities[name]


@dataclass(frozen=True, slots=True)
class StepSnapshot:
    """A frozen chain step: level (0 = first), target, channels and the wait after it (seconds)."""

    level: int
    target: str
    channels: tuple[str, ...]
    wait: float


@dataclass(frozen=True, slots=True)
class EscalationSnapshot:
    """Everything an escalation needs, frozen when it starts. JSON round-trips exactly.

    :ivar fingerprint: the alert's fingerprint.
    :ivar alertname: for messages.
    :ivar labels: the alert's labels when escalation started.
    :ivar priority: ``P0`` | ``P1`` | ``P2`` | ...
    :ivar started_at: Unix seconds escalation started.
    :ivar ack_seconds: the priority's acknowledge deadline (seconds).
    :ivar resolve_seconds: the priority's resolve deadline (seconds).
    :ivar ack_deadline: ``started_at + ack_seconds``.
    :ivar resolve_deadline: ``started_at + resolve_seconds``: past it, the SLA is breached.
    :ivar ack_timeout: seconds an acknowledgement lasts (0 = forever).
    :ivar steps: the chain.
    """

    fingerprint: str
    alertname: str
    labels: Mapping[str, str]
    priority: str
    started_at: float
    ack_seconds: float
    resolve_seconds: float
    ack_deadline: float
    resolve_deadline: float
    ack_timeout: float
    steps: tuple[StepSnapshot, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the fields in order; ``steps`` as a list of dicts).

        Built field by field: ``dataclasses.asdict`` deep-copies recursively, a third of the
        time of starting a walk (issue 9: 1,000 walks started in one tick).
        """
        d = {name: getattr(self, name) for name in _SNAPSHOT_FIELDS}
        d["labels"] = dict(self.labels)
        d["steps"] = [{"level": s.level, "target": s.target, "channels": list(s.channels), "wait": s.wait}
                      for s in self.steps]
        return d

    def to_json(self) -> str:
        """Serialise to JSON (what the store persists)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EscalationSnapshot":
        """Rebuild from :meth:`to_dict` output."""
        steps = tuple(StepSnapshot(int(s["level"]), s["target"], tuple(s["channels"]), float(s["wait"]))
                      for s in d["steps"])
        return cls(d["fingerprint"], d["alertname"], dict(d["labels"]), d["priority"], float(d["started_at"]),
                   float(d["ack_seconds"]), float(d["resolve_seconds"]), float(d["ack_deadline"]),
                   float(d["resolve_deadline"]), float(d["ack_timeout"]), steps)

    @classmethod
    def from_json(cls, text: str) -> "EscalationSnapshot":
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


_SNAPSHOT_FIELDS = tuple(f.name for f in fields(EscalationSnapshot))


def snapshot(policy: EscalationPolicy, alert: Alert | Labels | Mapping[str, str],
             now: float) -> EscalationSnapshot:
    """Freeze ``policy`` for ``alert`` at ``now`` (when its escalation starts).

    :param alert: an :class:`Alert`, or just its labels.
    :param now: Unix seconds.
    """
    labels = alert.labels if isinstance(alert, Alert) else (alert if isinstance(alert, Labels) else Labels.of(alert))
    prio = policy.priority_for(labels)
    t = float(now)
    steps = tuple(
        StepSnapshot(i, s.target, prio.channels or s.channels, s.wait if s.wait is not None else prio.ack)
        for i, s in enumerate(policy.chain))
    return EscalationSnapshot(
        fingerprint=labels.fingerprint(), alertname=labels.get("alertname"), labels=labels.as_dict(),
        priority=prio.name, started_at=t, ack_seconds=prio.ack, resolve_seconds=prio.resolve,
        ack_deadline=t + prio.ack, resolve_deadline=t + prio.resolve, ack_timeout=policy.ack_timeout, steps=steps)
