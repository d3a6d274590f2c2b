"""Escalation notices: what one escalation action says to one person through one channel.

The escalation walk (:mod:`monitor.escalation.engine`) decides *who* and *when*; this module
turns one of its actions into :class:`Notice` values — the person's contact for the channel, the
message kind and title — and nothing more: a notice is handed to the injected sink
(:class:`NoticeSink`; the outbox, ``monitor.notify.notices``), which picks the integration,
builds the message and writes the outbox row.

====================  ==============  ===============================================
escalation channel    integration     recipient (``Notice.recipient``)
====================  ==============  ===============================================
``page``              ``pagerduty``   the person's ``pagerduty_routing_key``
``slack_dm``          ``slack``       the person's ``slack_user_id`` (a DM)
``email``             ``email``       the person's ``email``
====================  ==============  ===============================================

Which integration delivers a channel is decided by :func:`pick_integration`, shared by the
daemon's sink (``monitor.notify.notices``) and ``codebook-monitor simulate``
(:mod:`monitor.escalation.simulate`), so the two cannot disagree: an integration of the channel's
kind from the receivers the alert routes to first (route order), then from any receiver; none
-> the step fails with ``no_integration``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from model.alert import Alert
from monitor.escalation.engine import NOTIFY, RESOLVED_NOTICE, SLA_BREACH, Action
from monitor.escalation.policy import EscalationSnapshot

__all__ = ["Notice", "NoticeSink", "Contacts", "CHANNEL_INTEGRATION", "CHANNEL_CONTACT", "MESSAGE_KIND",
           "pick_integration"]

#: Escalation channel -> integration kind that delivers it.
CHANNEL_INTEGRATION = {"page": "pagerduty", "slack_dm": "slack", "email": "email"}
#: Escalation channel -> the person's contact field.
CHANNEL_CONTACT = {"page": "pagerduty_routing_key", "slack_dm": "slack_user_id", "email": "email"}
#: Engine action kind -> message kind.
MESSAGE_KIND = {NOTIFY: "escalation", SLA_BREACH: "sla_breach", RESOLVED_NOTICE: "resolved"}

IntegT = TypeVar("IntegT")


def pick_integration(kind: str, routed: Sequence[str], integrations: Mapping[str, Sequence[IntegT]],
                     kind_of: Callable[[IntegT], str]) -> IntegT | None:
    """Return the integration that delivers an escalation notice of integration ``kind``, or ``None``.

    :param kind: ``pagerduty``, ``slack`` or ``email`` (:data:`CHANNEL_INTEGRATION` of the channel).
    :param routed: the receivers the alert routes to, in route order (tried first).
    :param integrations: ``{receiver: [integration, ...]}`` in config order (tried next).
    :param kind_of: an integration's kind.
    """
    for receiver in dict.fromkeys(list(routed) + list(integrations)):
        for integ in integrations.get(receiver, ()):
            if kind_of(integ) == kind:
                return integ
    return None


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to one person through one channel.

    :ivar kind: message kind: ``escalation``, ``sla_breach``, ``resolved`` or ``acknowledged``.
    :ivar snap: the escalation's frozen snapshot (fingerprint, labels, priority).
    :ivar alert: the alert as the pipeline holds it, or ``None`` when it holds it no more.
    :ivar person: the person's id. :ivar channel: ``page``, ``slack_dm`` or ``email``.
    :ivar recipient: the person's contact on that channel (a routing key, user id or address).
    :ivar title: the message's extra line (``"P0: paging Alice (schedule:primary)"``).
    :ivar transition: the outbox transition id: the same notice twice is one row.
    """

    kind: str
    snap: EscalationSnapshot
    alert: Alert | None
    person: str
    channel: str
    recipient: str
    title: str
    transition: str

    @property
    def integration(self) -> str:
        """The integration kind that delivers the channel (``pagerduty``, ``slack``, ``email``)."""
        return CHANNEL_INTEGRATION[self.channel]


class NoticeSink(Protocol):
    """Where notices go (``monitor.notify.notices.EscalationNotices``)."""

    async def __call__(self, notice: Notice, now: float) -> str:
        """Enqueue ``notice``; return ``""`` or a failure code (``no_integration``)."""
        ...


class Contacts:
    """The people of the ``alerting.people`` config: names, contacts, and the titles of notices.

    :param people: ``{id: PersonConfig}`` (``name``, ``pagerduty_routing_key``, ``slack_user_id``, ``email``).
    """

    def __init__(self, people: Mapping[str, Any]) -> None:
        self.people = people

    def name(self, person: str) -> str:
        """``"Alice Martin (alice)"``, or the id when the person has no name."""
        p = self.people.get(person)
        return f"{p.name} ({person})" if p is not None and p.name else person

    def contact(self, person: str, channel: str) -> str:
        """Return the person's contact on ``channel`` (secrets revealed), or ``""``."""
        p = self.people.get(person)
        if p is None:
            return ""
        value = getattr(p, CHANNEL_CONTACT[channel], None)
        if value is None:
            return ""
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    def title(self, snap: EscalationSnapshot, action: Action) -> str:
        """Return the extra line of an action's message (level, person, target, reason)."""
        who = self.name(action.person)
        if action.kind == RESOLVED_NOTICE:
            return f"Resolved ({action.reason})"
        if action.kind == SLA_BREACH:
            return f"{action.reason} - notifying {who}"
        target = snap.steps[action.level].target if action.level < len(snap.steps) else ""
        if action.level == 0:
            verb = "paging" if "page" in action.channels else "notifying"
            return f"{snap.priority}: {verb} {who} ({target})"
        return f"Escalated to level {action.level + 1}: {who} ({target}), {action.reason}"

    def notice(self, snap: EscalationSnapshot, kind: str, person: str, channel: str, transition: str,
               title: str, alert: Alert | None) -> Notice | None:
        """Return the notice to ``person`` on ``channel``, or ``None`` when they have no contact there."""
        contact = self.contact(person, channel)
        if not contact:
            return None
        return Notice(kind, snap, alert, person, channel, contact, title, transition)
