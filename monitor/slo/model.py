"""The SLO model: one validated :class:`SLO` per objective, whatever file format it came from.

An SLO is a service, a name, an objective (percent of good events, e.g. ``99.9``), a period
(rolling ``30d``/``28d``/``7d`` or ``calendar_month``), an SLI, an alert policy and labels. Our
``slos:`` entries in ``monitor.yaml`` validate straight into it; Sloth ``prometheus/v1`` and
OpenSLO v1 files are converted to the same shape (:mod:`monitor.slo.sloth`,
:mod:`monitor.slo.openslo`).

SLI kinds (exactly one per SLO):

- ``ratio``: ``error_query`` / ``total_query``, per-second rates over a ``{{.window}}``
  placeholder (Sloth's ``events`` shape), e.g.
  ``sum(rate(http_requests_total{status=~"5.."}[{{.window}}]))``.
- ``latency``: requests slower than ``threshold`` seconds from a classic histogram
  (``<metric>_count`` minus ``<metric>_bucket{le="<threshold>"}``).
- ``probe``: time-slice availability (OpenSLO ``Timeslices``): the share of probe runs whose
  ``probe_success`` was 1, so a quiet hour counts as much as a busy one.
- ``oncall``: on-call response, ``{priority: P0, measure: ack|resolve}``: the share of the
  priority's pages acknowledged (``ack``) or resolved (``resolve``) within its SLA, a ratio SLI over
  the daemon's ``monitor_oncall_acks_total`` / ``monitor_oncall_resolutions_total`` counters
  (``within_sla="false"`` are the errors; :mod:`monitor.escalation.oncall_sli`).

Alerting follows the Google SRE workbook, chapter 5 "Alerting on SLOs", multi-window
multi-burn-rate alerts: a tier fires when the error ratio over both its long and its short window
exceeds ``burn_rate x (1 - objective)``. The burn rate of a tier is derived from the share of the
period's budget it may consume within its long window: ``budget_fraction x period / long``
(2 % in 1 h of 30 d = 14.4x), unless given explicitly.

Usage::

    slo = SLO.model_validate({"service": "api", "name": "availability", "objective": 99.9,
                              "sli": {"ratio": {"error_query": "...", "total_query": "..."}}})
    slo.id                     # "api-availability"
    slo.alerting.tiers[0]      # Tier(name="page-fast", burn_rate=14.4, long=3600.0, short=300.0, ...)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from model.duration import PositiveDuration, format_duration, parse_duration
from model.labels import LABEL_NAME_RE

__all__ = [
    "SLO", "SLI", "RatioSLI", "LatencySLI", "ProbeSLI", "OncallSLI", "AlertPolicy", "Tier", "PERIODS",
    "WINDOW_PLACEHOLDER", "ONCALL_METRICS", "default_tiers", "period_seconds",
]

#: Sloth's window placeholder in SLI queries (Go template syntax, spaces allowed).
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")

#: Accepted periods and their length in seconds. ``calendar_month`` alerts and records its
#: period series over 30 days (the workbook's month); its month-to-date compliance is a report.
PERIODS: dict[str, float] = {
    "30d": 30 * 86400.0, "28d": 28 * 86400.0, "7d": 7 * 86400.0, "calendar_month": 30 * 86400.0,
}

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ALERT_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _labels(value: Any) -> Any:
    if isinstance(value, dict):
        bad = [k for k in value if isinstance(k, str) and not LABEL_NAME_RE.match(k)]
        if bad:
            raise ValueError(f'invalid label name "{bad[0]}" (must match [a-zA-Z_][a-zA-Z0-9_]*)')
    return value


LabelMap = Annotated[dict[str, str], BeforeValidator(_labels)]


def _check_selector(v: str, example: str) -> str:
    """Return ``v`` stripped if it is empty or label matchers in braces; raise ``ValueError`` naming ``example``."""
    v = v.strip()
    if v and not (v.startswith("{") and v.endswith("}")):
        raise ValueError(f"expected label matchers in braces such as {example}")
    if v:
        _check_promql(f"up{v}", "selector")
    return v


def _check_promql(query: str, what: str) -> None:
    """Raise ``ValueError`` when ``query`` (``{{.window}}`` replaced by 5m) is not PromQL."""
    import promql_parser

    try:
        promql_parser.parse(WINDOW_PLACEHOLDER.sub("5m", query))
    except Exception as exc:  # noqa: BLE001 - promql_parser raises bare ValueError/RuntimeError
        raise ValueError(f"{what}: could not parse expression: {exc}") from None


def period_seconds(period: str) -> float:
    """Return the length of ``period`` in seconds (``calendar_month`` counts 30 days).

    :raises KeyError: unknown period.
    """
    return PERIODS[period]


# -------------------------------------------------------------------------------------------- SLIs


class RatioSLI(_Strict):
    """Bad events over all events: two per-second rate queries with a ``{{.window}}`` placeholder.

    :ivar error_query: rate of bad events, e.g. ``sum(rate(x{code=~"5.."}[{{.window}}]))``.
    :ivar total_query: rate of all events, e.g. ``sum(rate(x[{{.window}}]))``.
    """

    error_query: str = Field(min_length=1)
    total_query: str = Field(min_length=1)

    @field_validator("error_query", "total_query")
    @classmethod
    def _query(cls, v: str) -> str:
        if not WINDOW_PLACEHOLDER.search(v):
            raise ValueError("the query must use the {{.window}} placeholder in its range, e.g. [{{.window}}]")
        _check_promql(v, "query")
        return v.strip()


class LatencySLI(_Strict):
    """Requests slower than ``threshold`` from a classic histogram.

    :ivar metric: the histogram's base name (``http_request_duration_seconds``).
    :ivar threshold: seconds; must be one of the histogram's bucket bounds (``le``).
    :ivar selector: label matchers added to both series, e.g. ``{job="codebook-backend"}``.
    """

    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    threshold: PositiveDuration
    selector: str = ""

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        return _check_selector(v, '{job="api"}')

    @property
    def le(self) -> str:
        """The bucket's ``le`` value as Prometheus 3 and prometheus_client write it (``5.0``, ``0.25``)."""
        return repr(float(self.threshold))


