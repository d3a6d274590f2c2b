"""Sloth ``prometheus/v1`` specs -> our SLO shape.

Spec: Sloth ``pkg/prometheus/api/v1`` (``version: prometheus/v1``, ``service``, ``labels``,
``slos[]`` with ``name``, ``objective``, ``description``, ``labels``, ``sli.events.error_query`` /
``total_query``, ``alerting.name|labels|annotations``, ``alerting.page_alert`` /
``ticket_alert`` with ``disable``, ``labels``, ``annotations``). Sloth's ``sli.raw`` (an error
ratio without event counts) and ``sli.plugin`` have no event counts for the traffic-weighted
period SLI and the minimum-events guard: they are rejected with a message saying so.

The page alert maps to our page tiers (``severity: critical``), the ticket alert to the ticket
tiers (``warning``). A ``severity`` label in ``page_alert.labels`` or ``ticket_alert.labels``
replaces the tiers' severity when it is one of ``critical``, ``warning``, ``info``; other values
(Sloth's examples use ``pageteam``) are kept as a ``sloth_severity_label`` label, since our
escalation reads ``severity``.
"""

from __future__ import annotations

from typing import Any

from monitor.slo.convert import Converted, Loc, Problems
from monitor.slo.model import default_tiers

__all__ = ["is_sloth", "convert_sloth"]

VERSION = "prometheus/v1"


def is_sloth(doc: Any) -> bool:
    """Return whether the YAML document ``doc`` is a Sloth ``prometheus/v1`` spec."""
    return isinstance(doc, dict) and doc.get("version") == VERSION


def _tier_overrides(alert: Any, where: Loc, problems: Problems) -> tuple[bool, dict[str, str], dict[str, str]]:
    """Return ``(disabled, labels, annotations)`` of a ``page_alert``/``ticket_alert`` mapping."""
    if alert is None:
        return False, {}, {}
    if not isinstance(alert, dict):
        problems.append((where, "expected a mapping"))
        return False, {}, {}
    unknown = sorted(set(alert) - {"disable", "labels", "annotations"})
    for k in unknown:
        problems.append((where, f'unknown key "{k}"'))
    return bool(alert.get("disable", False)), dict(alert.get("labels") or {}), dict(alert.get("annotations") or {})


def convert_sloth(doc: dict[str, Any], problems: Problems) -> list[Converted]:
    """Convert one Sloth spec document into SLO mappings (validated later by the caller).

    :param doc: the parsed YAML mapping (``version: prometheus/v1``).
    :param problems: receives ``(source loc, message)`` for structural errors.
    :return: one :class:`~monitor.slo.convert.Converted` per entry of ``slos``.
    """
    for k in sorted(set(doc) - {"version", "service", "labels", "slos"}):
        problems.append(((k,), f'unknown key "{k}"'))
    service = doc.get("service")
    if not isinstance(service, str) or not service:
        problems.append((("service",), "field required"))
        return []
    slos = doc.get("slos")
    if not isinstance(slos, list) or not slos:
        problems.append((("slos",), "at least one SLO is required"))
        return []
    common = dict(doc.get("labels") or {})
    out: list[Converted] = []
    for i, item in enumerate(slos):
        at: Loc = ("slos", i)
        if not isinstance(item, dict):
            problems.append((at, "expected a mapping"))
            continue
        for k in sorted(set(item) - {"name", "objective", "description", "labels", "sli", "alerting"}):
            problems.append((at + (k,), f'unknown key "{k}"'))
        sli = item.get("sli") or {}
        if not isinstance(sli, dict):
            problems.append((at + ("sli",), "expected a mapping"))
            continue
        if "raw" in sli or "plugin" in sli:
            kind = "raw" if "raw" in sli else "plugin"
            problems.append((at + ("sli", kind), f"sli.{kind} is not supported: give sli.events "
                             "(error_query and total_query), whose event counts the period SLI and the "
                             "minimum-events guard need"))
            continue
        for k in sorted(set(sli) - {"events", "raw", "plugin"}):
            problems.append((at + ("sli", k), f'unknown key "{k}"'))
        events = sli.get("events")
        if not isinstance(events, dict):
            problems.append((at + ("sli",), "sli.events (error_query and total_query) is required"))
            continue
        alerting = item.get("alerting") or {}
        if not isinstance(alerting, dict):
            problems.append((at + ("alerting",), "expected a mapping"))
            alerting = {}
        page_off, page_labels, page_ann = _tier_overrides(alerting.get("page_alert"), at + ("alerting", "page_alert"),
                                                          problems)
        ticket_off, ticket_labels, ticket_ann = _tier_overrides(alerting.get("ticket_alert"),
                                                                at + ("alerting", "ticket_alert"), problems)
        tiers = []
        for tier in default_tiers():
            page = tier.severity == "critical"
            if (page and page_off) or (not page and ticket_off):
                continue
            labels = dict(page_labels if page else ticket_labels)
            sev = labels.pop("severity", None)
            entry: dict[str, Any] = {"name": tier.name, "long": tier.long, "short": tier.short,
                                     "budget_fraction": tier.budget_fraction, "severity": tier.severity}
            if sev in ("critical", "warning", "info"):
                entry["severity"] = sev
            elif sev is not None:
                labels["sloth_severity_label"] = sev
            entry["labels"] = labels
            tiers.append(entry)
        annotations = dict(alerting.get("annotations") or {})
        # Sloth keeps page and ticket annotations apart; ours are per SLO: the page's win.
        annotations.update(ticket_ann)
        annotations.update(page_ann)
        policy: dict[str, Any] = {"labels": dict(alerting.get("labels") or {}), "annotations": annotations}
        if alerting.get("name"):
            policy["name"] = alerting["name"]
        if tiers:
            policy["tiers"] = tiers
        else:
            policy["disable"] = True
        data: dict[str, Any] = {
            "service": service, "name": item.get("name"), "objective": item.get("objective"),
            "description": item.get("description") or "",
            "labels": {**common, **dict(item.get("labels") or {})},
            "sli": {"ratio": dict(events)},
            "alerting": policy,
        }
        trans: dict[Loc, Loc] = {
            ("service",): ("service",), ("name",): at + ("name",), ("objective",): at + ("objective",),
            ("labels",): at + ("labels",), ("sli",): at + ("sli",), ("sli", "ratio"): at + ("sli", "events"),
            ("alerting",): at + ("alerting",),
        }
        for key in ("error_query", "total_query"):
            trans[("sli", "ratio", key)] = at + ("sli", "events", key)
        out.append(Converted(data, at, trans))
    return out
