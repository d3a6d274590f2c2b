"""The workload both sides run, and the two sides configured for it: ours (``python -m monitor
run``) and the peer (prometheus + blackbox_exporter + alertmanager)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stack import ROOT
from stack.procs import ALERTMANAGER, BLACKBOX, PROMETHEUS, Proc, TargetServer, free_port, start, wait_http

@dataclass
class Workload:
    """What both sides are asked to do: probe targets, scrape ``/metrics``, evaluate a rule file,
    route alerts to a webhook."""

    n: int = 0  #: api probes (ours) / blackbox targets (peer): targets 0..n-1
    interval: float = 15.0  #: probe and scrape interval, seconds
    timeout: float = 5.0
    scrape: bool = False  #: both scrape the targets' /metrics (1,020 series)
    rules: str | None = None  #: a Prometheus rule file both load
    eval_interval: float = 15.0
    webhook: str | None = None  #: base URL; each side sends to <webhook>/<side>
    group_by: list[str] = field(default_factory=lambda: ["alertname"])
    group_wait: float = 0.0
    group_interval: float = 10.0

    def route(self) -> dict[str, Any]:
        """Return the routing tree both sides use (Alertmanager's format, which ours reads too)."""
        return {"receiver": "hook", "group_by": self.group_by, "group_wait": f"{self.group_wait * 1000:.0f}ms",
                "group_interval": f"{self.group_interval * 1000:.0f}ms", "repeat_interval": "4h"}

    def receivers(self, side: str) -> list[dict[str, Any]]:
        """Return the one webhook receiver of ``side``."""
        return [{"name": "hook", "webhook_configs": [{"url": f"{self.webhook}/{side}", "send_resolved": True}]}]


class System:
    """One side: started on a workload, its processes measured, its samples queried."""

    name = "?"
    procs: list[Proc]
    query_url: str
    metrics_url: str
    alerts_url: str  #: the Alertmanager v2 API's alerts endpoint

    def stop(self) -> None:
        """Stop every process of this side, by PID."""
        for p in reversed(self.procs):
            p.stop()

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Run an instant PromQL query at ``at`` (Unix seconds) through the side's query API."""
        r = httpx.get(self.query_url, params={"query": expr, "time": f"{at:.3f}"}, timeout=120)
        r.raise_for_status()
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{self.name}: {expr}: {body}")
        return list(body["data"]["result"])

    def samples(self, metric: str, end: float, seconds: float) -> dict[str, list[tuple[float, float]]]:
        """Return ``{target URL: [(timestamp, value), ...]}`` of ``metric`` in ``(end - seconds, end]``."""
        out: dict[str, list[tuple[float, float]]] = {}
        for series in self.query(f"{metric}[{int(math.ceil(seconds))}s]", end):
            key = self.target_of(series["metric"])
            out.setdefault(key, []).extend((float(t), float(v)) for t, v in series["values"])
        return out

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the target URL a series belongs to."""
        raise NotImplementedError

    def own_metric(self, name: str) -> list[float]:
        """Return the values of metric ``name`` on the side's own ``/metrics`` (every series)."""
        text = httpx.get(self.metrics_url, timeout=60).text
        out = []
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                out.append(float(line.rsplit(" ", 1)[1]))
        return out


class Ours(System):
    """``python -m monitor run`` on a generated ``monitor.yaml``."""

    name = "ours"

    def __init__(self, folder: Path, targets: TargetServer, w: Workload) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": port},
            "state": {"backend": "sqlite", "path": str(folder / "state.db")},
            # the intake open to anyone on loopback, as the peer's Alertmanager is
            "api": {"intake_open": True},
            "rules": {"query_max_series": 1_000_000, "evaluation_interval": f"{w.eval_interval * 1000:.0f}ms"},
            "probes": [{"name": f"t{i}", "kind": "api", "url": targets.url(i),
                        "interval": f"{w.interval * 1000:.0f}ms", "timeout": f"{w.timeout * 1000:.0f}ms"}
                       for i in range(w.n)],
        }
        if w.scrape:
            cfg["scrape"] = [{"name": "bench", "url": targets.metrics_url(), "interval": f"{w.interval * 1000:.0f}ms",
                              "timeout": f"{w.timeout * 1000:.0f}ms"}]
        if w.rules:
            (folder / "rules.yaml").write_text(w.rules)
            cfg["rules"]["files"] = [str(folder / "rules.yaml")]
        if w.webhook:
            cfg["alerting"] = {"route": w.route()}
            cfg["receivers"] = w.receivers(self.name)
        path = folder / "monitor.yaml"
        path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
        self.procs = [start("codebook-monitor", [sys.executable, "-m", "monitor", "run", "--config", str(path)],
                            folder, env={"PYTHONPATH": str(ROOT)})]
        self.base = f"http://127.0.0.1:{port}"
        self.query_url = self.base + "/api/v1/query"
        self.metrics_url = self.base + "/metrics"
        self.alerts_url = self.base + "/api/v2/alerts"
        wait_http(self.base + "/-/ready", self.procs[0])

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the probe's base URL, which our series carry as ``target``."""
        return labels["target"]


