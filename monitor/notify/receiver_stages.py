"""The durable stages of the receiver pipeline, and the builder that strings them together.

Alertmanager ``notify/notify.go`` ``PipelineBuilder.New`` / ``createReceiverStage`` build, per
receiver, ``mute stages -> fan-out per integration [dedup -> retry -> set notifies]``. The mute
stages and the dedup decision run at the group's flush in the dispatcher (pure, in memory:
``monitor.alerting.dispatch``); what follows is durable, and :func:`receiver_stages` builds it:

1. :class:`MessageStage` — the payload edge: the group's alerts become one
   :class:`~monitor.notify.base.Message` (``firing`` or ``resolved``; signed links when exactly
   one alert fires; the escalation priority of the first firing alert);
2. :class:`NflogStage` — the notification log numbers the group's transition
   (:class:`monitor.alerting.nflog.TransitionLog`, kv ``nflog:<group key>``);
3. :class:`~monitor.notify.outbox_stage.OutboxStage` — fan-out per integration: one outbox row
   each, deduplicated by the outbox key;
4. :class:`EnqueuedStage` — counts the new rows (``monitor_notifications_enqueued_total``).

The outbox worker then sends with retry and marks sent (``RetryStage``, ``SetNotifiesStage``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from model.alert import Alert
from monitor.alerting.nflog import TransitionLog
from monitor.alerting.stage import Context, MultiStage
from monitor.escalation.policy import EscalationPolicy
from monitor.notify.base import Message
from monitor.notify.links import LinkBuilder
from monitor.notify.outbox_stage import OutboxStage, transition_id
from monitor.notify.payload import alert_payload

__all__ = ["MessageStage", "NflogStage", "EnqueuedStage", "receiver_stages"]


class MessageStage:
    """Build the group's message into ``ctx.message``.

    :param links: the signed links of a message about one alert.
    :param policy: the escalation policy (the priority shown; none without a chain).
    """

    def __init__(self, links: LinkBuilder, policy: EscalationPolicy) -> None:
        self.links = links
        self.policy = policy

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]]:
        """Build the receiver's message for the group's alerts into ``ctx.message``."""
        firing = [a for a in alerts if not a.resolved(ctx.now)]
        kw: dict[str, Any] = (self.links.message_kw(firing[0].fingerprint) if len(firing) == 1
                              else {"external_url": self.links.external_url})
        priority = self.policy.priority_for(firing[0].labels).name if firing and self.policy.chain else ""
        msg = Message.build("firing" if firing else "resolved", ctx.receiver,
                            [alert_payload(a, ctx.now) for a in alerts], group_key=ctx.group_key,
                            group_labels=ctx.group_labels.as_dict(), priority=priority, **kw)
        return ctx.with_(message=msg), alerts


class NflogStage:
    """Number the group's transition into ``ctx.transition`` (see :class:`~monitor.alerting.nflog.TransitionLog`)."""

    def __init__(self, log: TransitionLog) -> None:
        self.log = log

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]]:
        """Give the transition its persisted number (a replay within ``repeat_interval`` keeps it)."""
        number = await self.log.number(ctx.group_key, transition_id(ctx.message), ctx.now, ctx.repeat_interval)
        return ctx.with_(transition=number), alerts


class EnqueuedStage:
    """Count the outbox rows written for the group (``monitor_notifications_enqueued_total{receiver}``).

    :param counter: the counter, or ``None`` (nothing counted).
    """

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]]:
        """Count the outbox rows the receiver got."""
        if ctx.written and self.counter is not None:
            self.counter.labels(ctx.receiver).inc(len(ctx.written))
        return ctx, alerts


def receiver_stages(numbers: TransitionLog, outbox: OutboxStage, links: LinkBuilder, policy: EscalationPolicy,
                    enqueued: Any = None) -> MultiStage:
    """Return the durable receiver pipeline: message -> transition number -> outbox rows -> count.

    :param enqueued: ``monitor_notifications_enqueued_total``, or ``None``.
    """
    return MultiStage(MessageStage(links, policy), NflogStage(numbers), outbox, EnqueuedStage(enqueued))
