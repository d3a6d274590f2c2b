"""Export ``monitor.yaml`` as configuration for a real Prometheus running beside this daemon.

:func:`prometheus_config` writes a ``prometheus.yml`` that scrapes this daemon's ``/metrics`` and
the backend's scrape targets, loads the rule files, and sends alerts to this daemon's
Alertmanager-compatible intake (``POST /api/v2/alerts``), accepted by ``promtool check config``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.config.model import Config
from monitor.export.document import Export
from model.duration import format_duration

__all__ = ["prometheus_config", "DAEMON_DROP"]

#: The daemon writes ``ALERTS``/``ALERTS_FOR_STATE`` for its own rule evaluation; a Prometheus
#: evaluating the same rule files writes its own, so the scraped copies are dropped.
DAEMON_DROP = "ALERTS|ALERTS_FOR_STATE"


def _host_port(url: str) -> tuple[str, str, str]:
    """Split an http(s) URL into ``(scheme, host:port, path)``; the port defaults per scheme."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return parts.scheme or "http", f"{host}:{port}", parts.path or ""


def prometheus_config(config: Config, *, relative_to: str | os.PathLike[str] | None = None,
                      job_name: str = "codebook-monitor") -> Export:
    """Build a Prometheus configuration that runs beside this daemon.

    Scrapes the daemon's ``/metrics`` (at ``server.external_url``) and every ``scrape:`` target
    with its own interval, timeout, labels and ``honor_labels``; loads ``rules.files``; sends
    alerts to the daemon's Alertmanager v2 intake. ``global.evaluation_interval`` is
    ``rules.evaluation_interval``; ``global.scrape_interval`` the shortest scrape interval
    (15 s without targets).

    :param config: a validated config.
    :param relative_to: write rule-file paths relative to this directory (where the Prometheus
        config will live); absolute paths when ``None``.
    :param job_name: the job name of the daemon's own scrape.
    :return: the config data (no secrets) and warnings.
    """
    warnings: list[str] = []
    scheme, address, prefix = _host_port(config.server.external_url)
    intervals = [t.interval for t in config.scrape]
    scrape_interval = min(intervals) if intervals else 15.0
    glob: dict[str, Any] = {
        "scrape_interval": format_duration(scrape_interval),
        # Prometheus rejects a timeout longer than the interval (its default timeout is 10 s).
        "scrape_timeout": format_duration(min(10.0, scrape_interval)),
        "evaluation_interval": format_duration(config.rules.evaluation_interval),
    }
    if config.rules.external_labels:
        glob["external_labels"] = dict(config.rules.external_labels)

    rule_files = []
    for p in config.resolved_rule_files():
        path = Path(p).absolute()
        rule_files.append(os.path.relpath(path, Path(relative_to).absolute()) if relative_to is not None
                          else str(path))

    daemon_job: dict[str, Any] = {
        "job_name": job_name,
        "scheme": scheme,
        "metrics_path": prefix.rstrip("/") + "/metrics",
        "static_configs": [{"targets": [address]}],
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": DAEMON_DROP, "action": "drop"},
        ],
    }
    jobs = [daemon_job]
    for t in config.scrape:
        t_scheme, t_address, t_path = _host_port(t.url)
        job: dict[str, Any] = {
            "job_name": t.name,
            "scheme": t_scheme,
            "metrics_path": t_path or "/metrics",
            "scrape_interval": format_duration(t.interval),
            "scrape_timeout": format_duration(t.timeout),
        }
        query = urlsplit(t.url).query
        if query:
            job["params"] = parse_qs(query)
        if t.honor_labels:
            job["honor_labels"] = True
        static: dict[str, Any] = {"targets": [t_address]}
        if t.labels:
            static["labels"] = dict(t.labels)
        job["static_configs"] = [static]
        jobs.append(job)

    data: dict[str, Any] = {
        "global": glob,
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{
            "api_version": "v2",
            "scheme": scheme,
            **({"path_prefix": prefix} if prefix.strip("/") else {}),
            "static_configs": [{"targets": [address]}],
        }]},
        "scrape_configs": jobs,
    }
    return Export(data, {}, warnings)
