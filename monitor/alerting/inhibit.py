"""Inhibition: a firing source alert mutes matching target alerts.

Semantics of Alertmanager ``inhibit/inhibit.go``:

- A rule applies to a target label set when its target matchers match it.
- It is inhibited when some *firing* (not resolved) alert matches the source matchers and has
  the same value as the target for every label in ``equal`` — a label absent on both sides
  counts as equal (``""`` == ``""``).
- When the target also matches the source matchers, sources that also match the target
  matchers are not considered, so an alert never inhibits itself (``hasEqual`` with
  ``excludeTwoSidedMatch``).

Shipped example: a firing ``severity="critical"`` mutes the ``severity="warning"`` alert with the
same ``alertname`` family and ``service``; ``alertname="DatabaseDown"`` mutes alerts with
``depends_on="database"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.alerting.alert import Alert
from monitor.alerting.matchers import matches_all
from monitor.tsdb.series import Labels, Matcher

__all__ = ["InhibitRule", "Inhibitor"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One inhibition rule (``inhibit.InhibitRule``)."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibiting(self, labels: Labels, sources: Iterable[Alert], now: datetime | float) -> str | None:
        """Return the fingerprint of a source alert inhibiting ``labels`` under this rule, or ``None``."""
        if not matches_all(self.target_matchers, labels):
            return None
        two_sided = matches_all(self.source_matchers, labels)
        for a in sources:
            if a.resolved(now) or not matches_all(self.source_matchers, a.labels):
                continue
            if any(a.labels.get(n) != labels.get(n) for n in self.equal):
                continue
            if two_sided and matches_all(self.target_matchers, a.labels):
                continue
            return a.fingerprint
        return None


class Inhibitor:
    """Evaluate inhibition rules against a set of source alerts.

    Pure: the caller passes the current alerts (the dispatcher passes every alert it holds).

    >>> from monitor.alerting.matchers import parse_matchers
    >>> rule = InhibitRule(tuple(parse_matchers('severity="critical"')),
    ...                    tuple(parse_matchers('severity="warning"')), ("service",))
    >>> crit = Alert.firing({"alertname": "A", "severity": "critical", "service": "api"}, starts_at=0)
    >>> warn = Labels.of({"alertname": "B", "severity": "warning", "service": "api"})
    >>> Inhibitor([rule]).mutes(warn, [crit], 60) == [crit.fingerprint]
    True
    """

    def __init__(self, rules: Iterable[InhibitRule]) -> None:
        self.rules = list(rules)

    @classmethod
    def from_config(cls, inhibit_rules: Iterable[Any]) -> "Inhibitor":
        """Build from ``AlertingConfig.inhibit_rules``."""
        return cls(InhibitRule(tuple(r.parsed_source()), tuple(r.parsed_target()), tuple(r.equal))
                   for r in inhibit_rules)

    def mutes(self, labels: Labels, sources: Iterable[Alert], now: datetime | float) -> list[str]:
        """Return the fingerprints of the alerts inhibiting ``labels`` (first per rule; empty: not muted)."""
        src = list(sources)
        out: list[str] = []
        for rule in self.rules:
            fp = rule.inhibiting(labels, src, now)
            if fp is not None and fp not in out:
                out.append(fp)
        return out
