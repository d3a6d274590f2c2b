"""Config sections for alerting and escalation: the ``alerting:`` section of monitor.yaml.

Shapes follow Alertmanager's ``config/config.go`` where one exists (``route``, ``inhibit_rules``,
``time_intervals``); ``maintenance_windows``, ``people``, ``schedules`` and ``escalation`` are
ours. Everything is parsed and checked at load (matchers, regexes, weekday/day/month ranges,
time zones, handoff times), so runtime code reads concrete values (STYLE guideline 8): the route
tree with inherited options is built by ``monitor.alerting.route.build_route``.

Checks that need names defined elsewhere (receivers) or in sibling sections are in
:func:`validate_alerting_refs`, which the top-level config calls with the receiver names.

Durations are Prometheus durations (``30s``, ``5m``, ``4h``, ``3d``) parsed to float seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from monitor.config.timeintervals import (
    WEEKDAYS, parse_day_of_month_range, parse_location, parse_month_range, parse_time_of_day,
    parse_weekday_range, parse_year_range,
)
from model.labels import LABEL_NAME_RE
from model.matchers import matchers_from_legacy, parse_matchers
from model.matchers import Matcher
from model.duration import Duration, PositiveDuration

__all__ = [
    "AlertingConfig", "RouteConfig", "InhibitRuleConfig", "TimeRangeConfig", "TimePeriodConfig",
    "TimeIntervalConfig", "MaintenanceWindowConfig", "PersonConfig", "RotationConfig", "OverrideConfig",
    "ScheduleConfig", "PriorityConfig", "EscalationStepConfig", "EscalationConfig", "validate_alerting_refs",
    "CHANNELS", "CHANNEL_CONTACT",
]

#: Contact channels an escalation step can use, each read from the person's contact data:
#: ``page`` -> ``pagerduty_routing_key``, ``slack_dm`` -> ``slack_user_id``, ``email`` -> ``email``.
CHANNELS = ("page", "slack_dm", "email")
#: The :class:`PersonConfig` field each channel needs.
CHANNEL_CONTACT = {"page": "pagerduty_routing_key", "slack_dm": "slack_user_id", "email": "email"}
Channel = Literal["page", "slack_dm", "email"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_matcher_line(line: str) -> str:
    parse_matchers(line)  # raises ValueError with Alertmanager's message
    return line


#: One Alertmanager matcher string (``severity="critical"``; may hold several, comma-separated),
#: checked at load; errors are located at the list item (``route.matchers[0]``).
MatcherLine = Annotated[str, AfterValidator(_check_matcher_line)]


def _checked(parse: Callable[[str | int], object]) -> Any:
    """A ``str | int`` list item checked by ``parse`` at load (errors located at the item)."""
    def check(v: str | int) -> str | int:
        parse(v)
        return v
    return Annotated[str | int, AfterValidator(check)]


WeekdayItem = _checked(parse_weekday_range)
DayOfMonthItem = _checked(parse_day_of_month_range)
MonthItem = _checked(parse_month_range)
YearItem = _checked(parse_year_range)


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


# --- routing ---------------------------------------------------------------------------------


class RouteConfig(_Model):
    """One node of the routing tree (Alertmanager ``config.Route``).

    Unset options (``None``) are inherited from the parent; the root inherits Alertmanager's
    defaults (group_wait 30s, group_interval 5m, repeat_interval 4h, group_by none).
    ``group_by: ["..."]`` groups by all labels. ``mute_time_intervals`` / ``active_time_intervals``
    are not inherited, as in Alertmanager ``dispatch/route.go``.
    """

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


class InhibitRuleConfig(_Model):
    """One inhibition rule (Alertmanager ``config.InhibitRule``).

    A firing alert matching the source matchers mutes alerts matching the target matchers when
    both have equal values (both absent counts as equal) for every label in ``equal``.
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


# --- time intervals and maintenance windows ------------------------------------------------------


class TimeRangeConfig(_Model):
    """``{start_time: "02:00", end_time: "06:00"}``: local minutes of the day, end exclusive."""

    start_time: str
    end_time: str
    _range: tuple[int, int] = PrivateAttr(default=(0, 0))

    @model_validator(mode="after")
    def _parse(self) -> "TimeRangeConfig":
        start = parse_time_of_day(self.start_time)
        end = parse_time_of_day(self.end_time, end=True)
        if start >= end:
            raise ValueError("start time cannot be equal or greater than end time")
        self._range = (start, end)
        return self


