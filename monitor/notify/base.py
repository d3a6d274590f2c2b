"""The notifier protocol, the message every channel sends, and the built integration.

One small protocol (:class:`Notifier`) behind which each channel module (``slack``,
``pagerduty``, ``webhook``, ``email``) hides its vendor; one :class:`Message` that carries
either an alert group from routing or an escalation action (a person through a channel);
one :class:`Integration` per configured channel entry, named like ``slack[0]`` for logs and
metric labels. The ``kind -> class`` registry lives in :mod:`monitor.notify.registry`.

Shape after Alertmanager ``notify/notify.go`` (``Notifier``, ``ResolvedSender``,
``Integration``) and its webhook ``Message`` (``notify/webhook/webhook.go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Protocol, runtime_checkable

from model.labels import common_labels
from monitor.notify.payload import dedup_key, with_defaults

#: What a message is about. ``firing``/``resolved``/``acknowledged``/``unacknowledged`` follow an
#: alert group's life; ``escalation`` pages the next person of an escalation chain; ``sla_breach`` tells the
#: next level that the resolve deadline has passed; ``handoff`` announces who is on call now
#: (no alerts; Slack only, other channels skip it); ``maintenance`` tells a client contact of a
#: coming maintenance window (no alerts; Slack and email, see ``monitor.notify.maintenance_notices``).
Kind = Literal["firing", "resolved", "acknowledged", "unacknowledged", "escalation", "sla_breach", "handoff",
               "maintenance"]
KINDS: tuple[str, ...] = ("firing", "resolved", "acknowledged", "unacknowledged", "escalation", "sla_breach",
                          "handoff", "maintenance")
#: Kinds that update the message sent before for the same alert (Slack ``chat.update``).
UPDATE_KINDS: tuple[str, ...] = ("acknowledged", "unacknowledged", "resolved")


@dataclass(frozen=True)
class Message:
    """One notification to send through one integration.

    Either an alert group from routing (``kind`` firing/resolved/acknowledged, ``recipient``
    empty so the channel's configured destination is used), an escalation action
    (``kind`` escalation/sla_breach/resolved with ``recipient`` set to a Slack channel or user
    id, a PagerDuty routing key or an email address), or an on-call handoff announcement
    (``kind`` handoff, no alerts, the data in ``extra``; see :mod:`monitor.escalation.announce`).

    Build one with :meth:`build`, which fills the derived fields::

        msg = Message.build("firing", "ops", [alert_payload(alert, now)],
                            external_url="https://mon.example", ack_url=make_link(...))

    :param kind: one of :data:`KINDS`.
    :param receiver: the receiver name from config (``receivers[].name``).
    :param alerts: alert payloads (:func:`monitor.notify.payload.alert_payload`).
    :param group_key: the aggregation group's key (Alertmanager ``groupKey``), or ``""``.
    :param group_labels: labels the group was formed by (``group_by``).
    :param common_labels: labels every alert shares.
    :param common_annotations: annotations every alert shares.
    :param external_url: this daemon's external URL (links back to the UI).
    :param ack_url: a signed acknowledge link (:func:`monitor.notify.links.make_link`), or ``""``.
    :param resolve_url: a signed resolve link, or ``""``.
    :param dedup_key: the incident key: PagerDuty ``dedup_key``, the same for trigger,
        acknowledge and resolve of one alert (the fingerprint for a single alert).
        Not the outbox dedup key (that one names one transition through one integration).
    :param recipient: the destination override for escalation actions, or ``""``.
    :param severity: ``critical`` | ``warning`` | ``info`` (from labels when not given).
    :param priority: ``P0`` | ``P1`` | ``P2`` or ``""``.
    :param title: an extra line for escalation messages, e.g. ``"Escalated to secondary on-call"``.
    :param extra: free-form template data (JSON-serialisable).
    :param previous: delivery reference of an earlier send of the same alert through the same
        integration and recipient (Slack ``{"channel", "ts"}``), filled in by the outbox so
        acknowledge and resolve update the original message. ``None`` when unknown.
    :param delivery_id: the stable id of this transition through this integration (32 hex
        digits, derived from the outbox row's key), the same on every attempt, across restarts
        and replicas; filled in by the outbox. The webhook sends it as ``Idempotency-Key``, Slack
        as message ``metadata``, so a receiver (or a new leader) can tell a redelivery. ``""``
        when unknown.
    """

    kind: str
    receiver: str
    alerts: tuple[dict[str, Any], ...] = ()
    group_key: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    ack_url: str = ""
    resolve_url: str = ""
    dedup_key: str = ""
    recipient: str = ""
    severity: str = ""
    priority: str = ""
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] | None = None
    delivery_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown message kind {self.kind!r} (one of {', '.join(KINDS)})")

    @classmethod
    def build(cls, kind: str, receiver: str, alerts: Iterable[Mapping[str, Any]], **kw: Any) -> "Message":
        """Derive common labels/annotations, severity and dedup key from the alert payloads.

        A payload without some key gets the shape's default (:func:`~monitor.notify.payload.with_defaults`;
        status ``resolved`` for a resolved message).
        """
        default_status = "resolved" if kind == "resolved" else "firing"
        norm = tuple(with_defaults(a, default_status) for a in alerts)
        kw.setdefault("common_labels", common_labels([a["labels"] for a in norm]))
        kw.setdefault("common_annotations", common_labels([a["annotations"] for a in norm]))
        if not kw.get("severity"):
            kw["severity"] = kw["common_labels"].get("severity") or (
                norm[0]["labels"].get("severity", "") if norm else "")
        if not kw.get("dedup_key"):
            kw["dedup_key"] = dedup_key([a["fingerprint"] for a in norm], kw.get("group_key", ""))
        return cls(kind=kind, receiver=receiver, alerts=norm, **kw)

    @property
    def status(self) -> str:
        """``resolved`` for resolved messages, else ``firing`` (Alertmanager's group status)."""
        if self.kind == "resolved":
            return "resolved"
        return "firing" if any(a["status"] == "firing" for a in self.alerts) or not self.alerts else "resolved"

    @property
    def fingerprints(self) -> list[str]:
        """The fingerprints of the alerts, in order."""
        return [a["fingerprint"] for a in self.alerts]

    @property
    def ref_key(self) -> str:
        """The key under which a delivery reference is stored (see :attr:`previous`)."""
        return self.dedup_key or self.group_key

    def firing(self) -> list[dict[str, Any]]:
        """Return the alerts whose status is ``firing``."""
        return [a for a in self.alerts if a["status"] == "firing"]

    def resolved(self) -> list[dict[str, Any]]:
        """Return the alerts whose status is ``resolved``."""
        return [a for a in self.alerts if a["status"] == "resolved"]

    def with_previous(self, previous: dict[str, Any] | None) -> "Message":
        """Return a copy with :attr:`previous` set."""
        return replace(self, previous=previous)

    def with_delivery_id(self, delivery_id: str) -> "Message":
        """Return a copy with :attr:`delivery_id` set."""
        return replace(self, delivery_id=delivery_id)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (the outbox payload)."""
        # Shallow (the payload is encoded at once): asdict() would deep-copy every alert.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["alerts"] = list(self.alerts)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Message":
        """Rebuild a message from :meth:`to_dict` output."""
        d = dict(data)
        d["alerts"] = tuple(d.get("alerts") or ())
        return cls(**d)


@dataclass(frozen=True)
class NotifyResult:
    """What a successful send returns.

    :param meta: channel facts worth keeping (Slack ``{"channel", "ts"}``, PagerDuty
        ``{"dedup_key"}``, HTTP ``{"status"}``); stored on the outbox row and, when it holds a
        ``channel``/``ts`` pair, as the delivery reference for later updates.
    :param skipped: ``True`` when nothing was sent on purpose (e.g. a kind the channel ignores).
    """

    meta: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


@runtime_checkable
class Notifier(Protocol):
    """Send one :class:`Message` through one channel.

    ``send_resolved``: whether resolved messages go through this channel at all (Alertmanager
    ``ResolvedSender``); the outbox stage does not enqueue them when ``False``.
    """

    send_resolved: bool

    async def notify(self, message: Message) -> NotifyResult:
        """Deliver ``message`` once (no retries: the outbox retries).

        :return: what to remember about the delivery.
        :raises NotifyError: ``retryable=True`` for 5xx, 429 (with ``retry_after`` seconds),
            timeouts and connection errors; ``retryable=False`` for other 4xx and invalid
            input. The message never contains a secret.
        """
        ...

    def secrets(self) -> list[str]:
        """Return the secret values this notifier holds (for redaction of stored errors)."""
        ...

    async def aclose(self) -> None:
        """Release network resources (idempotent)."""
        ...


@dataclass
class Integration:
    """One configured channel entry of a receiver, built and ready to send.

    :param name: ``kind[index]``, e.g. ``slack[0]`` (Alertmanager's integration naming).
    :param receiver: the receiver it belongs to.
    :param notifier: the channel implementation.
    """

    name: str
    receiver: str
    notifier: Notifier

    @property
    def kind(self) -> str:
        """The channel kind, e.g. ``slack``."""
        return self.name.split("[", 1)[0]

    @property
    def send_resolved(self) -> bool:
        """Whether resolved messages are sent (the notifier's ``send_resolved``)."""
        return bool(getattr(self.notifier, "send_resolved", True))

    def wants(self, message: Message) -> bool:
        """Return ``False`` for resolved messages when ``send_resolved`` is off."""
        return message.kind != "resolved" or self.send_resolved

    async def notify(self, message: Message) -> NotifyResult:
        """Send through the notifier (see :meth:`Notifier.notify`)."""
        return await self.notifier.notify(message)
