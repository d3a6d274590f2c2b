"""The pydantic model of ``monitor.yaml``: one validated, fully defaulted :class:`Config`.

Every section forbids unknown keys. Defaults are resolved here, once, at load (STYLE 8):
runtime code reads concrete values (seconds as ``float``, URLs as ``str``) and never tests for
``None``. Durations are Prometheus-style strings (``30s``, ``5m``) parsed to float seconds
(:func:`model.duration.parse_duration`).

Cross-field checks (unique names, ``timeout <= interval``) raise errors located at the exact key
(:func:`~monitor.config.validation.located_error`), so the loader can print
``monitor.yaml:14:5: probes[2].timeout: ...``. Sections owned by other parts live in their own
modules (``alerting``, ``receivers``, ``state``, ``tsdb``); the shared validation helpers are in
:mod:`monitor.config.validation`.

Usage::

    config = load_config("monitor.yaml")          # monitor.config.loader
    config.server.port                             # 9115
    config.probes[0].interval                      # 30.0 (seconds)
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from model.duration import Duration, PositiveDuration, format_duration
from model.secrets import shown_url
from monitor.config.statuspage import StatusPageConfig, validate_status_page_refs
from monitor.config.alerting import AlertingConfig, validate_alerting_refs
from monitor.config.cluster import ClusterConfig, cluster_problems
from monitor.config.console import ConsoleConfig
from monitor.config.server import LogConfig, ServerConfig
from monitor.config.receivers import ReceiverConfig, StateConfig
from monitor.config.tsdb import TSDBConfig
from monitor.config.remote import DatasourceConfig, RemoteWriteConfig, RemoteWriteList
from monitor.config.validation import (
    LabelMap, Section, error_detail, located_error, parse_path, reraise_details, unique_by,
)
from monitor.slo.model import SLO
from probes import PROBES
from probes.base import ByteSize, ProbeSettings

# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _is_http_url(v: str) -> str:
    if not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000/metrics, got {shown_url(v)}")
    return v


class ScrapeTarget(Section):
    """One entry of ``scrape:`` — a Prometheus ``/metrics`` endpoint to scrape.

    :ivar name: the ``job`` label; unique among targets.
    :ivar url: full URL of the exposition endpoint, e.g. ``http://127.0.0.1:8000/metrics``.
    :ivar interval: seconds between scrapes (default 15).
    :ivar timeout: seconds before a scrape fails (default 10; must be <= interval).
    :ivar labels: extra labels put on every scraped sample.
    :ivar honor_labels: keep the target's own labels on conflict (Prometheus ``honor_labels``).

    Limits, Prometheus ``scrape_config`` names and semantics (past one the whole scrape fails
    with ``up`` 0 and nothing of it is stored; ``0`` means no limit). Prometheus defaults to no
    limit; this daemon is also the pager, in one process, so a target may cost it only a bounded
    share: the defaults are far above what an application exposes (a few thousand series) and
    far below what hurts (a 1,000,000-series target took seconds of the event loop per scrape).

    :ivar body_size_limit: uncompressed bytes of the body (default 16MiB: 50,000 samples of ~300
        bytes); reading stops there.
    :ivar sample_limit: samples per scrape (default 50,000, a quarter of ``tsdb.max_series``);
        parsing stops at the next.
    :ivar label_limit: labels per series, ``__name__``, ``job`` and ``instance`` included (default 64).
    :ivar label_name_length_limit: characters per label name (default 256).
    :ivar label_value_length_limit: characters per label value (default 4096).
    """

    name: str = Field(min_length=1)
    url: Annotated[str, AfterValidator(_is_http_url)]
    interval: PositiveDuration = 15.0
    timeout: PositiveDuration = 10.0
    labels: LabelMap = Field(default_factory=dict)
    honor_labels: bool = False
    body_size_limit: ByteSize = 16 << 20
    sample_limit: int = Field(50_000, ge=0)
    label_limit: int = Field(64, ge=0)
    label_name_length_limit: int = Field(256, ge=0)
    label_value_length_limit: int = Field(4096, ge=0)

    @model_validator(mode="after")
    def _timeout(self) -> ScrapeTarget:
        if self.timeout > self.interval:
            raise located_error([(("timeout",), _timeout_msg(self.timeout, self.interval))])
        return self


def _timeout_msg(timeout: float, interval: float) -> str:
    return f"timeout {format_duration(timeout)} must not exceed interval {format_duration(interval)}"


#: ``rules.promql_compat`` and ``rules.enable_features`` (monitor.promql.compat).
PromqlCompat = Literal["2", "3"]
PromqlFeature = Literal["promql-experimental-functions", "promql-duration-expr", "promql-delayed-name-removal"]


class RulesConfig(Section):
    """``rules:`` — Prometheus rule files and their evaluation.

    :ivar files: glob patterns of rule files, relative to the config file's directory
        (see :meth:`Config.resolved_rule_files`).
    :ivar evaluation_interval: default group interval in seconds (default 15).
    :ivar external_labels: labels added to alerts and available as ``$externalLabels``.
    :ivar resolved_retention: seconds a resolved alert stays visible (default 15m = 900).
    :ivar query_max_series: a query selecting more series fails with a clear error (default 10000).
    :ivar query_max_samples: most samples one query may hold in memory (loaded, subquery and
        range-query points), like Prometheus ``--query.max-samples``; more fails the query (HTTP
        422 ``execution``) (default 5000000).
    :ivar query_timeout: seconds one query may run, like ``--query.timeout``; then it fails
        (HTTP 503 ``timeout``) (default 10s). Both apply to rule evaluations too.
    :ivar outage_tolerance: alert state (pending ``for`` timers, firing alerts) persisted more
        than this long before a restart is not restored, like Prometheus
        ``--rules.alert.for-outage-tolerance`` (default 1h = 3600).
    :ivar for_grace_period: after a restart, a rule whose ``for`` is longer than this has at
        least this much of its ``for`` left, like ``--rules.alert.for-grace-period``
        (default 10m = 600).
    :ivar resend_delay: a firing alert is handed to the alert pipeline with ``endsAt = now + 4 *
        max(group interval, resend_delay)`` at each evaluation and resolves there if that passes
        without a refresh (a rule or group removed, or the alert orphaned by a restart or an
        ``external_labels`` change), like Prometheus ``--rules.alert.resend-delay`` (default 1m = 60).
    :ivar promql_compat: ``"3"`` (default): Prometheus 3 PromQL (left-open range and lookback
        windows, no ``holt_winters``); ``"2"``: Prometheus 2.53's. Read at start.
    :ivar enable_features: PromQL feature flags, named as Prometheus's ``--enable-feature``:
        ``promql-experimental-functions``, ``promql-duration-expr``,
        ``promql-delayed-name-removal`` (3.x only: not with ``promql_compat: "2"``). Read at start.
    :ivar datasource: evaluate the rules through a remote store's query API instead of the
        local engine (:class:`~monitor.config.remote.DatasourceConfig`); ``None`` (default): local.
        Read at start.
    """

    files: list[str] = Field(default_factory=list)
    evaluation_interval: PositiveDuration = 15.0
    external_labels: LabelMap = Field(default_factory=dict)
    resolved_retention: Duration = 900.0
    query_max_series: int = Field(10_000, gt=0)
    query_max_samples: int = Field(5_000_000, gt=0)
    query_timeout: PositiveDuration = 10.0
    outage_tolerance: PositiveDuration = 3600.0
    for_grace_period: Duration = 600.0
    resend_delay: PositiveDuration = 60.0
    promql_compat: PromqlCompat = "3"
    enable_features: list[PromqlFeature] = Field(default_factory=list)
    datasource: DatasourceConfig | None = None

    @field_validator("promql_compat", mode="before")
    @classmethod
    def _compat_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("enable_features")
    @classmethod
    def _features_of_compat(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("promql_compat") == "2" and "promql-delayed-name-removal" in v:
            raise ValueError('promql-delayed-name-removal is a Prometheus 3 feature: it needs promql_compat "3"')
        return v


#: What an API token may do (``api.tokens[].scopes``); the README's "HTTP API" table names the
#: scope each endpoint needs.
ApiScope = Literal["read", "ack", "admin", "intake"]

#: The scopes of a token that lists none: read the views and act on alerts, never reload or post
#: alerts (``admin`` and ``intake`` are always given explicitly).
DEFAULT_TOKEN_SCOPES: tuple[ApiScope, ...] = ("read", "ack")


class ApiToken(Section):
    """One bearer token accepted by the HTTP API.

    :ivar name: who the token belongs to (the actor in the audit log and in logs); unique.
    :ivar token: the secret (``token`` or ``token_file``, or ``${ENV}``); stored hashed at runtime.
    :ivar scopes: what it may do: ``read`` (views that need a token), ``ack`` (acknowledge,
        unacknowledge, resolve, create and expire silences), ``admin`` (``POST /-/reload``),
        ``intake`` (``POST /api/v2/alerts`` and the Alertmanager webhook). Default
        ``[read, ack]``: ``admin`` and ``intake`` are never implied.
    """

    name: str = Field(min_length=1)
    token: SecretStr
    scopes: list[ApiScope] = Field(default_factory=lambda: list(DEFAULT_TOKEN_SCOPES), min_length=1)


class NotifyConfig(Section):
    """``notify:`` — message templates.

    :ivar templates_dir: a folder of Jinja2 templates overriding the defaults by file name
        (``slack_text.j2``, ``email_subject.j2``, ... as in ``monitor/notify/templates/``);
        relative to the config file's folder.
    """

    templates_dir: str | None = None


class ApiConfig(Section):
    """``api:`` — authentication and authorisation of the HTTP API.

    :ivar tokens: accepted bearer tokens, each with its scopes (none by default: every endpoint
        that needs a token answers 401).
    :ivar read_requires_token: when true, every read view (``/metrics``, ``/api/v1/*`` views,
        ``/api/v2/alerts``, silences) needs a token with the ``read`` scope; by default they are
        open, as Prometheus's and Alertmanager's are. ``/health``, ``/-/healthy``, ``/-/ready``
        and ``/api/openapi.json`` stay open either way.
    :ivar intake_open: when true, ``POST /api/v2/alerts`` and ``POST /api/v1/intake/alertmanager``
        take alerts without a token (anyone who reaches the port can raise alerts, and resolve the
        ones its address raised);
        by default they need a token with the ``intake`` scope.
    :ivar slack_signing_secret: Slack app signing secret; verifies ``POST /api/v1/slack/actions``
        (the endpoint answers 404 without it).
    :ivar link_key: HMAC key of the signed acknowledge/resolve links in pages and emails (no links
        without it).
    :ivar link_ttl: how long a signed link stays valid (seconds; default 24h).
    :ivar intake_drop_labels: label names removed from every alert the intake takes, before its
        fingerprint is computed (e.g. ``[prometheus, prometheus_replica]``: the same alert from
        two HA Prometheus replicas is then one alert); default none.
    """

    tokens: Annotated[list[ApiToken], unique_by("name", "token name")] = Field(default_factory=list)
    intake_drop_labels: list[str] = Field(default_factory=list)
    read_requires_token: bool = False
    intake_open: bool = False
    slack_signing_secret: SecretStr | None = None
    link_key: SecretStr | None = None
    link_ttl: PositiveDuration = 86400.0


class HealthConfig(Section):
    """``health:`` — when ``GET /health`` reports the paging path ``degraded`` (self-monitoring).

    Rule evaluation is degraded when a group has not been evaluated for 3 times its interval;
    notification delivery by the thresholds here. The heartbeat stops on the same checks.

    :ivar outbox_max_age: a notification still undelivered this long after it was due (seconds;
        default 2m) makes the ``outbox`` check degraded.
    :ivar outbox_max_attempts: so does a pending notification whose delivery failed this many
        times (default 5), however young: retries that keep failing.
    """

    outbox_max_age: PositiveDuration = 120.0
    outbox_max_attempts: int = Field(5, gt=0)


HeartbeatMethod = Literal["GET", "POST"]


class HeartbeatConfig(Section):
    """``heartbeat:`` — an outgoing HTTP request every ``interval`` to an external dead-man's
    switch (a healthchecks.io-style check), sent only while the paging path works (see
    :mod:`monitor.daemon.heartbeat`): when the daemon dies or stalls, the requests stop and the
    external service pages.

    :ivar url: the ping URL, e.g. ``https://hc-ping.com/<uuid>``; a secret (a ping URL lets anyone
        who knows it keep the check green): ``${ENV}`` or ``url_file``; never logged whole.
    :ivar method: ``GET`` (default) or ``POST`` (a short status line as the body).
    :ivar interval: seconds between requests (default 30s).
    :ivar timeout: seconds one request may take (default 5s; at most ``interval``).
    :ivar max_scheduler_lag: requests stop while jobs start later than this (seconds; default
        10s) — an event loop that busy cannot keep probe and rule schedules.
    """

    url: SecretStr
    method: Annotated[HeartbeatMethod, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "GET"
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    max_scheduler_lag: PositiveDuration = 10.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: SecretStr) -> SecretStr:
        # The value is a secret: the message must not quote it.
        if not re.match(r"^https?://[^/\s]+", v.get_secret_value()):
            raise ValueError("expected an http(s) URL such as https://hc-ping.com/<uuid>")
        return v

    @model_validator(mode="after")
    def _timeout(self) -> HeartbeatConfig:
        if self.timeout > self.interval:
            raise located_error([(("timeout",), _timeout_msg(self.timeout, self.interval))])
        return self


# --------------------------------------------------------------------------------------------
# Probes: a union over the PROBES registry, discriminated by ``kind``, looked up at validation
# time so kinds registered after import (tests, plugins) are accepted.
# --------------------------------------------------------------------------------------------


def probe_settings_class(kind: Any) -> type[ProbeSettings] | None:
    """Return the ``Settings`` model of probe ``kind``, or ``None`` when it is not registered."""
    if not isinstance(kind, str) or kind not in PROBES:
        return None
    return PROBES[kind].Settings


def _known_kinds() -> str:
    return ", ".join(sorted(PROBES)) if PROBES else "none registered"


def _validate_probes(value: Any) -> list[ProbeSettings]:
    if not isinstance(value, list):
        raise located_error([((), f"expected a list, got {_kind_of(value)}")])
    details: list[InitErrorDetails] = []
    out: list[ProbeSettings] = []
    for i, item in enumerate(value):
        if isinstance(item, ProbeSettings):
            out.append(item)
            continue
        if not isinstance(item, dict):
            details.append(error_detail((i,), f"expected a mapping, got {_kind_of(item)}", item))
            continue
        if "kind" not in item:
            details.append(error_detail((i, "kind"), "field required", item))
            continue
        cls = probe_settings_class(item["kind"])
        if cls is None:
            details.append(error_detail((i, "kind"), f'unknown probe kind "{item["kind"]}" '
                                                f"(known kinds: {_known_kinds()})", item["kind"]))
            continue
        try:
            settings = cls.model_validate(item)
        except ValidationError as exc:
            details.extend(reraise_details(exc, (i,)))
            continue
        if settings.timeout > settings.interval:
            details.append(error_detail((i, "timeout"), _timeout_msg(settings.timeout, settings.interval)))
        out.append(settings)
    if details:
        raise ValidationError.from_exception_data("Config", details)
    return out


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f'"{value}"'


ProbeList = Annotated[
    list[SerializeAsAny[ProbeSettings]],
    PlainValidator(_validate_probes),
    unique_by("name", "probe name"),
]


# --------------------------------------------------------------------------------------------
# The whole file
# --------------------------------------------------------------------------------------------


class Config(Section):
    """The whole of ``monitor.yaml``, validated and defaulted.

    Build it with :func:`monitor.config.loader.load_config` (positions in errors, ``${ENV}`` and
    ``*_file`` secrets); ``Config.model_validate(dict)`` works too, without those.

    :ivar server: HTTP server (:class:`ServerConfig`).
    :ivar log: logging (:class:`LogConfig`).
    :ivar probes: synthetic probes, each the ``Settings`` model of its ``kind`` (names unique).
    :ivar scrape: ``/metrics`` targets (:class:`ScrapeTarget`, names unique).
    :ivar tsdb: sample store (:class:`~monitor.config.tsdb.TSDBConfig`).
    :ivar remote_write: endpoints every stored sample is also sent to
        (:class:`~monitor.config.remote.RemoteWriteConfig`); read at start.
    :ivar rules: rule files and evaluation (:class:`RulesConfig`).
    :ivar alerting: routing, inhibition, silences, escalation (``monitor.config.alerting``).
    :ivar receivers: notification receivers (``monitor.config.receivers``, names unique).
    :ivar state: durable state store (``monitor.config.receivers.StateConfig``).
    :ivar api: API authentication (:class:`ApiConfig`).
    :ivar console: the web console's users and sessions (:class:`~monitor.config.console.ConsoleConfig`).
    :ivar health: self-monitoring thresholds of ``/health`` (:class:`HealthConfig`).
    :ivar heartbeat: the optional outgoing heartbeat (:class:`HeartbeatConfig`), ``None`` when off.
    :ivar status_page: the public status page (:class:`~monitor.config.statuspage.StatusPageConfig`).
    :ivar slos: service level objectives (:class:`monitor.slo.model.SLO`); ids (``service-name``) unique.
    :ivar slo_files: glob patterns of SLO files (ours, Sloth ``prometheus/v1``, OpenSLO v1), relative
        to the config file's directory; the loader reads them (:meth:`all_slos`).
    :ivar cluster: replicas splitting the probes (:class:`~monitor.config.cluster.ClusterConfig`).
    """

    server: ServerConfig = Field(default_factory=ServerConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    probes: ProbeList = Field(default_factory=list)
    scrape: Annotated[list[ScrapeTarget], unique_by("name", "job name")] = Field(default_factory=list)
    tsdb: TSDBConfig = Field(default_factory=TSDBConfig)
    remote_write: RemoteWriteList = Field(default_factory=list)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    receivers: Annotated[list[ReceiverConfig], unique_by("name", "receiver name")] = Field(default_factory=list)
    state: StateConfig = Field(default_factory=StateConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    heartbeat: HeartbeatConfig | None = None
    slos: list[SLO] = Field(default_factory=list)
    slo_files: list[str] = Field(default_factory=list)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    status_page: StatusPageConfig = Field(default_factory=StatusPageConfig)

    _file_slos: list[SLO] = PrivateAttr(default_factory=list)
    _source_file: Path | None = PrivateAttr(default=None)
    _config_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # ``probes:`` with nothing after it is YAML null: treat an empty section as absent.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        # Routes, schedules and escalation steps name receivers, people and time intervals.
        problems = validate_alerting_refs(self.alerting, {r.name for r in self.receivers})
        problems += cluster_problems(self.cluster, self.state.backend)
        problems += validate_status_page_refs(self.status_page, (p.name for p in self.probes),
                                              (r.name for r in self.receivers if r.email_configs))
        if problems:
            raise located_error([(parse_path(path), message) for path, message in problems])
        seen: set[str] = set()
        for i, rw in enumerate(self.remote_write):  # names default to host:port, so check after defaults
            if rw.name in seen:
                raise located_error([(("remote_write", i, "url"), f'remote_write name "{rw.name}" is used twice: '
                                                                  "give each entry its own name")])
            seen.add(rw.name)
        return self

    @property
    def source_file(self) -> Path | None:
        """The file this config was loaded from (absolute), or ``None`` when built from data."""
        return self._source_file

    @property
    def config_dir(self) -> Path:
        """The directory relative paths (rule files, ``*_file`` secrets) are resolved against."""
        return self._config_dir

    def set_origin(self, source_file: Path | None, config_dir: Path) -> None:
        """Record where this config came from (called by the loader)."""
        self._source_file = source_file
        self._config_dir = config_dir

    def set_file_slos(self, slos: list[SLO]) -> None:
        """Record the SLOs read from :attr:`slo_files` (called by the loader)."""
        self._file_slos = list(slos)

    def all_slos(self) -> list[SLO]:
        """Return every SLO: ``slos:`` first, then those of ``slo_files:`` in file order."""
        return [*self.slos, *self._file_slos]

    def resolved_slo_files(self) -> list[Path]:
        """Expand ``slo_files`` like :meth:`resolved_rule_files` expands ``rules.files``."""
        return expand_rule_files(self.slo_files, self._config_dir)

    def resolved_rule_files(self) -> list[Path]:
        """Expand ``rules.files`` into rule-file paths, relative to :attr:`config_dir`.

        Glob patterns (``*``, ``?``, ``[...]``, ``**``) expand to the files that exist, sorted;
        a plain path is returned even when absent, so loading it reports "no such file".
        Duplicates are dropped, first occurrence kept.

        :return: paths in pattern order, normalised, relative to the working directory when
            inside it (so messages read ``rules/api.yaml:14:9``), absolute otherwise.
        """
        return expand_rule_files(self.rules.files, self._config_dir)

    def resolved_remote_queue_path(self, rw: RemoteWriteConfig) -> Path | None:
        """Return the directory of ``rw``'s queue: its ``queue_config.path`` resolved against
        :attr:`config_dir`, else ``<tsdb.path>/remote/<name>``, else ``None`` (in memory)."""
        if rw.queue_config.path is not None:
            p = Path(rw.queue_config.path).expanduser()
            return p if p.is_absolute() else self._config_dir / p
        tsdb = self.resolved_tsdb_path()
        return tsdb / "remote" / rw.name if tsdb is not None else None

    def resolved_tsdb_path(self) -> Path | None:
        """Return ``tsdb.path`` resolved against :attr:`config_dir` (``None``: samples in memory only)."""
        if self.tsdb.path is None:
            return None
        p = Path(self.tsdb.path).expanduser()
        return p if p.is_absolute() else self._config_dir / p


def expand_rule_files(patterns: list[str], config_dir: Path) -> list[Path]:
    """Expand rule-file glob ``patterns`` relative to ``config_dir`` (see :meth:`Config.resolved_rule_files`)."""
    out: list[Path] = []
    for pattern in patterns:
        full = Path(pattern) if Path(pattern).is_absolute() else config_dir / pattern
        if glob.has_magic(str(full)):
            matches = [Path(p) for p in sorted(glob.glob(str(full), recursive=True)) if Path(p).is_file()]
        else:
            matches = [full]
        for m in matches:
            m = _display_path(m)
            if m not in out:
                out.append(m)
    return out


def _display_path(path: Path) -> Path:
    """Normalise ``path``; relative to the working directory when it lies inside it."""
    norm = Path(os.path.normpath(path))
    try:
        return norm.relative_to(Path.cwd())
    except ValueError:
        return norm