class TimePeriodConfig(_Model):
    """One period of a time interval (Alertmanager ``timeinterval.TimeInterval``).

    Fields are ANDed; an empty field matches everything. See ``monitor.alerting.maintenance``.
    """

    times: list[TimeRangeConfig] = Field(default_factory=list)
    weekdays: list[WeekdayItem] = Field(default_factory=list)
    days_of_month: list[DayOfMonthItem] = Field(default_factory=list)
    months: list[MonthItem] = Field(default_factory=list)
    years: list[YearItem] = Field(default_factory=list)
    location: str = "UTC"

    _weekdays: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _days: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _months: list[tuple[int, int]] = PrivateAttr(default_factory=list)
    _years: list[tuple[int, int]] = PrivateAttr(default_factory=list)

    @field_validator("location")
    @classmethod
    def _check_location(cls, v: str) -> str:
        return parse_location(v)

    @model_validator(mode="after")
    def _parse(self) -> "TimePeriodConfig":
        self._weekdays = [parse_weekday_range(x) for x in self.weekdays]
        self._days = [parse_day_of_month_range(x) for x in self.days_of_month]
        self._months = [parse_month_range(x) for x in self.months]
        self._years = [parse_year_range(x) for x in self.years]
        return self

    @property
    def time_ranges(self) -> list[tuple[int, int]]:
        """``(start_minute, end_minute)`` pairs, end exclusive."""
        return [t._range for t in self.times]

    @property
    def weekday_ranges(self) -> list[tuple[int, int]]:
        """Inclusive weekday ranges, Sunday = 0."""
        return self._weekdays

    @property
    def day_ranges(self) -> list[tuple[int, int]]:
        """Inclusive day-of-month ranges (negative counts from the month's end)."""
        return self._days

    @property
    def month_ranges(self) -> list[tuple[int, int]]:
        """Inclusive month ranges (1..12)."""
        return self._months

    @property
    def year_ranges(self) -> list[tuple[int, int]]:
        """Inclusive year ranges."""
        return self._years


class TimeIntervalConfig(_Model):
    """A named time interval: ``{name, time_intervals: [period, ...]}`` (any period matches)."""

    name: str = Field(min_length=1)
    time_intervals: list[TimePeriodConfig] = Field(default_factory=list)


class MaintenanceWindowConfig(_Model):
    """A maintenance window: mutes alerts matching ``matchers`` while any named interval is active."""

    name: str = Field(min_length=1)
    time_intervals: list[str] = Field(min_length=1)
    matchers: list[MatcherLine] = Field(default_factory=list)
    comment: str = ""

    def parsed_matchers(self) -> list[Matcher]:
        """Return the matchers (empty: every alert)."""
        return _matchers(self.matchers, {}, {})


# --- people and schedules ----------------------------------------------------------------------


class PersonConfig(_Model):
    """A person and their contact methods (data for the notifiers)."""

    name: str = ""
    slack_user_id: str | None = None
    email: str | None = None
    pagerduty_routing_key: SecretStr | None = None
    phone: str | None = None


