"""Issue 3's "Done when", as a test: the sample backend answers 500s after ``POST /faults
{"error_rate": 1}``; the daemon scraping it every second moves the shipped error-rate alerts
(with a short ``for``) to pending, then firing, visible on ``/api/v1/alerts`` and as ``ALERTS`` on
``/metrics``."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from examples.sample_backend import serve as serve_backend
from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config

ROOT = Path(__file__).resolve().parents[2]
ERROR_RATE_ALERTS = ("HighErrorRate", "ElevatedErrorRate")
SHORT_FOR = "3s"


def short_for_error_rate_rules(dest: Path) -> Path:
    """Copy the shipped error-rate alerts from ``rules/api.yaml`` with ``for`` shortened."""
    doc = yaml.safe_load((ROOT / "rules" / "api.yaml").read_text())
    rules = [dict(r, **{"for": SHORT_FOR}) for g in doc["groups"] for r in g["rules"]
             if r.get("alert") in ERROR_RATE_ALERTS]
    assert {r["alert"] for r in rules} == set(ERROR_RATE_ALERTS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump({"groups": [{"name": "codebook-api", "interval": "1s", "rules": rules}]},
                                   sort_keys=False))
    return dest


async def test_fault_makes_error_rate_alerts_pending_then_firing(tmp_path):
    backend = await serve_backend("127.0.0.1", 0, seed=7, traffic_rps=20)
    try:
        short_for_error_rate_rules(tmp_path / "rules" / "api.yaml")
        cfg = write_config(tmp_path, f"""
            scrape:
              - name: codebook-backend
                url: {backend.url}/metrics
                interval: 1s
                timeout: 1s
            rules:
              files: [rules/api.yaml]
              evaluation_interval: 1s
            """)
        async with run_daemon(cfg) as d:
            async def scraping():
                r = await d.query('sum(rate(http_requests_total[5m]))')
                return r.status_code == 200 and r.json()["data"]["result"]

            await eventually(scraping, timeout=60, what="request rate from the scraped backend")
            r = await d.get("/api/v1/alerts")
            assert not [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] in ERROR_RATE_ALERTS]

            async with httpx.AsyncClient(timeout=10) as c:
                r = await c.post(backend.url + "/faults", json={"error_rate": 1})
                assert r.status_code == 200, r.text

            seen: dict[str, set[str]] = {name: set() for name in ERROR_RATE_ALERTS}
            firing: dict[str, dict] = {}

            async def all_firing():
                r = await d.get("/api/v1/alerts")
                for a in r.json()["data"]["alerts"]:
                    name = a["labels"]["alertname"]
                    if name in seen:
                        seen[name].add(a["state"])
                        if a["state"] == "firing":
                            firing[name] = a
                return set(firing) == set(ERROR_RATE_ALERTS)

            await eventually(all_firing, timeout=90, interval=0.1, what="both error-rate alerts firing")
            for name in ERROR_RATE_ALERTS:
                assert "pending" in seen[name], (name, seen[name])
            high = firing["HighErrorRate"]
            assert high["labels"]["severity"] == "critical"
            assert float(high["value"]) > 0.05
            assert "error rate" in high["annotations"]["summary"]
            assert high["annotations"]["runbook_url"].endswith("#runbook-higherrorrate")
            assert firing["ElevatedErrorRate"]["labels"]["severity"] == "warning"

            text = await d.metrics()
            assert metric_values(text, "ALERTS", alertname="HighErrorRate", alertstate="firing") == [1.0]
            assert metric_values(text, "ALERTS", alertname="ElevatedErrorRate", alertstate="firing") == [1.0]
            r = await d.query('ALERTS{alertstate="firing"}')
            assert {s["metric"]["alertname"] for s in r.json()["data"]["result"]} >= set(ERROR_RATE_ALERTS)
    finally:
        await backend.stop()
