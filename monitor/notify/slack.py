"""Slack: Block Kit messages through slack-sdk's ``AsyncWebClient``.

Web API methods used (https://api.slack.com/methods):

* ``chat.postMessage`` (``channel``, ``text``, ``blocks``) -> ``{"ok": true, "channel": "C..",
  "ts": "1700000000.000100"}`` to post to a channel, or to a DM channel;
* ``conversations.open`` (``users``) -> ``{"ok": true, "channel": {"id": "D.."}}`` to open the
  DM with a user id (``U..``/``W..``) before posting, so the stored ``channel`` is the DM's;
* ``chat.update`` (``channel``, ``ts``, ``text``, ``blocks``) to turn the original message into
  its acknowledged or resolved form, or back to its firing form after an unacknowledge
  (the outbox hands us the stored ``channel``/``ts``);
* ``conversations.history`` (``channel`` id, ``oldest``, ``include_all_metadata``, ``limit``,
  ``cursor``) -> ``{"messages": [{"ts", "metadata": {"event_type", "event_payload"}}, ...],
  "has_more", "response_metadata": {"next_cursor"}}`` (newest first), and ``conversations.list``
  (``types``, ``cursor``) -> ``{"channels": [{"id", "name"}]}`` to find a channel's id by name:
  :meth:`SlackNotifier.find_delivery` (scopes ``channels:history``/``groups:history``/
  ``im:history`` and ``channels:read``/``groups:read``).

Exactly-once across a crash: ``chat.postMessage`` has no idempotency key, so every post carries
message metadata (https://api.slack.com/metadata) ``{"event_type": "codebook_notification",
"event_payload": {"delivery_id": <the outbox transition id>, "kind": ...}}``. When a new leader
finds a row that a dead leader had claimed (its post may have gone out), the outbox calls
:meth:`SlackNotifier.find_delivery`, which reads the channel's history since the row was created
for a message with that id; found, the row is marked sent with that message's ``ts`` (later
acknowledge/resolve updates need it) instead of being posted twice.

Errors come as ``{"ok": false, "error": "channel_not_found"}`` (HTTP 200) or as HTTP 429 with
``Retry-After`` seconds (https://api.slack.com/docs/rate-limits). slack-sdk's own retry
handlers are switched off (``retry_handlers=[]``): the outbox retry policy decides.

Limits enforced here (Block Kit reference, https://api.slack.com/reference/block-kit/blocks):
top-level ``text`` 40,000 characters (longer is truncated by Slack, we cut first and cleanly),
header text 150, section text 3,000, button text 75, button value 2,000, 50 blocks a message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from monitor.config.receivers import SlackConfig
from monitor.errors import NotifyError
from monitor.notify.base import UPDATE_KINDS, Message, NotifyResult
from monitor.notify.retry import parse_retry_after, redact, transport_error, trim
from monitor.notify.templates import Templates, truncate

log = logging.getLogger("monitor.notify.slack")

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

# The SDK's async client (and aiohttp under it) is imported when a Slack notifier is built: it
# is ~10 MiB of memory that a daemon without a Slack receiver need not hold.

TEXT_LIMIT = 40_000
HEADER_LIMIT = 150
SECTION_LIMIT = 3_000
BUTTON_VALUE_LIMIT = 2_000
MAX_BLOCKS = 50

#: ``error`` codes that say "try again later" rather than "you are wrong".
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "team_added_to_org"})
#: The ``metadata.event_type`` of our posts (Slack: alphanumeric and underscores).
EVENT_TYPE = "codebook_notification"
#: Pages of ``conversations.history`` (and of ``conversations.list``) read at most by one look-up.
LOOKUP_PAGES = 20
#: Messages per page (``limit``; Slack's maximum is 999, 200 is its recommendation).
PAGE_LIMIT = 200
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
        if client is None:
            from slack_sdk.web.async_client import AsyncWebClient

            # The SDK annotates timeout as int, but hands it to aiohttp's ClientTimeout, which
            # takes float seconds: sub-second timeouts are real (tests use them).
            client = AsyncWebClient(token=self._token, base_url=conf.api_url,
                                    timeout=conf.timeout,  # type: ignore[arg-type]
                                    retry_handlers=[])
        self.client = client
        self._clock = clock
        self._channel_ids: dict[str, str] = {}  # "#name" -> "C..", from our posts and conversations.list

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
        extra: dict[str, Any] = {k: v for k, v in (("username", self.conf.username),
                                                   ("icon_emoji", self.conf.icon_emoji)) if v}
        if message.delivery_id:
            extra["metadata"] = {"event_type": EVENT_TYPE,
                                 "event_payload": {"delivery_id": message.delivery_id, "kind": message.kind}}
        resp = await self._call("chat.postMessage", channel=channel, unfurl_links=False, **extra, **payload)
        if channel.startswith("#"):
            self._channel_ids[channel] = resp["channel"]
        return NotifyResult(meta={"channel": resp["channel"], "ts": resp["ts"]})

    async def find_delivery(self, message: Message, since: float) -> NotifyResult | None:
        """Look for a message posted for ``message.delivery_id`` at or after ``since``.

        Reads ``conversations.history`` of the message's channel (``oldest`` = ``since``, Unix
        seconds; ``include_all_metadata``; at most :data:`LOOKUP_PAGES` pages, newest first).

        :return: ``{"channel", "ts", "found": True}`` of that message, or ``None`` when there is
            none, when the message has no delivery id, or when sending it would update an
            existing message (``chat.update`` twice has one effect).
        :raises NotifyError: a retryable failure (429, 5xx, timeout: the look-up is retried like a
            send). A permanent one (``missing_scope``, ``not_in_channel``) is logged and answers
            ``None``: the message is posted again, a possible duplicate rather than a loss.
        """
        prev = message.previous or {}
        if not message.delivery_id or (message.kind in UPDATE_KINDS
                                       and prev.get("channel") and prev.get("ts")):
            return None
        try:
            return await self._find(message, since)
        except NotifyError as exc:
            if exc.retryable:
                raise
            # e.g. missing_scope (no channels:history): posting again risks a duplicate, never a loss
            log.warning("slack: cannot look for an earlier delivery; posting again",
                        extra={"error": str(exc), "delivery": message.delivery_id})
            return None

    async def _find(self, message: Message, since: float) -> NotifyResult | None:
        channel = await self._channel_id(message.recipient or self.conf.channel)
        if not channel:
            return None
        cursor = ""
        for _ in range(LOOKUP_PAGES):
            resp = await self._call("conversations.history", channel=channel, oldest=_slack_ts(since),
                                    inclusive=True, include_all_metadata=True, limit=PAGE_LIMIT,
                                    **({"cursor": cursor} if cursor else {}))
            for m in resp["messages"]:
                meta = m.get("metadata") if isinstance(m, dict) else None
                if (isinstance(meta, dict) and meta.get("event_type") == EVENT_TYPE
                        and isinstance(meta.get("event_payload"), dict)
                        and meta["event_payload"].get("delivery_id") == message.delivery_id and m.get("ts")):
                    return NotifyResult(meta={"channel": channel, "ts": str(m["ts"]), "found": True})
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not resp.get("has_more") or not cursor:
                break
        return None

    async def _channel_id(self, channel: str) -> str:
        """Return the conversation id of a configured channel (``#name``, an id, or a user's DM)."""
        if _is_user(channel):
            opened = await self._call("conversations.open", users=channel)
            return str(opened["channel"]["id"])
        if not channel.startswith("#"):
            return channel
        if channel not in self._channel_ids:
            cursor = ""
            for _ in range(LOOKUP_PAGES):
                resp = await self._call("conversations.list", types="public_channel,private_channel",
                                        exclude_archived=True, limit=PAGE_LIMIT,
                                        **({"cursor": cursor} if cursor else {}))
                for c in resp["channels"]:
                    if isinstance(c, dict) and c.get("name") and c.get("id"):
                        self._channel_ids.setdefault("#" + str(c["name"]), str(c["id"]))
                cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
                if channel in self._channel_ids or not cursor:
                    break
        return self._channel_ids.get(channel, "")

    async def _call(self, method: str, **params: Any) -> Any:
        import aiohttp  # loaded with the SDK's client (see the imports)

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


def _slack_ts(t: float) -> str:
    """Return Unix seconds as a Slack timestamp (microseconds, rounded down: never after ``t``)."""
    micros = math.floor(t * 1_000_000)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _has_shape(method: str, data: dict) -> bool:
    """Whether a successful answer has the fields we read (``channel``/``ts``, ``channel.id``,
    ``messages`` or ``channels``)."""
    if method == "conversations.open":
        return isinstance(data.get("channel"), dict) and "id" in data["channel"]
    if method == "conversations.history":
        return isinstance(data.get("messages"), list)
    if method == "conversations.list":
        return isinstance(data.get("channels"), list)
    return bool(data.get("channel")) and bool(data.get("ts"))
