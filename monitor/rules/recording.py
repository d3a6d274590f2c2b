"""Recording rules: evaluate an expression and store its result under a new metric name.

Semantics of Prometheus ``rules/recording.go`` (``RecordingRule.Eval``): every result sample gets
``__name__`` set to the rule's name and the rule's labels set on top (labels are not templated);
two samples that end up with the same label set are an error, as is exceeding the group's limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.errors import RuleError
from monitor.rules.alerting import QueryFn
from model.labels import METRIC_NAME, Labels

__all__ = ["RecordingRule"]


class RecordingRule:
    """A recording rule.

    :param name: the metric name to record as (e.g. ``endpoint:http_requests:rate5m``).
    :param expr: the PromQL expression text.
    :param labels: labels to set on every result sample.
    :param parsed: the parsed expression to hand to ``query`` instead of the text, or ``None``.
    :param limit: the most series allowed (0 = no limit).

    >>> from monitor.promql.value import Sample, Vector
    >>> r = RecordingRule("job:up:sum", "sum by (job) (up)", labels={"team": "core"})
    >>> r.eval(10.0, lambda e, t: Vector([Sample(Labels.of(job="api"), t, 2.0)]))
    [(job:up:sum{job="api", team="core"}, 2.0)]
    """

    def __init__(self, name: str, expr: str, *, labels: Mapping[str, str] | None = None,
                 parsed: Any = None, limit: int = 0) -> None:
        self.name = name
        self.expr = expr
        self.parsed = parsed
        self.labels = dict(labels or {})
        self.limit = limit
        #: the samples of the last evaluation: ``[(labels, value), ...]``.
        self.samples: list[tuple[Labels, float]] = []

    @property
    def kind(self) -> str:
        """Return ``"recording"`` (the ``type`` of the rule in ``/api/v1/rules``)."""
        return "recording"

    def identity(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Return what makes two rules 'the same' across reloads: name and labels."""
        return ("record", self.name, tuple(sorted(self.labels.items())))

    def eval(self, now: float, query: QueryFn) -> list[tuple[Labels, float]]:
        """Evaluate at ``now`` (seconds); return ``[(labels, value), ...]`` to append at ``now``.

        :raises RuleError: when the query fails, label sets collide, or the limit is exceeded.
        """
        t_ms = int(round(now * 1000))
        try:
            res = query(self.parsed if self.parsed is not None else self.expr, t_ms)
        except RuleError:
            raise
        except Exception as e:  # noqa: BLE001 - QueryError and any engine failure
            raise RuleError(str(e)) from e
        out: list[tuple[Labels, float]] = []
        seen: set[Labels] = set()
        extra = {METRIC_NAME: self.name, **self.labels}
        for s in res:
            lbl = s.labels.merge(extra)
            if lbl in seen:
                raise RuleError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(lbl)
            out.append((lbl, float(s.v)))
        if self.limit > 0 and len(out) > self.limit:
            raise RuleError(f"exceeded limit of {self.limit} with {len(out)} series")
        self.samples = out
        return out

    def to_api(self) -> dict[str, Any]:
        """Return the rule's part of Prometheus ``/api/v1/rules`` (health/timing are added by the group)."""
        return {"type": "recording", "name": self.name, "query": self.expr, "labels": dict(self.labels)}
