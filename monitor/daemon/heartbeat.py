"""The outgoing heartbeat: an HTTP request every ``heartbeat.interval`` seconds to an external
dead-man's switch (a healthchecks.io-style check), sent only while the paging path works.

A dead process sends nothing, and neither does a stuck one: before each request the heartbeat
asks the paging path's self-checks (:class:`~monitor.daemon.health.PagingPathChecks`: rule
evaluation keeps its schedule, notifications leave the outbox) and the scheduler (no job started
more than ``heartbeat.max_scheduler_lag`` late since the last beat); if any is unhealthy the beat
is skipped. The external service, missing the pings, pages through its own channels — the path
that still works when this daemon does not. The beat itself is a scheduler job, so a scheduler
or event loop that stops running jobs stops the beats too.

The URL is a secret (whoever knows a ping URL can keep the check green): it is never logged
whole, only ``scheme://host/`` and a short prefix of the rest (:func:`shown_url`), and error text
is scrubbed of it (:func:`model.secrets.scrub_secrets`). Responses are not read: the status line
is all that counts (2xx = success).

Metrics: ``monitor_heartbeat_last_success_timestamp_seconds`` and
``monitor_heartbeats_total{outcome="success"|"failure"|"skipped"}``.

Usage (the daemon does this)::

    hb = Heartbeat(lambda: config.heartbeat, http_client, checks, HeartbeatMetrics(registry), lag=lag)
    scheduler.add_interval_job("heartbeat", hb.beat, config.heartbeat.interval)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from model.secrets import scrub_secrets, secret_prefix
from monitor import __version__
from monitor.config.model import HeartbeatConfig
from monitor.daemon.health import PagingPathChecks

log = logging.getLogger("monitor.heartbeat")

#: ``monitor_heartbeats_total`` outcomes: accepted (2xx), not accepted or no answer, not sent.
OUTCOMES = ("success", "failure", "skipped")
#: Leading characters of the secret part of the URL a log line may show.
URL_KEEP = 4


class HeartbeatMetrics:
    """The heartbeat's metrics on an injected registry.

    * ``monitor_heartbeat_last_success_timestamp_seconds``: unix time of the last beat the
      external service accepted (0 before the first);
    * ``monitor_heartbeats_total{outcome}``: beats by outcome — ``success`` (2xx), ``failure``
      (no answer in time, or not 2xx), ``skipped`` (not sent: the paging path is not healthy).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_success = Gauge(
            "monitor_heartbeat_last_success_timestamp_seconds",
            "Unix time of the last heartbeat the external dead-man's switch accepted (0 before the first).",
            registry=registry)
        self.beats = Counter(
            "monitor_heartbeats_total",
            "Heartbeats, by outcome: success (2xx), failure (no answer or not 2xx), skipped (not sent: the "
            "paging path is not healthy).", ["outcome"], registry=registry)
        for outcome in OUTCOMES:
            self.beats.labels(outcome)


class LagWindow:
    """The worst scheduling lag seen since it was last taken (fed by the scheduler's ``on_lag``)."""

    def __init__(self) -> None:
        self._worst = 0.0

    def observe(self, lag: float) -> None:
        """Record one job's start delay in seconds."""
        if lag > self._worst:
            self._worst = lag

    def take(self) -> float:
        """Return the worst lag in seconds since the previous call, and start a new window."""
        worst, self._worst = self._worst, 0.0
        return worst


