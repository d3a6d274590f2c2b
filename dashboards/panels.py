"""Panel and layout helpers for the Grafana dashboards, over grafana-foundation-sdk's builders.

The helpers are thin wrappers around the SDK's builders (``grafana_foundation_sdk.builders``):
:func:`ts`, :func:`st`, :func:`bars` and :func:`tbl` build one panel from ``(PromQL, legend)``
queries against the ``${datasource}`` variable; :func:`build` lays rows of panels out on the
24-column grid; :func:`to_json` fills in what Grafana expects and the SDK leaves empty (panel
``options`` objects, the built-in annotation, query ``refId`` letters). The dashboards
themselves are in :mod:`dashboards.generate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard as db, stat, table, timeseries
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

#: Grafana's dashboard schema version the files declare (Grafana 10.3+ / 11).
SCHEMA_VERSION = 39
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
#: Query = (PromQL, legend) or (PromQL, legend, {"instant": True, "format": "table"}).
Query = tuple


def _targets(builder: Any, queries: Sequence[Query]) -> Any:
    for i, q in enumerate(queries):
        expr, legend = q[0], q[1]
        opts = q[2] if len(q) > 2 else {}
        t = prom.Dataquery().expr(expr).ref_id(chr(ord("A") + i)).datasource(DS)
        if legend:
            t = t.legend_format(legend)
        if opts.get("instant"):
            t = t.instant()
        if opts.get("format") == "table":
            t = t.format(pm.PromQueryFormat.TABLE)
        builder = builder.with_target(t)
    return builder


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


GREEN_ONLY = [(None, "green")]


def ts(title: str, queries: Sequence[Query], *, unit: str = "short", desc: str = "", w: int = 12, h: int = 8,
       stack: bool = False, minimum: float | None = None, maximum: float | None = None,
       thresholds: Sequence[tuple[float | None, str]] | None = None, bars: bool = False) -> Any:
    """Build a time series panel."""
    p = (timeseries.Panel().title(title).description(desc).datasource(DS).unit(unit).span(w).height(h)
         .legend(common.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                 .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
         .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
         .line_width(1).fill_opacity(10 if not stack else 40).show_points(cm.VisibilityMode.NEVER)
         .span_nulls(False))
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    if stack:
        p = p.stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
    if minimum is not None:
        p = p.min(minimum)
    if maximum is not None:
        p = p.max(maximum)
    if thresholds:
        p = p.thresholds(_thresholds(thresholds)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.LINE))
    return _targets(p, queries)


def _reduce() -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def st(title: str, queries: Sequence[Query], *, unit: str = "short", desc: str = "", w: int = 6, h: int = 4,
       thresholds: Sequence[tuple[float | None, str]] = GREEN_ONLY, mappings: list | None = None,
       decimals: int | None = None) -> Any:
    """Build a stat panel showing the last value of each series."""
    p = (stat.Panel().title(title).description(desc).datasource(DS).unit(unit).span(w).height(h)
         .reduce_options(_reduce()).color_mode(cm.BigValueColorMode.BACKGROUND)
         .graph_mode(cm.BigValueGraphMode.AREA).text_mode(cm.BigValueTextMode.AUTO)
         .thresholds(_thresholds(thresholds)))
    if decimals is not None:
        p = p.decimals(decimals)
    if mappings:
        p = p.mappings(mappings)
    return _targets(p, queries)


def bars(title: str, queries: Sequence[Query], *, unit: str = "short", desc: str = "", w: int = 12, h: int = 8,
         thresholds: Sequence[tuple[float | None, str]] = GREEN_ONLY, minimum: float | None = None,
         maximum: float | None = None) -> Any:
    """Build a horizontal bar gauge, one bar per series (last value)."""
    p = (bargauge.Panel().title(title).description(desc).datasource(DS).unit(unit).span(w).height(h)
         .reduce_options(_reduce()).orientation(cm.VizOrientation.HORIZONTAL)
         .display_mode(cm.BarGaugeDisplayMode.GRADIENT).thresholds(_thresholds(thresholds)))
    if minimum is not None:
        p = p.min(minimum)
    if maximum is not None:
        p = p.max(maximum)
    return _targets(p, queries)


def tbl(title: str, queries: Sequence[Query], *, desc: str = "", w: int = 24, h: int = 8,
        hide: Sequence[str] = ("Time", "__name__", "job", "instance")) -> Any:
    """Build a table of instant-query results, one row per series, labels as columns."""
    p = table.Panel().title(title).description(desc).datasource(DS).span(w).height(h)
    if len(queries) > 1:  # one table, one row per series of any query
        p = p.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    p = p.with_transformation(dm.DataTransformerConfig(
        id_val="organize", options={"excludeByName": {name: True for name in hide}}))
    return _targets(p, [(q[0], q[1], {"instant": True, "format": "table"}) for q in queries])


UP_DOWN = [dm.ValueMap(options={
    "0": dm.ValueMappingResult(text="DOWN", color="red"),
    "1": dm.ValueMappingResult(text="UP", color="green")})]


# --- layout -------------------------------------------------------------------------------------


def build(uid: str, title: str, desc: str, tags: list[str],
          rows: Sequence[tuple[str, Sequence[Any]]], variables: Sequence[Any] = ()) -> dict[str, Any]:
    """Lay out ``rows`` of panels on Grafana's 24-column grid and return the dashboard JSON."""
    d = (db.Dashboard(title).uid(uid).description(desc).tags(["codebook-monitor", *tags]).editable()
         .refresh("30s").time("now-6h", "now").timezone("utc")
         .tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus")))
    for v in variables:
        d = d.with_variable(v)
    built = d.build()
    panels: list[Any] = []
    y = 0
    next_id = 1
    for row_title, row_panels in rows:
        row = db.Row(row_title).id(next_id).grid_pos(dm.GridPos(h=1, w=24, x=0, y=y)).build()
        next_id += 1
        panels.append(row)
        y += 1
        x = 0
        line_h = 0
        for pb in row_panels:
            p = pb.build()
            w, h = p.grid_pos.w, p.grid_pos.h
            if x + w > 24:
                x, y, line_h = 0, y + line_h, 0
            p.grid_pos = dm.GridPos(h=h, w=w, x=x, y=y)
            p.id_val = next_id
            next_id += 1
            panels.append(p)
            x += w
            line_h = max(line_h, h)
        y += line_h
    built.panels = panels
    built.schema_version = SCHEMA_VERSION
    return to_json(built)


def to_json(d: dm.Dashboard) -> dict[str, Any]:
    """Encode with the SDK and complete what Grafana expects (see the module docstring)."""
    data = json.loads(json.dumps(d, cls=JSONEncoder))
    data["annotations"] = {"list": [{
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]}
    data.pop("style", None)  # removed from the schema in Grafana 10
    for v in data.get("templating", {}).get("list", []):
        v.pop("id", None)
        v.pop("auto", None), v.pop("auto_min", None), v.pop("auto_count", None)
        if v["type"] == "datasource":
            v["current"] = {}
    for p in data["panels"]:
        if p.get("options") is None and p["type"] != "row":
            p["options"] = {}
        p.pop("repeatDirection", None)
    return data


def label_var(name: str, label: str, metric: str) -> Any:
    """Build a multi-value query variable over a label's values (with "All" = ``.*``)."""
    return (db.QueryVariable(name).label(label).datasource(DS)
            .query({"query": f"label_values({metric}, {name})", "refId": "PrometheusVariableQueryEditor-VariableQuery"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))
