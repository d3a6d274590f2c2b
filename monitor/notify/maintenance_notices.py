"""Advance notices of maintenance windows to clients, through the outbox (leader only).

A maintenance window with ``notices`` (:mod:`monitor.config.maintenance_notices`) is announced
before each *occurrence* (a start of the window: an instant where one of its time intervals is
active and was not a minute before) by each of its ``before`` notices (default 7 days and 1
hour ahead). :func:`send_maintenance_notices`, run by the leader every ``ANNOUNCE_INTERVAL``:

1. finds the occurrences starting within the largest ``before`` (:func:`occurrence_starts`);
2. picks the notice due now (:func:`due_notice`): the latest ``before`` whose time has come
   (a daemon that was down a week sends the 1-hour reminder, not a late 7-day notice);
3. skips it when the store's kv (:data:`NOTICES_KEY`) says it was sent; otherwise reads the
   audience (config contacts and the ``sql`` query's rows) and, **in one store transaction**,
   writes one outbox row per contact and integration (email to the contact's address, Slack to
   its channel) and marks the notice sent.

Exactly once: the rows and the mark commit together, so a restart (or the other replica
taking over) finds the mark; the outbox key is also durable per notice — dedup key
``maintenance:<window>:<start unix>``, transition the notice (``7d``, ``1h``), recipient the
contact — so writing the same notice again is a no-op at the store. The outbox worker delivers
with its retries; a row expires at the occurrence's start (a notice after the start is no notice).
Alerts inside the window are muted as before (:class:`~monitor.alerting.maintenance.MaintenanceWindows`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from model.duration import format_duration
from monitor.alerting.maintenance import TimeIntervals
from monitor.config.timeintervals import zone
from monitor.notify.base import Integration, Message
from monitor.notify.outbox_stage import DEFAULT_TTL, OutboxStage

__all__ = ["NOTICES_KEY", "Contact", "occurrence_starts", "occurrence_end", "occurrence_at", "due_notice",
           "read_audience", "send_maintenance_notices", "notice_message", "notice_label"]

log = logging.getLogger("monitor.notify")

#: The store kv key of the notices sent: ``{"<window>|<start unix>|<before seconds>": sent unix}``.
NOTICES_KEY = "maintenance:notices"
#: Longest occurrence measured for the notice's end time (seconds); a longer one says "until at least".
MAX_WINDOW = 7 * 86400.0
#: How long after an occurrence's start its sent marks are kept (seconds).
KEEP_MARKS = 86400.0


@dataclass(frozen=True, slots=True)
class Contact:
    """One recipient of notices: ``email`` and/or ``slack_channel``; ``name`` for the greeting."""

    name: str = ""
    email: str | None = None
    slack_channel: str | None = None


def _active(intervals: TimeIntervals, names: Sequence[str], at: float) -> bool:
    return any(intervals.contains(n, at) for n in names)


def occurrence_starts(periods: Mapping[str, Sequence[Any]], names: Sequence[str], now: float,
                      horizon: float) -> list[float]:
    """Return the starts (Unix seconds) in ``(now, now + horizon]`` of the window made of intervals ``names``.

    A start is an instant where the window is active and was not a minute before (windows are
    minute-granular, as Alertmanager's ``times``). Candidates are each period's local midnights
    and ``start_time`` minutes on every local day in the horizon, in the period's ``location``.

    :param periods: ``{interval name: [period, ...]}`` (``TimeIntervalConfig.time_intervals``).
    """
    intervals = TimeIntervals(periods)
    starts: set[float] = set()
    for name in names:
        for p in periods.get(name, ()):
            tz = zone(p.location or "UTC")
            day = datetime.fromtimestamp(now, timezone.utc).astimezone(tz).date()
            minutes = sorted({start for start, _ in p.time_ranges}) or [0]
            for k in range(int(horizon // 86400) + 2):
                d = day + timedelta(days=k)
                for m in minutes:
                    t = datetime(d.year, d.month, d.day, m // 60, m % 60, tzinfo=tz).timestamp()
                    if now < t <= now + horizon and _active(intervals, names, t) \
                            and not _active(intervals, names, t - 60):
                        starts.add(t)
    return sorted(starts)


def occurrence_end(periods: Mapping[str, Sequence[Any]], names: Sequence[str], start: float) -> float:
    """Return the first minute after ``start`` at which the window is no longer active (at most
    ``start + MAX_WINDOW``)."""
    intervals = TimeIntervals(periods)
    t = start + 60
    while t < start + MAX_WINDOW and _active(intervals, names, t):
        t += 60
    return t


def occurrence_at(periods: Mapping[str, Sequence[Any]], names: Sequence[str], now: float) -> tuple[float, float] | None:
    """Return ``(start, end)`` (Unix seconds, minute-aligned as the window's times) of the occurrence of the
    window made of intervals ``names`` in effect at ``now``, or ``None`` when none is.

    The start is the latest one within :data:`MAX_WINDOW` before ``now`` (``start <= now``) whose
    :func:`occurrence_end` is after ``now``.
    """
    for start in reversed(occurrence_starts(periods, names, now - MAX_WINDOW, MAX_WINDOW)):
        end = occurrence_end(periods, names, start)
        if end > now:
            return start, end
    return None


def due_notice(before: Sequence[float], start: float, now: float) -> float | None:
    """Return the notice (its ``before``, seconds) due at ``now`` for an occurrence at ``start``.

    A notice is due from ``start - before`` until ``start``; of several due, the latest (the
    smallest ``before``) wins, so an outage never sends a 7-day notice an hour before.
    """
    due = [b for b in before if start - b <= now < start]
    return min(due) if due else None


async def read_audience(audience: Any) -> list[Contact]:
    """Return the audience's contacts: config ``contacts`` then the ``sql`` query's rows (asyncpg).

    :raises OSError | asyncpg.PostgresError | TimeoutError: the query could not run.
    """
    out = [Contact(c.name, c.email, c.slack_channel) for c in audience.contacts]
    q = audience.sql
    if q is not None:
        import asyncpg

        settings = {"search_path": q.search_path} if q.search_path else None
        conn = await asyncpg.connect(q.dsn.get_secret_value(), timeout=q.timeout, server_settings=settings)
        try:
            rows = await conn.fetch(q.query, timeout=q.timeout)
        finally:
            await conn.close()
        for r in rows:
            d = dict(r)
            email, channel = d.get("email") or None, d.get("slack_channel") or None
            if email or channel:
                out.append(Contact(str(d.get("name") or ""), email, channel))
    return out


def notice_label(before: float) -> str:
    """Name a notice by its lead time: ``7d``, ``1h``, ``90m`` (whole days in days, not weeks)."""
    return f"{int(before // 86400)}d" if before >= 86400 and before % 86400 == 0 else format_duration(before)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%a %Y-%m-%d %H:%M UTC")


def notice_message(receiver: str, window: Any, start: float, end: float, before: float, contact: Contact,
                   recipient: str, external_url: str = "") -> Message:
    """Build the ``maintenance`` message of one notice to one recipient (template data in ``extra``).

    ``extra``: ``window``, ``notice`` (``7d``, ``1h``), ``start``/``end`` (``"Sat 2026-12-05
    02:00 UTC"``), ``start_ts``/``end_ts`` (Unix seconds), ``contact`` (name), ``message`` (the
    window's ``notices.message``), ``comment``, ``reminder`` (true for the last notice).
    """
    label = notice_label(before)
    reminder = before == min(window.notices.before)
    title = (f"Reminder: maintenance starts in {label}" if reminder
             else f"Scheduled maintenance {_when(start)} to {_when(end)}")
    extra = {"window": window.name, "notice": label, "start": _when(start), "end": _when(end),
             "start_ts": start, "end_ts": end, "contact": contact.name, "message": window.notices.message,
             "comment": window.comment, "reminder": reminder}
    return Message.build("maintenance", receiver, [], dedup_key=f"maintenance:{window.name}:{int(start)}",
                         recipient=recipient, title=title, external_url=external_url, extra=extra)


async def send_maintenance_notices(config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]],
                                   now: float, *,
                                   audience: Callable[[Any], Awaitable[list[Contact]]] = read_audience,
                                   ) -> list[tuple[str, float, str]]:
    """Write the outbox rows of every notice due at ``now`` (see the module docstring).

    :param config: the daemon's :class:`~monitor.config.model.Config`.
    :param integrations: ``{receiver: [Integration, ...]}``.
    :param audience: reads a window's audience (:func:`read_audience`; injected by tests).
    :return: ``[(window, start, notice label)]`` of the notices written now (empty when none was due).
    """
    alerting = config.alerting
    windows = [w for w in alerting.maintenance_windows if w.notices is not None]
    if not windows:
        return []
    periods = {ti.name: list(ti.time_intervals) for ti in alerting.time_intervals}
    external_url = getattr(getattr(config, "server", None), "external_url", "") or ""
    stage = OutboxStage(store, integrations)
    current = await store.kv_get(NOTICES_KEY)
    sent: dict[str, float] = dict(current) if isinstance(current, dict) else {}
    done: list[tuple[str, float, str]] = []
    for w in windows:
        n = w.notices
        for start in occurrence_starts(periods, w.time_intervals, now, max(n.before)):
            before = due_notice(n.before, start, now)
            key = f"{w.name}|{int(start)}|{int(before or 0)}"
            if before is None or key in sent:
                continue
            try:
                contacts = await audience(n.audience)
            except Exception as exc:  # noqa: BLE001 - retried at the next run; the notice is not marked
                log.warning("maintenance notice audience unreadable; will retry",
                            extra={"window": w.name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            end = occurrence_end(periods, w.time_intervals, start)
            ttl = min(DEFAULT_TTL, start - now)
            rows = 0
            async with store.transaction():
                for c in contacts:
                    for integ in integrations.get(n.receiver, ()):
                        recipient = c.email if integ.kind == "email" else c.slack_channel if integ.kind == "slack" \
                            else None
                        if not recipient:
                            continue
                        msg = notice_message(n.receiver, w, start, end, before, c, recipient, external_url)
                        rows += len(await stage.enqueue(msg, now, transition=notice_label(before),
                                                        only=[integ.name], ttl=ttl))
                sent[key] = now
                sent = {k: v for k, v in sent.items() if float(k.rsplit("|", 2)[1]) > now - KEEP_MARKS}
                await store.kv_set(NOTICES_KEY, sent, now)
            log.info("maintenance notice written", extra={"window": w.name, "start": _when(start),
                                                          "notice": notice_label(before), "rows": rows,
                                                          "contacts": len(contacts)})
            done.append((w.name, start, notice_label(before)))
    return done
