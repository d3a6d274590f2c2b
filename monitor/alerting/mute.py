"""The mute stages: mark each alert with what mutes it (maintenance windows, inhibition, silences).

Alertmanager runs ``MuteStage(inhibitor)``, the time-interval stages and ``MuteStage(silencer)``
in each receiver's pipeline (``notify/notify.go`` ``createReceiverStage``) and records the result
in a ``types.Marker`` that the API reads. Here one :class:`MuteStages` marks an alert's copy with
``inhibited_by``, ``silenced_by`` and ``muted_by`` (:meth:`model.alert.Alert.with_marks`): the
dispatcher leaves marked alerts out of a group's notification, the views show them with their
markers, and escalation holds their walks. Route-level ``mute_time_intervals`` /
``active_time_intervals`` mute a whole notification and stay with the dispatcher (they belong to
the route, not to the alert). Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from model.alert import ACTIVE, Alert
from monitor.alerting.inhibit import InhibitIndex, Inhibitor
from monitor.alerting.maintenance import MaintenanceWindow, MaintenanceWindows
from monitor.alerting.silence import Silences

__all__ = ["MuteStages", "MuteIndex", "muted_firing"]


class MuteStages:
    """The alert-level mute stages: inhibition, silences, maintenance windows.

    Each is optional. :meth:`mark` returns a copy of the alert with ``inhibited_by``,
    ``silenced_by`` and ``muted_by`` set (Alertmanager ``MuteStage`` + ``types.Marker``).

    >>> MuteStages().mark(Alert.firing({"alertname": "A"}, starts_at=0), [], 60).state
    'active'
    """

    def __init__(self, inhibitor: Inhibitor | None = None, silences: Silences | None = None,
                 maintenance: MaintenanceWindows | None = None) -> None:
        self.inhibitor = inhibitor
        self.silences = silences
        self.maintenance = maintenance

    def index(self, sources: Iterable[Alert], now: float) -> "MuteIndex":
        """Prepare ``sources`` (and the maintenance windows in effect) once for many :meth:`mark`
        calls at ``now``."""
        return MuteIndex(self.inhibitor.index(sources, now) if self.inhibitor else None,
                         self._windows(now), now)

    def _windows(self, now: float) -> list[MaintenanceWindow]:
        return self.maintenance.active(now) if self.maintenance else []

    def mark(self, alert: Alert, sources: "Iterable[Alert] | MuteIndex", now: float) -> Alert:
        """Return ``alert`` with its status markers computed at ``now`` (``alert`` itself when
        they are the ones it carries).

        :param sources: every current alert (candidates for inhibiting sources), or
            :meth:`index` of them when marking many alerts at one instant.
        """
        if isinstance(sources, MuteIndex):
            index = sources if sources.now == now else MuteIndex(sources.inhibit, self._windows(now), now)
        else:
            index = self.index(sources, now)
        labels = alert.labels
        inhibited = tuple(index.inhibit.mutes(labels)) if index.inhibit is not None else ()
        silenced = tuple(self.silences.mutes(labels, now)) if self.silences else ()
        muted = tuple(w.name for w in index.windows if all(m.matches(labels.get(m.name)) for m in w.matchers))
        if (inhibited, silenced, muted) == (alert.inhibited_by, alert.silenced_by, alert.muted_by):
            return alert  # unchanged: no copy (a tick marks every held alert)
        return alert.with_marks(inhibited_by=inhibited, silenced_by=silenced, muted_by=muted)


class MuteIndex:
    """What :meth:`MuteStages.index` prepares for one instant: the inhibition index and the
    maintenance windows in effect (``MaintenanceWindows.mutes`` semantics)."""

    __slots__ = ("inhibit", "windows", "now")

    def __init__(self, inhibit: InhibitIndex | None, windows: list[MaintenanceWindow], now: float) -> None:
        self.inhibit = inhibit
        self.windows = windows
        self.now = now


def muted_firing(marked: Iterable[Alert], now: float) -> set[str]:
    """Fingerprints of the marked alerts that fire at ``now`` and are muted (escalation holds them)."""
    return {a.fingerprint for a in marked if a.state != ACTIVE and not a.resolved(now)}
