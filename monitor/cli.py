"""The ``codebook-monitor`` command: argument parsing and exit codes only.

Exit codes: 0 success, 1 a check failed (bad config, a failing probe, a failing rule test) or an
expected error (``codebook-monitor: error: <message>`` on stderr, no traceback), 2 bad usage
(argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.cli_common import add_api_args, api_base, unreachable


def load_config_reporting(path: str) -> Any:
    """Load ``path``, printing every error (:func:`monitor.config.loader.load_config_reporting`).

    Imported late so that ``--help`` does not load pydantic and every probe.
    """
    from monitor.config.loader import load_config_reporting as load

    return load(path)


DEFAULT_CONFIG = "monitor.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon on ``--config`` until it is stopped (``run``)."""
    from monitor.config.secrets import secret_values
    from monitor.logging import setup_logging

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    setup_logging(args.log_level or config.log.level, secrets=secret_values(config))
    config.server.listen_on(args.port)  # links follow --port unless server.external_url is set
    from monitor.daemon.eventloop import loop_factory, run

    try:
        loop_factory(args.loop)
    except ValueError as exc:  # uvloop asked for and not installed
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return run(lambda: _run(config, args.config, args.port), args.loop)


async def _run(config, path, port):
    from monitor.daemon.lifecycle import serve
    from monitor.daemon.wiring import Daemon

    return await serve(Daemon(config), path, port=port, freeze_after_start=True)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the config, the files it names and every rule file; exit 1 on any error (``check``).

    Every stage runs even when an earlier one failed (the rule files of an invalid config are
    still checked), so one round lists every error.
    """
    from monitor.config.loader import InvalidConfig, load_config
    from monitor.errors import ConfigErrors

    config = None
    try:
        config = load_config(args.config, check_files=True)
        errors: list[str] = []
        rule_files = config.resolved_rule_files()
    except InvalidConfig as e:
        errors, rule_files = [str(err) for err in e.errors], e.rule_files
    except ConfigErrors as e:
        errors, rule_files = [str(err) for err in e.errors], []
    errors += _check_rules(rule_files, config)
    if config is not None:
        errors += _check_slo_rules(config)
    warnings = _rule_warnings(rule_files, config)
    if config is not None:
        from monitor.config.check_warnings import config_warnings
        from monitor.config.cluster import shard_warnings

        warnings = config_warnings(config, args.config) + shard_warnings(config) + warnings
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for err in errors:
        print(err, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    slos = len(config.all_slos()) if config is not None else 0
    print(f"{args.config}: OK ({len(rule_files)} rule files, {slos} SLOs)")
    return 0


def _check_rules(files: list[Path], config: Any = None) -> list[str]:
    """Rule file errors, and rules the configured ``promql_compat``/``enable_features`` reject."""
    from monitor.rules.compat_check import compat_errors
    from monitor.rules.rulefmt import load_rule_files

    if not files:
        return []
    specs, errors = load_rule_files(files)
    if errors or config is None:
        return [str(e) for e in errors]
    return compat_errors(specs, config.rules.promql_compat, frozenset(config.rules.enable_features))


def _rule_warnings(files: list[Path], config: Any = None) -> list[str]:
    """Rules whose meaning differs between Prometheus 2 and 3 (monitor.rules.compat_check)."""
    from monitor.rules.compat_check import migration_warnings
    from monitor.rules.rulefmt import load_rule_files

    if not files:
        return []
    specs, errors = load_rule_files(files)
    interval = config.rules.evaluation_interval if config is not None else 15.0
    return [] if errors else migration_warnings(specs, interval)


def _check_slo_rules(config) -> list[str]:
    """Validate the rules generated from the config's SLOs, as the daemon loads them."""
    from monitor.daemon.wiring import rule_sources
    from monitor.rules.rulefmt import RuleText, load_rule_files

    _, errors = load_rule_files([s for s in rule_sources(config) if isinstance(s, RuleText)])
    return [str(e) for e in errors]


