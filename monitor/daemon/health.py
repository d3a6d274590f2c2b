"""The daemon's own health document, served on ``GET /health``.

Shape (the Codebook backend's health guide)::

    {"status": "healthy" | "degraded", "timestamp": "<RFC 3339, milliseconds>", "version": "0.1.0",
     "checks": {"scheduler": ..., "config": ..., "tsdb": ..., "rules": ..., "leader": true | false}}

Each check is ``healthy`` or ``degraded`` (the scheduler: ``unhealthy`` when stopped); the status
is ``healthy`` when every check is. ``leader`` is informative only: a follower is healthy too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from monitor import __version__
from monitor.rules.manager import RuleManager
from monitor.tsdb.store import SampleStore


def health_document(*, scheduler_running: bool, config_ok: bool, store: SampleStore, rules: RuleManager,
                    is_leader: bool) -> dict[str, Any]:
    """Return the health document.

    :param scheduler_running: whether the job scheduler runs.
    :param config_ok: whether the last reload succeeded (``monitor_config_last_reload_successful``).
    :param store: the sample store: ``degraded`` once it holds its series limit.
    :param rules: the rule manager: ``degraded`` while a rule's last evaluation failed.
    :param is_leader: whether this replica leads (runs alerting).
    """
    checks: dict[str, Any] = {
        "scheduler": "healthy" if scheduler_running else "unhealthy",
        "config": "healthy" if config_ok else "degraded",
        "tsdb": "healthy" if store.series_count < store.max_series else "degraded",
        "rules": "healthy" if all(st.health != "err" for g in rules.groups() for st in g.status) else "degraded",
    }
    status = "healthy" if all(v == "healthy" for v in checks.values()) else "degraded"
    checks["leader"] = is_leader  # informative: a follower is healthy too
    return {"status": status, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "version": __version__, "checks": checks}
