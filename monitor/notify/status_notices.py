"""Maintenance notices to status-page subscribers, and their confirmations, through the outbox.

Email subscribers go through ``status_page.subscriptions.receiver``'s email integrations; webhook
subscribers through :mod:`monitor.notify.status_webhook` (receiver
:data:`~monitor.notify.status_webhook.STATUS_WEBHOOK_RECEIVER`), with the same messages.

Run by the leader with the maintenance notices (every ``ANNOUNCE_INTERVAL``):
:func:`send_status_notices`.

1. **Confirmation**: each pending subscriber whose confirmation was not written gets one email
   with its confirm and unsubscribe links (:func:`subscriber_token`), written to the outbox and
   marked in one transaction (so once).
2. **Notices**: for every maintenance window with client ``notices``, each occurrence gets the
   guide's notices — the latest due of its ``before`` notices (7 days and 1 hour by default),
   ``start`` when it begins and ``end`` when it is over (up to a day late after a downtime) —
   to every confirmed subscriber. Each notice is written in one transaction with its mark in the
   store's kv (:data:`SENT_KEY`); the outbox key (dedup key ``status:<window>:<start unix>``,
   transition the notice, recipient the address) also makes a second write a no-op: never twice.

Tokens: ``HMAC-SHA256(api.link_key, "status-sub" | action | id | address)``, 32 hex digits,
compared in constant time; they do not expire (an unsubscribe link must keep working). Links
point at ``server.external_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.notify.base import Integration, Message
from monitor.notify.maintenance_notices import (
    _when, due_notice, notice_label, occurrence_end, occurrence_starts,
)
from monitor.notify.outbox_stage import DEFAULT_TTL, OutboxStage
from monitor.notify.status_webhook import STATUS_WEBHOOK_RECEIVER

__all__ = ["SENT_KEY", "send_status_notices", "subscriber_token", "subscriber_links", "due_phases"]

log = logging.getLogger("monitor.notify")

#: kv key of the subscriber notices written: ``{"<window>|<start unix>|<phase>": written unix}``.
SENT_KEY = "status:notices"
#: How late an ``end`` notice may still go out (seconds), and how long marks are kept after an end.
END_GRACE = 86400.0
LOOK_BACK = 8 * 86400.0


def subscriber_token(key: str, action: str, subscriber_id: int, target: str) -> str:
    """Return the link token of ``action`` (``confirm`` or ``unsubscribe``) for one subscriber."""
    msg = f"status-sub\x00{action}\x00{subscriber_id}\x00{target}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()[:32]


def subscriber_links(base_url: str, key: str, row: Mapping[str, Any]) -> dict[str, str]:
    """Return ``{"confirm_url", "unsubscribe_url"}`` of a subscriber row."""
    base = base_url.rstrip("/")
    sid, target = int(row["id"]), str(row["target"])
    return {a + "_url": f"{base}/status/{a}/{sid}/{subscriber_token(key, a, sid, target)}"
            for a in ("confirm", "unsubscribe")}


def due_phases(before: Sequence[float], start: float, end: float, now: float) -> list[str]:
    """Return the notices of one occurrence due at ``now``: a ``before`` label, ``start`` or ``end``."""
    b = due_notice(before, start, now)
    if b is not None:
        return [notice_label(b)]
    if start <= now < end:
        return ["start"]
    if end <= now < end + END_GRACE:
        return ["end"]
    return []


def _message(receiver: str, window: Any, start: float, end: float, phase: str, target: str,
             links: Mapping[str, str], external_url: str) -> Message:
    reminder = phase == notice_label(min(window.notices.before))
    titles = {"start": "Maintenance has started", "end": "Maintenance is over"}
    title = titles.get(phase, f"Reminder: maintenance starts in {phase}" if reminder
                       else f"Scheduled maintenance {_when(start)} to {_when(end)}")
    extra = {"window": window.name, "notice": phase, "phase": phase, "start": _when(start), "end": _when(end),
             "start_ts": start, "end_ts": end, "contact": "", "message": window.notices.message,
             "comment": "", "reminder": reminder,
             "unsubscribe_url": links["unsubscribe_url"]}
    return Message.build("maintenance", receiver, [], dedup_key=f"status:{window.name}:{int(start)}",
                         recipient=target, title=title, external_url=external_url, extra=extra)


async def send_status_notices(config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]],
                              now: float) -> list[tuple[str, float, str, int]]:
    """Write due confirmations and notices to the outbox (module docstring).

    :return: ``[(window, start, phase, rows written)]`` of the notices written now.
    """
    subs = config.status_page.subscriptions
    key = config.api.link_key
    if subs is None or key is None or not hasattr(store, "list_subscribers"):
        return []
    secret = key.get_secret_value()
    external_url = config.server.external_url or ""
    stage = OutboxStage(store, integrations)
    def route(row: Mapping[str, Any]) -> tuple[str, list[str] | None] | None:
        if row["kind"] == "webhook":  # only while webhooks are enabled (their integration exists)
            return (STATUS_WEBHOOK_RECEIVER, None) if STATUS_WEBHOOK_RECEIVER in integrations else None
        return subs.receiver, ["email"]

    for row in await store.list_subscribers("pending", confirm_unsent=True):
        way = route(row)
        if way is None:
            continue
        links = subscriber_links(external_url, secret, row)
        msg = Message.build("maintenance", way[0], [], dedup_key=f"status-confirm:{row['id']}",
                            recipient=row["target"], title="Confirm your subscription to status notices",
                            external_url=external_url,
                            extra={"phase": "confirm", "notice": "confirm", "contact": "", **links})
        async with store.transaction():
            await stage.enqueue(msg, now, transition=f"confirm-{int(row['created_at'])}", only=way[1],
                                ttl=DEFAULT_TTL)
            await store.mark_confirm_sent(int(row["id"]), now)
    alerting = config.alerting
    windows = [w for w in alerting.maintenance_windows if w.notices is not None]
    if not windows:
        return []
    periods = {ti.name: list(ti.time_intervals) for ti in alerting.time_intervals}
    current = await store.kv_get(SENT_KEY)
    sent: dict[str, float] = dict(current) if isinstance(current, dict) else {}
    done: list[tuple[str, float, str, int]] = []
    subscribers: list[dict[str, Any]] | None = None
    for w in windows:
        horizon = LOOK_BACK + max(w.notices.before)
        for start in occurrence_starts(periods, w.time_intervals, now - LOOK_BACK, horizon):
            end = occurrence_end(periods, w.time_intervals, start)
            for phase in due_phases(w.notices.before, start, end, now):
                mark = f"{w.name}|{int(start)}|{phase}"
                if mark in sent:
                    continue
                if subscribers is None:
                    subscribers = await store.list_subscribers("confirmed")
                rows = 0
                ttl = max(min(DEFAULT_TTL, (start if phase not in ("start", "end") else end + END_GRACE) - now), 60.0)
                async with store.transaction():
                    for s in subscribers:
                        way = route(s)
                        if way is None:
                            continue
                        msg = _message(way[0], w, start, end, phase, s["target"],
                                       subscriber_links(external_url, secret, s), external_url)
                        rows += len(await stage.enqueue(msg, now, transition=phase, only=way[1], ttl=ttl))
                    sent[mark] = now
                    sent = {k: v for k, v in sent.items() if v > now - LOOK_BACK - END_GRACE}
                    await store.kv_set(SENT_KEY, sent, now)
                log.info("status subscriber notice written", extra={"window": w.name, "start": _when(start),
                                                                    "notice": phase, "rows": rows})
                done.append((w.name, start, phase, rows))
    return done
