"""Config sections for receivers (Slack, PagerDuty, webhook, email) and the state store.

Names follow Alertmanager's receiver configuration (``config/notifiers.go``:
``slack_configs``, ``pagerduty_configs``, ``webhook_configs``, ``email_configs``), so a
team that knows Alertmanager reads these without a manual::

    receivers:
      - name: ops-critical
        slack_configs:
          - channel: "#incidents"
            token: ${SLACK_BOT_TOKEN}
        pagerduty_configs:
          - routing_key: ${PD_ROUTING_KEY}
      - name: ops-warning
        slack_configs: [{channel: "#alerts", send_resolved: true}]
        email_configs:
          - to: oncall@example.com
            from: monitor@example.com
            smarthost: smtp.example.com:587
            auth_username: monitor
            auth_password: ${SMTP_PASSWORD}
        webhook_configs:
          - url: https://hooks.example.com/alerts
            hmac_secret: ${WEBHOOK_SECRET}
            max_alerts: 20
    state:
      backend: sqlite           # or postgres
      path: /var/lib/codebook-monitor/state.db
      # dsn: ${MONITOR_STATE_DSN}
      # schema: monitor

Secrets are :class:`pydantic.SecretStr`: their ``repr``/``str`` print ``**********``.

These are data only: :func:`monitor.notify.registry.build_integrations` turns them into
notifiers (as Alertmanager's ``config/receiver`` does), so this module imports nothing of notify.
"""

from __future__ import annotations

from typing import Literal

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


def _not_empty(v: SecretStr, what: str) -> SecretStr:
    if not v.get_secret_value().strip():
        raise ValueError(f"must not be empty: {what}")
    return v


def _url_problem(text: str) -> str | None:
    """Say what keeps ``text`` from being an http(s) URL with a host, without quoting it (it may hold a
    token); ``None`` when it is one."""
    try:
        parts = urlsplit(text.strip())
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not parts.scheme:
        return "no http:// or https:// scheme"
    if parts.scheme not in ("http", "https"):
        return f'scheme "{parts.scheme}", not http or https'
    if not parts.hostname:
        return "no host"
    return None


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Seconds one delivery attempt may take (connect + send + response).
    timeout: float = Field(10.0, gt=0)


class SlackConfig(_Channel):
    """One ``slack_configs`` entry: a bot token posting with ``chat.postMessage``.

    :param channel: default destination (``#name`` or ``C0123``); escalation messages name a
        user id (``U0123``) instead, which becomes a DM.
    :param token: a bot token (``xoxb-...``) with ``chat:write`` and ``im:write``.
    :param api_url: the Slack Web API base URL (tests point it at a local server).
    """

    channel: str = ""
    token: SecretStr
    api_url: str = "https://slack.com/api/"
    send_resolved: bool = True
    username: str = ""
    icon_emoji: str = ""

    @field_validator("api_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        return _not_empty(v, "a Slack bot token (xoxb-...) with chat:write and im:write")


class PagerDutyConfig(_Channel):
    """One ``pagerduty_configs`` entry (Events API v2).

    :param routing_key: the integration key of a PagerDuty service (a secret).
    :param url: the Events API base; events go to ``{url}/v2/enqueue``.
    :param severity: used when the alert has no usable ``severity`` label.
    """

    routing_key: SecretStr
    url: str = "https://events.pagerduty.com"
    severity: Literal["critical", "error", "warning", "info"] = "error"
    send_resolved: bool = True
    source: str = "codebook-monitor"

    @field_validator("routing_key")
    @classmethod
    def _key(cls, v: SecretStr) -> SecretStr:
        return _not_empty(v, "the integration key of a PagerDuty service (Events API v2)")


class WebhookConfig(_Channel):
    """One ``webhook_configs`` entry: Alertmanager webhook JSON (version 4) by POST.

    :param url: the endpoint; may carry a token, hence secret.
    :param hmac_secret: when set, requests are signed (see :mod:`monitor.notify.webhook`).
    :param max_alerts: at most this many alerts per message; 0 means all.
    """

    url: SecretStr
    hmac_secret: SecretStr | None = None
    max_alerts: int = Field(0, ge=0)
    send_resolved: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: SecretStr) -> SecretStr:
        problem = _url_problem(v.get_secret_value())
        if problem:
            raise ValueError(f"expected an http(s) URL such as https://hooks.example.com/alerts: {problem} "
                             "(the value is not shown: it may hold a token)")
        return v


class EmailConfig(_Channel):
    """One ``email_configs`` entry (SMTP).

    :param to: default recipient(s), comma-separated.
    :param from_: the From address (``from`` in YAML).
    :param smarthost: ``host:port`` of the SMTP server.
    :param require_tls: issue STARTTLS and fail without it (Alertmanager default ``true``).
    """

    to: str = ""
    from_: str = Field(alias="from")
    smarthost: str
    auth_username: str = ""
    auth_password: SecretStr | None = None
    require_tls: bool = True
    send_resolved: bool = True
    hello: str = "localhost"

    @field_validator("smarthost")
    @classmethod
    def _hostport(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port")
        return v

    @property
    def host(self) -> str:
        """The SMTP host."""
        return self.smarthost.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The SMTP port."""
        return int(self.smarthost.rpartition(":")[2])


class ReceiverConfig(BaseModel):
    """One entry of ``receivers:``: a name and any number of channel entries."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    slack_configs: list[SlackConfig] = []
    pagerduty_configs: list[PagerDutyConfig] = []
    webhook_configs: list[WebhookConfig] = []
    email_configs: list[EmailConfig] = []


#: Config field -> channel kind; every kind must have an entry in ``monitor.notify.CHANNELS``.
CHANNEL_FIELDS: dict[str, str] = {
    name[: -len("_configs")]: name for name in ReceiverConfig.model_fields if name.endswith("_configs")
}


class StateConfig(BaseModel):
    """The ``state:`` section of monitor.yaml (durable state store).

    :param backend: ``sqlite`` (default; one file, WAL) or ``postgres`` (for two replicas).
    :param path: the SQLite file.
    :param dsn: the PostgreSQL DSN (a secret: it may hold a password).
    :param schema: PostgreSQL schema to use (``search_path``); ``None`` for the default.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "monitor-state.db"
    dsn: SecretStr | None = None
    schema_: str | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _dsn_for_postgres(self) -> "StateConfig":
        if self.backend == "postgres" and self.dsn is None:
            raise ValueError("dsn is required when backend is postgres")
        return self