def _fmt_details(details: dict, width: int = 72) -> str:
    """Key figures as ``k=v`` pairs, cut at ``width`` characters for the table (``--json`` has all)."""
    text = " ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_probe(args: argparse.Namespace) -> int:
    """Run every probe once and print a table (or JSON); exit 1 if any fails (``probe``)."""
    from monitor.config.secrets import secret_values
    from monitor.logging import setup_logging

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    # Only JSON lines on stderr, and only errors: the table already shows each failure.
    setup_logging("ERROR", secrets=secret_values(config))
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
    """Run the daemon on examples/monitor.yaml beside the sample backend (``demo``)."""
    from monitor.daemon.demo import run_demo

    return run_demo(port=args.port, backend_port=args.backend_port, config=args.config,
                    maintenance=not args.no_maintenance)


def cmd_test_rules(args: argparse.Namespace) -> int:
    """Run rule unit tests in promtool's ``test rules`` format (``test-rules``)."""
    from monitor.rules.unittest import run_test_files

    return run_test_files(args.files, sys.stdout, compat=args.promql_compat)


def _parse_at(text: str | None, option: str = "--at") -> float:
    """``--at``: Unix seconds or an ISO 8601 / RFC 3339 time (UTC when no zone); now when absent.

    :raises ValueError: ``<option>: invalid time "<text>" (use RFC 3339, e.g. 2026-11-29T15:00:00Z)``.
    """
    import math
    import time
    from datetime import datetime, timezone

    if not text:
        return time.time()
    invalid = f'{option}: invalid time "{text}" (use RFC 3339, e.g. 2026-11-29T15:00:00Z)'
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(invalid)
        return value
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(invalid) from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def cmd_routes_test(args: argparse.Namespace) -> int:
    """Print the receivers an alert with these labels reaches (``routes test``)."""
    from monitor.alerting.route import build_route, routes_test

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    if config.alerting.route is None:
        print("no route configured (alerting.route)", file=sys.stderr)
        return 1
    words = [w for arg in args.labels for w in arg.split(",") if w]
    try:
        out = routes_test(build_route(config.alerting.route), words, verbose=args.verbose)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(out)
    return 0


def cmd_oncall(args: argparse.Namespace) -> int:
    """Print who is on call and the next handoffs (``oncall``)."""
    from monitor.escalation.simulate import oncall_report

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    print(oncall_report(config.alerting, _parse_at(args.at), args.n))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Print who is notified when if nobody acknowledges an alert (``simulate``)."""
    from monitor.escalation.simulate import format_timeline, simulate

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    at = _parse_at(args.at)
    try:
        rows = simulate(config.alerting, args.labels, at, receivers=config.receivers)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(format_timeline(rows, config.alerting, labels=args.labels, at=at))
    return 0


def _api(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """Return the base URL and headers for commands that talk to the running daemon (:func:`api_base`)."""
    return api_base(args)


def _request(method: str, url: str, headers: dict[str, str], **kw):
    import httpx

    try:
        with httpx.Client(timeout=10.0) as client:
            return client.request(method, url, headers=headers, **kw)
    except httpx.HTTPError as e:
        print(unreachable(url, e), file=sys.stderr)
        return None


def _failed(resp) -> bool:
    if resp is None:
        return True
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        print(f"error {resp.status_code}: {detail}", file=sys.stderr)
        if resp.status_code == 401:
            print("pass --token TOKEN or set MONITOR_API_TOKEN to a token of api.tokens", file=sys.stderr)
        return True
    return False


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge, unacknowledge or resolve an alert on the running daemon (``ack``)."""
    action = "unack" if args.unack else "resolve" if args.resolve else "ack"
    base, headers = _api(args)
    body = {"comment": args.comment} if args.comment else {}
    resp = _request("POST", f"{base}/api/v1/alerts/{args.fingerprint}/{action}", headers, json=body)
    if _failed(resp):
        return 1
    data = resp.json().get("data", {})
    print(f"{args.fingerprint}: {data.get('outcome') or data.get('status', 'ok')}")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    """Print an alert's timeline from the running daemon, with who acted and their comments (``timeline``)."""
    from monitor.alerting.views import format_timeline

    base, headers = _api(args)
    resp = _request("GET", f"{base}/api/v1/alerts/{args.fingerprint}/timeline", headers)
    if _failed(resp):
        return 1
    print(format_timeline(resp.json().get("data", [])))
    return 0


