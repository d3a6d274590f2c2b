"""The ``alerting:`` section of monitor.yaml: routing and muting, plus on-call and escalation.

The section is one YAML mapping; its parts live in their own modules:

- :mod:`monitor.config.routing` — ``route``, ``inhibit_rules``, ``maintenance_windows``
  (Alertmanager shapes, ``config/config.go``);
- :mod:`monitor.config.timeintervals` — ``time_intervals`` (Alertmanager ``timeinterval``);
- :mod:`monitor.config.oncall` — ``people``, ``schedules``, ``escalation`` (ours).

Everything is parsed and checked at load, so runtime code reads concrete values (STYLE 8); the
route tree with inherited options is built by ``monitor.alerting.route.build_route``. Checks
that need names defined elsewhere (receivers) or in sibling keys are in
:func:`validate_alerting_refs`, which the top-level config calls with the receiver names.
"""

from __future__ import annotations

from pydantic import Field

from model.duration import PositiveDuration
from monitor.config.oncall import EscalationConfig, PersonConfig, ScheduleConfig, validate_oncall_refs
from monitor.config.routing import InhibitRuleConfig, MaintenanceWindowConfig, RouteConfig, validate_routing_refs
from monitor.config.timeintervals import TimeIntervalConfig
from monitor.config.validation import Section

__all__ = ["AlertingConfig", "validate_alerting_refs"]


class AlertingConfig(Section):
    """The ``alerting:`` section of monitor.yaml.

    :ivar route: the routing tree (:class:`~monitor.config.routing.RouteConfig`); ``None`` routes
        nothing (no notifications).
    :ivar inhibit_rules: :class:`~monitor.config.routing.InhibitRuleConfig` items.
    :ivar time_intervals: :class:`~monitor.config.timeintervals.TimeIntervalConfig` items, names unique.
    :ivar maintenance_windows: :class:`~monitor.config.routing.MaintenanceWindowConfig` items, names unique.
    :ivar people: ``{id: PersonConfig}`` (:mod:`monitor.config.oncall`).
    :ivar schedules: ``{name: ScheduleConfig}``.
    :ivar escalation: priorities and the step chain (:class:`~monitor.config.oncall.EscalationConfig`).
    :ivar resolve_timeout: seconds after which an intake alert without ``endsAt`` resolves unless
        re-sent (Alertmanager ``global.resolve_timeout``; default 5m).
    """

    route: RouteConfig | None = None
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)
    time_intervals: list[TimeIntervalConfig] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindowConfig] = Field(default_factory=list)
    people: dict[str, PersonConfig] = Field(default_factory=dict)
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    resolve_timeout: PositiveDuration = 300.0


def validate_alerting_refs(alerting: AlertingConfig, receiver_names: set[str],
                           prefix: str = "alerting") -> list[tuple[str, str]]:
    """Check every cross-reference of the alerting section; return all problems at once.

    Routing and muting first (:func:`~monitor.config.routing.validate_routing_refs`: receivers,
    time-interval names, root-route restrictions, unique names), then on-call
    (:func:`~monitor.config.oncall.validate_oncall_refs`: people, schedules, chain targets,
    contact data per channel).

    :param receiver_names: names of the configured receivers.
    :param prefix: the section's key path, prepended to every path.
    :return: ``[(key_path, message)]``, e.g.
        ``("alerting.route.routes[2].receiver", 'undefined receiver "ops" used in route.routes[2]')``.
    """
    notices = [(f"{prefix}.maintenance_windows[{i}].notices.receiver",
                f'undefined receiver "{w.notices.receiver}" used in maintenance_windows[{i}].notices')
               for i, w in enumerate(alerting.maintenance_windows)
               if w.notices is not None and w.notices.receiver not in receiver_names]
    return (
        validate_routing_refs(alerting.route, alerting.time_intervals, alerting.maintenance_windows,
                              receiver_names, prefix)
        + notices
        + validate_oncall_refs(alerting.people, alerting.schedules, alerting.escalation, receiver_names, prefix)
    )
