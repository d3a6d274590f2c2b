"""Incident tracking cost on the leader's tick: 1,000 critical alerts in 100 alert groups.

Prints one JSON-like line: the first :meth:`IncidentTracker.sync` (100 incidents opened in a
SQLite store in a temporary folder) and the median of 20 later syncs (nothing changes: what every
tick costs while the storm lasts).

Run::

    .venv/bin/python benchmarks/incident_sync.py
"""

import asyncio
import tempfile
import time

from model.alert import Alert
from model.labels import Labels
from monitor.config.model import StateConfig
from monitor.escalation.incidents import IncidentTracker
from monitor.escalation.policy import EscalationPolicy
from monitor.config.oncall import EscalationConfig
from monitor.alerting.route import build_route
from monitor.config.routing import RouteConfig
from monitor.store import open_store

async def main() -> None:
    """Measure the first sync (incidents opened) and the steady-state sync of a 1,000-alert storm."""
    d = tempfile.mkdtemp()
    store = await open_store(StateConfig.model_validate({"backend": "sqlite", "path": d + "/s.db"}))
    route = build_route(RouteConfig.model_validate({"receiver": "x", "group_by": ["alertname", "service"]}))
    policy = EscalationPolicy.from_config(EscalationConfig())
    t = IncidentTracker(store, lambda: policy, lambda: route, lambda: {})
    alerts = [Alert(Labels.of({"alertname": f"A{i % 10}", "service": f"s{i % 100 // 10}", "instance": str(i),
                               "severity": "critical"}), {}, starts_at=0.0) for i in range(1000)]
    t0 = time.perf_counter()
    await t.sync(10.0, alerts)
    first = time.perf_counter() - t0
    runs = []
    for k in range(20):
        t0 = time.perf_counter()
        await t.sync(11.0 + k, alerts)
        runs.append(time.perf_counter() - t0)
    print({"alerts": 1000, "groups": len(t.open), "first_sync_ms": round(first * 1000, 1),
           "steady_sync_ms_median": round(sorted(runs)[10] * 1000, 2)})
    await store.close()
asyncio.run(main())
