"""The alert as routing, muting, dispatch and escalation see it.

Modelled on Alertmanager ``types/types.go`` (``Alert``, ``AlertStatus``) and the v2 API's
``gettableAlert``: a label set (the identity), annotations, ``starts_at``, ``ends_at`` and the
``generator_url``; plus the API status markers ``silenced_by`` / ``inhibited_by`` / ``muted_by``
and ``state`` (``active`` | ``suppressed``). Muted alerts stay visible: muting sets markers, it
never deletes.

Every timestamp is an aware :class:`datetime` (UTC). Functions that take ``now`` accept an
aware datetime or Unix seconds (float) — see :func:`to_datetime`; nothing here reads the clock.

Rule alerts (``monitor.rules``) and intake alerts (``monitor.alerting.intake``) are converted
into :class:`Alert` by small functions at those edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from model.labels import Labels

__all__ = ["Alert", "to_datetime", "to_unix", "rfc3339", "ACTIVE", "SUPPRESSED", "UNPROCESSED"]

UNPROCESSED = "unprocessed"
ACTIVE = "active"
SUPPRESSED = "suppressed"


def to_datetime(t: datetime | float | int) -> datetime:
    """Return an aware UTC datetime from an aware datetime or Unix seconds.

    :raises ValueError: for a naive datetime (an instant needs a zone).
    """
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"naive datetime {t.isoformat()} (an aware datetime is required)")
        return t.astimezone(timezone.utc)
    return datetime.fromtimestamp(float(t), timezone.utc)


def to_unix(t: datetime | float | int) -> float:
    """Return Unix seconds from an aware datetime or Unix seconds."""
    if isinstance(t, datetime):
        return to_datetime(t).timestamp()
    return float(t)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert (Alertmanager ``types.Alert``).

    :ivar labels: the identity of the alert (``alertname``, ``severity``, ...).
    :ivar annotations: ``summary``, ``description``, ``runbook_url``, ...
    :ivar starts_at: when the alert started firing (aware UTC).
    :ivar ends_at: ``None`` while firing with no known end; a time once resolved. A time in the
        future means "firing until then unless refreshed" (an intake alert's resolve timeout,
        Alertmanager ``resolve_timeout``).
    :ivar generator_url: link back to the rule/expression that produced it.
    :ivar updated_at: when this version was received.
    :ivar timeout: ``True`` when ``ends_at`` was set by us from the resolve timeout.
    :ivar silenced_by: ids of the silences muting it.
    :ivar inhibited_by: fingerprints of the alerts inhibiting it.
    :ivar muted_by: names of the maintenance windows / route time intervals muting it.

    >>> a = Alert.firing({"alertname": "ApiDown", "severity": "critical"}, starts_at=0)
    >>> a.fingerprint == Labels.of({"alertname": "ApiDown", "severity": "critical"}).fingerprint()
    True
    >>> a.resolved(10), a.state
    (False, 'active')
    """

    labels: Labels
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, timezone.utc))
    ends_at: datetime | None = None
    generator_url: str = ""
    updated_at: datetime | None = None
    timeout: bool = False
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    muted_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.labels, Labels):
            object.__setattr__(self, "labels", Labels.of(self.labels))
        object.__setattr__(self, "starts_at", to_datetime(self.starts_at))
        if self.ends_at is not None:
            object.__setattr__(self, "ends_at", to_datetime(self.ends_at))
        if self.updated_at is None:
            object.__setattr__(self, "updated_at", self.starts_at)
        else:
            object.__setattr__(self, "updated_at", to_datetime(self.updated_at))

    @classmethod
    def firing(cls, labels: Mapping[str, str] | Labels, *, starts_at: datetime | float,
               annotations: Mapping[str, str] | None = None, generator_url: str = "") -> "Alert":
        """Build a firing alert (no end)."""
        return cls(Labels.of(labels) if not isinstance(labels, Labels) else labels, dict(annotations or {}),
                   to_datetime(starts_at), None, generator_url)

    @property
    def fingerprint(self) -> str:
        """The 16-hex-digit fingerprint of the label set (``Labels.fingerprint``)."""
        return self.labels.fingerprint()

    @property
    def name(self) -> str:
        """The ``alertname`` label, or ``""``."""
        return self.labels.get("alertname")

    def resolved(self, now: datetime | float) -> bool:
        """Return whether the alert is resolved at ``now`` (``ends_at`` set and not after ``now``)."""
        return self.ends_at is not None and self.ends_at <= to_datetime(now)

    def status(self, now: datetime | float) -> str:
        """Return ``"firing"`` or ``"resolved"`` at ``now``."""
        return "resolved" if self.resolved(now) else "firing"

    @property
    def state(self) -> str:
        """``"suppressed"`` when silenced, inhibited or muted, else ``"active"`` (v2 API ``state``)."""
        return SUPPRESSED if (self.silenced_by or self.inhibited_by or self.muted_by) else ACTIVE

    def resolve(self, at: datetime | float) -> "Alert":
        """Return a copy resolved at ``at`` (keeps an earlier ``ends_at``)."""
        at = to_datetime(at)
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

    def to_api(self, now: datetime | float) -> dict[str, Any]:
        """Return the v2 API ``gettableAlert`` shape (RFC 3339 times, ``status.state``)."""
        return {
            "labels": self.labels.as_dict(),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at) if self.ends_at else "0001-01-01T00:00:00Z",
            "updatedAt": rfc3339(self.updated_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
            "status": {"state": self.state, "silencedBy": list(self.silenced_by),
                       "inhibitedBy": list(self.inhibited_by), "mutedBy": list(self.muted_by)},
            "receivers": [],
        }


def rfc3339(t: datetime | None) -> str:
    """Format as RFC 3339 UTC with milliseconds (``2026-11-30T10:00:00.000Z``); ``None`` -> ``""``."""
    if t is None:
        return ""
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
