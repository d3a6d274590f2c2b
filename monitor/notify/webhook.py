"""Generic webhook: Alertmanager's webhook JSON (version 4), optionally HMAC-signed.

Body, as Alertmanager ``notify/webhook/webhook.go`` (``Message``) and
``template/template.go`` (``Data``) define it::

    {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing"|"resolved",
     "receiver": "...", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "...",
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                 "fingerprint"}]}

``endsAt`` of a firing alert is Go's zero time ``0001-01-01T00:00:00Z``. ``max_alerts`` > 0
keeps the first N alerts and counts the rest in ``truncatedAlerts``. Our messages that
Alertmanager has no word for (acknowledged, escalation, sla_breach) go out with status
``firing`` and one extra top-level key, ``codebookKind``, that Alertmanager consumers ignore.

Signing (when ``hmac_secret`` is set): header ``X-Codebook-Timestamp: <unix seconds>`` and
``X-Codebook-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body>``. Binding the
timestamp into the MAC lets a receiver reject replays (check the age) as Slack's request
signing does; :func:`verify_signature` is the reference check. The URL and the secret are
redacted from every error.

Idempotency (IETF httpapi draft "The Idempotency-Key HTTP Header Field",
draft-ietf-httpapi-idempotency-key-header): every POST carries ``Idempotency-Key: "<id>"`` (a
structured-field String), the message's :attr:`~monitor.notify.base.Message.delivery_id` — the
same on every attempt of one transition through one webhook, across retries, restarts and
replicas. Delivery is at-least-once (a send that completed just before a crash, or whose answer
was lost, is sent again); a receiver that keeps the keys it has seen drops the redelivery, which
makes the effect exactly-once. Messages without an id (built outside the outbox) go without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from model.timestamps import ZERO_TIME
from monitor.config.receivers import WebhookConfig
from monitor.notify.base import Message, NotifyResult
from monitor.notify.retry import send_http, url_secrets
from monitor.notify.templates import Templates

SIGNATURE_HEADER = "X-Codebook-Signature"
TIMESTAMP_HEADER = "X-Codebook-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(header: str | None) -> str:
    """Return the key of an ``Idempotency-Key`` header value (the sf-string unquoted), or ``""``."""
    value = (header or "").strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def build_payload(message: Message, max_alerts: int = 0) -> dict[str, Any]:
    """Return the version-4 webhook body for ``message`` (pure; golden-tested)."""
    alerts = list(message.alerts)
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": message.group_key or message.dedup_key,
        "truncatedAlerts": truncated,
        "status": message.status,
        "receiver": message.receiver,
        "groupLabels": message.group_labels,
        "commonLabels": message.common_labels,
        "commonAnnotations": message.common_annotations,
        "externalURL": message.external_url,
        "alerts": [{
            "status": a["status"],
            "labels": a["labels"],
            "annotations": a["annotations"],
            "startsAt": a["starts_at"] or ZERO_TIME,
            "endsAt": a["ends_at"] or ZERO_TIME,
            "generatorURL": a["generator_url"],
            "fingerprint": a["fingerprint"],
        } for a in alerts],
        "codebookKind": message.kind,
    }


def signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """Return ``sha256=<hex>`` for ``body`` sent at ``timestamp`` (see the module docstring)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, timestamp: str, body: bytes, header: str, *,
                     now: float, tolerance: float = 300.0) -> bool:
    """Return ``True`` if ``header`` signs ``body`` and ``timestamp`` is within ``tolerance`` s."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookNotifier:
    """POST Alertmanager webhook JSON with httpx.

    :param conf: the ``webhook_configs`` entry.
    :param templates: unused (the body is structured data), accepted for a uniform constructor.
    :param clock: unix-seconds clock for the signature timestamp.
    :param http: an ``httpx.AsyncClient`` to share (one is created and owned otherwise).
    """

    def __init__(self, conf: WebhookConfig, *, templates: Templates | None = None,
                 clock: Callable[[], float] = time.time, http: httpx.AsyncClient | None = None) -> None:
        self.conf = conf
        self.send_resolved = conf.send_resolved
        self._url = conf.url.get_secret_value()
        self._secret = conf.hmac_secret.get_secret_value() if conf.hmac_secret else ""
        self._clock = clock
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=conf.timeout)

    def secrets(self) -> list[str]:
        """Return the URL (it may embed a token: whole, path and token-like parts) and the HMAC secret."""
        return [*url_secrets(self._url), *([self._secret] if self._secret else [])]

    async def aclose(self) -> None:
        """Close the HTTP client if this notifier created it."""
        if self._own_http:
            await self.http.aclose()

    def request(self, message: Message) -> tuple[bytes, dict[str, str]]:
        """Return the raw body and headers to send (signed when configured)."""
        body = json.dumps(build_payload(message, self.conf.max_alerts), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "codebook-monitor"}
        if message.delivery_id:  # hex digits: a valid sf-string as it is
            headers[IDEMPOTENCY_HEADER] = f'"{message.delivery_id}"'
        if self._secret:
            ts = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = signature(self._secret, ts, body)
        return body, headers

    async def notify(self, message: Message) -> NotifyResult:
        """POST the message; return ``{"status"}``.

        :raises NotifyError: 4xx permanent; 429, 5xx, timeouts, refused retryable.
        """
        if message.kind in ("handoff", "maintenance"):  # not an alert group: nothing in Alertmanager's webhook shape
            return NotifyResult(skipped=True)
        body, headers = self.request(message)
        resp = await send_http(self.http, "POST", self._url, content=body, headers=headers,
                               what="webhook", secrets=self.secrets(), now=self._clock(),
                               timeout=self.conf.timeout)
        return NotifyResult(meta={"status": resp.status_code})
