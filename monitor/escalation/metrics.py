"""The escalation metrics, declared once on an injected registry.

* ``monitor_escalation_steps_total{level, outcome}``: steps run (``level`` 1-based,
  ``outcome`` = ``triggered`` | ``failed``);
* ``monitor_acknowledgements_total{source}``: acknowledgements by source (``api``, ``cli``,
  ``slack``, ``link``);
* ``monitor_time_to_acknowledge_seconds{priority}``: escalation start to first ack (MTTA);
* ``monitor_sla_breaches_total{priority}``: resolve deadlines passed while unresolved;
* ``monitor_escalations_active``: escalations not resolved;
* ``monitor_oncall_pages_total{priority}``, ``monitor_oncall_acks_total{priority, within_sla}``,
  ``monitor_oncall_resolutions_total{priority, within_sla}``: the on-call response SLI's events
  (:mod:`monitor.escalation.oncall_sli`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.escalation.oncall_sli import OncallCounters

__all__ = ["EscalationMetrics", "MTTA_BUCKETS"]

#: Seconds-buckets of the time-to-acknowledge histogram (1 min .. 1 day).
MTTA_BUCKETS = (60, 120, 300, 600, 900, 1800, 2700, 3600, 7200, 14400, 43200, 86400)


class EscalationMetrics:
    """Escalation metrics (see the module docstring)."""

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
        self.oncall = OncallCounters(registry)
        for source in ("api", "cli", "slack", "link"):
            self.acks.labels(source)
