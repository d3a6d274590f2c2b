"""Run every shipped dashboard panel's expressions against a running daemon, as Grafana pointed
straight at it would (a range query over the last ``window`` seconds), and list the empty ones.

``python -m tests.api.dashboard_panels http://127.0.0.1:9115`` prints the count and the empty
panels (used for issue 12's before/after figure); :mod:`tests.api.test_api_dashboards_live` runs
it against the demo.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

from tests.shipped.shipped_helpers import ROOT, substitute_grafana_variables


def panel_queries() -> list[tuple[str, str, str]]:
    """``(dashboard file, panel title, expr)`` of every panel target of dashboards/*.json."""
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        panels = []
        for p in board["panels"]:
            panels.append(p)
            panels.extend(p.get("panels", []))
        out += [(path.name, p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]
    return out


def empty_panels(url: str, *, window: float = 600.0, step: float = 15.0,
                 headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str, str]]]:
    """Return ``(queries run, [(file, title, expr) whose range query returned no series])``.

    :raises AssertionError: a query failed (anything but ``status: success``).
    """
    end = time.time()
    empty = []
    queries = panel_queries()
    with httpx.Client(timeout=60, headers=headers) as client:
        for name, title, expr in queries:
            r = client.get(f"{url}/api/v1/query_range", params={
                "query": substitute_grafana_variables(expr), "start": end - window, "end": end, "step": step})
            body = r.json()
            assert body.get("status") == "success", (name, title, expr, body)
            if not body["data"]["result"]:
                empty.append((name, title, expr))
    return len(queries), empty


if __name__ == "__main__":
    total, empty = empty_panels(sys.argv[1])
    print(f"{len(empty)} of {total} panel queries empty")
    for row in empty:
        print("  ", *row, sep="  ")
