"""On-call handoff announcements through the outbox (leader only).

:func:`announce_handoffs` asks :mod:`monitor.escalation.announce` which on-call changes are due,
turns each into a ``handoff`` :class:`~monitor.notify.base.Message` (:func:`handoff_message`;
Slack renders it, other channels skip it) and writes one outbox row per Slack integration of the
schedule's ``announce_receiver``. The dedup key ``handoff:<schedule>:<handoff unix time>`` (and
the person, as the transition) makes a restart or the other replica a no-op; the last announced
state is kept in the store's kv (:data:`ANNOUNCED_KEY`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.escalation.announce import DEFAULT_MAX_AGE, Announcement, due_announcements
from monitor.escalation.schedule import Schedule
from monitor.notify.base import Integration, Message
from monitor.notify.outbox_stage import OutboxStage

__all__ = ["announce_handoffs", "handoff_message", "ANNOUNCED_KEY"]

log = logging.getLogger("monitor.daemon")

#: The store kv key holding the last announced shift per schedule
#: (``{schedule: {"at": handoff unix seconds, "person": id}}``).
ANNOUNCED_KEY = "oncall:announced"


def _local(d: datetime | None) -> str:
    return d.strftime("%a %Y-%m-%d %H:%M %Z") if d is not None else ""


def handoff_message(a: Announcement, people: Mapping[str, Any], external_url: str = "") -> Message:
    """Build the ``handoff`` message for ``a`` (template data in ``extra``).

    ``extra``: ``schedule``, ``person``, ``name`` (the person's name, or the id),
    ``slack_user_id``, ``since``/``until`` (local time, ``"Mon 2026-12-07 09:00 CET"``; ``until``
    empty when no next handoff is known), ``since_ts``/``until_ts`` (unix seconds), ``time_zone``.
    """
    person = people.get(a.shift.person or "")
    name = (getattr(person, "name", "") or a.shift.person or "") if person is not None else (a.shift.person or "")
    until = a.shift.until
    extra = {"schedule": a.schedule, "person": a.shift.person, "name": name,
             "slack_user_id": getattr(person, "slack_user_id", None) or "",
             "since": _local(a.shift.since), "until": _local(until),
             "since_ts": a.shift.since.timestamp(), "until_ts": until.timestamp() if until else None,
             "time_zone": a.time_zone}
    return Message.build("handoff", a.receiver, [], dedup_key=a.key, external_url=external_url,
                         title=f"On call for {a.schedule}", extra=extra)


async def announce_handoffs(config: Any, store: Any, integrations: Mapping[str, Sequence[Integration]],
                            now: float, *, max_age: float = DEFAULT_MAX_AGE,
                            running: Mapping[str, Schedule] | None = None) -> list[Announcement]:
    """Enqueue a Slack message for each on-call change due to be announced.

    Reads the last announced state from the store's kv (:data:`ANNOUNCED_KEY`), writes one outbox
    row per Slack integration of each schedule's ``announce_receiver`` (dedup key
    ``handoff:<schedule>:<handoff unix time>``, so a restart or the other replica never
    announces twice), then stores the new state.

    :param running: the schedules as the escalation sees them (with the overrides made through the
        API, ``OnCallLookup.schedules``); default: built from the config alone.
    :return: the announcements enqueued.
    """
    alerting = config.alerting
    receivers = {name: s.announce_receiver for name, s in alerting.schedules.items() if s.announce_receiver}
    if not receivers:
        return []
    schedules = {name: (running or {}).get(name) or Schedule.from_config(name, alerting.schedules[name])
                 for name in receivers}
    last = await store.kv_get(ANNOUNCED_KEY)
    due, state = due_announcements(schedules, receivers, last if isinstance(last, dict) else None, now,
                                   max_age=max_age)
    stage = OutboxStage(store, integrations)
    external_url = getattr(getattr(config, "server", None), "external_url", "") or ""
    for a in due:
        msg = handoff_message(a, alerting.people, external_url)
        try:  # the person is part of the transition: a changed shift at the same instant is news
            written = await stage.enqueue(msg, now, transition=a.shift.person or "", only=["slack"])
        except KeyError:
            log.error("handoff announcement for an unknown receiver dropped", extra={"receiver": a.receiver})
            continue
        if not any(i.kind == "slack" for i in integrations.get(a.receiver, ())):
            log.warning("announce_receiver has no Slack integration; handoff not announced",
                        extra={"receiver": a.receiver, "schedule": a.schedule})
        log.info("on-call handoff announced", extra={"schedule": a.schedule, "person": a.shift.person,
                                                     "receiver": a.receiver, "new": bool(written)})
    if state != last:
        await store.kv_set(ANNOUNCED_KEY, state, now)
    return due
