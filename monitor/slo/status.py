"""The state of every SLO now, from its recorded ``slo:*`` series: ``slo status`` and ``GET /api/v1/slos``.

Pure functions over instant-query results in the Prometheus HTTP API shape
(``[{"metric": {...}, "value": [t, "v"]}, ...]``), so the CLI (over HTTP) and the API (over the
engine) build the same rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["STATUS_QUERIES", "status_rows", "format_status", "fetch_status", "fetch_status_async"]

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


def fetch_status(query: Callable[[str], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Run every :data:`STATUS_QUERIES` query through ``query(expr) -> data.result``."""
    return {key: query(expr) for key, expr in STATUS_QUERIES.items()}



async def fetch_status_async(
        query: Callable[[str], Awaitable[list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    """Like :func:`fetch_status` for an asynchronous ``query``."""
    return {key: await query(expr) for key, expr in STATUS_QUERIES.items()}
