"""The alert: the one type that travels the alert pipeline, from intake to the notification payload.

Modelled on Alertmanager ``types/types.go`` (``Alert``, ``AlertStatus``) and the v2 API's
``gettableAlert``: a label set (the identity), annotations, ``starts_at``, ``ends_at`` and the
``generator_url``; plus the API status markers ``silenced_by`` / ``inhibited_by`` / ``muted_by``
and ``state`` (``active`` | ``suppressed``). Muted alerts stay visible: muting sets markers, it
never deletes.

Every instant is float Unix **seconds**, as everywhere else in the project (store, escalation,
clocks); nothing here reads the clock. Conversions happen once, at the edges of the pipeline:
rule alerts and intake bodies in (``monitor.alerting.intake``), store rows in and out
(``monitor.alerting.provider``), notification payloads out (``monitor.notify.payload``) and
the v2 API shape (:meth:`Alert.to_api`, RFC 3339 via :func:`model.timestamps.rfc3339`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from model.labels import Labels
from model.timestamps import ZERO_TIME, rfc3339

__all__ = ["Alert", "ACTIVE", "SUPPRESSED", "UNPROCESSED"]

UNPROCESSED = "unprocessed"
ACTIVE = "active"
SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert (Alertmanager ``types.Alert``).

    :ivar labels: the identity of the alert (``alertname``, ``severity``, ...).
    :ivar annotations: ``summary``, ``description``, ``runbook_url``, ...
    :ivar starts_at: when the alert started firing (Unix seconds).
    :ivar ends_at: ``None`` while firing with no known end; a time once resolved. A time in the
        future means "firing until then unless refreshed" (an intake alert's resolve timeout,
        Alertmanager ``resolve_timeout``).
    :ivar generator_url: link back to the rule/expression that produced it.
    :ivar updated_at: when this version was received (Unix seconds; ``starts_at`` when not given).
    :ivar timeout: ``True`` when ``ends_at`` was set by us from the resolve timeout.
    :ivar value: the rule's sample value at its last evaluation, as text (``"0.12"``; ``""`` for
        intake alerts): message text only, not part of the identity.
    :ivar silenced_by: ids of the silences muting it.
    :ivar inhibited_by: fingerprints of the alerts inhibiting it.
    :ivar muted_by: names of the maintenance windows muting it.

    >>> a = Alert.firing({"alertname": "ApiDown", "severity": "critical"}, starts_at=0)
    >>> a.fingerprint == Labels.of({"alertname": "ApiDown", "severity": "critical"}).fingerprint()
    True
    >>> a.resolved(10), a.state
    (False, 'active')
    """

    labels: Labels
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: float = 0.0
    ends_at: float | None = None
    generator_url: str = ""
    updated_at: float | None = None
    timeout: bool = False
    value: str = ""
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    muted_by: tuple[str, ...] = ()
    # The labels' fingerprint, read on every step of the pipeline: kept with the alert (computed
    # once per version; ``Labels.fingerprint`` caches it across versions of the same labels).
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.labels, Labels):
            object.__setattr__(self, "labels", Labels.of(self.labels))
        object.__setattr__(self, "_fingerprint", self.labels.fingerprint())
        object.__setattr__(self, "starts_at", float(self.starts_at))
        if self.ends_at is not None:
            object.__setattr__(self, "ends_at", float(self.ends_at))
        object.__setattr__(self, "updated_at", self.starts_at if self.updated_at is None else float(self.updated_at))

    @classmethod
    def firing(cls, labels: Mapping[str, str] | Labels, *, starts_at: float,
               annotations: Mapping[str, str] | None = None, generator_url: str = "") -> "Alert":
        """Build a firing alert (no end)."""
        return cls(Labels.of(labels) if not isinstance(labels, Labels) else labels, dict(annotations or {}),
                   starts_at, None, generator_url)

    @property
    def fingerprint(self) -> str:
        """The 16-hex-digit fingerprint of the label set (``Labels.fingerprint``)."""
        return self._fingerprint

    @property
    def name(self) -> str:
        """The ``alertname`` label, or ``""``."""
        return self.labels.get("alertname")

    def resolved(self, now: float) -> bool:
        """Return whether the alert is resolved at ``now`` (``ends_at`` set and not after ``now``)."""
        return self.ends_at is not None and self.ends_at <= now

    def status(self, now: float) -> str:
        """Return ``"firing"`` or ``"resolved"`` at ``now``."""
        return "resolved" if self.resolved(now) else "firing"

    @property
    def state(self) -> str:
        """``"suppressed"`` when silenced, inhibited or muted, else ``"active"`` (v2 API ``state``)."""
        return SUPPRESSED if (self.silenced_by or self.inhibited_by or self.muted_by) else ACTIVE

    def resolve(self, at: float) -> "Alert":
        """Return a copy resolved at ``at`` (keeps an earlier ``ends_at``)."""
        if self.ends_at is not None and self.ends_at <= at and not self.timeout:
            return self
        return replace(self, ends_at=at, updated_at=at, timeout=False)

    def with_marks(self, *, silenced_by: tuple[str, ...] = (), inhibited_by: tuple[str, ...] = (),
                   muted_by: tuple[str, ...] = ()) -> "Alert":
        """Return a copy with the given status markers (replacing the old ones)."""
        return replace(self, silenced_by=tuple(silenced_by), inhibited_by=tuple(inhibited_by),
                       muted_by=tuple(muted_by))

    def merge(self, newer: "Alert") -> "Alert":
        """Merge a newer version of the same alert into this one (types.go ``Alert.Merge``, simplified).

        The newer version wins (annotations, ``ends_at``), except that the earliest ``starts_at``
        is kept and the status markers stay those of ``self``. Callers merge only overlapping
        versions (provider/mem ``Put``): a re-fire after resolution replaces the old alert.
        """
        return replace(newer, starts_at=min(self.starts_at, newer.starts_at), silenced_by=self.silenced_by,
                       inhibited_by=self.inhibited_by, muted_by=self.muted_by)

    def overlaps(self, newer: "Alert") -> bool:
        """Return whether ``newer`` continues this alert (it starts before this one ended)."""
        return self.ends_at is None or newer.starts_at < self.ends_at or (
            newer.ends_at is not None and self.starts_at <= newer.ends_at <= self.ends_at)

    def to_api(self, now: float) -> dict[str, Any]:
        """Return the v2 API ``gettableAlert`` shape (RFC 3339 times, ``status.state``)."""
        return {
            "labels": self.labels.as_dict(),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at) if self.ends_at is not None else ZERO_TIME,
            "updatedAt": rfc3339(self.starts_at if self.updated_at is None else self.updated_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
            "status": {"state": self.state, "silencedBy": list(self.silenced_by),
                       "inhibitedBy": list(self.inhibited_by), "mutedBy": list(self.muted_by)},
            "receivers": [],
        }
