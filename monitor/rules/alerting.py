"""Alerting rules: the pure inactive -> pending -> firing -> resolved state machine.

Semantics of Prometheus ``rules/alerting.go`` (``AlertingRule.Eval``), with times as float
**seconds** since the epoch passed in by the caller — nothing here reads a clock:

* a label set returned by the expression for the first time becomes a **pending** alert with
  ``active_at = now``; while it keeps being returned its ``active_at`` is kept and its value and
  annotations are refreshed;
* once ``now - active_at >= for`` it is **firing** (``fired_at = now``); ``for: 0`` fires at once;
* if it disappears while pending it is dropped; while firing it is **resolved**
  (``state = inactive``, ``resolved_at = now``) and kept for ``resolved_retention`` seconds
  (15 min) so the resolution can be sent — unless ``keep_firing_for`` keeps it firing for that
  long after the condition cleared;
* labels (with templates rendered per series) plus ``alertname`` identify an alert; two series
  that end up with the same label set are an evaluation error;
* after a restart, :meth:`AlertingRule.restore` puts the persisted alerts back at once, with
  Prometheus's ``RestoreForState`` adjustment of ``active_at`` (see :func:`restored_active_at`);
  they are *held* — neither resolved nor dropped when the expression does not return them —
  until the caller releases them (:meth:`AlertingRule.release`), i.e. until the new process has
  data for their inputs (the rule manager decides; see :mod:`monitor.rules.manager`).

Each evaluation also yields the ``ALERTS{alertname, alertstate, ...} 1`` and
``ALERTS_FOR_STATE{alertname, ...} <active_at seconds>`` samples for the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from monitor.errors import RuleError
from monitor.promql.value import Sample, Vector
from monitor.rules.templates import TemplateSample, expand
from model.labels import METRIC_NAME, Labels
from model.timestamps import rfc3339

__all__ = ["AlertState", "Alert", "AlertingRule", "QueryFn", "ALERTS_METRIC", "ALERTS_FOR_STATE_METRIC",
           "DEFAULT_RESOLVED_RETENTION", "DEFAULT_OUTAGE_TOLERANCE", "DEFAULT_FOR_GRACE_PERIOD",
           "restored_active_at"]

#: ``query(expr, t_ms) -> Vector``: evaluates an instant query; raises on failure.
QueryFn = Callable[[Any, int], Vector]

ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
#: How long a resolved alert is kept (Prometheus ``resolvedRetention``), seconds.
DEFAULT_RESOLVED_RETENTION = 15 * 60.0
#: State older than this at restart is not restored (Prometheus ``--rules.alert.for-outage-tolerance``).
DEFAULT_OUTAGE_TOLERANCE = 3600.0
#: Least ``for`` left after a restart for rules whose ``for`` is longer (``--rules.alert.for-grace-period``).
DEFAULT_FOR_GRACE_PERIOD = 600.0


def restored_active_at(active_at: float, down_at: float, now: float, for_seconds: float,
                       for_grace_period: float = DEFAULT_FOR_GRACE_PERIOD) -> float:
    """Return a pending alert's ``active_at`` after a restart (Prometheus ``Group.RestoreForState``).

    :param active_at: the persisted ``active_at``.
    :param down_at: the last evaluation before the outage at which the alert was active.
    :param now: the restart (restore) time.
    :param for_seconds: the rule's ``for``.
    :param for_grace_period: the ``for`` grace period.

    The time the alert spent pending before the outage counts; the outage does not:

    * ``for`` already elapsed at ``down_at`` (it was about to fire): unchanged, it fires at the
      first evaluation that returns it;
    * ``for`` longer than the grace period and less than the grace period left: moved so exactly
      the grace period is left (``now + grace - for``);
    * otherwise shifted forward by the downtime (``active_at + (now - down_at)``).

    One deliberate difference: Prometheus does not restore rules whose ``for`` is not longer
    than the grace period (their timer restarts); here they are restored shifted by the
    downtime, because the README promises that a restart does not reset a ``for`` timer.

    >>> restored_active_at(100.0, 130.0, 150.0, 60.0)        # 30 s pending, 20 s down
    120.0
    >>> restored_active_at(0.0, 900.0, 920.0, 1200.0, 600.0)  # 300 s left < grace: grace left
    320.0
    """
    spent = down_at - active_at
    remaining = for_seconds - spent
    if remaining <= 0:
        return active_at
    if for_seconds > for_grace_period and remaining < for_grace_period:
        return now + for_grace_period - for_seconds
    return active_at + max(0.0, now - down_at)


class AlertState:
    """The states of an alert (Prometheus ``AlertState``); plain strings for JSON."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    ORDER = {INACTIVE: 0, PENDING: 1, FIRING: 2}


