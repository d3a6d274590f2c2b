"""``codebook-monitor slo generate|status``: SLO rules for a real Prometheus, and the SLOs' state now.

- ``slo generate`` writes the rule file :mod:`monitor.slo.generate` builds from the config's SLOs
  (``slos:`` and ``slo_files:``); ``promtool check rules`` accepts it.
- ``slo status`` asks the running daemon's query API (``GET /api/v1/query``, the Prometheus HTTP
  API) for the recorded ``slo:*`` series and the firing burn-rate alerts, and prints one line per
  SLO: objective, SLI over the period, budget remaining, burn rate now (5m), tier firing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from monitor.config.loader import load_config_reporting
from monitor.slo.generate import rule_file_text

__all__ = ["add_parser", "status_rows", "format_status", "STATUS_QUERIES"]

#: What ``slo status`` reads, by column key (instant queries; one series per SLO, by ``sloth_id``).
STATUS_QUERIES: dict[str, str] = {
    "info": "slo:info",
    "objective": "slo:objective:ratio",
    "budget": "slo:error_budget:ratio",
    "period_burn": "slo:period_burn_rate:ratio",
    "remaining": "slo:period_error_budget_remaining:ratio",
    "burn_now": "slo:current_burn_rate:ratio",
    "firing": 'ALERTS{alertstate="firing", sloth_id!=""}',
}


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
    st.add_argument("--config", "-c", default="monitor.yaml")
    st.add_argument("--url", help="the daemon's base URL (default: $MONITOR_URL, then server.external_url)")
    st.add_argument("--token", help="API bearer token when reads need one (default: $MONITOR_API_TOKEN)")
    st.add_argument("--json", action="store_true", help="print the rows as JSON")
    st.set_defaults(func=_cmd_status)


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


# ------------------------------------------------------------------------------------ status


def status_rows(results: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Build one row per SLO from instant-query results.

    :param results: :data:`STATUS_QUERIES` key -> the ``data.result`` list of a Prometheus
        ``/api/v1/query`` answer (``[{"metric": {...}, "value": [t, "v"]}, ...]``).
    :return: rows sorted by SLO id: ``slo``, ``objective`` (ratio), ``period``, ``sli`` (good ratio
        over the period, ``None`` before any traffic), ``budget_remaining`` (ratio of the period's
        budget, negative when overspent), ``burn_rate`` (5m, 1 = exactly on budget), ``firing``
        (tier names of firing burn-rate alerts, fastest first).
    """
    def by_id(key: str) -> dict[str, float]:
        out = {}
        for r in results.get(key, []):
            try:
                out[r["metric"]["sloth_id"]] = float(r["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    objective, budget = by_id("objective"), by_id("budget")
    period_burn, remaining, burn_now = by_id("period_burn"), by_id("remaining"), by_id("burn_now")
    firing: dict[str, list[str]] = {}
    for r in results.get("firing", []):
        m = r.get("metric", {})
        if m.get("sloth_id"):
            firing.setdefault(m["sloth_id"], []).append(m.get("tier", m.get("alertname", "?")))
    info = {r["metric"].get("sloth_id"): r["metric"] for r in results.get("info", []) if "metric" in r}
    rows = []
    for sid in sorted(set(info) | set(objective)):
        if sid is None:
            continue
        meta = info.get(sid, {})
        sli = None
        if sid in period_burn and sid in budget and period_burn[sid] == period_burn[sid]:  # not NaN
            sli = 1 - period_burn[sid] * budget[sid]
        rows.append({"slo": sid, "objective": objective.get(sid), "period": meta.get("slo_period", ""),
                     "sli": sli, "budget_remaining": _num(remaining.get(sid)), "burn_rate": _num(burn_now.get(sid)),
                     "firing": sorted(firing.get(sid, []))})
    return rows


def _num(v: float | None) -> float | None:
    return None if v is None or v != v else v


def _pct(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f}%"


def format_status(rows: list[dict[str, Any]]) -> str:
    """Format :func:`status_rows` as a table (``-`` where a value is unknown, e.g. no traffic yet)."""
    head = ("SLO", "OBJECTIVE", "PERIOD", "SLI", "BUDGET LEFT", "BURN NOW", "FIRING")
    lines = [head]
    for r in rows:
        burn = "-" if r["burn_rate"] is None else f"{r['burn_rate']:.2f}x"
        lines.append((r["slo"], _pct(r["objective"]), r["period"] or "-", _pct(r["sli"]),
                      _pct(r["budget_remaining"], 1), burn, ",".join(r["firing"]) or "-"))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _cmd_status(args: Any) -> int:
    import httpx

    url = args.url or os.environ.get("MONITOR_URL", "")
    if not url:
        url = "http://127.0.0.1:9115"
        if args.config and Path(args.config).exists():
            config = load_config_reporting(args.config)
            if config is not None:
                url = config.server.external_url
    headers = {"X-Monitor-Client": "cli"}
    token = args.token or os.environ.get("MONITOR_API_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10.0) as client:
            results = fetch_status(lambda q: _query(client, q))
    except httpx.HTTPError as exc:
        print(f"cannot reach the daemon at {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
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


def fetch_status(query: Callable[[str], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Run every :data:`STATUS_QUERIES` query through ``query(expr) -> data.result``."""
    return {key: query(expr) for key, expr in STATUS_QUERIES.items()}


def _query(client: Any, expr: str) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/query", params={"query": expr})
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        hint = " (pass --token or set MONITOR_API_TOKEN)" if resp.status_code == 401 else ""
        raise RuntimeError(f"query {expr!r}: error {resp.status_code}: {detail}{hint}")
    result = resp.json().get("data", {}).get("result", [])
    return result if isinstance(result, list) else []
