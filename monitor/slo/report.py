"""Calendar-month compliance of every SLO: ``slo report --month`` and ``GET /api/v1/slos/{name}/report``.

The month's SLI is traffic-weighted like the period SLI of the generated rules: the sum of the
recorded 5-minute bad-event counts (``slo:sli_error_events:count5m``) over the month divided by
the sum of the event counts (``slo:sli_events:count5m``), evaluated at the month's end (or now,
for the month in progress: month to date). It needs the month's ``slo:*`` samples in the store.

On-call response SLOs (``oncall`` SLIs: acknowledged / resolved within the priority's SLA) are
also shown per priority, one line per priority with its acknowledgement and resolution
compliance (read from the ``oncall_priority`` / ``oncall_measure`` labels of ``slo:info``).

Pure functions over instant-query results in the Prometheus HTTP API shape, like
:mod:`monitor.slo.status`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["month_window", "report_queries", "report_rows", "format_report", "oncall_rows"]

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_window(month: str | None, now: float) -> tuple[str, float, float, bool]:
    """Return ``(month, start, end, complete)`` for ``YYYY-MM`` (UTC; default: the month of ``now``).

    ``end`` is the month's end, or ``now`` for the month in progress (``complete`` false).

    :raises ValueError: not ``YYYY-MM``, or a month that has not started.
    """
    if month is None:
        month = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m")
    m = _MONTH_RE.match(month)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f'expected a month such as 2026-11, got "{month}"')
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1, tzinfo=timezone.utc).timestamp()
    end = start + calendar.monthrange(year, mon)[1] * 86400
    if start >= now:
        raise ValueError(f"{month} has not started yet")
    return month, start, min(end, now), end <= now


def report_queries(start: float, end: float) -> dict[str, str]:
    """Return the instant queries of a report over ``[start, end]`` (evaluate them at ``end``)."""
    w = f"{max(1, int(end - start))}s"
    return {
        "bad": f"sum by (sloth_id) (sum_over_time(slo:sli_error_events:count5m[{w}]))",
        "all": f"sum by (sloth_id) (sum_over_time(slo:sli_events:count5m[{w}]))",
        "objective": f"max by (sloth_id) (last_over_time(slo:objective:ratio[{w}]))",
        "oncall": (f"max by (sloth_id, oncall_priority, oncall_measure) "
                   f'(last_over_time(slo:info{{slo_sli_kind="oncall"}}[{w}]))'),
    }


def report_rows(results: Mapping[str, list[dict[str, Any]]], month: str, complete: bool) -> list[dict[str, Any]]:
    """Build one row per SLO recorded in the month.

    :param results: :func:`report_queries` key -> ``data.result`` of the instant query.
    :return: rows sorted by SLO id: ``slo``, ``month``, ``complete`` (false: month to date),
        ``objective`` and ``sli`` (ratios; ``sli`` ``None`` without events), ``budget_used``
        (share of the month's error budget spent: 1 = all of it), ``compliant`` (``sli >=
        objective``; ``None`` without events), ``events`` (events counted in the month: pages for
        on-call SLOs; ``None`` without), ``priority`` and ``measure`` (``ack`` | ``resolve``) for
        on-call SLOs (``None`` for the others).
    """
    def by_id(key: str) -> dict[str, float]:
        out = {}
        for r in results.get(key, []):
            try:
                out[r["metric"]["sloth_id"]] = float(r["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    bad, total, objective = by_id("bad"), by_id("all"), by_id("objective")
    oncall = {r["metric"].get("sloth_id"): r["metric"] for r in results.get("oncall", []) if "metric" in r}
    rows = []
    for sid in sorted(set(objective) | set(total)):
        obj = objective.get(sid)
        sli = None
        if total.get(sid):
            sli = 1 - bad.get(sid, 0.0) / total[sid]
        used = None
        if sli is not None and obj is not None and obj < 1:
            used = (1 - sli) / (1 - obj)
        rows.append({"slo": sid, "month": month, "complete": complete, "objective": obj, "sli": sli,
                     "budget_used": used,
                     "compliant": None if sli is None or obj is None else sli >= obj - 1e-12,
                     "events": total.get(sid), "priority": oncall.get(sid, {}).get("oncall_priority"),
                     "measure": oncall.get(sid, {}).get("oncall_measure")})
    return rows


def oncall_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the on-call SLOs of :func:`report_rows` by priority: ``priority``, ``ack`` and
    ``resolve`` (the report row of that measure, or ``None``), sorted by priority."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("priority") and r.get("measure") in ("ack", "resolve"):
            out.setdefault(r["priority"], {"priority": r["priority"], "ack": None, "resolve": None})[r["measure"]] = r
    return [out[p] for p in sorted(out)]


def format_report(rows: list[dict[str, Any]]) -> str:
    """Format :func:`report_rows` as a table."""
    def pct(v: float | None, digits: int = 3) -> str:
        return "-" if v is None else f"{v * 100:.{digits}f}%"

    head = ("SLO", "MONTH", "OBJECTIVE", "SLI", "BUDGET USED", "MET")
    lines = [head]
    for r in rows:
        month = r["month"] + ("" if r["complete"] else " (to date)")
        met = "-" if r["compliant"] is None else ("yes" if r["compliant"] else "NO")
        lines.append((r["slo"], month, pct(r["objective"]), pct(r["sli"]), pct(r["budget_used"], 1), met))
    text = _table(lines)
    by_priority = oncall_rows(rows)
    if by_priority:
        def cell(r: dict[str, Any] | None) -> str:
            if r is None:
                return "-"
            met = "" if r["compliant"] is None else (" ok" if r["compliant"] else " MISSED")
            events = "" if r["events"] is None else f" of {r['events']:.0f}"
            return f"{pct(r['sli'], 1)}{events} (objective {pct(r['objective'], 1)}){met}"

        table = [("PRIORITY", "ACKNOWLEDGED WITHIN SLA", "RESOLVED WITHIN SLA")]
        table += [(p["priority"], cell(p["ack"]), cell(p["resolve"])) for p in by_priority]
        text += "\n\nOn-call response by priority:\n" + _table(table)
    return text


def _table(lines: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