def cmd_silence_add(args: argparse.Namespace) -> int:
    """Add a silence on the running daemon and print its id (``silence add``)."""
    from datetime import datetime, timezone

    from model.matchers import parse_matchers
    from model.duration import parse_duration

    try:
        matchers = [m for text in args.matchers for m in parse_matchers(text)]
    except ValueError as e:
        print(f"codebook-monitor: error: {e}", file=sys.stderr)
        return 2
    if args.duration.startswith("-"):
        raise ValueError(f'--duration: must be positive, got "{args.duration}" (a silence ends after it starts; '
                         "--start TIME begins it later)")
    start = _parse_at(args.start, "--start")
    try:
        end = start + parse_duration(args.duration)
    except ValueError as e:
        raise ValueError(f"--duration: {e}") from None

    def iso(t: float) -> str:
        try:
            return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            raise ValueError("--start/--duration: the silence would end beyond year 9999") from None

    base, headers = _api(args)
    body = {"matchers": [{"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"),
                          "isEqual": m.op in ("=", "=~")} for m in matchers],
            "startsAt": iso(start), "endsAt": iso(end), "createdBy": args.author or "", "comment": args.comment}
    resp = _request("POST", f"{base}/api/v2/silences", headers, json=body)
    if _failed(resp):
        return 1
    print(resp.json()["silenceID"])
    return 0


