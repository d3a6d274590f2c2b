"""On-call and escalation config: people, schedules and the escalation policy of ``alerting:``.

Ours (Alertmanager has no on-call); the model is Grafana OnCall's: people with contact methods,
rotating schedules with overrides, and a priority policy walked step by step. Everything is
checked at load (time zones, handoff times, rotation lengths, priority names); the runtime reads
it through ``monitor.escalation.schedule`` (who is on call) and ``monitor.escalation.policy``
(severity -> priority -> deadlines and steps).

Example::

    alerting:
      people:
        alice: {slack_user_id: U0123, email: alice@example.com, pagerduty_routing_key: ${PD_ALICE}}
      schedules:
        primary:
          time_zone: Europe/Berlin
          start: 2026-01-05
          members: [alice, bob]
          rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"}
        business-hours:
          time_zone: Europe/Berlin
          start: 2026-01-05
          members: [carol, dave]
          rotation:
            type: weekly
            restrictions:        # on call only then (PagerDuty's schedule restrictions)
              - {weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30"}
      escalation:
        priorities: {P0: {ack: 15m, resolve: 4h}}
        chain:
          - {target: "schedule:primary", channels: [page, slack_dm]}
          - {target: "person:cto", channels: [page]}

Checks that need receiver names or sibling sections are in :func:`validate_oncall_refs`.
Durations are Prometheus durations (``15m``, ``4h``, ``3d``) parsed to float seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator

from model.duration import Duration, PositiveDuration
from monitor.config.timeintervals import WEEKDAYS, parse_location, parse_time_of_day, parse_weekday_range
from monitor.config.validation import Section

__all__ = [
    "ESCALATION_CHANNELS", "CHANNEL_CONTACT", "EscalationChannel", "PersonConfig", "RestrictionConfig",
    "RotationConfig",
    "OverrideConfig", "ScheduleConfig", "PriorityConfig", "EscalationStepConfig", "EscalationConfig",
    "validate_oncall_refs",
]

#: Contact channels an escalation step can use, each read from the person's contact data:
#: ``page`` -> ``pagerduty_routing_key``, ``slack_dm`` -> ``slack_user_id``, ``email`` -> ``email``.
#: (Not the notifier kinds of ``monitor.notify.registry.CHANNELS``: those are receiver integrations.)
ESCALATION_CHANNELS = ("page", "slack_dm", "email")
#: The :class:`PersonConfig` field each escalation channel needs.
CHANNEL_CONTACT = {"page": "pagerduty_routing_key", "slack_dm": "slack_user_id", "email": "email"}
#: One of :data:`ESCALATION_CHANNELS`, as a field type.
EscalationChannel = Literal["page", "slack_dm", "email"]


# --- people and schedules ----------------------------------------------------------------------


class PersonConfig(Section):
    """A person and their contact methods (data for the notifiers); keyed by id in ``people``.

    :ivar name: display name, shown as ``name (id)`` in messages (optional).
    :ivar slack_user_id: Slack member id (``U0123``) for ``slack_dm``.
    :ivar email: address for ``email``.
    :ivar pagerduty_routing_key: PagerDuty Events API v2 integration key for ``page`` (a secret).
    :ivar phone: informational only.
    """

    name: str = ""
    slack_user_id: str | None = None
    email: str | None = None
    pagerduty_routing_key: SecretStr | None = None
    phone: str | None = None


class RestrictionConfig(Section):
    """When a restricted rotation's member is on call: a local time-of-day window on some weekdays.

    The semantics are PagerDuty's schedule restrictions: the rotation keeps turning on its own
    handoffs, and its member is on call only inside a restriction window; outside every window
    nobody is (an override still applies). Example, business hours in Berlin::

        {weekdays: ["monday:friday"], start_time: "08:30", end_time: "17:30", time_zone: Europe/Berlin}

    :ivar weekdays: Alertmanager weekday items (``monday``, ``"monday:friday"``); a window belongs to
        the day it starts on. Default: every day.
    :ivar start_time: local ``HH:MM`` the window opens.
    :ivar end_time: local ``HH:MM`` it closes (exclusive; ``"24:00"`` = midnight); at or before
        ``start_time`` the window ends the next day (a night shift ``17:30``-``08:30``).
    :ivar time_zone: IANA zone of the window's wall-clock times (default: the schedule's zone).
    """

    weekdays: list[str | int] = Field(default_factory=list)
    start_time: str
    end_time: str
    time_zone: str | None = None

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, v: list[str | int]) -> list[str | int]:
        for item in v:
            parse_weekday_range(item)
        return v

    @field_validator("start_time")
    @classmethod
    def _check_start(cls, v: str) -> str:
        parse_time_of_day(v)
        return v

    @field_validator("end_time")
    @classmethod
    def _check_end(cls, v: str) -> str:
        parse_time_of_day(v, end=True)
        return v

    @field_validator("time_zone")
    @classmethod
    def _check_tz(cls, v: str | None) -> str | None:
        return None if v is None else parse_location(v)

    @property
    def python_weekdays(self) -> frozenset[int]:
        """The window's start days as Python weekdays (Monday = 0); every day when none are listed."""
        if not self.weekdays:
            return frozenset(range(7))
        days: set[int] = set()
        for item in self.weekdays:
            begin, end = parse_weekday_range(item)
            days.update((go - 1) % 7 for go in range(begin, end + 1))  # Go: Sunday = 0
        return frozenset(days)

    @property
    def minutes(self) -> tuple[int, int]:
        """``(start, end)`` in minutes of the local day; ``end <= start`` means the next day."""
        return parse_time_of_day(self.start_time), parse_time_of_day(self.end_time, end=True)


