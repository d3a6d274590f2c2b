"""Warn when the same alerting rule reaches the pipeline from two sources.

A Prometheus that evaluates the daemon's rule files and sends its alerts to the intake, while
the daemon evaluates the same rules, pages twice: the two copies differ in labels (the scrape's
``job``/``instance``, Prometheus's external labels) and so in fingerprint. The intake calls
:meth:`DuplicateRules.check` with every alert it takes: an alert whose ``alertname`` is one of the
daemon's own alerting rules and whose labels include that rule's static labels is logged once
per rule every :data:`WARN_EVERY` seconds (WARNING ``alert arrives from two sources``, with the
rule, the intake source and the labels only one copy has) and counted in :attr:`seen`. The fix
is to pick one evaluator: ``codebook-monitor export prometheus --evaluator daemon|prometheus``
(README, "Deploying beside Prometheus…").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from model.alert import Alert

__all__ = ["DuplicateRules", "WARN_EVERY"]

log = logging.getLogger("monitor.api")

#: Seconds between two warnings about the same rule.
WARN_EVERY = 600.0


class DuplicateRules:
    """Finds intake alerts that the daemon's own rules also raise.

    :param rules: returns ``/api/v1/rules`` data (``{"groups": [{"rules": [...]}]}``) of the
        daemon's rule manager.
    """

    def __init__(self, rules: Callable[[], Mapping[str, Any]]) -> None:
        self._rules = rules
        self._last_warned: dict[str, float] = {}
        #: How many intake alerts matched one of the daemon's rules, by rule name.
        self.seen: dict[str, int] = {}

    def _own(self) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        for group in self._rules().get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("type") == "alerting":
                    out.setdefault(rule["name"], []).append(dict(rule.get("labels") or {}))
        return out

    def check(self, alerts: Iterable[Alert], source: str, now: float) -> list[str]:
        """Log and count the alerts of ``source`` that match a rule the daemon evaluates.

        :return: the names of the matched rules (each once).
        """
        own: dict[str, list[dict[str, str]]] | None = None
        matched: dict[str, Alert] = {}
        for a in alerts:
            name = a.labels.get("alertname")
            if not name:
                continue
            if own is None:
                own = self._own()
                if not own:
                    return []
            for static in own.get(name, ()):
                if all(a.labels.get(k) == v for k, v in static.items()):
                    matched.setdefault(name, a)
                    self.seen[name] = self.seen.get(name, 0) + 1
                    break
        for name, a in matched.items():
            if now - self._last_warned.get(name, float("-inf")) >= WARN_EVERY:
                self._last_warned[name] = now
                log.warning("alert arrives from two sources: the daemon evaluates this rule and the intake "
                            "received it too; it will page twice (pick one evaluator: codebook-monitor export "
                            "prometheus --evaluator, or api.intake_drop_labels)",
                            extra={"rule": name, "source": source, "labels": a.labels.as_dict()})
        return list(matched)