class ProbeSLI(_Strict):
    """Time-slice availability: the share of probe runs (or evaluation steps) that were good.

    :ivar selector: matchers picking the probe's series, e.g. ``{kind="database"}``; the series
        (``metric``, default ``probe_success``) is 1 per successful run and 0 per failed one.
    :ivar query: instead of ``selector``, any expression that is 1 when a time slice is good and
        0 when bad (OpenSLO ``thresholdMetric``: ``(latency_p99) <= bool 0.5``), sampled at the
        evaluation interval through a subquery.
    """

    selector: str = ""
    query: str = ""
    metric: str = Field("probe_success", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        return _check_selector(v, '{kind="database"}')

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        if v:
            _check_promql(v, "query")
        return v.strip()

    @model_validator(mode="after")
    def _one(self) -> ProbeSLI:
        if bool(self.selector) == bool(self.query):
            raise ValueError("exactly one of selector and query is required")
        return self

    def series(self, window: str) -> str:
        """Return the range (or subquery) the SLI reads over ``window``: ``probe_success{kind="db"}[5m]``."""
        if self.query:
            return f"({self.query})[{window}:]"
        return f"{self.metric}{self.selector}[{window}]"


#: The on-call counters an :class:`OncallSLI` reads, by measure.
ONCALL_METRICS = {"ack": "monitor_oncall_acks_total", "resolve": "monitor_oncall_resolutions_total"}


class OncallSLI(_Strict):
    """On-call response: the share of a priority's pages acknowledged or resolved within its SLA.

    :ivar priority: the escalation priority (``P0``, ``P1``, ``P2`` as shipped; any configured name).
    :ivar measure: ``ack`` (acknowledged by the ack deadline: P0 15 min, P1 1 h, P2 4 h) or
        ``resolve`` (resolved by the resolve deadline: 4 h, 24 h, 3 d).
    :ivar selector: more label matchers on the counters, e.g. ``{instance="monitor-a:9115"}``.

    The events are the leader's counters (:mod:`monitor.escalation.oncall_sli`): a page counts
    when it is acknowledged or resolved, or as a miss the moment its deadline passes.
    """

    priority: str = Field(pattern=r"^[a-zA-Z0-9_.-]+$")
    measure: Literal["ack", "resolve"]
    selector: str = ""

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        return _check_selector(v, '{instance="monitor-a:9115"}')

    def ratio(self) -> RatioSLI:
        """Return the equivalent ratio SLI (errors: ``within_sla="false"``; ``or vector(0)`` before the first)."""
        extra = self.selector[1:-1].strip().rstrip(",") if self.selector else ""
        sel = f'priority="{self.priority}"' + (f", {extra}" if extra else "")
        metric = ONCALL_METRICS[self.measure]
        return RatioSLI(
            error_query=f'sum(rate({metric}{{{sel}, within_sla="false"}}[{{{{.window}}}}])) or vector(0)',
            total_query=f"sum(rate({metric}{{{sel}}}[{{{{.window}}}}]))")


class SLI(_Strict):
    """Exactly one of ``ratio``, ``latency``, ``probe``, ``oncall``."""

    ratio: RatioSLI | None = None
    latency: LatencySLI | None = None
    probe: ProbeSLI | None = None
    oncall: OncallSLI | None = None

    @model_validator(mode="after")
    def _one(self) -> SLI:
        given = [k for k in ("ratio", "latency", "probe", "oncall") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of ratio, latency, probe, oncall is required"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> Literal["ratio", "latency", "probe", "oncall"]:
        """The SLI kind: ``ratio``, ``latency``, ``probe`` or ``oncall``."""
        if self.ratio is not None:
            return "ratio"
        if self.oncall is not None:
            return "oncall"
        return "latency" if self.latency is not None else "probe"

    def as_ratio(self) -> RatioSLI | None:
        """Return the ratio queries of a ``ratio`` or ``oncall`` SLI (``None`` for the other kinds)."""
        return self.oncall.ratio() if self.oncall is not None else self.ratio


# -------------------------------------------------------------------------------------- alerting


class Tier(_Strict):
    """One burn-rate tier: fire when both windows burn faster than ``burn_rate``.

    :ivar name: the ``tier`` label (``page-fast``); unique per SLO.
    :ivar long: the long window, seconds (``1h``).
    :ivar short: the short window, seconds (default ``long / 12``, the workbook's ratio).
    :ivar budget_fraction: share of the period's budget this tier may burn within ``long``
        (0..1). The burn rate is ``budget_fraction x period / long`` unless ``burn_rate`` is given.
    :ivar burn_rate: explicit factor (overrides ``budget_fraction``).
    :ivar severity: the alert's ``severity`` (``critical`` pages through P0).
    :ivar labels: more alert labels, e.g. ``priority: P1`` or ``route: ticket``.
    :ivar for_: the alert's ``for`` (seconds; default 0, as Sloth).
    """

    name: str = Field(pattern=r"^[a-zA-Z0-9_.-]+$")
    long: PositiveDuration
    short: PositiveDuration | None = None
    budget_fraction: float | None = Field(None, gt=0, le=1)
    burn_rate: float | None = Field(None, gt=0)
    severity: Literal["critical", "warning", "info"]
    labels: LabelMap = Field(default_factory=dict)
    for_: float = Field(0.0, alias="for")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _defaults(self) -> Tier:
        if self.budget_fraction is None and self.burn_rate is None:
            raise ValueError("one of budget_fraction and burn_rate is required")
        if self.short is None:
            self.short = self.long / 12
        if self.short >= self.long:
            raise ValueError(f"short window {format_duration(self.short)} must be shorter than "
                             f"long window {format_duration(self.long)}")
        return self

    def factor(self, period: float) -> float:
        """Return the burn-rate factor for a period of ``period`` seconds (rounded to 4 decimals)."""
        if self.burn_rate is not None:
            return self.burn_rate
        assert self.budget_fraction is not None
        return round(self.budget_fraction * period / self.long, 4)

    @property
    def short_window(self) -> float:
        """The short window in seconds (defaulted at validation)."""
        assert self.short is not None
        return self.short


def default_tiers() -> list[Tier]:
    """Return the SRE workbook's four tiers (table 5-8): 2 % of the budget in 1 h and 5 % in 6 h page
    (critical), 10 % in 1 d and 10 % in 3 d open a ticket (warning). For 30 d: 14.4x, 6x, 3x, 1x."""
    return [
        Tier(name="page-fast", long=3600, short=300, budget_fraction=0.02, severity="critical"),
        Tier(name="page-slow", long=6 * 3600, short=1800, budget_fraction=0.05, severity="critical"),
        Tier(name="ticket-fast", long=86400, short=7200, budget_fraction=0.10, severity="warning"),
        Tier(name="ticket-slow", long=3 * 86400, short=6 * 3600, budget_fraction=0.10, severity="warning"),
    ]


class AlertPolicy(_Strict):
    """``alerting:`` of an SLO.

    :ivar name: the alert name (default ``<Service><Name>BudgetBurn`` in CamelCase).
    :ivar disable: generate no alerting rules (recording rules only).
    :ivar labels: labels on every tier's alert.
    :ivar annotations: extra annotations (``summary``/``description`` are generated).
    :ivar runbook_url: the ``runbook_url`` annotation.
    :ivar tiers: the burn-rate tiers, fastest first (default :func:`default_tiers`).
    """

    name: str = ""
    disable: bool = False
    labels: LabelMap = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    runbook_url: str = ""
    tiers: list[Tier] = Field(default_factory=default_tiers, min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not _ALERT_NAME_RE.match(v):
            raise ValueError(f'invalid alert name "{v}" (must match [a-zA-Z_][a-zA-Z0-9_]*)')
        return v

    @field_validator("tiers")
    @classmethod
    def _unique(cls, v: list[Tier]) -> list[Tier]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f'duplicate tier name "{t.name}"')
            seen.add(t.name)
        return v


# ------------------------------------------------------------------------------------------- SLO


class SLO(_Strict):
    """One service level objective.

    :ivar service: the service it belongs to (``sloth_service``).
    :ivar name: the SLO's name within the service (``sloth_slo``); ``service-name`` is its id.
    :ivar objective: percent of good events, ``0 < objective < 100`` (``99.9``).
    :ivar period: ``30d`` (default), ``28d``, ``7d`` or ``calendar_month``.
    :ivar description: free text.
    :ivar sli: the indicator (:class:`SLI`).
    :ivar min_events: a tier fires only when each of its windows saw at least this many events
        (requests; probe runs for ``probe``), so one error at low traffic pages nobody
        (default 50; 3 for ``probe`` SLIs). For ``oncall`` SLIs (a few pages a day) the guard
        reads the long window only (default 3 pages): the short window, minutes to hours, rarely
        holds more than one page, and its ratio needs at least one counted page anyway (no page:
        no ratio, no alert). One missed page alone never fires; three pages in a long window
        that all miss do.
    :ivar labels: labels on every generated series and alert.
    :ivar interval: evaluation interval of the SLO's rule group, seconds (default: the global
        ``rules.evaluation_interval``). Each evaluation reads the whole period of recorded samples,
        which were written at this interval: a 30-day period costs about 40 ms per evaluation at
        5 s and 8 ms at 30 s (``benchmarks/slo_eval.py``).
    :ivar alerting: the alert policy (:class:`AlertPolicy`).
    :ivar source: where it was defined, for messages (``monitor.yaml``, a file name); set by the loader.
    """

    service: str = Field(pattern=_NAME_RE.pattern)
    name: str = Field(pattern=_NAME_RE.pattern)
    objective: float = Field(gt=0, lt=100)
    period: Literal["30d", "28d", "7d", "calendar_month"] = "30d"
    description: str = ""
    sli: SLI
    min_events: float | None = Field(None, ge=0)
    labels: LabelMap = Field(default_factory=dict)
    interval: PositiveDuration | None = None
    alerting: AlertPolicy = Field(default_factory=AlertPolicy)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file the SLO was defined in (empty when built from data)."""
        return self._source

    @source.setter
    def source(self, value: str) -> None:
        self._source = value

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, v: Any) -> Any:
        return {"1M": "calendar_month", "month": "calendar_month", "4w": "28d", "1w": "7d"}.get(v, v)

    @model_validator(mode="after")
    def _defaults(self) -> SLO:
        if self.min_events is None:
            self.min_events = 3.0 if self.sli.kind in ("probe", "oncall") else 50.0
        if not self.alerting.name:
            self.alerting.name = _camel(self.service) + _camel(self.name) + "BudgetBurn"
        reserved = {"sloth_id", "sloth_service", "sloth_slo", "sloth_window", "tier", "severity"}
        clash = sorted(reserved & set(self.labels))
        if clash:
            raise ValueError(f'label "{clash[0]}" is set by the generated rules')
        return self

    @property
    def id(self) -> str:
        """``<service>-<name>``, the ``sloth_id`` label."""
        return f"{self.service}-{self.name}"

    @property
    def objective_ratio(self) -> float:
        """The objective as a ratio (0.999)."""
        return round(self.objective / 100, 10)

    @property
    def error_budget(self) -> float:
        """The error budget as a ratio of events (``1 - objective``: 0.001)."""
        return round(1 - self.objective / 100, 10)

    @property
    def period_seconds(self) -> float:
        """The period's length in seconds."""
        return period_seconds(self.period)

    @property
    def events_min(self) -> float:
        """:attr:`min_events`, defaulted."""
        assert self.min_events is not None
        return self.min_events


def _camel(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^a-zA-Z0-9]+", text) if p)