BLACKBOX_YML = """\
modules:
  health:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status": *"healthy"']
"""


class Peer(System):
    """prometheus + blackbox_exporter + alertmanager."""

    name = "peer"

    def __init__(self, folder: Path, targets: TargetServer, w: Workload) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        bb_port, prom_port, am_port = free_port(), free_port(), free_port()
        (folder / "blackbox.yml").write_text(BLACKBOX_YML.format(timeout=f"{w.timeout:g}"))
        am: dict[str, Any] = {"route": {"receiver": "none"}, "receivers": [{"name": "none"}]}
        if w.webhook:
            am = {"route": w.route(), "receivers": w.receivers(self.name)}
        (folder / "alertmanager.yml").write_text(json.dumps(am, indent=1))
        scrape: list[dict[str, Any]] = []
        if w.n:
            scrape.append({
                "job_name": "blackbox", "metrics_path": "/probe", "params": {"module": ["health"]},
                "scrape_interval": f"{w.interval * 1000:.0f}ms", "scrape_timeout": f"{w.timeout * 1000:.0f}ms",
                "static_configs": [{"targets": [targets.url(i) + "/health" for i in range(w.n)]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{bb_port}"},
                ],
            })
        if w.scrape:
            scrape.append({"job_name": "bench", "scrape_interval": f"{w.interval * 1000:.0f}ms",
                           "scrape_timeout": f"{w.timeout * 1000:.0f}ms",
                           "static_configs": [{"targets": [f"127.0.0.1:{targets.port}"]}]})
        prom: dict[str, Any] = {
            "global": {"scrape_interval": f"{w.interval * 1000:.0f}ms",
                       "evaluation_interval": f"{w.eval_interval * 1000:.0f}ms"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": scrape,
        }
        if w.rules:
            (folder / "rules.yaml").write_text(w.rules)
            prom["rule_files"] = [str(folder / "rules.yaml")]
        (folder / "prometheus.yml").write_text(json.dumps(prom, indent=1))
        (folder / "prom-data").mkdir()
        (folder / "am-data").mkdir()
        self.procs = [
            start("blackbox_exporter", [BLACKBOX, f"--config.file={folder / 'blackbox.yml'}",
                                        f"--web.listen-address=127.0.0.1:{bb_port}"], folder),
            start("alertmanager", [ALERTMANAGER, f"--config.file={folder / 'alertmanager.yml'}",
                                   f"--storage.path={folder / 'am-data'}",
                                   f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                  folder),
            start("prometheus", [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'prom-data'}", "--storage.tsdb.retention.time=2h",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"], folder),
        ]
        wait_http(f"http://127.0.0.1:{bb_port}/-/healthy", self.procs[0])
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", self.procs[1])
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", self.procs[2])
        self.query_url = f"http://127.0.0.1:{prom_port}/api/v1/query"
        self.metrics_url = f"http://127.0.0.1:{prom_port}/metrics"
        self.alerts_url = f"http://127.0.0.1:{am_port}/api/v2/alerts"

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the probed URL the peer puts in ``instance``, without ``/health``."""
        return labels["instance"].removesuffix("/health")