class RotationConfig(_Model):
    """How a schedule rotates.

    :ivar type: ``weekly`` (default), ``daily`` or ``custom`` (``length`` required).
    :ivar length: the shift length for ``custom``; whole days rotate on local calendar days
        (DST-safe), other lengths in elapsed seconds.
    :ivar handoff_weekday: the handoff day for ``weekly`` (default ``monday``).
    :ivar handoff_time: local wall-clock handoff time ``HH:MM`` (default ``09:00``).
    """

    type: Literal["weekly", "daily", "custom"] = "weekly"
    length: PositiveDuration | None = None
    handoff_weekday: str = "monday"
    handoff_time: str = "09:00"

    @field_validator("handoff_weekday")
    @classmethod
    def _check_weekday(cls, v: str) -> str:
        if v.lower() not in WEEKDAYS:
            raise ValueError(f"{v!r} is not a valid weekday")
        return v.lower()

    @field_validator("handoff_time")
    @classmethod
    def _check_time(cls, v: str) -> str:
        parse_time_of_day(v)
        return v

    @model_validator(mode="after")
    def _check_length(self) -> "RotationConfig":
        if self.type == "custom" and self.length is None:
            raise ValueError("a custom rotation needs a length")
        if self.type != "custom" and self.length is not None:
            raise ValueError(f"length is only for custom rotations (a {self.type} rotation has a fixed length)")
        return self

    @property
    def handoff(self) -> time:
        """The handoff time of day."""
        minutes = parse_time_of_day(self.handoff_time)
        return time(minutes // 60, minutes % 60)


class OverrideConfig(_Model):
    """Someone else is on call from ``start`` to ``end`` (naive times are in the schedule's zone)."""

    start: datetime
    end: datetime
    person: str


class ScheduleConfig(_Model):
    """An on-call schedule: ordered members rotating from ``start``.

    :ivar time_zone: IANA zone of the handoff wall-clock time.
    :ivar start: the first member is on call from this date at the handoff time.
    :ivar announce_receiver: receiver that gets a message at each handoff (optional).
    """

    time_zone: str = "UTC"
    rotation: RotationConfig = Field(default_factory=RotationConfig)
    start: date
    members: list[str] = Field(min_length=1)
    overrides: list[OverrideConfig] = Field(default_factory=list)
    announce_receiver: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        return parse_location(v)

    @model_validator(mode="after")
    def _resolve_overrides(self) -> "ScheduleConfig":
        tz = ZoneInfo(self.time_zone)
        for i, o in enumerate(self.overrides):
            if o.start.tzinfo is None:
                o.start = o.start.replace(tzinfo=tz)
            if o.end.tzinfo is None:
                o.end = o.end.replace(tzinfo=tz)
            if o.end <= o.start:
                raise ValueError(f"overrides[{i}]: end must be after start")
        return self


# --- escalation ----------------------------------------------------------------------------------


class PriorityConfig(_Model):
    """A priority's deadlines: acknowledge within ``ack``, resolve within ``resolve``.

    :ivar channels: when set, replaces every step's channels for this priority (e.g. P2 never pages).
    """

    ack: PositiveDuration
    resolve: PositiveDuration
    channels: list[Channel] | None = None


def _default_priorities() -> dict[str, PriorityConfig]:
    return {
        "P0": PriorityConfig(ack=15 * 60, resolve=4 * 3600),
        "P1": PriorityConfig(ack=3600, resolve=24 * 3600),
        "P2": PriorityConfig(ack=4 * 3600, resolve=3 * 86400),
    }


class EscalationStepConfig(_Model):
    """One step of the chain: notify ``target`` through ``channels``, then wait.

    :ivar target: ``schedule:<name>`` (whoever is on call then) or ``person:<id>``.
    :ivar wait: seconds to wait for an acknowledgement before the next step; default: the
        priority's ``ack`` deadline, so with P0 the steps run at 0, 15, 30 and 45 minutes.
    """

    target: str = Field(pattern=r"^(schedule|person):.+$")
    channels: list[Channel] = Field(default_factory=lambda: ["page", "slack_dm"], min_length=1)
    wait: PositiveDuration | None = None


class EscalationConfig(_Model):
    """Severity -> priority -> deadlines, and the step chain.

    :ivar priority_label: an alert label that names the priority itself (``priority: P1``).
    :ivar default_priority: for a severity not in ``severity_priority``.
    :ivar ack_timeout: an acknowledgement expires after this long and escalation restarts from
        the first step (Grafana OnCall's unacknowledge timeout); ``0`` = never.
    """

    priorities: dict[str, PriorityConfig] = Field(default_factory=_default_priorities)
    severity_priority: dict[str, str] = Field(
        default_factory=lambda: {"critical": "P0", "warning": "P2", "info": "P2"})
    default_priority: str = "P2"
    priority_label: str = "priority"
    ack_timeout: Duration = 4 * 3600.0
    chain: list[EscalationStepConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_priorities(self) -> "EscalationConfig":
        for sev, prio in self.severity_priority.items():
            if prio not in self.priorities:
                raise ValueError(f'severity_priority.{sev}: undefined priority "{prio}"')
        if self.default_priority not in self.priorities:
            raise ValueError(f'default_priority: undefined priority "{self.default_priority}"')
        return self


# --- the section ---------------------------------------------------------------------------------


class AlertingConfig(_Model):
    """The ``alerting:`` section of monitor.yaml.

    :ivar route: the routing tree; ``None`` routes nothing (no notifications).
    :ivar resolve_timeout: an intake alert without ``endsAt`` resolves after this long unless
        re-sent (Alertmanager ``global.resolve_timeout``).
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

    Checked: the root route has a receiver and no matchers or time intervals; every route's
    receiver is in ``receiver_names``; every named time interval exists; interval and window
    names are unique; schedule members, override persons and person steps are in ``people``;
    schedule steps name a schedule; ``announce_receiver`` is a receiver.

    :param receiver_names: names of the configured receivers.
    :param prefix: the section's key path, prepended to every path.
    :return: ``[(key_path, message)]``, e.g.
        ``("alerting.route.routes[2].receiver", 'undefined receiver "ops" used in route.routes[2]')``.
    """
    errs: list[tuple[str, str]] = []
    p = f"{prefix}." if prefix else ""
    interval_names: set[str] = set()
    for i, ti in enumerate(alerting.time_intervals):
        if ti.name in interval_names:
            errs.append((f"{p}time_intervals[{i}].name", f'time interval "{ti.name}" is defined twice'))
        interval_names.add(ti.name)

    def check_intervals(path: str, names: list[str], field: str) -> None:
        for j, n in enumerate(names):
            if n not in interval_names:
                errs.append((f"{p}{path}.{field}[{j}]", f'undefined time interval "{n}" used in {path}'))

    root = alerting.route
    if root is not None:
        if not root.receiver:
            errs.append((f"{p}route.receiver", "root route must specify a default receiver"))
        if root.parsed_matchers():
            errs.append((f"{p}route.matchers", "root route must not have any matchers"))
        if root.mute_time_intervals:
            errs.append((f"{p}route.mute_time_intervals", "root route must not have any mute time intervals"))
        if root.active_time_intervals:
            errs.append((f"{p}route.active_time_intervals", "root route must not have any active time intervals"))

        def walk(r: RouteConfig, path: str) -> None:
            if r.receiver is not None and r.receiver not in receiver_names:
                errs.append((f"{p}{path}.receiver", f'undefined receiver "{r.receiver}" used in {path}'))
            check_intervals(path, r.mute_time_intervals, "mute_time_intervals")
            check_intervals(path, r.active_time_intervals, "active_time_intervals")
            for k, child in enumerate(r.routes):
                walk(child, f"{path}.routes[{k}]")

        walk(root, "route")

    window_names: set[str] = set()
    for i, w in enumerate(alerting.maintenance_windows):
        if w.name in window_names:
            errs.append((f"{p}maintenance_windows[{i}].name", f'maintenance window "{w.name}" is defined twice'))
        window_names.add(w.name)
        check_intervals(f"maintenance_windows[{i}]", w.time_intervals, "time_intervals")

    people = alerting.people
    for name, s in alerting.schedules.items():
        for j, m in enumerate(s.members):
            if m not in people:
                errs.append((f"{p}schedules.{name}.members[{j}]", f'undefined person "{m}" in schedule "{name}"'))
        for j, o in enumerate(s.overrides):
            if o.person not in people:
                errs.append((f"{p}schedules.{name}.overrides[{j}].person",
                             f'undefined person "{o.person}" in schedule "{name}"'))
        if s.announce_receiver is not None and s.announce_receiver not in receiver_names:
            errs.append((f"{p}schedules.{name}.announce_receiver",
                         f'undefined receiver "{s.announce_receiver}" used in schedule "{name}"'))

    overrides = {c for prio in alerting.escalation.priorities.values() for c in (prio.channels or ())}
    for j, step in enumerate(alerting.escalation.chain):
        kind, _, name = step.target.partition(":")
        reachable: list[str] = []
        if kind == "schedule":
            if name not in alerting.schedules:
                errs.append((f"{p}escalation.chain[{j}].target", f'undefined schedule "{name}"'))
            else:
                sched = alerting.schedules[name]
                reachable = list(sched.members) + [o.person for o in sched.overrides]
        elif kind == "person":
            if name not in people:
                errs.append((f"{p}escalation.chain[{j}].target", f'undefined person "{name}"'))
            else:
                reachable = [name]
        channels = [c for c in CHANNELS if c in step.channels or c in overrides]
        for person in dict.fromkeys(reachable):
            if person not in people:
                continue  # reported with the schedule
            for ch in channels:
                if not getattr(people[person], CHANNEL_CONTACT[ch]):
                    errs.append((f"{p}escalation.chain[{j}].channels",
                                 f'person "{person}" has no {CHANNEL_CONTACT[ch]} for channel "{ch}"'))
    return errs
