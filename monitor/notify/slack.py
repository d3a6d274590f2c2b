"""Slack: Block Kit messages through slack-sdk's ``AsyncWebClient``.

Web API methods used (https://api.slack.com/methods):

* ``chat.postMessage`` (``channel``, ``text``, ``blocks``) -> ``{"ok": true, "channel": "C..",
  "ts": "1700000000.000100"}`` to post to a channel, or to a DM channel;
* ``conversations.open`` (``users``) -> ``{"ok": true, "channel": {"id": "D.."}}`` to open the
  DM with a user id (``U..``/``W..``) before posting, so the stored ``channel`` is the DM's;
* ``chat.update`` (``channel``, ``ts``, ``text``, ``blocks``) to turn the original message into
  its acknowledged or resolved form, or back to its firing form after an unacknowledge
  (the outbox hands us the stored ``channel``/``ts``).

Errors come as ``{"ok": false, "error": "channel_not_found"}`` (HTTP 200) or as HTTP 429 with
``Retry-After`` seconds (https://api.slack.com/docs/rate-limits). slack-sdk's own retry
handlers are switched off (``retry_handlers=[]``): the outbox retry policy decides.

Limits enforced here (Block Kit reference, https://api.slack.com/reference/block-kit/blocks):
top-level ``text`` 40,000 characters (longer is truncated by Slack, we cut first and cleanly),
header text 150, section text 3,000, button text 75, button value 2,000, 50 blocks a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from monitor.config.receivers import SlackConfig
from monitor.errors import NotifyError
from monitor.notify.base import UPDATE_KINDS, Message, NotifyResult
from monitor.notify.retry import parse_retry_after, redact, transport_error, trim
from monitor.notify.templates import Templates, truncate

TEXT_LIMIT = 40_000
HEADER_LIMIT = 150
SECTION_LIMIT = 3_000
BUTTON_VALUE_LIMIT = 2_000
MAX_BLOCKS = 50

#: ``error`` codes that say "try again later" rather than "you are wrong".
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "team_added_to_org"})
#: ``chat.update`` errors after which we post a fresh message instead.
UPDATE_FALLBACK_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed",
                                    "channel_not_found"})


def build_payload(message: Message, templates: Templates) -> dict[str, Any]:
    """Return ``{"text", "blocks"}`` for ``message`` (pure: no I/O; golden-tested).

    Blocks: a header (title), a mrkdwn section (summary, severity, value, runbook link per
    alert), a context line (receiver, priority, links) and, while the alert is open, an
    actions block with ``Acknowledge`` (``action_id="ack"``) and ``Resolve``
    (``action_id="resolve"``) buttons whose ``value`` is the fingerprint (comma-separated for
    a group). Acknowledged messages keep only ``Resolve``; resolved ones have no buttons.

    A ``handoff`` announcement is one mrkdwn section rendered from ``slack_handoff.j2`` (also
    the fallback ``text``) and the context line; no header, no buttons.
    """
    if message.kind in ("handoff", "maintenance"):  # maintenance notices: slack_maintenance.j2, same shape
        return _handoff_payload(message, templates, f"slack_{message.kind}.j2")
    text = truncate(templates.render("slack_text.j2", message), TEXT_LIMIT)
    header = truncate(templates.render("slack_header.j2", message).replace("\n", " "), HEADER_LIMIT)
    section = truncate(templates.render("slack_section.j2", message), SECTION_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header or "alert", "emoji": True}},
    ]
    if section:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    context = [f"receiver: {message.receiver}"]
    if message.external_url:
        context.append(f"<{message.external_url}|codebook-monitor>")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(" | ".join(context), SECTION_LIMIT)}]})
    value = truncate(",".join(message.fingerprints), BUTTON_VALUE_LIMIT, marker="")
    buttons = []
    if message.kind in ("firing", "unacknowledged", "escalation", "sla_breach"):
        buttons.append({"type": "button", "action_id": "ack", "style": "primary",
                        "text": {"type": "plain_text", "text": "Acknowledge"}, "value": value})
    if message.kind != "resolved":
        buttons.append({"type": "button", "action_id": "resolve", "style": "danger",
                        "text": {"type": "plain_text", "text": "Resolve"}, "value": value})
    if buttons and value:
        blocks.append({"type": "actions", "block_id": "alert_actions", "elements": buttons})
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


def _handoff_payload(message: Message, templates: Templates, template: str = "slack_handoff.j2") -> dict[str, Any]:
    body = templates.render(template, message)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(body, SECTION_LIMIT) or "handoff"}}]
    context = [f"receiver: {message.receiver}"]
    if message.external_url:
        context.append(f"<{message.external_url}|codebook-monitor>")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(" | ".join(context), SECTION_LIMIT)}]})
    return {"text": truncate(body, TEXT_LIMIT), "blocks": blocks}


def _is_user(recipient: str) -> bool:
    return recipient[:1] in ("U", "W") and recipient.isalnum()


class SlackNotifier:
    """Post, DM and update alert messages in Slack.

    :param conf: the ``slack_configs`` entry (token, default channel, ``api_url``, timeout).
    :param templates: the template set (defaults when ``None``).
    :param client: an ``AsyncWebClient`` to use instead of building one from ``conf``.

    Example::

        n = SlackNotifier(SlackConfig(channel="#alerts", token="xoxb-..."))
        result = await n.notify(Message.build("firing", "ops", [alert]))
        result.meta  # {"channel": "C123", "ts": "1700000000.000100"}
    """

    def __init__(self, conf: SlackConfig, *, templates: Templates | None = None,
                 clock: Callable[[], float] = time.time, client: AsyncWebClient | None = None) -> None:
        self.conf = conf
        self.send_resolved = conf.send_resolved
        self.templates = templates or Templates()
        self._token = conf.token.get_secret_value()
        # The SDK annotates timeout as int, but hands it to aiohttp's ClientTimeout, which takes
        # float seconds: sub-second timeouts are real (tests use them).
        self.client = client or AsyncWebClient(token=self._token, base_url=conf.api_url,
                                               timeout=conf.timeout,  # type: ignore[arg-type]
                                               retry_handlers=[])
        self._clock = clock

    def secrets(self) -> list[str]:
        """Return the bot token."""
        return [self._token]

    async def aclose(self) -> None:
        """Close the SDK's aiohttp session if it made one (it makes one per call by default)."""
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()

    async def notify(self, message: Message) -> NotifyResult:
        """Post (or update) the message; return ``{"channel", "ts"}`` of the Slack message.

        :raises NotifyError: see :meth:`monitor.notify.base.Notifier.notify`.
        """
        try:
            payload = build_payload(message, self.templates)
        except Exception as exc:  # noqa: BLE001 - a broken user template is a config problem: permanent
            raise NotifyError(self._redact(f"slack: template error: {exc}"), retryable=False) from None
        prev = message.previous or {}
        if message.kind in UPDATE_KINDS and prev.get("channel") and prev.get("ts"):
            try:
                resp = await self._call("chat.update", channel=prev["channel"], ts=prev["ts"], **payload)
                return NotifyResult(meta={"channel": resp["channel"], "ts": resp["ts"], "updated": True})
            except NotifyError as exc:
                if getattr(exc, "slack_error", "") not in UPDATE_FALLBACK_ERRORS:
                    raise
        channel = message.recipient or self.conf.channel
        if not channel:
            raise NotifyError("slack: no channel configured and no recipient given", retryable=False)
        if _is_user(channel):
            opened = await self._call("conversations.open", users=channel)
            channel = opened["channel"]["id"]
        extra = {k: v for k, v in (("username", self.conf.username), ("icon_emoji", self.conf.icon_emoji)) if v}
        resp = await self._call("chat.postMessage", channel=channel, unfurl_links=False, **extra, **payload)
        return NotifyResult(meta={"channel": resp["channel"], "ts": resp["ts"]})

    async def _call(self, method: str, **params: Any) -> Any:
        try:
            # chat.postMessage -> client.chat_postMessage: the SDK's own request encoding
            resp = await getattr(self.client, method.replace(".", "_"))(**params)
        except SlackApiError as exc:
            raise self._translate(method, exc) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise transport_error(exc, what=f"slack {method}", secrets=self.secrets()) from None
        # A 2xx that is not Slack's shape (a proxy's HTML page, an empty body) was not posted as
        # far as we can tell, and posting again would likely repeat it: a permanent failure,
        # never a re-post loop.
        data = getattr(resp, "data", None)
        if not isinstance(data, dict) or data.get("ok") is not True or not _has_shape(method, data):
            status = getattr(resp, "status_code", 0)
            what = "not JSON" if not isinstance(data, dict) or not data else "not a Slack answer"
            raise NotifyError(self._redact(f"slack {method}: status {status}: answer is {what}: "
                                           f"{trim(str(data))}"), retryable=False)
        return resp

    def _translate(self, method: str, exc: SlackApiError) -> NotifyError:
        resp = exc.response
        status = getattr(resp, "status_code", 0) or 0
        data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
        error = str(data.get("error", "")) if data else ""
        headers = {str(k).lower(): v for k, v in (getattr(resp, "headers", None) or {}).items()}
        retry_after = parse_retry_after(headers.get("retry-after"), self._clock())
        if 200 <= status < 300 and not data.get("ok", False) and not error:
            # HTTP 2xx that is not Slack's JSON (a proxy page, an empty body): permanent
            err = NotifyError(self._redact(f"slack {method}: status {status}: answer is not JSON: "
                                           f"{trim(str(getattr(resp, 'data', '')))}"), retryable=False)
        elif status == 429 or error == "ratelimited":
            err = NotifyError(self._redact(f"slack {method}: rate limited (status {status})"),
                              retryable=True, retry_after=retry_after)
        elif status >= 500 or error in TRANSIENT_ERRORS:
            body = error or trim(str(getattr(resp, "data", "")))
            err = NotifyError(self._redact(f"slack {method}: status {status}: {body}"),
                              retryable=True, retry_after=retry_after)
        else:
            body = error or trim(str(getattr(resp, "data", "")))
            err = NotifyError(self._redact(f"slack {method}: status {status}: {body}"), retryable=False)
        err.slack_error = error  # type: ignore[attr-defined]  # read by the chat.update fallback
        return err

    def _redact(self, text: str) -> str:
        return redact(text, self.secrets())


def _has_shape(method: str, data: dict) -> bool:
    """Whether a successful answer has the fields we read (``channel``/``ts``, or ``channel.id``)."""
    if method == "conversations.open":
        return isinstance(data.get("channel"), dict) and "id" in data["channel"]
    return bool(data.get("channel")) and bool(data.get("ts"))