def shown_url(url: str) -> str:
    """Return what a log line may show of a secret URL: ``scheme://host[:port]/`` and at most
    :data:`URL_KEEP` characters of the rest (:func:`model.secrets.secret_prefix`).

    >>> shown_url("https://hc-ping.com/5f2b9c1e-7d4a-4c1b-9e8f-0a1b2c3d4e5f")
    'https://hc-ping.com/5f2b...'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    rest = (parts.path + (f"?{parts.query}" if parts.query else "")).lstrip("/")
    return f"{parts.scheme}://{host}/" + (secret_prefix(rest, keep=URL_KEEP) if rest else "")


class Heartbeat:
    """Send one heartbeat per call of :meth:`beat` while the paging path is healthy.

    :param settings: returns the current ``heartbeat:`` section, or ``None`` when it is off (read
        at every beat, so a reload applies at once).
    :param http: the shared HTTP client (redirects are not followed).
    :param checks: the paging path's self-checks (:class:`PagingPathChecks`).
    :param metrics: :class:`HeartbeatMetrics`.
    :param lag: the scheduler's lag since the last beat (:class:`LagWindow`), or ``None``.
    :param clock: unix-seconds clock.
    """

    def __init__(self, settings: Callable[[], HeartbeatConfig | None], http: httpx.AsyncClient,
                 checks: PagingPathChecks, metrics: HeartbeatMetrics, *, lag: LagWindow | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self.http = http
        self.checks = checks
        self.metrics = metrics
        self.lag = lag
        self.clock = clock
        #: ``paused`` while the paging path is unhealthy, else ``ok`` / ``failing`` by the last send.
        self.state = "new"

    def blockers(self, settings: HeartbeatConfig, now: float | None = None) -> list[str]:
        """Return why no heartbeat may be sent now (empty: send).

        The paging path's self-checks (``rule_evaluation``, ``outbox``), then the scheduler's
        worst lag since the previous beat against ``max_scheduler_lag``. Takes the lag window.
        """
        now = self.clock() if now is None else now
        reasons = [f"{name}: {cause}" for name, cause in self.checks.problems(now).items()]
        worst = self.lag.take() if self.lag is not None else 0.0
        if worst > settings.max_scheduler_lag:
            reasons.append(f"scheduler: a job started {worst:.1f} s late (limit {settings.max_scheduler_lag:g} s)")
        return reasons

    async def beat(self) -> str:
        """Send one heartbeat unless the paging path is unhealthy; never raises.

        :return: the outcome: ``success``, ``failure``, ``skipped``, or ``off`` (no ``heartbeat:``
            configured; nothing counted).
        """
        settings = self._settings()
        if settings is None:
            return "off"
        shown = shown_url(settings.url.get_secret_value())
        reasons = self.blockers(settings)
        if reasons:
            self.metrics.beats.labels("skipped").inc()
            if self.state != "paused":
                log.warning("heartbeat paused: the paging path is not healthy",
                            extra={"url": shown, "reasons": reasons})
            self.state = "paused"
            return "skipped"
        if self.state == "paused":
            log.info("heartbeat resumed: the paging path is healthy again", extra={"url": shown})
        error = await self._send(settings)
        if error is None:
            self.metrics.beats.labels("success").inc()
            self.metrics.last_success.set(self.clock())
            if self.state in ("new", "failing"):
                log.info("heartbeat delivered", extra={"url": shown, "method": settings.method})
            self.state = "ok"
            return "success"
        self.metrics.beats.labels("failure").inc()
        if self.state != "failing":
            log.warning("heartbeat not delivered", extra={"url": shown, "error": error})
        else:
            log.debug("heartbeat not delivered", extra={"url": shown, "error": error})
        self.state = "failing"
        return "failure"

    async def _send(self, settings: HeartbeatConfig) -> str | None:
        """Send the request; return ``None`` on a 2xx answer, else why not (scrubbed of the URL)."""
        url = settings.url.get_secret_value()
        headers = {"User-Agent": f"codebook-monitor/{__version__}"}
        body = None
        if settings.method == "POST":
            body = f"codebook-monitor {__version__}: paging path healthy\n".encode()
            headers["Content-Type"] = "text/plain; charset=utf-8"
        try:
            async with asyncio.timeout(settings.timeout):
                # Streamed and closed unread: only the status counts, so no body is ever read.
                async with self.http.stream(settings.method, url, content=body, headers=headers,
                                            timeout=settings.timeout) as response:
                    status = response.status_code
        except asyncio.CancelledError:
            raise
        except (TimeoutError, httpx.TimeoutException):
            return f"no answer within {settings.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - a failed beat is counted and logged, never raised
            return _scrub(f"{type(exc).__name__}: {exc}", url)
        if 200 <= status < 300:
            return None
        return f"HTTP status {status}"


def _scrub(text: str, url: str) -> str:
    """Remove the URL and its secret part (path and query) from ``text``."""
    parts = urlsplit(url)
    rest = (parts.path + (f"?{parts.query}" if parts.query else "")).lstrip("/")
    return scrub_secrets(text, url, rest if len(rest) >= 8 else None, keep=URL_KEEP)
