"""The shipped BackendDown and BackendDegraded rules, loaded by the real daemon, against a real
backend stand-in on 127.0.0.1: a 503 /health makes BackendDown pending, a degraded check makes
BackendDegraded pending for that check only (their `for: 2m` is covered by rules/tests/backend_test.yaml)."""

from __future__ import annotations

import json

from tests.support.daemon_helpers import HEALTH_DOC, TinyHttpServer, eventually, metric_values, run_daemon, write_config
from tests.shipped.shipped_helpers import ROOT


async def _pending(d, alertname: str, **labels: str) -> list[float]:
    return metric_values(await d.metrics(), "ALERTS", alertname=alertname, alertstate="pending", **labels)


async def test_backend_down_and_degraded_go_pending(tmp_path):
    degraded = dict(HEALTH_DOC, status="degraded", checks=dict(HEALTH_DOC["checks"], pinecone="unhealthy"))
    routes = {"/health": (200, "application/json", json.dumps(degraded))}
    async with TinyHttpServer(routes) as api:
        cfg = write_config(tmp_path, f"""
            probes:
              - name: backend-api
                kind: api
                url: {api.url}
                interval: 1s
                timeout: 1s
            rules:
              files: [{ROOT / "rules" / "backend.yaml"}]
              evaluation_interval: 1s
            """)
        async with run_daemon(cfg) as d:
            await eventually(lambda: _pending(d, "BackendDegraded", check="pinecone", depends_on="pinecone"),
                             timeout=30, what="BackendDegraded pending for the pinecone check")
            assert await _pending(d, "BackendDegraded", check="database") == []
            assert await _pending(d, "BackendDown") == []
            routes["/health"] = (503, "application/json", json.dumps(dict(HEALTH_DOC, status="unhealthy")))
            await eventually(lambda: _pending(d, "BackendDown", probe="backend-api"), timeout=30,
                             what="BackendDown pending on a 503")
