"""PagerDuty Events API v2: trigger, acknowledge and resolve one incident per alert.

Wire format (PagerDuty developer docs, "Events API v2 Overview" and "Send an Alert Event"):
``POST {url}/v2/enqueue`` with::

    {"routing_key": "<32 chars>", "event_action": "trigger"|"acknowledge"|"resolve",
     "dedup_key": "<= 255 chars", "client": "...", "client_url": "...",
     "links": [{"href": "...", "text": "..."}],
     "payload": {"summary": "<= 1024 chars", "source": "...",
                 "severity": "critical"|"error"|"warning"|"info", "timestamp": RFC 3339,
                 "component": "...", "group": "...", "class": "...", "custom_details": {...}}}

Answers ``202 {"status": "success", "message": "Event processed", "dedup_key": "..."}``;
``400 {"status": "invalid event", ...}`` (permanent), ``429`` and ``5xx`` (retryable).
``payload`` is only sent with ``trigger``. The routing key is a secret: it is redacted from
every error. Field choices follow Alertmanager ``notify/pagerduty/pagerduty.go``
(``notifyV2``: summary truncated to 1024, ``dedup_key`` = the group key hash, client fields);
we use the alert fingerprint as ``dedup_key`` so acknowledge/resolve find the same incident.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from monitor.config.receivers import PagerDutyConfig
from monitor.errors import NotifyError
from monitor.notify.base import Message, NotifyResult
from monitor.notify.retry import redact, send_http
from monitor.notify.templates import Templates, truncate

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
#: Alerts listed in ``custom_details`` (the whole event must stay under 512 KB).
DETAILS_ALERTS_LIMIT = 20
SEVERITIES = ("critical", "error", "warning", "info")

ACTIONS = {"firing": "trigger", "escalation": "trigger", "sla_breach": "trigger",
           "acknowledged": "acknowledge", "resolved": "resolve"}


def build_event(message: Message, conf: PagerDutyConfig, templates: Templates,
                routing_key: str) -> dict[str, Any]:
    """Return the Events API v2 body for ``message`` (pure; golden-tested).

    :param routing_key: ``message.recipient`` for escalation pages, else the config's key.
    """
    action = ACTIONS[message.kind]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": message.dedup_key[:DEDUP_KEY_LIMIT],
    }
    if action != "trigger":
        return event
    labels = message.common_labels
    severity = message.severity if message.severity in SEVERITIES else conf.severity
    first = message.alerts[0] if message.alerts else {}
    full_summary = templates.render("pagerduty_summary.j2", message).replace("\n", " ")
    payload: dict[str, Any] = {
        # PagerDuty cuts at 1,024 characters silently; we cut first, ending with "…", and keep
        # the whole text in custom_details.summary.
        "summary": truncate(full_summary, SUMMARY_LIMIT) or "alert",
        "source": labels.get("instance") or conf.source,
        "severity": severity,
    }
    if first.get("starts_at"):
        payload["timestamp"] = first["starts_at"]
    for key, label in (("component", "service"), ("group", "job"), ("class", "alertname")):
        if labels.get(label):
            payload[key] = labels[label]
    details: dict[str, Any] = {
        "num_firing": len(message.firing()),
        "num_resolved": len(message.resolved()),
        "receiver": message.receiver,
        "alerts": [{k: a[k] for k in ("labels", "annotations", "starts_at", "value", "fingerprint")}
                   for a in message.alerts[:DETAILS_ALERTS_LIMIT]],
    }
    if message.priority:
        details["priority"] = message.priority
    if message.title:
        details["title"] = message.title
    if len(full_summary) > SUMMARY_LIMIT:
        details["summary"] = truncate(full_summary, 64 * SUMMARY_LIMIT)  # the event stays under 512 KB
    if len(message.alerts) > DETAILS_ALERTS_LIMIT:
        details["truncated_alerts"] = len(message.alerts) - DETAILS_ALERTS_LIMIT
    payload["custom_details"] = details
    event["payload"] = payload
    event["client"] = "codebook-monitor"
    if message.external_url:
        event["client_url"] = message.external_url
    links = []
    for href, text in ((message.ack_url, "Acknowledge"), (message.resolve_url, "Resolve"),
                       (message.common_annotations.get("runbook_url", ""), "Runbook"),
                       (first.get("generator_url", ""), "Source")):
        if href:
            links.append({"href": href, "text": text})
    if links:
        event["links"] = links
    return event


class PagerDutyNotifier:
    """Send Events API v2 events with httpx.

    :param conf: the ``pagerduty_configs`` entry.
    :param templates: the template set (defaults when ``None``).
    :param http: an ``httpx.AsyncClient`` to share (one is created and owned otherwise).

    Escalation pages carry the person's routing key as ``message.recipient``.
    """

    def __init__(self, conf: PagerDutyConfig, *, templates: Templates | None = None,
                 clock: Callable[[], float] = time.time, http: httpx.AsyncClient | None = None) -> None:
        self.conf = conf
        self.send_resolved = conf.send_resolved
        self.templates = templates or Templates()
        self._key = conf.routing_key.get_secret_value()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=conf.timeout)
        self._clock = clock
        self._seen_keys: set[str] = set()
        self.url = conf.url.rstrip("/") + "/v2/enqueue"

    def secrets(self) -> list[str]:
        """Return the routing keys used so far (config's and any escalation recipient's)."""
        return [self._key, *self._seen_keys]

    async def aclose(self) -> None:
        """Close the HTTP client if this notifier created it."""
        if self._own_http:
            await self.http.aclose()

    async def notify(self, message: Message) -> NotifyResult:
        """Send one event; return ``{"dedup_key", "status"}``.

        :raises NotifyError: 400 permanent (invalid event), 429/5xx/timeouts retryable.
        """
        if message.kind not in ACTIONS:  # e.g. a handoff announcement: nothing to page
            return NotifyResult(skipped=True)
        key = message.recipient or self._key
        if message.recipient:
            self._seen_keys.add(message.recipient)
        secrets = [self._key, key]
        try:
            event = build_event(message, self.conf, self.templates, key)
        except Exception as exc:  # noqa: BLE001 - a broken user template is a config problem: permanent
            raise NotifyError(redact(f"pagerduty: template error: {exc}", secrets), retryable=False) from None
        resp = await send_http(self.http, "POST", self.url, json=event, what="pagerduty",
                               secrets=secrets, now=self._clock(), timeout=self.conf.timeout)
        try:
            body = resp.json()
        except ValueError:
            body = {}
        return NotifyResult(meta={"status": resp.status_code,
                                  "dedup_key": body.get("dedup_key", event["dedup_key"])})
