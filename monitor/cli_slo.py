"""``codebook-monitor slo generate|status``: SLO rules for a real Prometheus, and the SLOs' state now.

- ``slo generate`` writes the rule file :mod:`monitor.slo.generate` builds from the config's SLOs
  (``slos:`` and ``slo_files:``); ``promtool check rules`` accepts it.
- ``slo status`` asks the running daemon's query API (``GET /api/v1/query``, the Prometheus HTTP
  API) for the recorded ``slo:*`` series and the firing burn-rate alerts, and prints one line per
  SLO: objective, SLI over the period, budget remaining, burn rate now (5m), tier firing.
- ``slo report [--month YYYY-MM]`` asks it for each SLO's compliance over a calendar month
  (:mod:`monitor.slo.report`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from monitor.cli_common import add_api_args, api_base, unreachable
from monitor.config.loader import load_config_reporting
from monitor.slo.generate import rule_file_text
from monitor.slo.report import format_report, month_window, report_queries, report_rows
from monitor.slo.status import fetch_status, format_status, status_rows

__all__ = ["add_parser"]

def add_parser(sub: Any) -> None:
    """Add ``slo generate`` and ``slo status`` to the ``codebook-monitor`` parser.

    :param sub: the top-level ``add_subparsers()`` object of ``monitor.cli``.
    """
    s = sub.add_parser("slo", help="SLOs: generate their rules for Prometheus, show their state")
    kinds = s.add_subparsers(dest="slo_command", required=True)
    g = kinds.add_parser("generate", help="write the SLOs' recording and burn-rate alerting rules (Prometheus "
                                          "rule file; promtool check rules accepts it)")
    g.add_argument("--config", "-c", default="monitor.yaml")
    g.add_argument("--output", "-o", help="write here instead of standard output")
    g.add_argument("--interval", help="the groups' evaluation interval, e.g. 30s (default: the global one)")
    g.set_defaults(func=_cmd_generate)
    st = kinds.add_parser("status", help="one line per SLO from the running daemon: objective, SLI over the "
                                         "period, budget remaining, burn rate now, tier firing")
    add_api_args(st)
    st.add_argument("--json", action="store_true", help="print the rows as JSON")
    st.set_defaults(func=_cmd_status)
    rp = kinds.add_parser("report", help="calendar-month compliance of every SLO from the running daemon: SLI over "
                                         "the month, budget used, objective met")
    rp.add_argument("--month", help="YYYY-MM, UTC (default: this month, to date)")
    add_api_args(rp)
    rp.add_argument("--json", action="store_true", help="print the rows as JSON")
    rp.set_defaults(func=_cmd_report)


def _cmd_generate(args: Any) -> int:
    from model.duration import parse_duration

    config = load_config_reporting(args.config)
    if config is None:
        return 1
    slos = config.all_slos()
    if not slos:
        print(f"{args.config}: no SLOs (slos: or slo_files:)", file=sys.stderr)
        return 1
    text = rule_file_text(slos, interval=parse_duration(args.interval) if args.interval else None)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"{args.output}: {len(slos)} SLO(s)", file=sys.stderr)
    return 0


def _client(args: Any) -> Any:
    """Return an ``httpx.Client`` for the daemon's API (``--url``, ``$MONITOR_URL``, ``--port``, the config's URL)."""
    import httpx

    url, headers = api_base(args)
    return httpx.Client(base_url=url, headers=headers, timeout=30.0)


def _cmd_status(args: Any) -> int:
    import httpx

    client = _client(args)
    try:
        with client:
            results = fetch_status(lambda q: _query(client, q))
    except httpx.HTTPError as exc:
        print(unreachable(str(client.base_url).rstrip("/"), exc), file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    rows = status_rows(results)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no SLOs recorded yet (slo:info is empty): does the config have slos: or slo_files:?")
    else:
        print(format_status(rows))
    return 0


def _cmd_report(args: Any) -> int:
    import time

    import httpx

    month, start, end, complete = month_window(args.month, time.time())
    client = _client(args)
    try:
        with client:
            results = {k: _query(client, q, at=end) for k, q in report_queries(start, end).items()}
    except httpx.HTTPError as exc:
        print(unreachable(str(client.base_url).rstrip("/"), exc), file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    rows = report_rows(results, month, complete)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no SLO samples in {month}")
    else:
        print(format_report(rows))
    return 0


def _query(client: Any, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    resp = client.get("/api/v1/query", params=params)
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        hint = " (pass --token or set MONITOR_API_TOKEN)" if resp.status_code == 401 else ""
        raise RuntimeError(f"query {expr!r}: error {resp.status_code}: {detail}{hint}")
    result = resp.json().get("data", {}).get("result", [])
    return result if isinstance(result, list) else []
