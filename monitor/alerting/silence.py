"""Silences: mute alerts matching a set of matchers between a start and an end.

Semantics of Alertmanager ``silence/silence.go``: a silence is *pending* before ``starts_at``,
*active* from ``starts_at`` until ``ends_at`` (exclusive) and *expired* after; it mutes a label
set while active and every matcher matches. Validation (``validateSilence``): at least one
matcher; valid matchers; not every matcher may match the empty string (that would silence
everything); ``ends_at`` after ``starts_at``. Expiring a pending silence sets both times to now;
expiring an active one sets ``ends_at`` to now; an expired silence cannot be expired again.

Silences are values: :meth:`Silence.expire` returns a new one; persistence and the audit trail
are :mod:`monitor.alerting.silence_admin`'s job. Times are Unix seconds.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from model.labels import Labels
from model.matchers import Matcher, format_matchers, matches_all, parse_matchers
from model.timestamps import rfc3339
from monitor.errors import MonitorError

__all__ = ["Silence", "Silences", "SilenceError", "PENDING", "ACTIVE", "EXPIRED"]

PENDING = "pending"
ACTIVE = "active"
EXPIRED = "expired"


class SilenceError(MonitorError, ValueError):
    """A silence is invalid, or cannot be changed as asked (e.g. already expired)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence.

    :ivar id: unique id (assigned by the store/API, e.g. a UUID).
    :ivar matchers: all must match.
    :ivar starts_at: start (Unix seconds).
    :ivar ends_at: end, exclusive (Unix seconds).
    :ivar created_by: the author.
    :ivar comment: why.
    :ivar updated_at: last change.
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""
    updated_at: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "matchers", tuple(self.matchers))
        object.__setattr__(self, "starts_at", float(self.starts_at))
        object.__setattr__(self, "ends_at", float(self.ends_at))
        object.__setattr__(self, "updated_at", float(self.starts_at if self.updated_at is None else self.updated_at))

    @classmethod
    def create(cls, id: str, matchers: str | Iterable[Matcher], starts_at: float, ends_at: float,
               created_by: str, comment: str = "", *, now: float | None = None) -> "Silence":
        """Build and validate a silence; ``matchers`` may be a string like ``{alertname="X"}``.

        :raises SilenceError: as :meth:`validate`.
        """
        try:
            parsed = parse_matchers(matchers) if isinstance(matchers, str) else list(matchers)
        except ValueError as e:
            raise SilenceError(f"invalid matchers: {e}") from None
        s = cls(id, tuple(parsed), starts_at, ends_at, created_by, comment, now)
        s.validate()
        return s

    def validate(self) -> None:
        """Check the silence (silence.go ``validateSilence``).

        :raises SilenceError: ``at least one matcher required``, ``at least one matcher must
            not match the empty string``, ``end time must not be before start time``.
        """
        if not self.matchers:
            raise SilenceError("at least one matcher required")
        if all(m.matches("") for m in self.matchers):
            raise SilenceError("at least one matcher must not match the empty string")
        if self.ends_at <= self.starts_at:
            raise SilenceError("end time must be after start time")

    def state(self, now: float) -> str:
        """Return ``pending``, ``active`` or ``expired`` at ``now`` (``CalcSilenceState``)."""
        if now < self.starts_at:
            return PENDING
        if now < self.ends_at:
            return ACTIVE
        return EXPIRED

    def mutes(self, labels: Labels | Mapping[str, str], now: float) -> bool:
        """Return whether this silence mutes ``labels`` at ``now``."""
        if not isinstance(labels, Labels):
            labels = Labels.of(labels)
        return self.state(now) == ACTIVE and matches_all(self.matchers, labels)

    def expire(self, now: float) -> "Silence":
        """Return the silence expired at ``now``.

        :raises SilenceError: ``silence <id> already expired``.
        """
        state = self.state(now)
        if state == EXPIRED:
            raise SilenceError(f"silence {self.id} already expired")
        if state == PENDING:
            return replace(self, starts_at=now, ends_at=now, updated_at=now)
        return replace(self, ends_at=now, updated_at=now)

    def to_api(self, now: float) -> dict[str, Any]:
        """Return the v2 API ``gettableSilence`` shape."""
        return {
            "id": self.id,
            "matchers": [{"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"),
                          "isEqual": m.op in ("=", "=~")} for m in self.matchers],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "updatedAt": rfc3339(self.starts_at if self.updated_at is None else self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now)},
        }

    def __str__(self) -> str:
        return f"{self.id} {format_matchers(self.matchers)}"


def matcher_from_api(d: Mapping[str, Any]) -> Matcher:
    """Build a matcher from the v2 API shape ``{name, value, isRegex, isEqual}``."""
    regex = bool(d.get("isRegex", False))
    equal = bool(d.get("isEqual", True))
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(regex, equal)]
    return Matcher(str(d["name"]), op, str(d.get("value", "")))


class Silences:
    """A set of silences acting as a muter: ``mutes(labels, now) -> [silence ids]``."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_id: dict[str, Silence] = {s.id: s for s in silences}

    def set(self, silence: Silence) -> None:
        """Add or replace a silence (by id)."""
        self._by_id[silence.id] = silence

    def get(self, id: str) -> Silence | None:
        """Return the silence with ``id``, or ``None``."""
        return self._by_id.get(id)

    def list(self, now: float, state: str | None = None) -> list[Silence]:
        """Return the silences (optionally only those in ``state`` at ``now``), newest start first."""
        out = [s for s in self._by_id.values() if state is None or s.state(now) == state]
        return sorted(out, key=lambda s: s.starts_at, reverse=True)

    def expire(self, id: str, now: float) -> Silence:
        """Expire the silence ``id`` at ``now`` and return it.

        :raises KeyError: no such silence.
        :raises SilenceError: already expired.
        """
        s = self._by_id[id].expire(now)
        self._by_id[id] = s
        return s

    def mutes(self, labels: Labels, now: float) -> builtins.list[str]:
        """Return the ids of the active silences muting ``labels`` (empty: not silenced)."""
        return sorted(s.id for s in self._by_id.values() if s.mutes(labels, now))

    def gc(self, now: float, retention: float) -> builtins.list[str]:
        """Drop silences expired more than ``retention`` seconds ago; return their ids."""
        gone = [i for i, s in self._by_id.items() if s.ends_at < now - retention]
        for i in gone:
            del self._by_id[i]
        return gone
