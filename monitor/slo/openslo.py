"""OpenSLO v1 ``SLO`` documents -> our SLO shape.

Spec: OpenSLO v1 (``apiVersion: openslo/v1``, ``kind: SLO``): ``metadata.name`` / ``labels``,
``spec.service``, ``spec.description``, ``spec.indicator`` (inline ``SLI``) or
``spec.indicatorRef`` (an ``SLI`` document of the same file), ``spec.timeWindow[0]``
(``duration`` ``30d``/``28d``/``4w``/``7d``/``1w`` rolling, or ``1M`` with ``isRolling: false``
for a calendar month), ``spec.budgetingMethod`` and ``spec.objectives[0]`` (``target`` 0..1 or
``targetPercent``; ``op`` and ``value`` for threshold metrics). Only ``metricSource.type:
Prometheus`` queries are understood (``spec.query``).

- ``Occurrences`` with ``ratioMetric`` -> a ``ratio`` SLI. ``good`` or ``bad`` with ``total``;
  a query with a ``{{.window}}`` placeholder is used as is, otherwise a ``counter: true`` metric is
  wrapped as ``sum(rate(<query>[{{.window}}]))``.
- ``Timeslices`` (or ``RatioTimeslices``) with ``thresholdMetric`` -> a time-slice SLI: a slice is
  good when ``<query> <op> <value>`` (``lt lte gt gte``), evaluated at each evaluation step.
- Other SLO kinds in the same stream (``Service``, ``AlertPolicy``...) are skipped; ``SLI``
  documents serve ``indicatorRef``.
"""

from __future__ import annotations

from typing import Any

from monitor.slo.convert import Converted, Loc, Problems
from monitor.slo.model import WINDOW_PLACEHOLDER

__all__ = ["is_openslo", "convert_openslo"]

API_VERSION = "openslo/v1"
_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_ROLLING = {"30d": "30d", "28d": "28d", "4w": "28d", "7d": "7d", "1w": "7d"}


def is_openslo(doc: Any) -> bool:
    """Return whether ``doc`` is an OpenSLO v1 document (any kind)."""
    return isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION


def _query(source: Any, at: Loc, problems: Problems) -> str | None:
    """Return the Prometheus query of a ``{metricSource: {type, spec: {query}}}`` mapping."""
    ms = source.get("metricSource") if isinstance(source, dict) else None
    if not isinstance(ms, dict):
        problems.append((at + ("metricSource",), "field required"))
        return None
    if str(ms.get("type", "")).lower() != "prometheus":
        problems.append((at + ("metricSource", "type"),
                         f'only metricSource.type Prometheus is supported, got "{ms.get("type")}"'))
        return None
    q = (ms.get("spec") or {}).get("query") if isinstance(ms.get("spec"), dict) else None
    if not isinstance(q, str) or not q.strip():
        problems.append((at + ("metricSource", "spec", "query"), "field required"))
        return None
    return q.strip()


def _rate(query: str, counter: bool, at: Loc, problems: Problems) -> str | None:
    if WINDOW_PLACEHOLDER.search(query):
        return query
    if not counter:
        problems.append((at, "a non-counter ratioMetric needs a {{.window}} placeholder in its query"))
        return None
    return f"sum(rate({query}[{{{{.window}}}}]))"


def _ratio(metric: dict[str, Any], at: Loc, problems: Problems) -> dict[str, Any] | None:
    counter = bool(metric.get("counter", False))
    total = _query(metric.get("total"), at + ("total",), problems)
    kind = "bad" if "bad" in metric else "good"
    part = _query(metric.get(kind), at + (kind,), problems)
    if total is None or part is None:
        return None
    total_q = _rate(total, counter, at + ("total",), problems)
    part_q = _rate(part, counter, at + (kind,), problems)
    if total_q is None or part_q is None:
        return None
    error_q = part_q if kind == "bad" else f"({total_q}) - ({part_q})"
    return {"ratio": {"error_query": error_q, "total_query": total_q}}


