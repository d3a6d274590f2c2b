"""``notices:`` of a maintenance window: who is told of it ahead, how, and when.

The operations guide's maintenance section: email clients 7 days ahead, a reminder 1 hour
before. A window with ``notices`` sends each of its ``before`` notices once per occurrence to
each contact of its ``audience`` through the ``receiver``'s email and Slack integrations
(:mod:`monitor.notify.maintenance_notices`).

Example::

    maintenance_windows:
      - name: monthly-maintenance
        time_intervals: [first-saturday-night]
        notices:
          receiver: client-notices      # its email_configs / slack_configs deliver
          before: [7d, 1h]              # default
          message: Search and recommendations are unavailable during the window.
          audience:
            contacts:
              - {name: Acme, email: ops@acme.example, slack_channel: C0ACME}
            sql:
              dsn: ${DATABASE_URL}
              query: SELECT name, email FROM clients WHERE active
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from model.duration import PositiveDuration
from monitor.config.validation import Section

__all__ = ["MaintenanceNoticesConfig", "AudienceConfig", "ContactConfig", "AudienceQueryConfig"]


class ContactConfig(Section):
    """One client contact: an email address and/or a Slack channel (or user) id.

    :ivar name: shown in the notice (``Dear Acme``); optional.
    :ivar email: address the email integrations send to.
    :ivar slack_channel: channel or user id the Slack integrations post to (``C0ACME``).
    """

    name: str = ""
    email: str | None = None
    slack_channel: str | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> "ContactConfig":
        if not self.email and not self.slack_channel:
            raise ValueError("a contact needs email or slack_channel")
        return self


class AudienceQueryConfig(Section):
    """Contacts read from the backend's database when a notice is due.

    :ivar dsn: PostgreSQL DSN (a secret).
    :ivar search_path: schema(s) to use (``search_path``), optional.
    :ivar query: returns rows with ``email`` and/or ``slack_channel`` columns, and ``name`` optionally.
    :ivar timeout: seconds for connecting and running the query.
    """

    dsn: SecretStr
    search_path: str | None = None
    query: str = Field(min_length=1)
    timeout: PositiveDuration = 10.0


class AudienceConfig(Section):
    """Who is told: ``contacts`` from config, plus the rows of ``sql``.

    :ivar contacts: :class:`ContactConfig` items.
    :ivar sql: :class:`AudienceQueryConfig`, optional.
    """

    contacts: list[ContactConfig] = Field(default_factory=list)
    sql: AudienceQueryConfig | None = None

    @model_validator(mode="after")
    def _someone(self) -> "AudienceConfig":
        if not self.contacts and self.sql is None:
            raise ValueError("audience needs contacts or sql")
        return self


class MaintenanceNoticesConfig(Section):
    """The notices of one maintenance window.

    :ivar receiver: receiver whose ``email`` and ``slack`` integrations send the notices.
    :ivar before: how long before each occurrence's start each notice goes (seconds, distinct;
        default 7 days and 1 hour). When the daemon was down at a notice's time, only the latest
        notice still due before the start is sent (a 7-day notice is never sent an hour before).
    :ivar message: free text added to every notice.
    :ivar audience: :class:`AudienceConfig`.
    """

    receiver: str = Field(min_length=1)
    before: list[PositiveDuration] = Field(default_factory=lambda: [7 * 86400.0, 3600.0], min_length=1)
    message: str = ""
    audience: AudienceConfig

    @field_validator("before")
    @classmethod
    def _distinct(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v):
            raise ValueError("before: durations must be distinct")
        return sorted(v, reverse=True)
