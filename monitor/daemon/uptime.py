"""Daily uptime per status-page component, counted from probe results and written to the state store.

:class:`UptimeRecorder` listens to every probe result (``ProbeRunner.on_result``) and counts, per
component and UTC day of the result's ``finished_at``, the runs and the successful runs (the
same ``probe_success`` that pages people); :meth:`UptimeRecorder.flush`, a daemon job every
:data:`FLUSH_INTERVAL` seconds, adds the counts to ``uptime_daily`` (``monitor.store.uptime``)
and clears them; the daemon flushes once more when it stops. A failed flush keeps the counts
for the next one; a crash loses at most one interval's counts (uptime is a ratio: a minute of
missing runs barely moves a day). With several replicas each counts the probes it runs, and the
increments add up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from monitor.errors import StoreError
from probes.base import ProbeResult

__all__ = ["UptimeRecorder", "FLUSH_INTERVAL", "probe_components", "utc_day"]

FLUSH_INTERVAL = 60.0

log = logging.getLogger("monitor.daemon")


def utc_day(t: float) -> str:
    """Return the UTC date of Unix time ``t`` as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d")


def probe_components(config: Any) -> dict[str, list[str]]:
    """Return ``{probe name: [component names]}`` from ``config.status_page`` and ``config.probes``."""
    rows = config.status_page.resolved({p.name: p.kind for p in config.probes})
    out: dict[str, list[str]] = {}
    for component, probe_names in rows:
        for p in probe_names:
            out.setdefault(p, []).append(component)
    return out


class UptimeRecorder:
    """Count probe runs per component and day; flush the counts to the store.

    :param components: returns ``{probe name: [component names]}`` (:func:`probe_components`; read
        per result, so a reload applies).
    """

    def __init__(self, components: Callable[[], Mapping[str, list[str]]]) -> None:
        self.components = components
        self.pending: dict[tuple[str, str], list[int]] = {}

    def observe(self, name: str, result: ProbeResult) -> None:
        """Count one result of probe ``name`` (a ``ProbeRunner.on_result`` callback)."""
        comps = self.components().get(name)
        if not comps:
            return
        day = utc_day(result.finished_at or 0.0)
        for comp in comps:
            counts = self.pending.setdefault((comp, day), [0, 0])
            counts[0] += 1
            counts[1] += 1 if result.success else 0

    async def flush(self, store: Any, now: float) -> int:
        """Add the pending counts to ``store`` and clear them; return how many rows were written.

        On a store failure the counts stay pending (logged) and the next flush adds them.
        """
        if not self.pending or store is None:
            return 0
        batch, self.pending = self.pending, {}
        rows = [(comp, day, c[0], c[1]) for (comp, day), c in sorted(batch.items())]
        try:
            await store.add_uptime(rows, now)
        except StoreError as exc:
            for key, (checks, ok) in batch.items():
                counts = self.pending.setdefault(key, [0, 0])
                counts[0] += checks
                counts[1] += ok
            log.warning("uptime counts not written; kept for the next flush", extra={"error": str(exc)})
            return 0
        return len(rows)
