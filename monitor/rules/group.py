"""One rule group's evaluation: rules in order, per-rule health, results written to the store.

Follows Prometheus ``rules/group.go`` (``Group.Eval``, ``EvalTimestamp``, stale-series handling):

* rules run in file order at one timestamp; a recording rule's samples are appended before the
  next rule runs, so later rules in the same round see them;
* one failing rule never stops the others — it gets ``health = "err"`` and ``last_error``, and
  the failure is counted and logged;
* alerting rules write ``ALERTS`` / ``ALERTS_FOR_STATE``; series a rule wrote at the previous
  evaluation but not at this one get a staleness marker, so they vanish at once;
* scheduled evaluations are aligned to slots of the interval offset by a hash of the group
  (``EvalTimestamp``), so restarts keep the same phase.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.errors import RuleError
from monitor.promql.value import Sample, Scalar, Vector
from monitor.rules.alerting import Alert, AlertingRule, AlertState
from model.timestamps import ZERO_TIME, rfc3339
from monitor.rules.recording import RecordingRule
from monitor.tsdb.series import STALE_NAN
from model.labels import Labels

__all__ = ["RuleGroup", "RuleStatus", "engine_query_fn", "Rule", "HEALTH_OK", "HEALTH_ERR", "HEALTH_UNKNOWN",
           "RESEND_DELAY"]

Rule = AlertingRule | RecordingRule
HEALTH_OK, HEALTH_ERR, HEALTH_UNKNOWN = "ok", "err", "unknown"
log = logging.getLogger("monitor.rules")
#: Seconds: the least re-send period a firing alert's validity is computed from (Prometheus
#: ``--rules.alert.resend-delay``, default 1m; ``rules.resend_delay``).
RESEND_DELAY = 60.0


def engine_query_fn(engine: Any) -> Callable[[Any, int], Vector]:
    """Wrap ``engine.instant_query`` as a rule query function (Prometheus ``EngineQueryFunc``).

    A scalar result becomes a one-sample vector with no labels; any other type is an error.
    """

    def query(expr: Any, t_ms: int) -> Vector:
        res = engine.instant_query(expr, t_ms)
        if isinstance(res, Vector):
            return res
        if isinstance(res, Scalar):
            return Vector([Sample(Labels(), res.t, res.v)])
        raise RuleError("rule result is not a vector or scalar")

    return query


@dataclass
class RuleStatus:
    """Per-rule evaluation status (times in seconds since the epoch / seconds)."""

    health: str = HEALTH_UNKNOWN
    last_error: str = ""
    last_evaluation: float | None = None
    evaluation_time: float = 0.0


def _metric_names(parsed: Any) -> set[str] | None:
    from monitor.promql.nodes import selected_metric_names

    try:
        return selected_metric_names(parsed)
    except Exception:  # noqa: BLE001
        return None


class RuleGroup:
    """A named, ordered list of rules evaluated together.

    :param name: the group name.
    :param file: the rule file it came from.
    :param interval: evaluation interval, seconds.
    :param rules: the rules in file order.
    :param store: the sample store results are appended to (``append_batch``).
    :param query: ``query(expr, t_ms) -> Vector`` (see :func:`engine_query_fn`).
    :param external_labels: for templates (``$externalLabels``).
    :param limit: the group's ``limit`` (0 = none), applied per rule.
    :param query_offset: seconds to shift queries back (``query_offset``).
    """

    def __init__(self, name: str, file: str, interval: float, rules: Sequence[Rule], *, store: Any,
                 query: Callable[[Any, int], Vector], external_labels: Mapping[str, str] | None = None,
                 limit: int = 0, query_offset: float = 0.0, logger: logging.Logger | None = None,
                 resend_delay: float = RESEND_DELAY) -> None:
        self.name = name
        self.file = file
        self.interval = float(interval)
        self.rules: list[Rule] = list(rules)
        self.store = store
        self.query = query
        self.external_labels = dict(external_labels or {})
        self.limit = limit
        self.query_offset = float(query_offset)
        self.resend_delay = float(resend_delay)
        self.log = logger or log
        self.status: list[RuleStatus] = [RuleStatus() for _ in self.rules]
        self.last_evaluation: float | None = None
        self.evaluation_time = 0.0
        self.evaluations_total = 0
        #: Evaluations the rule manager started, by what started them: ``slot`` (the interval, and
        #: the first at start), ``for`` (a pending alert's ``for`` elapsed), ``change`` (new samples
        #: that changed a value), ``data`` (new samples repeating their series' previous values).
        self.evaluations_by_trigger: dict[str, int] = {}
        self.failures_total = 0
        self._written: list[set[Labels]] = [set() for _ in self.rules]
        self._names: set[str] | None | bool = False  # computed on first use
        for r in self.rules:
            r.limit = limit

    @property
    def key(self) -> tuple[str, str]:
        """``(file, name)`` — unique across the manager."""
        return (self.file, self.name)

    def metric_names(self) -> set[str] | None:
        """Metric names the group's expressions read; ``None`` when that cannot be known (wake on all)."""
        if self._names is False:
            names: set[str] = set()
            for r in self.rules:
                got = _metric_names(r.parsed if r.parsed is not None else r.expr)
                if got is None:
                    self._names = None
                    break
                names |= got
            else:
                self._names = names
        return self._names  # type: ignore[return-value]

    def eval_timestamp(self, now: float) -> float:
        """Return the most recent slot at or before ``now`` (Prometheus ``Group.EvalTimestamp``), seconds."""
        iv = self.interval
        h = int.from_bytes(hashlib.blake2b(f"{self.file};{self.name}".encode(), digest_size=8).digest(), "big")
        offset = (h % int(iv * 1000)) / 1000.0 if iv > 0 else 0.0
        adj = now - offset
        return adj - math.fmod(adj, iv) + offset if iv > 0 else now

    def eval(self, now: float, query: Callable[[Any, int], Vector] | None = None) -> list[Alert]:
        """Evaluate every rule at ``now`` (seconds); write results; return alerts to hand on.

        :param query: this evaluation's query function instead of the group's own (a remote
            datasource's, :meth:`monitor.remote.datasource.RemoteDatasource.query_fn`).

        :return: the alerts that are firing or newly resolved (``resolved_at`` after
            ``last_sent_at``); their ``last_sent_at`` is set to ``now``, and a firing one's
            ``valid_until`` to ``now + 4 * max(interval, resend_delay)`` (:meth:`valid_until`).
        """
        start = time.perf_counter()
        t_ms = int(round(now * 1000))
        base = self.query if query is None else query
        query = base
        if self.query_offset:
            off_ms = int(round(self.query_offset * 1000))
            query = lambda expr, t: base(expr, t - off_ms)  # noqa: E731
        for i, rule in enumerate(self.rules):
            st = self.status[i]
            r0 = time.perf_counter()
            try:
                if isinstance(rule, AlertingRule):
                    try:
                        rule.eval(now, query, self.external_labels)
                    finally:
                        self._log_severity_notices(rule)
                    samples = rule.samples
                else:
                    samples = rule.eval(now, query)
                self._write(i, samples, t_ms)
                st.health, st.last_error = HEALTH_OK, ""
            except Exception as e:  # noqa: BLE001 - a failing rule must never stop the others
                st.health, st.last_error = HEALTH_ERR, str(e)
                self.failures_total += 1
                self.log.warning("rule evaluation failed", extra={
                    "group": self.name, "file": self.file, "rule": rule.name, "error": str(e)})
            st.last_evaluation = now
            st.evaluation_time = time.perf_counter() - r0
        self.last_evaluation = now
        self.evaluation_time = time.perf_counter() - start
        self.evaluations_total += 1
        return self._to_send(now)

    def _log_severity_notices(self, rule: AlertingRule) -> None:
        """Log each expanded severity outside the policy once per rule (counted every time by the rule)."""
        for value in rule.severity_notices:
            self.log.warning("alert severity template expanded outside the severity policy: paging as critical",
                             extra={"group": self.name, "file": self.file, "rule": rule.name,
                                    "severity": value[:100]})
        rule.severity_notices.clear()

    def _write(self, i: int, samples: list[tuple[Labels, float]], t_ms: int) -> None:
        current = {lbl for lbl, _ in samples}
        batch = [(lbl, t_ms, v) for lbl, v in samples]
        batch += [(lbl, t_ms, STALE_NAN) for lbl in self._written[i] - current]
        self._written[i] = current
        if batch:
            self.store.append_batch(batch)

    def valid_until(self, now: float) -> float:
        """Return until when a firing alert sent at ``now`` stays firing unless sent again (Unix
        seconds): ``now + 4 * max(interval, resend_delay)``, as Prometheus ``rules/alerting.go``
        ``sendAlerts`` sets ``ValidUntil`` (sent as ``EndsAt``; four intervals allow two missed
        evaluations or failed sends). The alert pipeline resolves an alert whose ``EndsAt`` passed
        without a refresh, as Alertmanager does."""
        return now + 4 * max(self.interval, self.resend_delay)

    def _to_send(self, now: float) -> list[Alert]:
        out = []
        until = self.valid_until(now)
        for r in self.rules:
            if not isinstance(r, AlertingRule):
                continue
            for a in r.alerts():
                if a.state == AlertState.FIRING or (
                        a.state == AlertState.INACTIVE and a.resolved_at is not None
                        and (a.last_sent_at is None or a.resolved_at > a.last_sent_at)):
                    a.last_sent_at = now
                    a.valid_until = until if a.state == AlertState.FIRING else None
                    out.append(a)
        return out

    def alerting_rules(self) -> list[AlertingRule]:
        """Return the group's alerting rules in file order (recording rules left out)."""
        return [r for r in self.rules if isinstance(r, AlertingRule)]

    def copy_state(self, old: RuleGroup) -> None:
        """Take over alert state and written-series sets from the group this one replaces.

        Rules match by (kind, name, labels) — Prometheus ``Group.CopyState``; when several rules
        share that identity they are matched in order.
        """
        pool: dict[Any, list[int]] = {}
        for j, r in enumerate(old.rules):
            pool.setdefault(r.identity(), []).append(j)
        for i, r in enumerate(self.rules):
            cand = pool.get(r.identity())
            if not cand:
                continue
            j = cand.pop(0)
            o = old.rules[j]
            if isinstance(r, AlertingRule) and isinstance(o, AlertingRule):
                r.copy_state(o)
            self._written[i] = set(old._written[j])
            self.status[i] = RuleStatus(**vars(old.status[j]))
        self.last_evaluation = old.last_evaluation
        self.evaluation_time = old.evaluation_time

    def health(self) -> str:
        """``err`` if any rule failed at the last evaluation, else ``ok`` (``unknown`` before the first)."""
        if any(s.health == HEALTH_ERR for s in self.status):
            return HEALTH_ERR
        return HEALTH_OK if self.last_evaluation is not None else HEALTH_UNKNOWN

    def to_api(self) -> dict[str, Any]:
        """Prometheus ``/api/v1/rules`` group shape.

        ``{"name", "file", "interval": seconds, "limit", "rules": [{"type": "alerting"|"recording",
        "name", "query", "labels", "health", "lastError", "lastEvaluation": RFC3339,
        "evaluationTime": seconds, ...alerting: "duration", "keepFiringFor", "annotations",
        "state", "alerts": [...]}], "lastEvaluation", "evaluationTime"}``
        """
        rules = []
        for r, st in zip(self.rules, self.status):
            d = r.to_api()
            d.update(health=st.health, lastError=st.last_error,
                     lastEvaluation=rfc3339(st.last_evaluation) if st.last_evaluation is not None else ZERO_TIME,
                     evaluationTime=st.evaluation_time)
            rules.append(d)
        last = rfc3339(self.last_evaluation) if self.last_evaluation is not None else ZERO_TIME
        return {"name": self.name, "file": self.file, "interval": self.interval, "limit": self.limit,
                "rules": rules, "lastEvaluation": last, "evaluationTime": self.evaluation_time}
