"""Messages about one alert, outside its group's notifications: escalation notices and receiver updates.

- :class:`EscalationNotices` (the escalation's :class:`~monitor.escalation.notices.NoticeSink`):
  one notice -> one message to the person's contact through an integration of the channel's
  kind (``page`` -> ``pagerduty``, ``slack_dm`` -> ``slack``, ``email`` -> ``email``), taken from
  the receivers the alert routes to first (route order), then from any receiver; the outbox
  transition is the notice's, so a replayed step is the same row. No such integration: the
  failure code ``no_integration`` for the timeline.
- :class:`AlertUpdates` (the acknowledgements' ``ReceiverUpdates``): ``acknowledged`` or
  ``resolved`` for one alert to each receiver it routes to, so Slack messages are updated and
  PagerDuty incidents acknowledged or resolved (the incident key is the fingerprint).

Both build the alert's payload here (:func:`monitor.notify.payload.alert_payload`), add the
signed links (:class:`~monitor.notify.links.LinkBuilder`) and write through the
:class:`~monitor.notify.outbox_stage.OutboxStage`. Times are Unix seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from model.alert import Alert
from monitor.alerting.route import Route, receivers_for
from monitor.escalation.notices import Notice, pick_integration
from monitor.notify.base import Integration, Message
from monitor.notify.links import LinkBuilder
from monitor.notify.outbox_stage import OutboxStage
from monitor.notify.payload import alert_payload, payload_time, with_defaults

__all__ = ["EscalationNotices", "AlertUpdates"]


class EscalationNotices:
    """Write escalation notices to the outbox (see the module docstring).

    :param outbox: the outbox stage (its ``integrations`` are the configured ones).
    :param links: signed links for the alert.
    :param route: the routing tree (integration preference), or ``None``.
    :param clock: Unix-seconds clock (the alert's status in the payload is taken at its time).
    """

    def __init__(self, outbox: OutboxStage, links: LinkBuilder, route: Route | None, *,
                 clock: Callable[[], float] = time.time, logger: logging.Logger | Any | None = None) -> None:
        self.outbox = outbox
        self.links = links
        self.route = route
        self.clock = clock
        self.log = logger or logging.getLogger("monitor.notify")

    async def __call__(self, notice: Notice, now: float) -> str:
        """Enqueue ``notice``; return ``""``, or ``no_integration`` when no integration delivers its channel."""
        snap = notice.snap
        integ = self._integration(notice.integration, snap.labels)
        if integ is None:
            self.log.warning("no integration for escalation channel", extra={
                "alert": snap.fingerprint, "channel": notice.channel, "integration": notice.integration})
            return "no_integration"
        if notice.alert is not None:
            payload = alert_payload(notice.alert, self.clock())
        else:  # no longer held: what the snapshot knows
            payload = with_defaults({"labels": dict(snap.labels), "fingerprint": snap.fingerprint},
                                    "resolved" if notice.kind == "resolved" else "firing")
        if notice.kind == "resolved":
            payload = dict(payload, status="resolved")
            if notice.alert is not None and not notice.alert.resolved(self.clock()):
                payload["ends_at"] = ""  # it fires on (a future endsAt is its validity, not an end)
        msg = Message.build(notice.kind, integ.receiver, [payload], recipient=notice.recipient,
                            priority=snap.priority, title=notice.title, dedup_key=snap.fingerprint,
                            extra={"person": notice.person, "channel": notice.channel},
                            **self.links.message_kw(snap.fingerprint))
        await self.outbox.enqueue(msg, now, transition=notice.transition, only=[integ.name])
        return ""

    def _integration(self, kind: str, labels: Mapping[str, str]) -> Integration | None:
        # the rule simulate uses too (monitor.escalation.notices.pick_integration)
        return pick_integration(kind, receivers_for(self.route, labels), self.outbox.integrations,
                                lambda integ: integ.kind)


class AlertUpdates:
    """Tell an alert's receivers it was acknowledged or resolved (see the module docstring).

    :param outbox: the outbox stage. :param links: signed links. :param route: the routing tree, or ``None``.
    """

    def __init__(self, outbox: OutboxStage, links: LinkBuilder, route: Route | None) -> None:
        self.outbox = outbox
        self.links = links
        self.route = route

    async def __call__(self, alert: Alert, kind: str, now: float, transition: str,
                       only: Sequence[str] | None, *, receivers: Sequence[str] | None = None) -> None:
        """Enqueue ``kind`` for ``alert`` to each receiver it routes to (integrations ``only``, and
        receivers ``receivers`` — those told of the alert — when given).

        A ``resolved`` update shows the alert resolved at ``now`` unless it ended earlier.
        """
        payload = alert_payload(alert, now)
        if kind == "resolved":
            payload["status"] = "resolved"
            if alert.ends_at is None or alert.ends_at > now:  # a future endsAt is a firing alert's validity
                payload["ends_at"] = payload_time(now)
        for receiver in receivers_for(self.route, alert.labels):
            if receivers is not None and receiver not in receivers:
                continue
            msg = Message.build(kind, receiver, [payload], dedup_key=alert.fingerprint,
                                **self.links.message_kw(alert.fingerprint))
            try:
                await self.outbox.enqueue(msg, now, transition=transition, only=only)
            except KeyError:
                continue