def cmd_silence_list(args: argparse.Namespace) -> int:
    """List the running daemon's silences (``silence list``)."""
    base, headers = _api(args)
    resp = _request("GET", f"{base}/api/v2/silences", headers)
    if _failed(resp):
        return 1
    rows = [("ID", "MATCHERS", "ENDS", "STATE", "CREATED BY", "COMMENT")]
    for s in resp.json():
        if s["status"]["state"] == "expired" and not args.expired:
            continue
        ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        ms = ",".join(f'{m["name"]}{ops[(bool(m["isRegex"]), bool(m.get("isEqual", True)))]}"{m["value"]}"'
                      for m in s["matchers"])
        rows.append((s["id"], ms, s["endsAt"], s["status"]["state"], s["createdBy"], s["comment"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def cmd_silence_expire(args: argparse.Namespace) -> int:
    """Expire silences by id on the running daemon (``silence expire``)."""
    base, headers = _api(args)
    ok = True
    for sid in args.ids:
        resp = _request("DELETE", f"{base}/api/v2/silence/{sid}", headers)
        if _failed(resp):
            ok = False
        else:
            print(f"{sid}: expired")
    return 0 if ok else 1


def _non_empty(text: str) -> str:
    """Accept a string that is not empty or blank (an argparse ``type``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _add_api_args(s: argparse.ArgumentParser, token: bool = True) -> None:
    add_api_args(s, token=token, config=DEFAULT_CONFIG)


def _add_alerting_parsers(sub) -> None:
    s = sub.add_parser("routes", help="routing tree tools")
    rsub = s.add_subparsers(dest="routes_command", required=True)
    t = rsub.add_parser("test", help="print the receivers an alert with these labels reaches (like amtool)")
    t.add_argument("labels", nargs="+", help="label=value (or comma-separated pairs)")
    t.add_argument("--verbose", "-v", action="store_true", help="also print each route's grouping and timers")
    t.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    t.set_defaults(func=cmd_routes_test)

    s = sub.add_parser("oncall", help="print who is on call and the next handoffs")
    s.add_argument("--at", help="instead of now: Unix seconds or RFC 3339 (UTC when no zone)")
    s.add_argument("-n", type=int, default=5, help="handoffs to show per schedule (default 5)")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.set_defaults(func=cmd_oncall)

    s = sub.add_parser("simulate", help="print who is notified when if nobody acknowledges an alert")
    s.add_argument("--labels", required=True, help="e.g. severity=critical,service=api")
    s.add_argument("--at", help="when the alert fires (default now): Unix seconds or RFC 3339")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("ack", help="acknowledge (or --unack / --resolve) an alert on the running daemon")
    s.add_argument("fingerprint")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--unack", action="store_true", help="withdraw the acknowledgement (escalation restarts)")
    g.add_argument("--resolve", action="store_true", help="resolve by hand")
    s.add_argument("--comment", default="")
    _add_api_args(s)
    s.set_defaults(func=cmd_ack)

    s = sub.add_parser("timeline", help="print an alert's timeline (escalation steps, acks and resolves with comments)")
    s.add_argument("fingerprint")
    _add_api_args(s)
    s.set_defaults(func=cmd_timeline)

    s = sub.add_parser("silence", help="create, list and expire silences on the running daemon")
    ssub = s.add_subparsers(dest="silence_command", required=True)
    a = ssub.add_parser("add", help='add a silence: silence add \'service="api"\' --duration 2h --comment deploy')
    a.add_argument("matchers", nargs="+", help='matchers, e.g. alertname=ApiDown \'service=~"api|db"\'')
    a.add_argument("--duration", "-d", default="1h", help="how long (Prometheus duration, default 1h)")
    # Take "-5m" as a value (argparse only does so for plain negative numbers), so that
    # cmd_silence_add can say durations are positive instead of "expected one argument".
    a._negative_number_matcher = re.compile(r"^-\d")  # noqa: SLF001 - argparse has no public hook
    a.add_argument("--start", help="start time (default now)")
    a.add_argument("--comment", required=True, type=_non_empty,
                   help="why (required and non-empty, as Alertmanager requires)")
    a.add_argument("--author", default="", help="created by (default: the token name)")
    _add_api_args(a)
    a.set_defaults(func=cmd_silence_add)
    ls = ssub.add_parser("list", help="list active and pending silences")
    ls.add_argument("--expired", action="store_true", help="include expired silences")
    _add_api_args(ls, token=False)
    ls.set_defaults(func=cmd_silence_list)
    e = ssub.add_parser("expire", help="expire silences by id")
    e.add_argument("ids", nargs="+")
    _add_api_args(e)
    e.set_defaults(func=cmd_silence_expire)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``codebook-monitor``."""
    p = argparse.ArgumentParser(
        prog="codebook-monitor",
        description="Probe the Codebook backend, evaluate Prometheus rules, route, page and escalate alerts.")
    p.add_argument("--version", action="version", version=f"codebook-monitor {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the daemon")
    s.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    s.add_argument("--port", type=int, help="listen port (overrides server.port)")
    s.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    s.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="event loop: uvloop when installed (auto, the default), or asyncio's own")
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
    s.add_argument("--no-maintenance", action="store_true",
                   help="drop the config's maintenance windows (the example's mutes pages on the first "
                        "Saturday of the month 02:00-06:00 UTC)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("test-rules", help="run rule unit tests in promtool's test format")
    s.add_argument("files", nargs="+")
    s.add_argument("--promql-compat", choices=("2", "3"), default="3",
                   help='PromQL semantics: "3" (default) as promtool 3.x, "2" as promtool 2.x')
    s.set_defaults(func=cmd_test_rules)

    _add_alerting_parsers(sub)
    # `export alertmanager` / `export prometheus` (configs built by monitor.export)
    from monitor.cli_export import add_parser as add_export_parser

    add_export_parser(sub)
    # `slo generate` / `slo status` (rules built by monitor.slo)
    from monitor.cli_slo import add_parser as add_slo_parser

    add_slo_parser(sub)
    # `backup record-restore` / `backup restores` (monitor.store.restores)
    from monitor.cli_backup import add_parser as add_backup_parser

    add_backup_parser(sub)
    # `console hash-password` (monitor.api.console)
    from monitor.cli_console import add_parser as add_console_parser

    add_console_parser(sub)
    return p


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    return str(exc) or type(exc).__name__


def _quiet_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in tests)
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codebook-monitor`` console script.

    A closed standard output (``codebook-monitor probe --json | head``) ends the command quietly
    with exit 1, without a traceback. Expected failures (:class:`~monitor.errors.MonitorError`, :class:`OSError`,
    :class:`ValueError`, e.g. an unwritable output file or an invalid time) print
    ``codebook-monitor: error: <message>`` on stderr and exit 1, without a traceback; usage
    errors stay argparse's (exit 2).
    """
    from monitor.errors import MonitorError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (``probe --json | head``): stop quietly, as a shell tool does.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        _quiet_stdout()
        return 1
    except (MonitorError, OSError, ValueError, OverflowError) as exc:
        print(f"codebook-monitor: error: {_error_text(exc)}", file=sys.stderr)
        return 1