def convert_openslo(docs: list[tuple[int, Any]], problems: Problems) -> list[Converted]:
    """Convert the ``SLO`` documents among ``docs`` (``(document index, mapping)`` pairs).

    :param problems: receives ``(source loc, message)``; a loc starts with the document index.
    :return: one :class:`~monitor.slo.convert.Converted` per ``SLO`` document.
    """
    indicators = {d.get("metadata", {}).get("name"): (i, d) for i, d in docs
                  if isinstance(d, dict) and d.get("kind") == "SLI" and isinstance(d.get("metadata"), dict)}
    out: list[Converted] = []
    for i, doc in docs:
        if not is_openslo(doc) or doc.get("kind") != "SLO":
            continue
        at: Loc = (i,)
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            problems.append((at + ("spec",), "field required"))
            continue
        sat = at + ("spec",)
        # indicator: inline, or an SLI document of this file.
        ind, ind_at = spec.get("indicator"), sat + ("indicator",)
        if ind is None and "indicatorRef" in spec:
            ref = indicators.get(spec["indicatorRef"])
            if ref is None:
                problems.append((sat + ("indicatorRef",),
                                 f'no SLI document named "{spec["indicatorRef"]}" in this file'))
                continue
            ind, ind_at = ref[1], (ref[0],)
        ind_spec = ind.get("spec") if isinstance(ind, dict) else None
        if not isinstance(ind_spec, dict):
            problems.append((ind_at, "an indicator with a spec (ratioMetric or thresholdMetric) is required"))
            continue
        objectives = spec.get("objectives")
        if not isinstance(objectives, list) or not objectives or not isinstance(objectives[0], dict):
            problems.append((sat + ("objectives",), "at least one objective is required"))
            continue
        if len(objectives) > 1:
            problems.append((sat + ("objectives", 1), "only one objective per SLO is supported"))
        obj = objectives[0]
        oat = sat + ("objectives", 0)
        target = obj.get("targetPercent")
        if target is None and isinstance(obj.get("target"), (int, float)):
            target = round(float(obj["target"]) * 100, 10)
        method = spec.get("budgetingMethod", "Occurrences")
        sli: dict[str, Any] | None = None
        if "ratioMetric" in ind_spec:
            if method != "Occurrences":
                problems.append((sat + ("budgetingMethod",),
                                 f'ratioMetric is supported with budgetingMethod Occurrences, got "{method}"'))
                continue
            sli = _ratio(ind_spec["ratioMetric"] or {}, ind_at + ("spec", "ratioMetric"), problems)
        elif "thresholdMetric" in ind_spec:
            if method not in ("Timeslices", "RatioTimeslices"):
                problems.append((sat + ("budgetingMethod",),
                                 f'thresholdMetric is supported with budgetingMethod Timeslices, got "{method}"'))
                continue
            q = _query(ind_spec["thresholdMetric"], ind_at + ("spec", "thresholdMetric"), problems)
            op = _OPS.get(obj.get("op", ""))
            if op is None or not isinstance(obj.get("value"), (int, float)):
                problems.append((oat, "a thresholdMetric objective needs op (lt, lte, gt, gte) and a numeric value"))
                continue
            if q is not None:
                sli = {"probe": {"query": f"({q}) {op} bool {obj['value']}"}}
        else:
            problems.append((ind_at + ("spec",), "ratioMetric or thresholdMetric is required"))
            continue
        if sli is None:
            continue
        period: Any = "30d"
        windows = spec.get("timeWindow")
        if isinstance(windows, list) and windows and isinstance(windows[0], dict):
            w = windows[0]
            rolling = w.get("isRolling", True)
            dur = str(w.get("duration", ""))
            period = _ROLLING.get(dur) if rolling else ("calendar_month" if dur == "1M" else None)
            if period is None:
                problems.append((sat + ("timeWindow", 0), "supported windows: rolling 30d, 28d (4w), 7d (1w), "
                                 f'or 1M calendar (isRolling: false); got "{dur}"'))
                continue
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if isinstance(v, str)}
        data = {"service": spec.get("service"), "name": meta.get("name"), "objective": target,
                "period": period, "description": spec.get("description") or "", "labels": labels, "sli": sli}
        trans: dict[Loc, Loc] = {("service",): sat + ("service",), ("name",): at + ("metadata", "name"),
                                 ("objective",): oat, ("labels",): at + ("metadata", "labels"),
                                 ("sli",): ind_at}
        out.append(Converted(data, at, trans))
    return out
