"""Webhook subscribers of the status page: their notices POSTed to the URL each subscriber gave.

The URLs come from the public (``/status/subscribe``), so every send is checked first
(:func:`check_webhook_url`): ``https`` only, no user info, and the host must resolve to public
addresses only — no loopback, private, link-local, multicast or reserved address (the daemon must
not become a way into the network it runs in). ``allow_private_webhooks`` lifts both rules (tests,
an internal deployment). The check resolves the name just before the request; a name whose
address changes in between (DNS rebinding) is not fully excluded — run the daemon where its
egress is filtered when that matters. Redirects are not followed.

Rows reach this notifier through the outbox like every message: receiver
:data:`STATUS_WEBHOOK_RECEIVER`, integration ``webhook[0]``, the subscriber's URL as the
message's ``recipient``. Body (JSON)::

    {"type": "maintenance" | "subscription_confirmation", "phase": "7d" | "1h" | "start" | "end" | "confirm",
     "window": "...", "starts_at": "...", "ends_at": "...", "message": "...",
     "confirm_url": "..." (confirmation only), "unsubscribe_url": "..."}

2xx is delivered; other 4xx are permanent failures; 429, 5xx, timeouts and refused connections
are retried by the outbox.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.errors import NotifyError
from monitor.notify.base import Integration, Message, NotifyResult
from monitor.notify.retry import send_http

__all__ = ["STATUS_WEBHOOK_RECEIVER", "SubscriberWebhookNotifier", "check_webhook_url", "url_shape_error",
           "with_status_webhooks"]

#: The outbox receiver name of webhook subscribers' rows (not a configurable receiver name: it has a colon).
STATUS_WEBHOOK_RECEIVER = "status-page:webhooks"
TIMEOUT = 10.0


def url_shape_error(url: str, *, allow_private: bool) -> str | None:
    """Return why ``url`` is not acceptable as a subscriber webhook by its text alone, or ``None``."""
    if len(url) > 500:
        return "at most 500 characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in (("https", "http") if allow_private else ("https",)):
        return "must be an https URL"
    if not parts.hostname or parts.username or parts.password:
        return "needs a host and no user info"
    try:
        ip = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    return None if allow_private or ip.is_global else "must not be a private address"


async def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Check ``url`` before a send (shape, then every address its host resolves to).

    :raises NotifyError: not retryable for a refused URL; retryable when the name does not resolve.
    """
    problem = url_shape_error(url, allow_private=allow_private)
    if problem:
        raise NotifyError(f"subscriber webhook refused: {problem}", retryable=False)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        raise NotifyError("subscriber webhook: host does not resolve", retryable=True) from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise NotifyError("subscriber webhook refused: the host resolves to a private address", retryable=False)


class SubscriberWebhookNotifier:
    """POST status-page notices to the subscriber's URL (the message's ``recipient``).

    :param allow_private: accept http and private addresses (``allow_private_webhooks``).
    """

    send_resolved = True

    def __init__(self, *, allow_private: bool = False, http: httpx.AsyncClient | None = None) -> None:
        self.allow_private = allow_private
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)

    def secrets(self) -> list[str]:
        """Return nothing secret (the URLs are the subscribers' own)."""
        return []

    async def aclose(self) -> None:
        """Close the HTTP client if this notifier created it."""
        if self._own_http:
            await self.http.aclose()

    @staticmethod
    def body(message: Message) -> dict[str, Any]:
        """Return the JSON body of ``message`` (module docstring)."""
        x = message.extra
        phase = x.get("phase", "")
        out = {"type": "subscription_confirmation" if phase == "confirm" else "maintenance", "phase": phase,
               "window": x.get("window", ""), "starts_at": x.get("start", ""), "ends_at": x.get("end", ""),
               "message": x.get("message", ""), "unsubscribe_url": x.get("unsubscribe_url", "")}
        if phase == "confirm":
            out["confirm_url"] = x.get("confirm_url", "")
        return out

    async def notify(self, message: Message) -> NotifyResult:
        """POST the notice; return ``{"status"}``.

        :raises NotifyError: a refused URL or 4xx permanently; 429, 5xx, timeouts retryable.
        """
        url = message.recipient
        await check_webhook_url(url, allow_private=self.allow_private)
        content = json.dumps(self.body(message), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "codebook-monitor"}
        if message.delivery_id:
            headers["Idempotency-Key"] = f'"{message.delivery_id}"'
        resp = await send_http(self.http, "POST", url, content=content, headers=headers,
                               what="subscriber webhook", secrets=[url], timeout=TIMEOUT)
        return NotifyResult(meta={"status": resp.status_code})


def with_status_webhooks(integrations: dict[str, list[Integration]], config: Any) -> dict[str, list[Integration]]:
    """Add the webhook subscribers' integration to ``integrations`` when ``config`` enables them."""
    subs = config.status_page.subscriptions
    if subs is not None and subs.webhooks:
        integrations[STATUS_WEBHOOK_RECEIVER] = [Integration(
            name="webhook[0]", receiver=STATUS_WEBHOOK_RECEIVER,
            notifier=SubscriberWebhookNotifier(allow_private=subs.allow_private_webhooks))]
    return integrations
