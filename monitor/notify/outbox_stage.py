"""The durable end of every notification path: one outbox row per integration, deduplicated.

Alertmanager's per-integration tail is ``Fanout{Wait, Dedup, Retry, SetNotifies}``
(``notify/notify.go`` ``createReceiverStage``). Here the fan-out writes, for each integration
of the message's receiver, **one outbox row keyed by what happened** (:func:`outbox_key`:
receiver/integration, kind, incident, recipient, transition): writing the same transition twice
is a no-op (``store.enqueue`` inserts only a new key), which is the dedup; sending with retry
and marking sent is the :class:`~monitor.notify.outbox.OutboxWorker`'s job, so a crash between
the two loses nothing.

:class:`OutboxStage` serves every path: the receiver pipeline (as a
:class:`~monitor.alerting.stage.Stage`, the group's transition numbered by the notification
log), escalation notices and receiver updates (``monitor.notify.notices``), handoff
announcements (``monitor.notify.handoff``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from model.alert import Alert
from monitor.alerting.stage import Context
from monitor.notify.base import Integration, Message

__all__ = ["OutboxStage", "transition_id", "outbox_key", "DEFAULT_TTL"]

log = logging.getLogger("monitor.notify.outbox")

#: Default time a notification may wait in the outbox before it is given up (seconds).
DEFAULT_TTL = 3600.0


def transition_id(message: Message) -> str:
    """Return an id of *what happened* in ``message`` (kind, recipient, title, alert states).

    Two messages with the same id are the same transition: the second is a duplicate. A caller
    that means to notify again (a ``repeat_interval`` tick, the next escalation step) passes
    its own id to :meth:`OutboxStage.enqueue` instead.

    An alert is identified by fingerprint, status and ``starts_at`` (its episode), not by
    ``ends_at``: a firing intake alert's ``endsAt`` moves forward with every re-post of it, and
    a notification replayed after a crash (its rows written, the notification log not) must be
    the same outbox row, not a second announcement of the same episode. Alertmanager's
    notification log likewise knows a group's alerts by fingerprint and resolved flag only
    (``nflog``, ``notify.go`` ``hashAlerts``).
    """
    h = hashlib.sha256()
    for part in (message.kind, message.recipient, message.title, message.dedup_key):
        h.update(part.encode() + b"\x00")
    for a in sorted(message.alerts, key=lambda a: a["fingerprint"]):
        h.update(f"{a['fingerprint']}|{a['status']}|{a['starts_at']}".encode() + b"\x00")
    return h.hexdigest()[:32]


def outbox_key(message: Message, integration: Integration, transition: str | None = None) -> str:
    """Return the outbox dedup key: one transition through one integration (and recipient)."""
    return (f"{message.receiver}/{integration.name}|{message.kind}|{message.dedup_key}|"
            f"{message.recipient}|{transition or transition_id(message)}")


class OutboxStage:
    """Write one outbox row per integration of the message's receiver (deduplicated).

    :param store: the state store (``enqueue``).
    :param integrations: ``{receiver name: [Integration, ...]}`` from ``build_integrations``.
    :param ttl: seconds a row may stay undelivered before it expires.

    Example::

        stage = OutboxStage(store, integrations)
        written = await stage.enqueue(Message.build("firing", "ops", [payload]), now=clock())
    """

    def __init__(self, store: Any, integrations: Mapping[str, Sequence[Integration]], *,
                 ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.integrations = integrations
        self.ttl = ttl
        #: Called when rows were written and committed (the composition root sets the worker's ``wake``).
        self.on_write: Callable[[], None] | None = None

    async def enqueue(self, message: Message, now: float, *, transition: str | None = None,
                      only: Sequence[str] | None = None, ttl: float | None = None) -> list[str]:
        """Write the rows; return the names of the integrations that got a *new* row.

        :param transition: the transition id (default :func:`transition_id`).
        :param only: restrict to these integration kinds or names (escalation: ``["slack"]``).
        :param ttl: override the stage's ``ttl`` for this message.
        :raises KeyError: the receiver is unknown (config validation should make this impossible).
        """
        written = []
        payload = None  # built once for every integration
        for integ in self.integrations[message.receiver]:
            if only is not None and integ.kind not in only and integ.name not in only:
                continue
            if not integ.wants(message):
                continue
            key = outbox_key(message, integ, transition)
            payload = message.to_dict() if payload is None else payload
            if await self.store.enqueue(key, message.receiver, integ.name, payload,
                                        now + (self.ttl if ttl is None else ttl), now):
                written.append(integ.name)
        if written and self.on_write is not None:
            after_commit = getattr(self.store, "after_commit", None)
            if after_commit is not None:
                after_commit(self.on_write)  # inside a batch: once the rows are visible
            else:
                self.on_write()
        return written

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]] | None:
        """Write ``ctx.message`` as transition ``ctx.transition`` (the receiver pipeline's last stage);
        ``ctx.written`` names the integrations that got a new row. An unknown receiver stops here."""
        try:
            written = await self.enqueue(ctx.message, ctx.now, transition=ctx.transition or None)
        except KeyError:
            log.error("notification for an unknown receiver dropped", extra={"receiver": ctx.receiver})
            return None
        return ctx.with_(written=tuple(written)), alerts
