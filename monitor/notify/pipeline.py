"""Receiver delivery stages: fan a message out to a receiver's integrations through the outbox.

Alertmanager builds ``mute -> fanout per integration [wait -> dedup -> retry -> set notifies]``
(``notify/notify.go``, ``PipelineBuilder.New``/``createReceiverStage``). Here muting
(silences, inhibition, maintenance) happens upstream in ``monitor.alerting``; this module is
the per-receiver tail: for each integration, **dedup against the outbox and write the row**
(:class:`OutboxStage`); sending with retry and marking sent is the
:class:`~monitor.notify.outbox.OutboxWorker`'s job, so a crash between the two loses nothing.

A :class:`Stage` takes ``(message, now)`` and returns the message to pass on (or ``None`` to
stop); :func:`run_stages` composes them in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from monitor.notify.base import Integration, Message

#: Default time a notification may wait in the outbox before it is given up (seconds).
DEFAULT_TTL = 3600.0


class Stage(Protocol):
    """One delivery step."""

    async def __call__(self, message: Message, now: float) -> Message | None:
        """Do the step; return the message for the next stage, or ``None`` to stop."""
        ...


async def run_stages(stages: Sequence[Stage], message: Message, now: float) -> Message | None:
    """Run ``stages`` in order until one returns ``None``."""
    current: Message | None = message
    for stage in stages:
        if current is None:
            return None
        current = await stage(current, now)
    return current


def transition_id(message: Message) -> str:
    """Return an id of *what happened* in ``message`` (kind, recipient, title, alert states).

    Two messages with the same id are the same transition: the second is a duplicate. A caller
    that means to notify again (a ``repeat_interval`` tick, the next escalation step) passes
    its own id to :meth:`OutboxStage.enqueue` instead.
    """
    h = hashlib.sha256()
    for part in (message.kind, message.recipient, message.title, message.dedup_key):
        h.update(part.encode() + b"\x00")
    for a in sorted(message.alerts, key=lambda a: a["fingerprint"]):
        h.update(f"{a['fingerprint']}|{a['status']}|{a['starts_at']}|{a['ends_at']}".encode() + b"\x00")
    return h.hexdigest()[:32]


def outbox_key(message: Message, integration: Integration, transition: str | None = None) -> str:
    """The outbox dedup key: one transition through one integration (and recipient)."""
    return (f"{message.receiver}/{integration.name}|{message.kind}|{message.dedup_key}|"
            f"{message.recipient}|{transition or transition_id(message)}")


class OutboxStage:
    """Write one outbox row per integration of the message's receiver (deduplicated).

    :param store: the state store (``enqueue``).
    :param integrations: ``{receiver name: [Integration, ...]}`` from ``build_integrations``.
    :param ttl: seconds a row may stay undelivered before it expires.

    Example::

        stage = OutboxStage(store, integrations)
        written = await stage.enqueue(Message.build("firing", "ops", [alert]), now=clock())
    """

    def __init__(self, store, integrations: Mapping[str, Sequence[Integration]], *,
                 ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.integrations = integrations
        self.ttl = ttl

    async def enqueue(self, message: Message, now: float, *, transition: str | None = None,
                      only: Sequence[str] | None = None, ttl: float | None = None) -> list[str]:
        """Write the rows; return the names of the integrations that got a *new* row.

        :param transition: the transition id (default :func:`transition_id`).
        :param only: restrict to these integration kinds or names (escalation: ``["slack"]``).
        :param ttl: override the stage's ``ttl`` for this message.
        :raises KeyError: the receiver is unknown (config validation should make this impossible).
        """
        written = []
        for integ in self.integrations[message.receiver]:
            if only is not None and integ.kind not in only and integ.name not in only:
                continue
            if not integ.wants(message):
                continue
            key = outbox_key(message, integ, transition)
            if await self.store.enqueue(key, message.receiver, integ.name, message.to_dict(),
                                        now + (self.ttl if ttl is None else ttl), now):
                written.append(integ.name)
        return written

    async def __call__(self, message: Message, now: float) -> Message | None:
        await self.enqueue(message, now)
        return message
