"""The ``codebook-monitor`` command: argument parsing and exit codes only.

Exit codes: 0 success, 1 a check failed (bad config, a failing probe, a failing rule test),
2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from monitor import __version__

DEFAULT_CONFIG = "monitor.yaml"


def _load(path: str):
    from monitor.config.loader import load_config
    from monitor.errors import ConfigErrors

    try:
        return load_config(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.config.secrets import secret_values
    from monitor.logging import setup_logging

    config = _load(args.config)
    if config is None:
        return 1
    setup_logging(args.log_level or config.log.level, secrets=secret_values(config))
    return asyncio.run(_run(config, args.config, args.port))


async def _run(config, path, port):
    from monitor.daemon.lifecycle import serve
    from monitor.daemon.wiring import Daemon

    return await serve(Daemon(config), path, port=port)


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.config.loader import check_config_file

    errors = check_config_file(args.config)
    if not errors:
        config = _load(args.config)
        errors = _check_rules(config) if config is not None else ["config failed to load"]
    for err in errors:
        print(err, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: OK ({len(config.resolved_rule_files())} rule files)")
    return 0


def _check_rules(config) -> list[str]:
    from monitor.rules.rulefmt import load_rule_files

    _, errors = load_rule_files(config.resolved_rule_files())
    return [str(e) for e in errors]


def _fmt_details(details: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items())


def cmd_probe(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    results = asyncio.run(_probe_once(config))
    if args.json:
        from monitor.api.probes import result_json

        print(json.dumps({name: {"kind": kind, "target": target, **result_json(r)}
                          for name, (kind, target, r) in results.items()}, indent=2))
    else:
        rows = [("PROBE", "KIND", "TARGET", "RESULT", "LATENCY", "DETAILS", "ERROR")]
        for name, (kind, target, r) in results.items():
            rows.append((name, kind, target, "ok" if r.success else "FAIL", f"{r.duration_seconds * 1000:.0f}ms",
                         _fmt_details(r.details), r.error or ""))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0 if all(r.success for _, _, r in results.values()) else 1


async def _probe_once(config):
    import httpx
    from prometheus_client import CollectorRegistry

    from monitor.daemon.probing import ProbeRunner
    from monitor.metrics import Metrics
    from monitor.tsdb.store import SampleStore

    async with httpx.AsyncClient() as http:
        runner = ProbeRunner(config.probes, SampleStore(), Metrics(CollectorRegistry()), http_client=http)
        try:
            results = await runner.run_all()
        finally:
            await runner.close()
    return {n: (runner.settings[n].kind, runner.settings[n].target(), r) for n, r in results.items()}


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.daemon.demo import run_demo

    return run_demo(port=args.port, backend_port=args.backend_port, config=args.config)


def cmd_test_rules(args: argparse.Namespace) -> int:
    from monitor.rules.unittest import run_test_files

    return run_test_files(args.files, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``codebook-monitor``."""
    p = argparse.ArgumentParser(prog="codebook-monitor", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"codebook-monitor {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the daemon")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.add_argument("--port", type=int, help="listen port (overrides server.port)")
    s.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("check", help="validate the config and every rule file; exit 1 on any error")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("probe", help="run every probe once now and print a table; exit 1 if any fails")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_probe)

    s = sub.add_parser("demo", help="run the daemon on examples/monitor.yaml beside the sample backend")
    s.add_argument("--port", type=int, default=9115, help="the daemon's port (default 9115)")
    s.add_argument("--backend-port", type=int, default=8000, help="the sample backend's port (default 8000)")
    s.add_argument("--config", help="use this config instead of examples/monitor.yaml")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("test-rules", help="run rule unit tests in promtool's test format")
    s.add_argument("files", nargs="+")
    s.set_defaults(func=cmd_test_rules)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codebook-monitor`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)