@dataclass
class Alert:
    """One alert of an alerting rule.

    :param labels: identity: the series' labels without ``__name__``, the rule's (rendered) labels
        and ``alertname``.
    :param annotations: rendered annotations.
    :param state: ``inactive`` (resolved), ``pending`` or ``firing``.
    :param active_at: when it became pending, seconds since the epoch.
    :param fired_at: when it started firing, or ``None``.
    :param resolved_at: when it was resolved, or ``None``.
    :param last_sent_at: when the manager last handed it on (set by the caller), or ``None``.
    :param valid_until: when a firing alert last handed on stays firing until unless handed on
        again (set by the group, ``RuleGroup.valid_until``; Prometheus ``ValidUntil``), or ``None``.
    :param keep_firing_since: when the condition cleared while ``keep_firing_for`` holds it firing.
    :param value: the expression's value at the last evaluation it was returned.
    """

    labels: Labels
    annotations: dict[str, str]
    state: str
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    valid_until: float | None = None
    keep_firing_since: float | None = None
    value: float = 0.0

    @property
    def fingerprint(self) -> str:
        """The label set's fingerprint (16 hex digits, stable across restarts)."""
        return self.labels.fingerprint()

    @property
    def name(self) -> str:
        """The alert name (``alertname`` label)."""
        return self.labels.get("alertname")

    def to_api(self) -> dict[str, Any]:
        """Prometheus ``/api/v1/alerts`` / ``/api/v1/rules`` alert shape.

        ``{"labels": {...}, "annotations": {...}, "state": "firing", "activeAt": "RFC3339",
        "value": "1e+00", "keepFiringSince": "RFC3339"?}``
        """
        d: dict[str, Any] = {"labels": self.labels.as_dict(), "annotations": dict(self.annotations),
                             "state": self.state, "activeAt": rfc3339(self.active_at),
                             "value": format_value(self.value)}
        if self.keep_firing_since is not None:
            d["keepFiringSince"] = rfc3339(self.keep_firing_since)
        return d