class RotationConfig(Section):
    """How a schedule rotates.

    :ivar type: ``weekly`` (default), ``daily`` or ``custom`` (``length`` required).
    :ivar length: the shift length for ``custom``, in seconds; whole days rotate on local calendar
        days (DST-safe), other lengths in elapsed seconds.
    :ivar handoff_weekday: the handoff day for ``weekly`` (default ``monday``; stored lower-case).
    :ivar handoff_time: local wall-clock handoff time ``HH:MM`` (default ``09:00``).
    :ivar restrictions: :class:`RestrictionConfig` windows; when any are given the member is on call
        only inside them (default: none, on call around the clock).
    """

    type: Literal["weekly", "daily", "custom"] = "weekly"
    length: PositiveDuration | None = None
    handoff_weekday: str = "monday"
    handoff_time: str = "09:00"
    restrictions: list[RestrictionConfig] = Field(default_factory=list)

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


class OverrideConfig(Section):
    """Someone else is on call from ``start`` to ``end`` (naive times are in the schedule's zone).

    :ivar start: inclusive; made timezone-aware at load.
    :ivar end: exclusive, after ``start``; made timezone-aware at load.
    :ivar person: a ``people`` id.
    """

    start: datetime
    end: datetime
    person: str


class ScheduleConfig(Section):
    """An on-call schedule: ordered members rotating from ``start``; keyed by name in ``schedules``.

    :ivar time_zone: IANA zone of the handoff wall-clock time (default ``UTC``).
    :ivar rotation: :class:`RotationConfig` (default weekly, Monday 09:00).
    :ivar start: the first member is on call from this date at the handoff time.
    :ivar members: ``people`` ids, in rotation order (at least one).
    :ivar overrides: :class:`OverrideConfig` items; where they overlap the later in the list wins.
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


class PriorityConfig(Section):
    """A priority's deadlines: acknowledge within ``ack``, resolve within ``resolve`` (seconds, > 0).

    :ivar channels: when set, replaces every step's channels for this priority (e.g. P2 never pages).
    """

    ack: PositiveDuration
    resolve: PositiveDuration
    channels: list[EscalationChannel] | None = None


def _default_priorities() -> dict[str, PriorityConfig]:
    return {
        "P0": PriorityConfig(ack=15 * 60, resolve=4 * 3600),
        "P1": PriorityConfig(ack=3600, resolve=24 * 3600),
        "P2": PriorityConfig(ack=4 * 3600, resolve=3 * 86400),
    }


def _default_step_channels() -> list[EscalationChannel]:
    return ["page", "slack_dm"]


class EscalationStepConfig(Section):
    """One step of the chain: notify ``target`` through ``channels``, then wait.

    :ivar target: ``schedule:<name>`` (whoever is on call then) or ``person:<id>``.
    :ivar channels: :data:`ESCALATION_CHANNELS` items (default ``[page, slack_dm]``).
    :ivar wait: seconds to wait for an acknowledgement before the next step; default: the
        priority's ``ack`` deadline, so with P0 the steps run at 0, 15, 30 and 45 minutes.
    """

    target: str = Field(pattern=r"^(schedule|person):.+$")
    channels: list[EscalationChannel] = Field(default_factory=_default_step_channels, min_length=1)
    wait: PositiveDuration | None = None


class EscalationConfig(Section):
    """Severity -> priority -> deadlines, and the step chain.

    :ivar priorities: ``{name: PriorityConfig}`` (default P0 15m/4h, P1 1h/24h, P2 4h/3d).
    :ivar severity_priority: ``{severity label value: priority name}`` (default critical -> P0,
        warning and info -> P2).
    :ivar priority_label: an alert label that names the priority itself (``priority: P1``).
    :ivar default_priority: for a severity not in ``severity_priority``.
    :ivar ack_timeout: an acknowledgement expires after this long (seconds) and escalation
        restarts from the first step (Grafana OnCall's unacknowledge timeout); ``0`` = never.
    :ivar chain: :class:`EscalationStepConfig` items, walked in order.
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


def validate_oncall_refs(people: Mapping[str, PersonConfig], schedules: Mapping[str, ScheduleConfig],
                         escalation: EscalationConfig, receiver_names: set[str],
                         prefix: str = "alerting") -> list[tuple[str, str]]:
    """Check the cross-references of people, schedules and the escalation chain; return all problems.

    Checked, in this order: schedule members and override persons are in ``people``;
    ``announce_receiver`` is a receiver; chain targets name a schedule or person; every person a
    step can reach has the contact field each of its channels needs (including channels a
    priority substitutes).

    :param receiver_names: names of the configured receivers.
    :param prefix: the section's key path, prepended to every path.
    :return: ``[(key_path, message)]``, e.g.
        ``("alerting.escalation.chain[1].target", 'undefined person "cto"')``.
    """
    errs: list[tuple[str, str]] = []
    p = f"{prefix}." if prefix else ""
    for name, s in schedules.items():
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

    overrides = {c for prio in escalation.priorities.values() for c in (prio.channels or ())}
    for j, step in enumerate(escalation.chain):
        kind, _, name = step.target.partition(":")
        reachable: list[str] = []
        if kind == "schedule":
            if name not in schedules:
                errs.append((f"{p}escalation.chain[{j}].target", f'undefined schedule "{name}"'))
            else:
                sched = schedules[name]
                reachable = list(sched.members) + [o.person for o in sched.overrides]
        elif kind == "person":
            if name not in people:
                errs.append((f"{p}escalation.chain[{j}].target", f'undefined person "{name}"'))
            else:
                reachable = [name]
        channels = [c for c in ESCALATION_CHANNELS if c in step.channels or c in overrides]
        for person in dict.fromkeys(reachable):
            if person not in people:
                continue  # reported with the schedule
            for ch in channels:
                if not getattr(people[person], CHANNEL_CONTACT[ch]):
                    errs.append((f"{p}escalation.chain[{j}].channels",
                                 f'person "{person}" has no {CHANNEL_CONTACT[ch]} for channel "{ch}"'))
    return errs
