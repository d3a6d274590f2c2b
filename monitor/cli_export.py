"""``codebook-monitor export alertmanager|prometheus``: arguments, loading and writing.

The configurations themselves are built by the library in :mod:`monitor.export`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from monitor.config.loader import load_config_reporting
from monitor.export.alertmanager import DEFAULT_SECRETS_DIR, DEFAULT_TEMPLATES, alertmanager_config
from monitor.export.document import Export, render
from monitor.export.prometheus import DEFAULT_SECRETS_DIR as PROMETHEUS_SECRETS_DIR
from monitor.export.prometheus import EVALUATORS, prometheus_config
from monitor.slo.generate import rule_file_text

__all__ = ["SLO_RULES_FILE", "add_parser"]

#: The file ``export prometheus --output DIR/prometheus.yml`` writes the SLOs' rules to, in ``DIR``.
SLO_RULES_FILE = "codebook-slos.rules.yaml"


def add_parser(sub: Any) -> None:
    """Add ``export alertmanager`` and ``export prometheus`` to the ``codebook-monitor`` parser.

    :param sub: the top-level ``add_subparsers()`` object of ``monitor.cli``.
    """
    s = sub.add_parser("export", help="write configuration for a real Alertmanager or Prometheus")
    kinds = s.add_subparsers(dest="export_kind", required=True)
    a = kinds.add_parser("alertmanager", help="alertmanager.yml equivalent to the routing and receivers")
    a.add_argument("--config", "-c", default="monitor.yaml")
    a.add_argument("--output", "-o", help="write here instead of standard output")
    a.add_argument("--secrets-dir", default=DEFAULT_SECRETS_DIR,
                   help=f"directory of the *_file secret references (default {DEFAULT_SECRETS_DIR})")
    a.add_argument("--inline-secrets", action="store_true",
                   help="write secret values instead of *_file references (the file is made mode 0600)")
    a.add_argument("--templates", action="append", metavar="GLOB",
                   help=f"template glob(s) for `templates:` (default {DEFAULT_TEMPLATES})")
    a.set_defaults(func=_cmd_alertmanager)
    p = kinds.add_parser("prometheus", help="prometheus.yml that scrapes this daemon and the backend, loads the "
                                            "rules and sends alerts to this daemon")
    p.add_argument("--config", "-c", default="monitor.yaml")
    p.add_argument("--output", "-o", help="write here instead of standard output (rule-file paths become "
                                          "relative to its directory)")
    p.add_argument("--evaluator", choices=EVALUATORS, default="daemon",
                   help="who evaluates the alerting rules and pages: the daemon (default; Prometheus loads the "
                        "rules but sends no alerts) or prometheus (it sends its alerts to the daemon's intake; "
                        "empty rules.files in monitor.yaml)")
    p.add_argument("--secrets-dir", default=PROMETHEUS_SECRETS_DIR,
                   help=f"directory of the token files (credentials_file; default {PROMETHEUS_SECRETS_DIR})")
    p.add_argument("--slo-rules", metavar="FILE",
                   help=f"write the rules generated from the config's SLOs here and load them (default with "
                        f"--output: {SLO_RULES_FILE} beside it; without --output they are left out, with a warning)")
    p.set_defaults(func=_cmd_prometheus)


def _write(text: str, output: str | None, export: Export, *, private: bool = False) -> int:
    for w in export.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if output is None:
        sys.stdout.write(text)
        return 0
    path = Path(output)
    try:
        if private:
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"codebook-monitor: error: {output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if export.secret_files:
        print(f"{output}: create the secret files listed at its top", file=sys.stderr)
    return 0


def _cmd_alertmanager(args: Any) -> int:
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    export = alertmanager_config(config, inline_secrets=args.inline_secrets, secrets_dir=args.secrets_dir,
                                 templates=args.templates)
    text = render(export, title="Alertmanager configuration", source=args.config)
    return _write(text, args.output, export, private=args.inline_secrets)


def _cmd_prometheus(args: Any) -> int:
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    relative_to = Path(args.output).absolute().parent if args.output else None
    slo_rules = args.slo_rules or (str(relative_to / SLO_RULES_FILE) if relative_to is not None else None)
    slos = config.all_slos()
    export = prometheus_config(config, relative_to=relative_to, evaluator=args.evaluator,
                               secrets_dir=args.secrets_dir, slo_rules_file=slo_rules if slos else None)
    text = render(export, title="Prometheus configuration", source=args.config)
    code = _write(text, args.output, export)
    if code or not slos or slo_rules is None:
        return code
    # The rule file the export lists: the SLOs' generated rules, as `slo generate` writes them.
    try:
        Path(slo_rules).write_text(rule_file_text(slos), encoding="utf-8")
    except OSError as exc:
        print(f"codebook-monitor: error: {slo_rules}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{slo_rules}: the rules of {len(slos)} SLO(s)", file=sys.stderr)
    return 0
