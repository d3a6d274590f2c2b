"""The alert pipeline's metrics, declared once on an injected registry (Alertmanager ``NewMetrics``).

* ``monitor_alerts{state}``: alerts held by the dispatcher, ``active`` or ``suppressed``;
* ``monitor_alerts_silenced`` / ``monitor_alerts_inhibited`` / ``monitor_alerts_muted``: alerts
  currently muted by a silence, an inhibition rule, a maintenance window;
* ``monitor_alerts_received_total{source}``: alerts taken by the pipeline (``rules``, ``api``,
  ``webhook``);
* ``monitor_alerts_resolve_refused_total{source}``: intake updates that would have resolved (or
  shortened) an alert raised by another source, dropped;
* ``monitor_notifications_enqueued_total{receiver}``: outbox rows written for alert groups.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from model.alert import ACTIVE, SUPPRESSED, Alert

__all__ = ["AlertMetrics"]


class AlertMetrics:
    """Alert-level gauges and counters (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Gauge("monitor_alerts", "Alerts held for routing, by state (active, suppressed).",
                            ["state"], registry=registry)
        self.silenced = Gauge("monitor_alerts_silenced", "Alerts muted by a silence.", registry=registry)
        self.inhibited = Gauge("monitor_alerts_inhibited", "Alerts muted by an inhibition rule.", registry=registry)
        self.muted = Gauge("monitor_alerts_muted", "Alerts muted by a maintenance window.", registry=registry)
        self.received = Counter("monitor_alerts_received", "Alerts received, by source (rules, api, webhook).",
                                ["source"], registry=registry)
        self.resolve_refused = Counter(
            "monitor_alerts_resolve_refused", "Intake resolves of alerts raised by another source, ignored.",
            ["source"], registry=registry)
        self.enqueued = Counter("monitor_notifications_enqueued", "Outbox rows written for alert groups.",
                                ["receiver"], registry=registry)
        for s in (ACTIVE, SUPPRESSED):
            self.alerts.labels(s)

    def observe(self, unresolved: Iterable[Alert]) -> None:
        """Set the gauges from the marked, unresolved alerts held now."""
        held = list(unresolved)
        self.silenced.set(sum(1 for a in held if a.silenced_by))
        self.inhibited.set(sum(1 for a in held if a.inhibited_by))
        self.muted.set(sum(1 for a in held if a.muted_by))
        self.alerts.labels(ACTIVE).set(sum(1 for a in held if a.state == ACTIVE))
        self.alerts.labels(SUPPRESSED).set(sum(1 for a in held if a.state != ACTIVE))
