"""``remote_write:`` and ``rules.datasource:`` of ``monitor.yaml``: samples out to a
Prometheus-compatible store, and rules evaluated against its query API (:mod:`monitor.remote`).

Names follow Prometheus's ``remote_write`` configuration (``url``, ``name``, ``headers``,
``remote_timeout``, ``queue_config.max_samples_per_send``, ``min_backoff``, ``max_backoff``) and
vmalert's ``-datasource.url`` / ``-rule.evalDelay``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from model.duration import Duration, PositiveDuration
from monitor.config.validation import LabelMap, Section, located_error, unique_by

__all__ = ["QueueConfig", "RemoteWriteConfig", "RemoteWriteList", "DatasourceConfig", "PartialResponse"]

#: What a rule group does with a result the store marks partial (``"isPartial": true``, a
#: VictoriaMetrics cluster with a storage node down; Thanos's ``partial_response_strategy``):
#: ``abort`` fails the evaluation (alerts keep their state), ``warn`` uses it and logs.
PartialResponse = Literal["abort", "warn"]

_HTTP = re.compile(r"^https?://[^/\s]+")


def _check_url(v: str) -> str:
    if not _HTTP.match(v):
        raise ValueError("expected an http(s) URL such as http://127.0.0.1:8428/api/v1/write")
    return v


def default_name(url: str) -> str:
    """Return the name a ``remote_write`` entry without ``name`` gets: the URL's host and port
    (never its path or credentials, which may hold a token)."""
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "remote"


class QueueConfig(Section):
    """``remote_write[].queue_config`` — batching, retries and the on-disk queue.

    :ivar max_samples_per_send: most samples in one request (default 2000).
    :ivar min_backoff: first retry delay, seconds (default 30ms); doubled per failure.
    :ivar max_backoff: longest retry delay, seconds (default 5s).
    :ivar max_bytes: most queued payload bytes (about 50 bytes a sample, its labels included:
        measured by ``benchmarks/remote_write_bench.py``) before the oldest are dropped and counted
        (default 256 MiB: about 5 M samples, 45 minutes of outage at 2,000 samples/s); on disk
        and in memory.
    :ivar path: the queue's directory, relative to the config file's directory; default
        ``<tsdb.path>/remote/<name>`` when ``tsdb.path`` is set, else in memory only (lost at a
        restart).
    """

    max_samples_per_send: int = Field(2000, gt=0)
    min_backoff: PositiveDuration = 0.03
    max_backoff: PositiveDuration = 5.0
    max_bytes: int = Field(256 << 20, ge=1 << 16)
    path: str | None = None


class RemoteWriteConfig(Section):
    """``remote_write[]`` — one endpoint speaking the Prometheus remote-write protocol 1.0.

    :ivar url: e.g. ``http://127.0.0.1:8428/api/v1/write`` (VictoriaMetrics),
        ``http://127.0.0.1:9090/api/v1/write`` (Prometheus with ``--web.enable-remote-write-receiver``),
        ``http://mimir:8080/api/v1/push``.
    :ivar name: the ``remote_name`` label of ``monitor_remote_write_*`` (default: the URL's host:port).
    :ivar headers: extra request headers (``X-Scope-OrgID`` for Mimir); values are secrets
        (``Authorization``), never logged.
    :ivar external_labels: labels added to every series sent (its own labels win), e.g.
        ``{replica: a}``; default: ``rules.external_labels``.
    :ivar remote_timeout: seconds per request (default 30s).
    :ivar queue_config: :class:`QueueConfig`.
    """

    url: str
    name: str = ""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    external_labels: LabelMap | None = None
    remote_timeout: PositiveDuration = 30.0
    queue_config: QueueConfig = Field(default_factory=QueueConfig)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @model_validator(mode="after")
    def _defaults(self) -> RemoteWriteConfig:
        if not self.name:
            self.name = default_name(self.url)
        elif not re.fullmatch(r"[A-Za-z0-9_.:-]+", self.name):
            raise located_error([(("name",), f"name {self.name!r} may hold only letters, digits and _.:-")])
        if self.queue_config.min_backoff > self.queue_config.max_backoff:
            raise located_error([(("queue_config", "min_backoff"), "min_backoff must not exceed max_backoff")])
        return self


#: ``remote_write:`` — names unique (two entries to one host need a ``name`` each).
RemoteWriteList = Annotated[list[RemoteWriteConfig], unique_by("name", "remote_write name")]


class DatasourceConfig(Section):
    """``rules.datasource`` — evaluate every rule group through a store's Prometheus HTTP query
    API instead of the local engine (the vmalert model; :mod:`monitor.remote.datasource`).

    :ivar url: the API's base, e.g. ``http://127.0.0.1:8428`` (VictoriaMetrics),
        ``http://127.0.0.1:9090`` (Prometheus), ``http://mimir:8080/prometheus``; queries go to
        ``<url>/api/v1/query``, by POST form.
    :ivar headers: extra request headers (``X-Scope-OrgID``, ``Authorization``); secrets.
    :ivar query_offset: seconds every query is shifted back, for the store's ingestion lag
        (vmalert ``-rule.evalDelay``; a group's own ``query_offset`` is added) (default 0).
    :ivar timeout: seconds per query (default 10s); a timeout fails that rule's evaluation.
    :ivar partial_response: default for groups: ``abort`` (default) or ``warn``.
    :ivar group_partial_response: per group name, overriding ``partial_response``.
    :ivar restore_for_state: at start, restore pending ``for`` timers from the store's
        ``ALERTS_FOR_STATE`` series (as vmalert does) when the state store has none (default true).
    """

    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query_offset: Duration = 0.0
    timeout: PositiveDuration = 10.0
    partial_response: PartialResponse = "abort"
    group_partial_response: dict[str, PartialResponse] = Field(default_factory=dict)
    restore_for_state: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not _HTTP.match(v):
            raise ValueError("expected an http(s) URL such as http://127.0.0.1:8428")
        return v.rstrip("/")
