"""The narrow interfaces the alert pipeline offers to its callers (the HTTP API, the CLI, the
composition root); the API depends on these, never on the classes behind them.

A leader runs the pipeline and hands an :class:`AlertingPorts` to the daemon; a follower has
none (the alerting API answers 503). All times are float Unix seconds; ``now=None`` means the
pipeline's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class AlertIntake(Protocol):
    """Alerts entering the pipeline from outside the rule engine (Alertmanager v2 API, webhook)."""

    #: Seconds after which an intake alert without ``endsAt`` resolves (Alertmanager ``resolve_timeout``).
    resolve_timeout: float

    async def ingest(self, alerts: Iterable[Any], now: float | None = None, source: str = "api") -> int:
        """Take firing and resolved alerts; return how many were taken."""
        ...


class AlertViews(Protocol):
    """Read-only views of the alerts the pipeline holds."""

    def alerts_api(self, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts in the v2 ``gettableAlert`` shape plus ``receivers`` and ``escalation``."""
        ...

    async def timeline(self, fingerprint: str) -> list[dict[str, Any]]:
        """Return the alert's timeline, oldest first. :raises NotFoundError: unknown alert."""
        ...


class Acknowledgements(Protocol):
    """People acting on an alert; every call is audited (actor, source)."""

    async def acknowledge(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                          comment: str = "") -> dict[str, Any]:
        """Stop the escalation. :raises NotFoundError: unknown alert."""
        ...

    async def unacknowledge(self, fingerprint: str, actor: str, source: str,
                            now: float | None = None) -> dict[str, Any]:
        """Restart the escalation from its first step. :raises NotFoundError: unknown alert."""
        ...

    async def resolve(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                      comment: str = "") -> dict[str, Any]:
        """Resolve by hand. :raises NotFoundError: unknown alert."""
        ...

    async def escalate_now(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                           comment: str = "") -> dict[str, Any]:
        """Notify the escalation's next level now. :raises NotFoundError: unknown alert."""
        ...

    async def note(self, fingerprint: str, actor: str, source: str, text: str, now: float | None = None) -> None:
        """Add a note to the alert's timeline. :raises NotFoundError: unknown alert."""
        ...


class SilenceAdmin(Protocol):
    """Silences (Alertmanager v2 API semantics)."""

    async def create_silence(self, matchers: Sequence[Mapping[str, Any]] | str, starts_at: float, ends_at: float,
                             created_by: str, comment: str = "", *, actor: str = "", source: str = "",
                             now: float | None = None, silence_id: str | None = None) -> str:
        """Validate and store a silence; return its id. :raises SilenceError, NotFoundError: invalid, unknown id."""
        ...

    async def expire_silence(self, silence_id: str, actor: str, source: str = "", now: float | None = None) -> None:
        """Expire a silence now. :raises NotFoundError, SilenceError: unknown id, already expired."""
        ...

    def list_silences(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every silence in the v2 ``gettableSilence`` shape."""
        ...

    def get_silence(self, silence_id: str, now: float | None = None) -> dict[str, Any]:
        """One silence. :raises NotFoundError: unknown id."""
        ...


@dataclass(frozen=True)
class AlertingPorts:
    """What a leader's running pipeline offers; handed over by leadership, read by the API.

    :ivar clock: the pipeline's Unix-seconds clock.
    """

    intake: AlertIntake
    views: AlertViews
    acks: Acknowledgements
    silences: SilenceAdmin
    clock: Callable[[], float]
