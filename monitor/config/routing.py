"""Routing config: the route tree, inhibition rules and maintenance windows of ``alerting:``.

Shapes follow Alertmanager's ``config/config.go`` (``route``, ``inhibit_rules``);
``maintenance_windows`` is ours: named time intervals (:mod:`monitor.config.timeintervals`) plus
label matchers. Matchers, regexes and label names are checked at load; the runtime builders
(``monitor.alerting.route.build_route``, ``monitor.alerting.inhibit``,
``monitor.alerting.maintenance``) read the parsed matchers through ``parsed_*()``.

Example::

    alerting:
      route:
        receiver: slack-alerts
        group_by: [alertname, service]
        routes:
          - {matchers: ['severity="critical"'], receiver: pager, continue: true}
      inhibit_rules:
        - {source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: [service]}
      maintenance_windows:
        - {name: monthly-db, time_intervals: [monthly-maintenance], matchers: ['service="db"']}

Checks that need receiver and time-interval names are in :func:`validate_routing_refs`.
Durations are Prometheus durations (``30s``, ``5m``, ``4h``) parsed to float seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from model.duration import Duration, PositiveDuration
from model.labels import LABEL_NAME_RE
from model.matchers import Matcher, matchers_from_legacy, parse_matchers
from monitor.config.maintenance_notices import MaintenanceNoticesConfig
from monitor.config.timeintervals import TimeIntervalConfig
from monitor.config.validation import Section

__all__ = [
    "MatcherLine", "RouteConfig", "InhibitRuleConfig", "MaintenanceWindowConfig", "validate_routing_refs",
]


def _check_matcher_line(line: str) -> str:
    parse_matchers(line)  # raises ValueError with Alertmanager's message
    return line


#: One Alertmanager matcher string (``severity="critical"``; may hold several, comma-separated),
#: checked at load; errors are located at the list item (``route.matchers[0]``).
MatcherLine = Annotated[str, AfterValidator(_check_matcher_line)]


def _check_regex_map(m: dict[str, str]) -> dict[str, str]:
    for k, v in m.items():
        if not LABEL_NAME_RE.match(k):
            raise ValueError(f"invalid label name {k!r}")
        Matcher(k, "=~", v)
    return m


def _check_label_map(m: dict[str, str]) -> dict[str, str]:
    for k in m:
        if not LABEL_NAME_RE.match(k):
            raise ValueError(f"invalid label name {k!r}")
    return m


def _matchers(lines: list[str], match: dict[str, str], match_re: dict[str, str]) -> list[Matcher]:
    out = matchers_from_legacy(match, match_re)
    for line in lines:
        out.extend(parse_matchers(line))
    return out


class RouteConfig(Section):
    """One node of the routing tree (Alertmanager ``config.Route``).

    Unset options (``None``) are inherited from the parent; the root inherits Alertmanager's
    defaults (group_wait 30s, group_interval 5m, repeat_interval 4h, group_by none).
    ``group_by: ["..."]`` groups by all labels. ``mute_time_intervals`` / ``active_time_intervals``
    are not inherited, as in Alertmanager ``dispatch/route.go``.

    :ivar receiver: a ``receivers[].name``; required on the root.
    :ivar group_by: label names, or ``["..."]`` for all labels.
    :ivar group_wait: seconds to wait before the first notification of a new group.
    :ivar group_interval: seconds between notifications about a changed group (> 0).
    :ivar repeat_interval: seconds before an unchanged group is notified again (> 0).
    :ivar matchers: matcher strings (``severity="critical"``); ``match`` / ``match_re`` are the
        legacy maps ``{label: value}`` / ``{label: regex}``. All must match.
    :ivar continue_: ``continue`` in YAML: keep matching siblings after this route matched.
    :ivar routes: child routes, tried in order.
    :ivar mute_time_intervals: names of time intervals during which this route notifies nothing.
    :ivar active_time_intervals: names of time intervals outside which it notifies nothing.
    """

    model_config = ConfigDict(populate_by_name=True)

    receiver: str | None = None
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: PositiveDuration | None = None
    repeat_interval: PositiveDuration | None = None
    matchers: list[MatcherLine] = Field(default_factory=list)
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    continue_: bool = Field(False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _v_match(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_label_map(v)

    @field_validator("match_re")
    @classmethod
    def _v_match_re(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_regex_map(v)

    @field_validator("group_by")
    @classmethod
    def _check_group_by(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        seen = set()
        for name in v:
            if name == "..." and len(v) > 1:
                raise ValueError("cannot have wildcard group_by (`...`) and other labels at the same time")
            if name != "..." and not LABEL_NAME_RE.match(name):
                raise ValueError(f"invalid label name {name!r} in group_by")
            if name in seen:
                raise ValueError(f"duplicated label {name!r} in group_by")
            seen.add(name)
        return v

    def parsed_matchers(self) -> list[Matcher]:
        """Return ``match``, ``match_re`` and ``matchers`` as one matcher list."""
        return _matchers(self.matchers, self.match, self.match_re)


class InhibitRuleConfig(Section):
    """One inhibition rule (Alertmanager ``config.InhibitRule``).

    A firing alert matching the source matchers mutes alerts matching the target matchers when
    both have equal values (both absent counts as equal) for every label in ``equal``.

    :ivar source_matchers: matcher strings (``source_match`` / ``source_match_re``: legacy maps).
    :ivar target_matchers: matcher strings (``target_match`` / ``target_match_re``: legacy maps).
    :ivar equal: label names whose values must be equal on source and target.
    """

    source_matchers: list[MatcherLine] = Field(default_factory=list)
    target_matchers: list[MatcherLine] = Field(default_factory=list)
    source_match: dict[str, str] = Field(default_factory=dict)
    source_match_re: dict[str, str] = Field(default_factory=dict)
    target_match: dict[str, str] = Field(default_factory=dict)
    target_match_re: dict[str, str] = Field(default_factory=dict)
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_match", "target_match")
    @classmethod
    def _v_match(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_label_map(v)

    @field_validator("source_match_re", "target_match_re")
    @classmethod
    def _v_match_re(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_regex_map(v)

    @field_validator("equal")
    @classmethod
    def _check_equal(cls, v: list[str]) -> list[str]:
        for name in v:
            if not LABEL_NAME_RE.match(name):
                raise ValueError(f"invalid label name {name!r} in equal")
        return v

    def parsed_source(self) -> list[Matcher]:
        """Return the source matchers (legacy maps included)."""
        return _matchers(self.source_matchers, self.source_match, self.source_match_re)

    def parsed_target(self) -> list[Matcher]:
        """Return the target matchers (legacy maps included)."""
        return _matchers(self.target_matchers, self.target_match, self.target_match_re)


class MaintenanceWindowConfig(Section):
    """A maintenance window: mutes alerts matching ``matchers`` while any named interval is active.

    :ivar name: shown as ``muted_by`` on muted alerts; unique.
    :ivar time_intervals: names of ``alerting.time_intervals`` (at least one).
    :ivar matchers: matcher strings, all must match; empty mutes every alert.
    :ivar comment: free text for people reading the config.
    :ivar notices: advance notices to clients (:mod:`monitor.config.maintenance_notices`), optional.
    """

    name: str = Field(min_length=1)
    time_intervals: list[str] = Field(min_length=1)
    matchers: list[MatcherLine] = Field(default_factory=list)
    comment: str = ""
    notices: MaintenanceNoticesConfig | None = None

    def parsed_matchers(self) -> list[Matcher]:
        """Return the matchers (empty: every alert)."""
        return _matchers(self.matchers, {}, {})


def validate_routing_refs(route: RouteConfig | None, time_intervals: Sequence[TimeIntervalConfig],
                          maintenance_windows: Sequence[MaintenanceWindowConfig], receiver_names: set[str],
                          prefix: str = "alerting") -> list[tuple[str, str]]:
    """Check the cross-references of routing and muting; return all problems at once.

    Checked, in this order: time-interval names are unique; the root route has a receiver and no
    matchers or time intervals; every route's receiver is in ``receiver_names``; every named time
    interval (routes, maintenance windows) exists; maintenance-window names are unique.

    :param receiver_names: names of the configured receivers.
    :param prefix: the section's key path, prepended to every path.
    :return: ``[(key_path, message)]``, e.g.
        ``("alerting.route.routes[2].receiver", 'undefined receiver "ops" used in route.routes[2]')``.
    """
    errs: list[tuple[str, str]] = []
    p = f"{prefix}." if prefix else ""
    interval_names: set[str] = set()
    for i, ti in enumerate(time_intervals):
        if ti.name in interval_names:
            errs.append((f"{p}time_intervals[{i}].name", f'time interval "{ti.name}" is defined twice'))
        interval_names.add(ti.name)

    def check_intervals(path: str, names: list[str], field: str) -> None:
        for j, n in enumerate(names):
            if n not in interval_names:
                errs.append((f"{p}{path}.{field}[{j}]", f'undefined time interval "{n}" used in {path}'))

    if route is not None:
        if not route.receiver:
            errs.append((f"{p}route.receiver", "root route must specify a default receiver"))
        if route.parsed_matchers():
            errs.append((f"{p}route.matchers", "root route must not have any matchers"))
        if route.mute_time_intervals:
            errs.append((f"{p}route.mute_time_intervals", "root route must not have any mute time intervals"))
        if route.active_time_intervals:
            errs.append((f"{p}route.active_time_intervals", "root route must not have any active time intervals"))

        def walk(r: RouteConfig, path: str) -> None:
            if r.receiver is not None and r.receiver not in receiver_names:
                errs.append((f"{p}{path}.receiver", f'undefined receiver "{r.receiver}" used in {path}'))
            check_intervals(path, r.mute_time_intervals, "mute_time_intervals")
            check_intervals(path, r.active_time_intervals, "active_time_intervals")
            for k, child in enumerate(r.routes):
                walk(child, f"{path}.routes[{k}]")

        walk(route, "route")

    window_names: set[str] = set()
    for i, w in enumerate(maintenance_windows):
        if w.name in window_names:
            errs.append((f"{p}maintenance_windows[{i}].name", f'maintenance window "{w.name}" is defined twice'))
        window_names.add(w.name)
        check_intervals(f"maintenance_windows[{i}]", w.time_intervals, "time_intervals")
    return errs