def format_value(v: float) -> str:
    """Format a value like Prometheus's API does for alerts (``strconv.FormatFloat(v, 'e', -1, 64)``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exp = Decimal(repr(v)).as_tuple()  # repr gives the shortest round-trip digits
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    x = len(digits) + int(exp) - 1 if v != 0 else 0
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"


class AlertingRule:
    """An alerting rule and its active alerts, keyed by fingerprint.

    :param name: the alert name.
    :param expr: the PromQL expression (text; passed to ``query`` as given or as ``parsed``).
    :param for_seconds: how long the condition must hold before firing.
    :param keep_firing_for_seconds: how long to keep firing after the condition cleared.
    :param labels: labels to add (templates allowed).
    :param annotations: annotation templates.
    :param parsed: the parsed expression to hand to ``query`` instead of the text, or ``None``.
    :param resolved_retention: seconds to keep resolved alerts (15 min).
    :param limit: the most pending/firing alerts allowed (0 = no limit).
    :param severities: the severity policy (``rulefmt.SEVERITIES``) to apply to a templated ``severity``
        label once expanded, or ``None`` for none. An alert whose expanded severity is outside it is
        kept — never dropped — with ``severity="critical"``, the most severe of the policy (a
        template that yields something else is a broken template, and a needless page costs less
        than a missed one); the expanded text goes to the annotation ``invalid_severity``, each
        occurrence is counted in :attr:`invalid_severity_total`, and each distinct value is queued
        once in :attr:`severity_notices` for the group to log.

    >>> rule = AlertingRule("Down", "up == 0", for_seconds=60, labels={"severity": "critical"})
    >>> q = lambda expr, t: Vector([Sample(Labels.of(__name__="up", job="api"), t, 0.0)])
    >>> [a.state for a in rule.eval(0.0, q)], [a.state for a in rule.eval(60.0, q)]
    (['pending'], ['firing'])
    """

    def __init__(self, name: str, expr: str, *, for_seconds: float = 0.0, keep_firing_for_seconds: float = 0.0,
                 labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
                 parsed: Any = None, resolved_retention: float = DEFAULT_RESOLVED_RETENTION,
                 limit: int = 0, external_url: str = "", severities: Collection[str] | None = None) -> None:
        self.name = name
        self.expr = expr
        self.parsed = parsed
        self.for_seconds = float(for_seconds)
        self.keep_firing_for_seconds = float(keep_firing_for_seconds)
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.resolved_retention = resolved_retention
        self.limit = limit
        self.external_url = external_url
        self.active: dict[str, Alert] = {}
        #: ALERTS / ALERTS_FOR_STATE samples of the last evaluation: ``[(labels, value), ...]``.
        self.samples: list[tuple[Labels, float]] = []
        #: Restored alerts not yet confirmed by an evaluation with data: fingerprint -> restore time.
        self.held: dict[str, float] = {}
        self._needed: dict[str, int] | None | bool = False
        sev = self.labels.get("severity", "")
        self.severities = frozenset(severities) if severities is not None and "{{" in sev else None
        #: Alerts (per evaluation) whose expanded ``severity`` was outside the policy.
        self.invalid_severity_total = 0
        #: Expanded severities outside the policy not logged yet (the group logs and clears them).
        self.severity_notices: list[str] = []
        self._seen_invalid: set[str] = set()

    @property
    def kind(self) -> str:
        """Return ``"alerting"`` (the ``type`` of the rule in ``/api/v1/rules``)."""
        return "alerting"

    def identity(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Return what makes two rules 'the same' across reloads (Prometheus ``CopyState``: name + labels)."""
        return ("alert", self.name, tuple(sorted(self.labels.items())))

    def state(self) -> str:
        """Return the highest state among the active alerts (``firing`` > ``pending`` > ``inactive``)."""
        best = AlertState.INACTIVE
        for a in self.active.values():
            if AlertState.ORDER[a.state] > AlertState.ORDER[best]:
                best = a.state
        return best

    def alerts(self) -> list[Alert]:
        """Every active alert (pending, firing, and resolved ones still retained), sorted by labels."""
        return sorted(self.active.values(), key=lambda a: a.labels)

    def firing_or_pending(self) -> list[Alert]:
        """Return the alerts in the pending or firing state."""
        return [a for a in self.alerts() if a.state != AlertState.INACTIVE]

    def restore(self, rows: Iterable[Mapping[str, Any]], now: float, *,
                outage_tolerance: float = DEFAULT_OUTAGE_TOLERANCE,
                for_grace_period: float = DEFAULT_FOR_GRACE_PERIOD) -> int:
        """Put persisted alerts back after a restart; they are held until :meth:`release`.

        :param rows: ``{"fingerprint": str, "labels": {...}, "active_at": float, "fired_at":
            float|None, "state": "pending"|"firing", "seen_at": float|None, "annotations": {...}?,
            "value": float?}``; ``seen_at`` is the last evaluation before the outage at which
            the alert was active (missing in rows written before it existed: taken as ``now``).
        :param now: the restart time, seconds.
        :param outage_tolerance: rows whose ``seen_at`` is older than this are not restored.
        :param for_grace_period: see :func:`restored_active_at`.
        :return: how many alerts were restored.

        A firing alert stays firing with its ``active_at`` and ``fired_at``; a pending one gets
        :func:`restored_active_at`. An alert already active (a reload) is left alone.
        """
        n = 0
        for r in rows:
            fp = str(r.get("fingerprint", ""))
            try:
                labels = Labels.of({str(k): str(v) for k, v in dict(r.get("labels") or {}).items()})
                active_at = float(r["active_at"])
                seen = r.get("seen_at")
                down_at = now if seen is None else float(seen)
            except (KeyError, TypeError, ValueError):
                continue
            if fp in self.active or labels.fingerprint() != fp or not math.isfinite(active_at):
                continue
            if now - down_at > outage_tolerance:
                continue
            value = r.get("value")
            a = Alert(labels, {str(k): str(v) for k, v in dict(r.get("annotations") or {}).items()},
                      AlertState.PENDING, active_at,
                      value=float(value) if isinstance(value, (int, float)) else 0.0)
            if r.get("state") == AlertState.FIRING:
                a.state = AlertState.FIRING
                fired = r.get("fired_at")
                a.fired_at = float(fired) if fired is not None else active_at
            else:
                a.active_at = restored_active_at(active_at, min(down_at, now), now, self.for_seconds,
                                                 for_grace_period)
            self.active[fp] = a
            self.held[fp] = now
            n += 1
        return n

    def release(self, fingerprints: Iterable[str] | None = None) -> None:
        """Stop holding restored alerts (all of them by default): from the next evaluation on, one
        the expression does not return is resolved (firing) or dropped (pending)."""
        if fingerprints is None:
            self.held.clear()
            return
        for fp in fingerprints:
            self.held.pop(fp, None)

    def samples_needed(self) -> dict[str, int] | None:
        """Return ``{metric name: samples of a series the expression needs}`` (1, or 2 for a
        name read by ``rate``/``increase``/...: :func:`monitor.promql.nodes.samples_needed`);
        ``None`` when the names cannot be known."""
        if self._needed is False:
            from monitor.promql.nodes import samples_needed

            try:
                self._needed = samples_needed(self.parsed if self.parsed is not None else self.expr)
            except Exception:  # noqa: BLE001 - unknown inputs: released by the grace period only
                self._needed = None
        return self._needed  # type: ignore[return-value]

    def release_ready(self, inputs: Mapping[str, Iterable[tuple[Labels, int]]]) -> None:
        """Release the held alerts whose inputs now have enough data to decide them.

        :param inputs: metric name -> ``(series labels, samples since the restore)`` of the
            series of that name with new data.

        A series matches an alert when they agree on every label they both have, leaving out
        ``__name__``, ``alertname`` and the rule's own labels (aggregations may drop labels, so
        a series with fewer labels matches too). A held alert is released when **every** metric
        name the expression reads has a matching series with as many samples as the expression
        needs of it (:meth:`samples_needed`: two for ``rate(x[5m])``, whose first sample after
        a restart gives no value yet). Deciding earlier would drop a pending alert and resolve a
        firing one in the middle of an outage: ``x or (y and absent(x))`` answers from ``y``
        before ``x`` is scraped, then nothing until ``x``'s second sample. An input that never
        comes back leaves the alert to the grace period.
        """
        need = self.samples_needed()
        if not self.held or not need:
            return
        skip = {METRIC_NAME, "alertname", *self.labels}
        by_name = {name: [([(k, v) for k, v in lb.as_dict().items() if k not in skip], n)
                          for lb, n in inputs.get(name, ())] for name in need}
        done = []
        for fp in self.held:
            a = self.active.get(fp)
            if a is None:
                done.append(fp)
                continue
            al = a.labels.as_dict()
            if all(any(n >= need[name] and all(al.get(k, v) == v for k, v in pairs) for pairs, n in series)
                   for name, series in by_name.items()):
                done.append(fp)
        self.release(done)

    def copy_state(self, old: AlertingRule) -> None:
        """Take over the active alerts of the rule this one replaces (Prometheus ``CopyState``)."""
        self.active = {fp: replace(a) for fp, a in old.active.items()}
        self.held.update(old.held)
        self.invalid_severity_total += old.invalid_severity_total
        self._seen_invalid |= old._seen_invalid

    def _invalid_severity(self, lb: dict[str, str], annotations: dict[str, str]) -> None:
        """Page on an expanded severity outside the policy: ``critical``, the text kept in an annotation."""
        got = lb.get("severity", "")
        self.invalid_severity_total += 1
        if got not in self._seen_invalid and len(self._seen_invalid) < 100:
            self._seen_invalid.add(got)
            self.severity_notices.append(got)
        lb["severity"] = "critical"
        annotations["invalid_severity"] = got

    def eval(self, now: float, query: QueryFn, external_labels: Mapping[str, str] | None = None) -> list[Alert]:
        """Evaluate at ``now`` (seconds) and advance every alert's state.

        :param query: ``query(expr, t_ms) -> Vector``; also used by ``query`` in templates.
        :param external_labels: for ``$externalLabels`` in templates.
        :return: all active alerts after the step (see :meth:`alerts`).
        :raises RuleError: when the query fails, two alerts get the same labels, or the limit is exceeded.
        """
        t_ms = int(round(now * 1000))
        try:
            res = query(self.parsed if self.parsed is not None else self.expr, t_ms)
        except RuleError:
            raise
        except Exception as e:  # noqa: BLE001 - QueryError and any engine failure
            raise RuleError(str(e)) from e
        ext = dict(external_labels or {})

        def tmpl_query(q: str) -> list[TemplateSample]:
            return [TemplateSample(s.labels.as_dict(), float(s.v)) for s in query(q, t_ms)]

        fresh: dict[str, Alert] = {}
        for smpl in res:
            smpl_labels = smpl.labels.as_dict()
            kw = dict(labels=smpl_labels, value=float(smpl.v), external_labels=ext,
                      external_url=self.external_url, query=tmpl_query, name=f"__alert_{self.name}")
            lb = dict(smpl.labels.without(METRIC_NAME))
            for k, v in self.labels.items():
                lb[k] = expand(v, **kw) if "{{" in v else v
            lb["alertname"] = self.name
            annotations = {k: (expand(v, **kw) if "{{" in v else v) for k, v in self.annotations.items()}
            if self.severities is not None and lb.get("severity") not in self.severities:
                self._invalid_severity(lb, annotations)
            labels = Labels.of(lb)
            fp = labels.fingerprint()
            if fp in fresh:
                raise RuleError("vector contains metrics with the same labelset after applying alert labels")
            fresh[fp] = Alert(labels, annotations, AlertState.PENDING, now, value=float(smpl.v))

        for fp, a in fresh.items():
            cur = self.active.get(fp)
            if cur is not None and cur.state != AlertState.INACTIVE:
                cur.value, cur.annotations = a.value, a.annotations
                continue
            self.active[fp] = a

        samples: list[tuple[Labels, float]] = []
        n_active = 0
        for fp, a in list(self.active.items()):
            if fp not in fresh and fp in self.held:
                # Restored and not yet confirmed or released: kept as it is (not promoted either).
                n_active += 1
                samples.append((a.labels.merge({METRIC_NAME: ALERTS_METRIC, "alertstate": a.state}), 1.0))
                samples.append((a.labels.merge({METRIC_NAME: ALERTS_FOR_STATE_METRIC}), float(int(a.active_at))))
                continue
            if fp not in fresh:
                keep_firing = False
                if a.state == AlertState.FIRING and self.keep_firing_for_seconds > 0:
                    if a.keep_firing_since is None:
                        a.keep_firing_since = now
                    keep_firing = now - a.keep_firing_since < self.keep_firing_for_seconds
                if a.state == AlertState.PENDING or (
                        a.resolved_at is not None and now - a.resolved_at > self.resolved_retention):
                    del self.active[fp]
                if a.state != AlertState.INACTIVE and not keep_firing:
                    a.state = AlertState.INACTIVE
                    a.resolved_at = now
                if not keep_firing:
                    continue
            else:
                a.keep_firing_since = None
            n_active += 1
            if a.state == AlertState.PENDING and now - a.active_at >= self.for_seconds:
                a.state = AlertState.FIRING
                a.fired_at = now
            samples.append((a.labels.merge({METRIC_NAME: ALERTS_METRIC, "alertstate": a.state}), 1.0))
            samples.append((a.labels.merge({METRIC_NAME: ALERTS_FOR_STATE_METRIC}), float(int(a.active_at))))
        if self.limit > 0 and n_active > self.limit:
            self.active = {}
            self.held = {}
            self.samples = []
            raise RuleError(f"exceeded limit of {self.limit} with {n_active} alerts")
        self.samples = samples
        return self.alerts()

    def to_api(self) -> dict[str, Any]:
        """Return the rule's part of Prometheus ``/api/v1/rules`` (health/timing are added by the group)."""
        return {"type": "alerting", "name": self.name, "query": self.expr, "duration": self.for_seconds,
                "keepFiringFor": self.keep_firing_for_seconds, "labels": dict(self.labels),
                "annotations": dict(self.annotations), "state": self.state(),
                "alerts": [a.to_api() for a in self.alerts() if a.state != AlertState.INACTIVE]}


def vector_of(samples: Iterable[tuple[Labels, float]], t_ms: int) -> Vector:
    """Build a :class:`Vector` from ``(labels, value)`` pairs (helper for tests and the group)."""
    return Vector(Sample(lbl, t_ms, v) for lbl, v in samples)

