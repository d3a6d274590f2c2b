"""What Prometheus's status API shows about this daemon (:class:`monitor.api.deps.StatusDeps`):
``runtimeinfo``, the running configuration as YAML with secrets masked, the command line's flags
and the scrape targets in ``/api/v1/targets`` shape (Prometheus ``web/api/v1/api.go``)."""

from __future__ import annotations

import os
import sys
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import yaml

from monitor.api.deps import StatusDeps
from monitor.api.status import build_info
from monitor.config.secrets import secret_values
from monitor.daemon.self_scrape import SELF_JOB

if TYPE_CHECKING:
    from monitor.daemon.wiring import Daemon

__all__ = ["MASK", "alertmanager_status", "config_yaml", "status_deps"]

#: What a secret is shown as (pydantic's ``SecretStr`` rendering; Prometheus shows ``<secret>``).
MASK = "**********"


def _rfc3339(t: float) -> str:
    if t <= 0:
        return "0001-01-01T00:00:00Z"  # Go's zero time, as Prometheus shows a target never scraped
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    """Prometheus's duration text for whole units: ``15s``, ``1m``, ``2h``."""
    s = int(seconds)
    if s and s % 3600 == 0:
        return f"{s // 3600}h"
    if s and s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def config_yaml(config: Any) -> str:
    """Return ``config`` as YAML: every ``SecretStr`` masked, and any secret value that a plain
    string holds (a DSN with a password) replaced by :data:`MASK` as well."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    for secret in secret_values(config):
        text = text.replace(secret, MASK)
    return text


def alertmanager_status(daemon: Daemon) -> dict[str, Any]:
    """Return Alertmanager's ``alertmanagerStatus`` for ``daemon``: ``cluster`` (``disabled``: no
    gossip, one leader alerts), ``config.original`` (``alerting:`` and ``receivers:`` as YAML,
    secrets masked), ``uptime`` (the start time, RFC 3339), ``versionInfo``."""
    config = daemon.config
    doc = {"alerting": config.alerting.model_dump(mode="json"),
           "receivers": [r.model_dump(mode="json") for r in config.receivers]}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    for secret in secret_values(config):
        text = text.replace(secret, MASK)
    info = build_info()
    return {"cluster": {"name": "", "status": "disabled", "peers": []},
            "config": {"original": text}, "uptime": _rfc3339(daemon.started_at),
            "versionInfo": {k: info[k] for k in ("branch", "buildDate", "buildUser", "goVersion", "revision",
                                                 "version")}}


def _targets(daemon: Daemon) -> list[dict[str, Any]]:
    by_name = {t.name: t for t in daemon.config.scrape}
    out = []
    for name, scraper in daemon.scrape.scrapers.items():
        cfg = by_name.get(name)
        last = daemon.scrape.last.get(name)
        labels = {**(cfg.labels if cfg else {}), "job": name, "instance": scraper.instance}
        out.append({
            "discoveredLabels": {"__address__": scraper.instance, "__metrics_path__": scraper.url,
                                 "job": name},
            "labels": labels, "scrapePool": name, "scrapeUrl": scraper.url, "globalUrl": scraper.url,
            "lastError": (last.error or "") if last else "",
            "lastScrape": _rfc3339(last.timestamp_ms / 1000 if last else 0),
            "lastScrapeDuration": last.duration_seconds if last else 0,
            "health": "unknown" if last is None else ("up" if last.up else "down"),
            "scrapeInterval": _duration(cfg.interval) if cfg else "", "scrapeTimeout": _duration(scraper.timeout),
        })
    return out


def status_deps(daemon: Daemon, started_at: float) -> StatusDeps:
    """Build the status views of ``daemon`` (started at ``started_at``, Unix seconds)."""

    def runtime() -> dict[str, Any]:
        return {"startTime": _rfc3339(started_at), "CWD": os.getcwd(),
                "reloadConfigSuccess": daemon.config_status()[0],
                "lastConfigTime": _rfc3339(daemon.config_status()[1]), "corruptionCount": 0,
                "goroutineCount": threading.active_count(), "GOMAXPROCS": os.cpu_count() or 1,
                "GOMEMLIMIT": 0, "GOGC": "", "GODEBUG": "",
                "storageRetention": _duration(daemon.config.tsdb.retention) if daemon.config.tsdb.retention else "",
                "selfScrapeJob": SELF_JOB,
                # ours: one line per maintenance window open now (pages muted), as the log says it
                "maintenanceWindowsOpen": daemon.maintenance.open_messages()}

    def flags() -> dict[str, str]:
        out: dict[str, str] = {}
        args = sys.argv[1:]
        for i, a in enumerate(args):
            if a.startswith("--"):
                name, eq, value = a[2:].partition("=")
                if not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
                    value = args[i + 1]
                out[name] = value or "true"
        return out

    return StatusDeps(runtime=runtime, config_yaml=lambda: config_yaml(daemon.config), flags=flags,
                      targets=lambda: _targets(daemon))
