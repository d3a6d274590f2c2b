"""Export ``monitor.yaml`` as configuration for a real Prometheus running beside this daemon.

:func:`prometheus_config` writes a ``prometheus.yml`` that scrapes this daemon's ``/metrics``
(``honor_labels``: the daemon's own ``job`` labels, e.g. ``monitor_scrapes_total{job="backend"}``,
stay as they are) and the backend's scrape targets with their limits, and loads the rule files;
accepted by ``promtool check config``.

**One evaluator pages** (``evaluator``): when Prometheus and the daemon both evaluate the same
alerting rules and Prometheus sends its alerts to the daemon, every alert arrives twice with
different labels (``job``/``instance``, external labels) and pages twice.

* ``daemon`` (the default): the daemon evaluates the rules and pages; Prometheus loads the same
  rule files (recording rules, the alerts in its UI) but sends its alerts nowhere (no
  ``alerting:`` section).
* ``prometheus``: Prometheus evaluates and sends to the daemon's Alertmanager v2 intake
  (``POST /api/v2/alerts``, with the intake token from a ``credentials_file``); a warning says to
  empty ``rules.files`` in ``monitor.yaml`` if it still lists rule files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.config.model import Config
from monitor.export.document import Export
from model.duration import format_duration

__all__ = ["DAEMON_DROP", "DEFAULT_SECRETS_DIR", "EVALUATORS", "prometheus_config"]

#: Who evaluates the alerting rules and pages (see the module docstring).
EVALUATORS = ("daemon", "prometheus")
#: Where the generated file expects the daemon's tokens (``credentials_file``).
DEFAULT_SECRETS_DIR = "/etc/prometheus/secrets"

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


def _size(n: int) -> str:
    """Prometheus's ``body_size_limit`` text (``units.Base2Bytes``): ``16MiB``, ``512KiB``, ``100B``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


def _token_name(config: Config, scope: str) -> str | None:
    for t in config.api.tokens:
        if scope in t.scopes:
            return t.name
    return None


def prometheus_config(config: Config, *, relative_to: str | os.PathLike[str] | None = None,
                      job_name: str = "codebook-monitor", evaluator: str = "daemon",
                      secrets_dir: str = DEFAULT_SECRETS_DIR,
                      slo_rules_file: str | os.PathLike[str] | None = None) -> Export:
    """Build a Prometheus configuration that runs beside this daemon.

    Scrapes the daemon's ``/metrics`` (at ``server.external_url``, ``honor_labels: true``, with a
    ``read`` token when ``api.read_requires_token``) and every ``scrape:`` target with its own
    interval, timeout, labels, ``honor_labels`` and limits (``sample_limit``, ``label_limit``,
    ``label_name_length_limit``, ``label_value_length_limit``, ``body_size_limit``); loads
    ``rules.files``; with ``evaluator="prometheus"`` sends alerts to the daemon's Alertmanager v2
    intake (with an ``intake`` token unless ``api.intake_open``). ``global.evaluation_interval``
    is ``rules.evaluation_interval``; ``global.scrape_interval`` the shortest scrape interval
    (15 s without targets).

    :param config: a validated config.
    :param relative_to: write rule-file paths relative to this directory (where the Prometheus
        config will live); absolute paths when ``None``.
    :param job_name: the job name of the daemon's own scrape.
    :param evaluator: ``daemon`` or ``prometheus``: who evaluates the alerting rules and pages.
    :param secrets_dir: where the token files referred to (``credentials_file``) live.
    :param slo_rules_file: where the rules generated from the config's SLOs are written
        (``codebook-monitor slo generate``); added to ``rule_files`` when the config has SLOs.
        ``None`` with SLOs: a warning says their rules are not loaded.
    :return: the config data (no secrets: tokens are ``credentials_file`` references listed in
        ``secret_files``) and warnings.
    :raises ValueError: an unknown ``evaluator``.
    """
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {', '.join(EVALUATORS)}, not {evaluator!r}")
    warnings: list[str] = []
    secret_files: dict[str, str] = {}
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
    slos = config.all_slos()
    sources = list(config.resolved_rule_files())
    if slos and slo_rules_file is not None:
        sources.append(Path(slo_rules_file))
    elif slos:
        warnings.append(f"the config has {len(slos)} SLO(s) whose rules are not in rule_files: pass --output "
                        "or --slo-rules FILE to write them and load them")
    for p in sources:
        path = Path(p).absolute()
        rule_files.append(os.path.relpath(path, Path(relative_to).absolute()) if relative_to is not None
                          else str(path))

    daemon_job: dict[str, Any] = {
        "job_name": job_name,
        "scheme": scheme,
        "metrics_path": prefix.rstrip("/") + "/metrics",
        "honor_labels": True,  # the daemon's own job labels (monitor_scrapes_total{job=...}) stay
        "static_configs": [{"targets": [address]}],
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": DAEMON_DROP, "action": "drop"},
        ],
    }
    if config.api.read_requires_token:
        token_file = f"{secrets_dir.rstrip('/')}/codebook-monitor-read"
        name = _token_name(config, "read")
        daemon_job["authorization"] = {"type": "Bearer", "credentials_file": token_file}
        secret_files[token_file] = f"a token of api.tokens with the read scope{f' ({name})' if name else ''}"
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
        job.update(sample_limit=t.sample_limit, label_limit=t.label_limit,
                   label_name_length_limit=t.label_name_length_limit,
                   label_value_length_limit=t.label_value_length_limit,
                   body_size_limit=_size(int(t.body_size_limit)))
        static: dict[str, Any] = {"targets": [t_address]}
        if t.labels:
            static["labels"] = dict(t.labels)
        job["static_configs"] = [static]
        jobs.append(job)

    data: dict[str, Any] = {"global": glob, "rule_files": rule_files}
    if evaluator == "prometheus":
        am: dict[str, Any] = {"api_version": "v2", "scheme": scheme,
                              **({"path_prefix": prefix} if prefix.strip("/") else {}),
                              "static_configs": [{"targets": [address]}]}
        if not config.api.intake_open:
            token_file = f"{secrets_dir.rstrip('/')}/codebook-monitor-intake"
            name = _token_name(config, "intake")
            am["authorization"] = {"type": "Bearer", "credentials_file": token_file}
            secret_files[token_file] = f"a token of api.tokens with the intake scope{f' ({name})' if name else ''}"
            if name is None:
                warnings.append("no api.tokens entry has the intake scope: add one, or Prometheus's alerts are "
                                "refused (401)")
        data["alerting"] = {"alertmanagers": [am]}
        if slos:
            warnings.append("Prometheus evaluates the SLO alerts too: the daemon also evaluates its SLOs' alerts "
                            "(slos, slo_files); set alerting.disable on them in monitor.yaml or they page twice")
        if config.rules.files:
            warnings.append("Prometheus evaluates the alerting rules and sends them to the daemon: remove "
                            "rules.files from monitor.yaml (the daemon would evaluate them too and page twice)")
    data["scrape_configs"] = jobs
    return Export(data, secret_files, warnings)
