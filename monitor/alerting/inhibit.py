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
from typing import Any

from model.alert import Alert
from model.labels import Labels
from model.matchers import Matcher, matches_all

__all__ = ["InhibitRule", "Inhibitor", "InhibitIndex"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One inhibition rule (``inhibit.InhibitRule``)."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibiting(self, labels: Labels, sources: Iterable[Alert], now: float) -> str | None:
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

    >>> from model.matchers import parse_matchers
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

    def index(self, sources: Iterable[Alert], now: float) -> "InhibitIndex":
        """Index the firing sources once, for many :meth:`InhibitIndex.mutes` calls at ``now``."""
        return InhibitIndex(self.rules, sources, now)

    def mutes(self, labels: Labels, sources: Iterable[Alert], now: float) -> list[str]:
        """Return the fingerprints of the alerts inhibiting ``labels`` (first per rule; empty: not muted)."""
        return self.index(sources, now).mutes(labels)


class InhibitIndex:
    """The firing source alerts of each rule, bucketed by their values of the rule's ``equal``
    labels, so checking a target costs one lookup per rule instead of a scan of every alert
    (1,000 alerts: ~1 s -> ~ms per flush). Same semantics as :meth:`InhibitRule.inhibiting`.
    """

    def __init__(self, rules: Iterable[InhibitRule], sources: Iterable[Alert], now: float) -> None:
        src = [a for a in sources if not a.resolved(now)]
        self._buckets: list[tuple[InhibitRule, dict[tuple[str, ...], list[Alert]]]] = []
        for rule in rules:
            buckets: dict[tuple[str, ...], list[Alert]] = {}
            for a in src:
                if matches_all(rule.source_matchers, a.labels):
                    buckets.setdefault(tuple(a.labels.get(n) for n in rule.equal), []).append(a)
            self._buckets.append((rule, buckets))

    def mutes(self, labels: Labels) -> list[str]:
        """Return the fingerprints of the alerts inhibiting ``labels`` (first per rule)."""
        out: list[str] = []
        for rule, buckets in self._buckets:
            if not matches_all(rule.target_matchers, labels):
                continue
            two_sided = matches_all(rule.source_matchers, labels)
            for a in buckets.get(tuple(labels.get(n) for n in rule.equal), ()):
                if two_sided and matches_all(rule.target_matchers, a.labels):
                    continue
                if a.fingerprint not in out:
                    out.append(a.fingerprint)
                break
        return out
