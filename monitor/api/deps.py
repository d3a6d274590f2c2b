"""What the HTTP API needs from the rest of the process: small interfaces, never the daemon.

The composition root (:mod:`monitor.daemon.wiring`) builds an :class:`ApiDeps` and hands it to
:func:`monitor.api.app.create_app`, which keeps it on ``app.state.deps``; every handler reads
it back with :func:`deps_of`. Each group is optional: ``create_app`` mounts the routes of the
groups it is given (the alerting API can be served and tested on its own).

* ``settings`` — the running ``api:`` settings (tokens and their scopes, Slack signing secret,
  link key), read on every request.
* :class:`ProcessDeps` — ``/health``, ``/metrics``, ``POST /-/reload``.
* :class:`QueryDeps` — ``/api/v1/probes``, ``/api/v1/alerts``, ``/api/v1/rules``,
  ``/api/v1/query``, ``/api/v1/query_range``.
* :class:`AlertingDeps` — acknowledgements, silences, intake, Slack actions, signed links
  (through :class:`~monitor.alerting.ports.AlertingPorts`), and the state store's
  :class:`OnceClaims` for the Slack replay cache.

Parts that a reload replaces are passed as accessors (``() -> value``), read on every request,
so the API always sees the running configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from monitor.alerting.ports import AlertingPorts
from monitor.api.bodies import ApiError
from monitor.promql.value import Matrix, Value
from probes.base import ProbeResult, ProbeSettings

__all__ = ["AlertingDeps", "ApiDeps", "ApiSettings", "ConsoleDeps", "MetricsExposition", "NamedToken", "NoApiSettings",
           "OnceClaims", "ProbeViews", "ProcessDeps", "QueryDeps", "QueryEngine", "ReloadResult", "RuleViews",
           "Secret", "SeriesCatalog", "StatusDeps", "alerting_deps", "deps_of", "process_deps", "query_deps",
           "running_ports"]


# -- what the routes read ----------------------------------------------------------------------------


class ProbeViews(Protocol):
    """The configured probes and their recent results (``monitor.daemon.probing.ProbeRunner``)."""

    @property
    def settings(self) -> Mapping[str, ProbeSettings]:
        """Every configured probe by name."""
        ...

    @property
    def last(self) -> Mapping[str, ProbeResult]:
        """The last result of each probe that has run."""
        ...

    @property
    def history(self) -> Mapping[str, Iterable[ProbeResult]]:
        """Recent results of each probe, oldest first."""
        ...


class RuleViews(Protocol):
    """Rule groups and their alerts in Prometheus API shapes (``monitor.rules.manager.RuleManager``)."""

    def alerts_api(self) -> dict[str, Any]:
        """``/api/v1/alerts`` data: ``{"alerts": [...]}`` of pending and firing alerts."""
        ...

    def to_api(self) -> dict[str, Any]:
        """``/api/v1/rules`` data: ``{"groups": [...]}``; each rule has ``type`` ``alerting``/``recording``."""
        ...


class QueryEngine(Protocol):
    """PromQL over the sample store, evaluated off the event loop under the engine's limits
    (``monitor.promql.adhoc.AdHocQueries``: a bounded worker pool with an enforced deadline).

    Times are integer Unix milliseconds.
    """

    async def instant_query(self, query: str, t_ms: int, *, render: Callable[[Value], Any] | None = None) -> Any:
        """Evaluate ``query`` at ``t_ms``; return the value, or ``render(value)`` computed off the loop.

        :raises QueryError: bad query, too many samples, timeout, too many concurrent queries.
        """
        ...

    async def range_query(self, query: str, start_ms: int, end_ms: int, step_ms: int, *,
                          render: Callable[[Matrix], Any] | None = None) -> Any:
        """Evaluate ``query`` from ``start_ms`` to ``end_ms`` every ``step_ms``; return the
        :class:`Matrix`, or ``render(matrix)`` computed off the loop.

        :raises QueryError: bad query, too many samples, timeout, too many concurrent queries.
        """
        ...


class SeriesCatalog(Protocol):
    """The series index of the sample store (``monitor.tsdb.store.SampleStore``), read on the loop."""

    def series(self, matchers: Sequence[Any] = ()) -> list[Any]:
        """Return the label sets (:class:`~model.labels.Labels`) of the series matching every matcher."""
        ...

    def label_names(self, matchers: Sequence[Any] | None = None) -> list[str]:
        """Return every label name in use, sorted."""
        ...

    def label_values(self, name: str, matchers: Sequence[Any] | None = None) -> list[str]:
        """Return every value of label ``name``, sorted."""
        ...

    def select(self, matchers: Sequence[Any], mint: int, maxt: int) -> list[Any]:
        """Return the series (``.labels``) with samples in ``[mint, maxt]`` (ms)."""
        ...


@dataclass(frozen=True)
class StatusDeps:
    """What Prometheus's status API shows (``/api/v1/status/*``, ``/api/v1/targets``).

    :ivar runtime: returns the ``runtimeinfo`` data (``startTime``, ``reloadConfigSuccess``, ...).
    :ivar config_yaml: returns the running configuration as YAML, secrets masked.
    :ivar flags: returns the command line's flags, ``{name: value}``.
    :ivar targets: returns the scrape targets in ``activeTargets`` shape (``scrapePool``, ``labels``, ...).
    """

    runtime: Callable[[], dict[str, Any]]
    config_yaml: Callable[[], str]
    flags: Callable[[], dict[str, str]] = dict
    targets: Callable[[], list[dict[str, Any]]] = list


class Secret(Protocol):
    """A secret value that never prints itself (pydantic ``SecretStr``)."""

    def get_secret_value(self) -> str:
        """Return the secret in clear."""
        ...


class NamedToken(Protocol):
    """One accepted bearer token (``api.tokens[]``)."""

    @property
    def name(self) -> str:
        """Who holds it: the actor recorded for what it does."""
        ...

    @property
    def token(self) -> Secret:
        """The token."""
        ...

    @property
    def scopes(self) -> Sequence[str]:
        """What it may do: ``read``, ``ack``, ``admin``, ``intake`` (see :mod:`monitor.api.access`)."""
        ...


class ApiSettings(Protocol):
    """The ``api:`` section of the configuration (``monitor.config.model.ApiConfig``)."""

    @property
    def tokens(self) -> Sequence[NamedToken]:
        """Accepted bearer tokens (none: every endpoint needing a token answers 401)."""
        ...

    @property
    def read_requires_token(self) -> bool:
        """Whether the read views need a token with the ``read`` scope (default: open)."""
        ...

    @property
    def intake_open(self) -> bool:
        """Whether the alert intake takes alerts without a token (default: ``intake`` scope needed)."""
        ...

    @property
    def intake_drop_labels(self) -> Sequence[str]:
        """Label names the intake removes from every alert before fingerprinting."""
        ...

    @property
    def slack_signing_secret(self) -> Secret | None:
        """Verifies ``POST /api/v1/slack/actions`` (none: that route answers 404)."""
        ...

    @property
    def link_key(self) -> Secret | None:
        """HMAC key of signed ``/ack/{token}`` links (none: those routes answer 404)."""
        ...


@dataclass(frozen=True)
class NoApiSettings:
    """``api:`` settings with nothing configured: no token, no Slack secret, no link key."""

    tokens: Sequence[NamedToken] = ()
    read_requires_token: bool = False
    intake_open: bool = False
    intake_drop_labels: Sequence[str] = ()
    slack_signing_secret: Secret | None = None
    link_key: Secret | None = None


class OnceClaims(Protocol):
    """Keys claimed once, durably (the state store's :meth:`~monitor.store.base.Store.claim_once`)."""

    async def claim_once(self, namespace: str, key: str, now: float, ttl: float) -> bool:
        """Return ``True`` the first time ``key`` is claimed within ``ttl`` seconds, else ``False``."""
        ...


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of a configuration reload.

    :ivar errors: every error, formatted (``file:line:col: path: message``); empty on success,
        and then the new configuration runs.
    :ivar warnings: changed settings only a restart applies (their running values are kept).
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MetricsExposition:
    """What ``GET /metrics`` serves.

    :ivar registry: the registry rendered in the Prometheus text format.
    :ivar refresh: called before each rendering to update gauges read on demand (sample store sizes).
    """

    registry: CollectorRegistry
    refresh: Callable[[], None] = lambda: None


# -- the groups handed to create_app -----------------------------------------------------------------


@dataclass(frozen=True)
class ProcessDeps:
    """The process's own endpoints.

    :ivar health: returns the health document (``status`` ``healthy``/``degraded``, ``timestamp``,
        ``version``, ``checks``); ``/health`` answers 200 when healthy, else 503.
    :ivar metrics: the ``/metrics`` exposition.
    :ivar reload: reloads the configuration file all-or-nothing (``POST /-/reload``; SIGHUP calls
        the same function).
    """

    health: Callable[[], dict[str, Any]]
    metrics: MetricsExposition
    reload: Callable[[], ReloadResult]


@dataclass(frozen=True)
class QueryDeps:
    """Probes, rules and PromQL queries.

    :ivar probes: returns the running probes (a reload replaces them).
    :ivar rules: the rule manager (reloaded in place).
    :ivar engine: the PromQL engine ad-hoc queries run on.
    :ivar catalog: the series index (``/api/v1/labels``, ``/label/{name}/values``, ``/series``);
        ``None`` leaves those routes out.
    :ivar metadata: returns ``{metric family: [{"type", "help", "unit"}]}`` (``/api/v1/metadata``): the
        scrape targets' families and the daemon's own.
    :ivar target_metadata: returns ``[(target labels, {family: {"type", "help", "unit"}})]``, one per
        scrape target (``/api/v1/targets/metadata``).
    :ivar status: the status API's views; ``None`` leaves ``/api/v1/status/*`` and ``/targets`` out.
    """

    probes: Callable[[], ProbeViews]
    rules: RuleViews
    engine: QueryEngine
    catalog: SeriesCatalog | None = None
    metadata: Callable[[], dict[str, list[dict[str, str]]]] = dict
    target_metadata: Callable[[], list[tuple[dict[str, str], dict[str, dict[str, str]]]]] = list
    status: StatusDeps | None = None


@dataclass(frozen=True)
class AlertingDeps:
    """Acknowledgements, silences, intake, Slack actions and signed links.

    :ivar ports: returns the leader's alert pipeline, or ``None`` on a follower (the alerting
        routes then answer 503 ``alerting is not running``).
    :ivar claims: returns the state store that remembers Slack request signatures (replay
        cache), or ``None`` while none is open; then a per-process memory is used, which a
        restart forgets.
    :ivar route: returns the running routing tree (:class:`monitor.alerting.route.Route`), or
        ``None`` without one (``/api/v2/alerts/groups`` groups as it does).
    :ivar receivers: returns the configured receiver names (``/api/v2/receivers``).
    :ivar status: returns Alertmanager's ``alertmanagerStatus`` (``/api/v2/status``: ``cluster``,
        ``config.original``, ``uptime``, ``versionInfo``).
    """

    ports: Callable[[], AlertingPorts | None]
    claims: Callable[[], OnceClaims | None] = lambda: None
    route: Callable[[], Any] = lambda: None
    receivers: Callable[[], list[str]] = list
    status: Callable[[], dict[str, Any]] = dict


@dataclass(frozen=True)
class ConsoleDeps:
    """What the web console (``/ui/``) reads beyond the other groups.

    :ivar settings: returns the running ``console:`` settings (users, session key and lifetime;
        :class:`monitor.config.console.ConsoleConfig`), read on every request.
    :ivar oncall: returns who is on call at a Unix time: ``[{"schedule", "person"}]`` (person
        ``None`` when nobody is), one entry per configured schedule.
    :ivar maintenance: returns the next (or current) maintenance window at a Unix time:
        ``{"name", "start", "end"}`` in Unix seconds, or ``None`` when none is configured.
    :ivar users: reads the console users kept in the state store (:func:`monitor.store.users.read_users`:
        ``{username: {"password_hash", "role", ...}}``), or ``None`` without a store.
    """

    settings: Callable[[], Any]
    users: Callable[[], Awaitable[dict[str, dict[str, Any]]]] | None = None
    oncall: Callable[[float], list[dict[str, Any]]] = lambda now: []
    maintenance: Callable[[float], dict[str, Any] | None] = lambda now: None


def _no_settings() -> ApiSettings:
    return NoApiSettings()


@dataclass(frozen=True)
class ApiDeps:
    """Everything the API reads; a group left ``None`` leaves its routes out.

    :ivar settings: returns the running ``api:`` settings (read on every request, so a reload's
        tokens and keys apply at once); by default nothing is configured.
    """

    settings: Callable[[], ApiSettings] = _no_settings
    process: ProcessDeps | None = None
    queries: QueryDeps | None = None
    alerting: AlertingDeps | None = None
    #: on-call schedules, overrides and feeds (``monitor.api.oncall.OnCallDeps``); ``None`` leaves them out
    oncall: Any = None
    #: the public status page (``monitor.api.statuspage.StatusPageDeps``); ``None`` leaves it out
    status_page: Any = None
    console: ConsoleDeps | None = None


def deps_of(request: Request) -> ApiDeps:
    """Return the :class:`ApiDeps` the app serving ``request`` was built with."""
    deps: ApiDeps = request.app.state.deps
    return deps


def process_deps(request: Request) -> ProcessDeps:
    """Return the :class:`ProcessDeps` of the app (its routes are mounted only when it has them)."""
    group = deps_of(request).process
    assert group is not None, "process routes mounted without ProcessDeps"
    return group


def query_deps(request: Request) -> QueryDeps:
    """Return the :class:`QueryDeps` of the app (its routes are mounted only when it has them)."""
    group = deps_of(request).queries
    assert group is not None, "query routes mounted without QueryDeps"
    return group


def alerting_deps(request: Request) -> AlertingDeps:
    """Return the :class:`AlertingDeps` of the app (its routes are mounted only when it has them)."""
    group = deps_of(request).alerting
    assert group is not None, "alerting routes mounted without AlertingDeps"
    return group


def running_ports(request: Request) -> AlertingPorts:
    """Return the leader's alert pipeline.

    :raises ApiError: 503 ``alerting is not running`` on a follower.
    """
    ports = alerting_deps(request).ports()
    if ports is None:
        raise ApiError(503, "alerting is not running")
    return ports
