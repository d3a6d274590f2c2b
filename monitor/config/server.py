"""``server:`` and ``log:`` — where the daemon listens, the URL people reach it at, and its logging."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from model.secrets import shown_url
from monitor.config.validation import Section

__all__ = ["LogConfig", "LogLevel", "ServerConfig"]


class ServerConfig(Section):
    """``server:`` — the daemon's HTTP server.

    :ivar host: listen address (default ``127.0.0.1``; ``0.0.0.0`` for all interfaces).
    :ivar port: listen TCP port (default ``9115``, blackbox_exporter's).
    :ivar external_url: the URL people reach this daemon at, used in links (acknowledge/resolve
        links in pages, Slack and email; ``externalURL`` of webhooks): Alertmanager's
        ``--web.external-url``. Default, resolved at load: ``http://<host>:<port>``
        (``127.0.0.1`` when listening on all interfaces), following ``--port``
        (:meth:`listen_on`). No trailing slash.
    """

    host: str = "127.0.0.1"
    port: int = Field(9115, ge=0, le=65535)
    external_url: str = ""

    #: Whether ``external_url`` was set in the file (else it follows the listen port).
    _url_configured: bool = PrivateAttr(default=False)

    @field_validator("external_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"expected an http(s) URL such as https://monitor.example.com, got {shown_url(v)}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _default_url(self) -> ServerConfig:
        self._url_configured = bool(self.external_url)
        if not self.external_url:
            self.external_url = self._derived_url()
        return self

    def _derived_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def external_url_configured(self) -> bool:
        """Whether ``external_url`` was given in the file (else it is derived from host and port)."""
        return self._url_configured

    def listen_on(self, port: int | None) -> None:
        """Apply a ``--port`` override: the daemon listens on ``port``, and a derived ``external_url``
        (links in pages, Slack messages and emails) follows it; a configured one is kept
        (Alertmanager's ``--web.external-url``: the address people reach, e.g. behind a proxy).

        :param port: the TCP port, or ``None`` to keep ``server.port``.
        """
        if port is None:
            return
        self.port = port
        if not self._url_configured:
            self.external_url = self._derived_url()

    def bound_to(self, port: int) -> None:
        """Record the port the server actually listens on (the one the system chose for port 0):
        a derived ``external_url`` names it instead of ``:0``; ``port`` keeps the configured value.

        :param port: the bound TCP port.
        """
        if not self._url_configured and self.port == 0:
            self.external_url = self._derived_url().rsplit(":", 1)[0] + f":{port}"


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogConfig(Section):
    """``log:`` — JSON-lines logging (monitor.logging).

    :ivar level: ``DEBUG`` | ``INFO`` | ``WARNING`` | ``ERROR`` | ``CRITICAL`` (case-insensitive;
        default ``INFO``).
    """

    level: Annotated[LogLevel, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"
