"""Say when a maintenance window is open: at start, and when one opens or closes.

A window (``alerting.maintenance_windows``) mutes matching alerts while any of its time
intervals is active (:mod:`monitor.alerting.maintenance`); pages stop and nothing else shows
why. :class:`MaintenanceWatch` logs, on the daemon's log::

    maintenance window monthly-maintenance open until 06:00 UTC: pages muted
    maintenance window monthly-maintenance closed: pages resume

at start (the windows open then) and at each change (the daemon looks every
:data:`WATCH_INTERVAL` seconds). The demo's banner prints the open ones too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from monitor.alerting.maintenance import MaintenanceWindows

__all__ = ["WATCH_INTERVAL", "MaintenanceWatch", "open_until"]

log = logging.getLogger("monitor.maintenance")

#: Seconds between looks for a window opening or closing.
WATCH_INTERVAL = 30.0
#: How far :func:`open_until` looks for a window's end (seconds); a window open longer shows no end.
_HORIZON = 8 * 86400
_STEP = 60


def open_until(windows: MaintenanceWindows, name: str, now: float) -> float | None:
    """Return when window ``name``, open at ``now``, closes: the first whole minute after ``now`` it is
    not active (Unix seconds), or ``None`` when it stays open past :data:`_HORIZON` (8 days).

    Time intervals have minute resolution (``times`` are ``HH:MM``), so minute steps find the exact end.
    """
    window = next((w for w in windows.windows if w.name == name), None)
    if window is None:
        return now
    t = (int(now) // _STEP + 1) * _STEP
    while t <= now + _HORIZON:
        if not windows.intervals.active(window.time_intervals, t):
            return float(t)
        t += _STEP
    return None


def _clock(at: float | None, now: float) -> str:
    if at is None:
        return "further notice"
    end = datetime.fromtimestamp(at, timezone.utc)
    same_day = end.date() == datetime.fromtimestamp(now, timezone.utc).date()
    return f"{end:%H:%M} UTC" if same_day else f"{end:%Y-%m-%d %H:%M} UTC"


class MaintenanceWatch:
    """The open maintenance windows of the running config, and their changes.

    :param alerting: a callable returning the current ``AlertingConfig`` (reloads are followed).
    :param clock: Unix seconds now (injected by tests).
    """

    def __init__(self, alerting: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self._alerting = alerting
        self._clock = clock
        self._open: set[str] = set()
        self._started = False

    def open_messages(self, now: float | None = None) -> list[str]:
        """Return one line per window open at ``now`` (default: the clock).

        ``maintenance window monthly-maintenance open until 06:00 UTC: pages muted`` (the date is
        added when the end is not today, UTC).
        """
        now = self._clock() if now is None else now
        windows = MaintenanceWindows.from_config(self._alerting())
        return [f"maintenance window {w.name} open until {_clock(open_until(windows, w.name, now), now)}: "
                "pages muted" for w in windows.active(now)]

    def check(self, now: float | None = None) -> list[str]:
        """Log the windows open at the first call, then each window that opened or closed since the last.

        :return: the lines logged (warnings for opened windows, info for closed ones).
        """
        now = self._clock() if now is None else now
        windows = MaintenanceWindows.from_config(self._alerting())
        active = {w.name for w in windows.active(now)}
        lines: list[str] = []
        for name in sorted(active - self._open):
            line = (f"maintenance window {name} open until {_clock(open_until(windows, name, now), now)}: "
                    "pages muted")
            log.warning(line, extra={"window": name})
            lines.append(line)
        if self._started:
            for name in sorted(self._open - active):
                line = f"maintenance window {name} closed: pages resume"
                log.info(line, extra={"window": name})
                lines.append(line)
        self._open = active
        self._started = True
        return lines

    async def job(self) -> None:
        """Run :meth:`check` (a scheduler job)."""
        self.check()
