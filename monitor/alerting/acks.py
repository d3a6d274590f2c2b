"""Acknowledgements: people acknowledging, unacknowledging and resolving alerts, each call audited.

Implements :class:`monitor.alerting.ports.Acknowledgements`. Each call, under the pipeline's
lock and in one store transaction (all of its writes or none; the connection taken once):
checks the alert is known (stored or held), records the acknowledgement and an audit
entry (who, what, when, from where: ``api:10.0.0.5``, ``slack:U123``, ``link:10.0.0.5``,
``cli:...``) **before** anything acts, then moves the escalation walk and tells the receivers:

- *acknowledge*: the walk stops (``ack_timeout`` re-triggers it); Slack messages are updated and
  PagerDuty incidents acknowledged (receivers' ``slack``/``pagerduty`` integrations), and
  everyone paged so far hears of it — once: acknowledging an alert already acknowledged records
  the acknowledgement and its comment but sends nothing again;
- *unacknowledge*: the walk restarts from its first step at once, and the Slack channel
  messages are updated back to their firing form (``unacknowledged``, ``chat.update``);
- *escalate now*: the walk's next level is notified at once (an acknowledged walk goes on from
  the level it had reached; its Slack messages lose their acknowledgement);
- *note*: a comment on the timeline (``note``), nothing else moves;
- *resolve* (by hand): the walk ends (resolved notices to everyone notified), every receiver
  gets ``resolved``, and the alert stays resolved until its episode ends
  (:mod:`monitor.alerting.episodes`): it is neither listed nor announced as firing while its
  condition holds, and fires anew once the condition cleared and returned.

Each writes a timeline entry (``acknowledged``, ``unacknowledged``, ``escalated``, ``note``, ``resolved``) with the
person (``person``) and their ``--comment`` (``detail``): through the escalation walk when one
runs, directly otherwise (an alert without escalation, or whose walk ended).

Follow-ups (acknowledged, unacknowledged, resolved) go only to the receivers the notification log
says were told of the alert (:meth:`~monitor.alerting.dispatch.Dispatcher.notified_receivers`): an
alert muted by a maintenance window or a silence, or acknowledged before its first notification
was due, sends no PagerDuty acknowledge and no Slack ``[ACK]`` about an incident nobody was told
of. Each call returns the escalation status plus ``outcome``, the answer in words (``acknowledged;
no escalation was running (the alert is muted by maintenance window monthly-maintenance); no
receiver had been notified of it, so none was told``), and ``notified_receivers``.

Messages leave through the injected :class:`ReceiverUpdates` (the outbox, ``monitor.notify``).
Times are Unix seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from model.alert import Alert
from monitor.alerting.pipeline import AlertPipeline
from monitor.errors import NotFoundError
from monitor.store.batching import transaction_of

__all__ = ["Acknowledgements", "ReceiverUpdates", "AckEscalations"]


class ReceiverUpdates(Protocol):
    """Tell an alert's receivers that it was acknowledged or resolved (``monitor.notify.notices``)."""

    async def __call__(self, alert: Alert, kind: str, now: float, transition: str,
                       only: Sequence[str] | None, *, receivers: Sequence[str] | None = None) -> None:
        """Enqueue ``kind`` for ``alert`` to each of its receivers (only integrations ``only``;
        only the receivers ``receivers``, when given)."""
        ...


class AckEscalations(Protocol):
    """What acknowledgements ask of the escalation walks (``monitor.escalation.runner``)."""

    def get(self, fingerprint: str) -> Any:
        """Return the alert's walk, or ``None``."""
        ...

    def status(self, fingerprint: str) -> dict[str, Any]:
        """Return the walk's status as the API shows it."""
        ...

    async def acknowledge(self, fingerprint: str, now: float, by: str, source: str, comment: str = "") -> Any:
        """Stop the walk (``ack_timeout`` re-triggers it); ``comment`` goes on the timeline."""
        ...

    async def unacknowledge(self, fingerprint: str, now: float, by: str, alert: Alert | None) -> Any:
        """Restart the walk from its first step."""
        ...

    async def resolve(self, fingerprint: str, now: float, by: str, alert: Alert | None,
                      comment: str = "") -> Any:
        """End the walk; resolved notices to everyone notified; ``comment`` goes on the timeline."""
        ...

    async def notify_notified(self, fingerprint: str, kind: str, now: float, transition: str,
                              alert: Alert | None) -> None:
        """Tell everyone the walk notified about ``kind`` (``acknowledged``, ``resolved``)."""
        ...

    async def escalate_now(self, fingerprint: str, now: float, by: str, alert: Alert | None,
                           comment: str = "") -> Any:
        """Run the walk's next level at once; ``comment`` goes on the timeline."""
        ...


class Acknowledgements:
    """Acknowledge, unacknowledge and resolve alerts (see the module docstring).

    :param store: the state store (``get_alert``, ``record_ack``, ``audit``).
    :param pipeline: the running pipeline (its lock, held alerts and groups).
    :param escalations: the escalation walks.
    :param updates: where receiver updates go.
    :param clock: Unix-seconds clock.
    :param acks_counter: ``monitor_acknowledgements_total{source}``, or ``None``.
    """

    def __init__(self, store: Any, pipeline: AlertPipeline, escalations: AckEscalations, updates: ReceiverUpdates,
                 *, clock: Callable[[], float] = time.time, acks_counter: Any = None,
                 logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.escalations = escalations
        self.updates = updates
        self.clock = clock
        self.acks_counter = acks_counter
        self.log = logger or logging.getLogger("monitor.alerting")

    def _walking(self, fingerprint: str) -> Any:
        """Return the alert's escalation walk while it runs (not resolved), else ``None``."""
        esc = self.escalations.get(fingerprint)
        return None if esc is None or esc.state.resolved_at is not None else esc

    async def _acknowledged(self, fingerprint: str, esc: Any) -> bool:
        """Whether the alert is acknowledged now (its walk stopped by an acknowledgement, or, without
        a walk, an ``ack`` as its last acknowledgement record)."""
        if esc is not None:
            return esc.state.acked_at is not None
        rows = await self.store.list_acks(fingerprint)
        return bool(rows) and rows[-1]["action"] == "ack"

    async def _timeline(self, fingerprint: str, now: float, event: str, actor: str, comment: str) -> None:
        """Write a timeline entry for an alert without a running walk (the walk writes its own)."""
        await self.store.append_timeline(fingerprint, now, event, {"level": None, "person": actor,
                                                                   "detail": comment})

    def _told(self, fingerprint: str, alert: Alert | None) -> list[str]:
        """Return the receivers the notification log says were told of the alert: follow-ups
        (acknowledged, unacknowledged, resolved) go to these only — never a PagerDuty acknowledge
        or a Slack ``[ACK]`` about an alert nobody was notified of (muted, or not due yet)."""
        d = self.pipeline.dispatcher
        if alert is None or d is None:
            return []
        return d.notified_receivers(fingerprint, alert.labels)

    def _why_no_escalation(self, fingerprint: str, alert: Alert | None, now: float) -> str:
        """Say in words why the alert has no running escalation walk."""
        d = self.pipeline.dispatcher
        if alert is None:
            return "the alert is no longer held (resolved and forgotten)"
        if alert.resolved(now):
            return "the alert is resolved"
        marked = next((a for a in (d.alerts(now) if d is not None else []) if a.fingerprint == fingerprint), alert)
        if marked.muted_by:
            return "the alert is muted by maintenance window " + ", ".join(marked.muted_by)
        if marked.silenced_by:
            return "the alert is silenced by silence " + ", ".join(marked.silenced_by)
        if marked.inhibited_by:
            return "the alert is inhibited by alert " + ", ".join(marked.inhibited_by)
        if d is not None and fingerprint in d.waiting(now):
            return "its first notification is not due yet (the route's group_wait)"
        esc = self.escalations.get(fingerprint)
        if esc is not None and esc.state.resolved_at is not None:
            return "its escalation had ended"
        return "its severity has no escalation policy or its receivers do not page"

    def _outcome(self, done: str, fingerprint: str, alert: Alert | None, esc: Any, told: list[str],
                 now: float, *, again: bool = False) -> str:
        """Say what happened, in words: the CLI's and API's one-line answer (``outcome``)."""
        parts = [done]
        if again:
            parts.append("it was already acknowledged, nothing was sent again")
        if esc is None:
            parts.append(f"no escalation was running ({self._why_no_escalation(fingerprint, alert, now)})")
        elif done == "acknowledged" and not again:
            parts.append("escalation stopped")
        if not again:
            parts.append(f"updated receivers: {', '.join(told)}" if told
                         else "no receiver had been notified of it, so none was told")
        return "; ".join(parts)

    def _answer(self, fingerprint: str, outcome: str, told: list[str]) -> dict[str, Any]:
        status = dict(self.escalations.status(fingerprint))
        status["outcome"] = outcome
        status["notified_receivers"] = told
        return status

    async def _known(self, fingerprint: str) -> Alert | None:
        """Return the held alert (``None`` when only stored). :raises NotFoundError: unknown alert."""
        alert = self.pipeline.provider.get(fingerprint)
        if await self.store.get_alert(fingerprint) is None and alert is None:
            raise NotFoundError("alert", fingerprint)
        return alert

    async def _subject(self, fingerprint: str) -> tuple[Alert | None, Any, bool]:
        """Return the held alert (:meth:`_known`), its running walk (:meth:`_walking`) and whether it
        is acknowledged now (:meth:`_acknowledged`). :raises NotFoundError: unknown alert."""
        alert = await self._known(fingerprint)
        esc = self._walking(fingerprint)
        return alert, esc, await self._acknowledged(fingerprint, esc)

    async def acknowledge(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                          comment: str = "") -> dict[str, Any]:
        """Acknowledge an alert: stop its escalation; update Slack messages, acknowledge pages.

        :param actor: who (token name, Slack user id, ...). :param source: from where.
        :return: the escalation status (``fingerprint``, ``status``, ``acked_by``, ``acked_at``,
            ``ack_expires_at``, ...).
        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        # One store transaction: the record, audit, walk state and notices commit together, and
        # the connection is taken once, not once per write behind an intake's writes (issue 9).
        async with self.pipeline.lock, transaction_of(self.store):
            # esc None: nothing to stop; the ack is still recorded
            alert, esc, again = await self._subject(fingerprint)
            expires = (now + esc.snap.ack_timeout) if esc is not None and esc.snap.ack_timeout > 0 else None
            await self.store.record_ack(fingerprint, "ack", actor, now, source=source, expires_at=expires,
                                        comment=comment)
            await self.store.audit(actor, "ack", now, target=fingerprint, source=source,
                                   detail={"comment": comment} if comment else None)
            await self.escalations.acknowledge(fingerprint, now, actor, source, comment)
            if esc is None:
                await self._timeline(fingerprint, now, "acknowledged", actor, comment)
            if self.acks_counter is not None:
                self.acks_counter.labels(source.split(":", 1)[0]).inc()
            told = self._told(fingerprint, alert)
            if not again:  # Slack and PagerDuty already show it acknowledged: nothing to resend
                transition = f"ack:{fingerprint}:{int(now * 1000)}"
                if alert is not None and told:
                    await self.updates(alert, "acknowledged", now, transition, ["slack", "pagerduty"],
                                       receivers=told)
                await self.escalations.notify_notified(fingerprint, "acknowledged", now, transition, alert)
            outcome = self._outcome("acknowledged", fingerprint, alert, esc, told, now, again=again)
        self.log.info("alert acknowledged", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._answer(fingerprint, outcome, told)

    async def unacknowledge(self, fingerprint: str, actor: str, source: str,
                            now: float | None = None) -> dict[str, Any]:
        """Withdraw an acknowledgement: escalation restarts from the first step at once.

        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        # One store transaction: the record, audit, walk state and notices commit together, and
        # the connection is taken once, not once per write behind an intake's writes (issue 9).
        async with self.pipeline.lock, transaction_of(self.store):
            alert, esc, was_acked = await self._subject(fingerprint)
            await self.store.record_ack(fingerprint, "unack", actor, now, source=source)
            await self.store.audit(actor, "unack", now, target=fingerprint, source=source)
            await self.escalations.unacknowledge(fingerprint, now, actor, alert)
            if esc is None:
                await self._timeline(fingerprint, now, "unacknowledged", actor, "")
            told = self._told(fingerprint, alert) if was_acked else []
            if was_acked and alert is not None and not alert.resolved(now) and told:
                # the channel messages lose their [ACK] (chat.update back to the firing form)
                await self.updates(alert, "unacknowledged", now, f"unack:{fingerprint}:{int(now * 1000)}", ["slack"],
                                   receivers=told)
            outcome = self._outcome("unacknowledged", fingerprint, alert, self._walking(fingerprint), told, now)
        self.log.info("alert unacknowledged", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._answer(fingerprint, outcome, told)

    async def resolve(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                      comment: str = "") -> dict[str, Any]:
        """Resolve by hand: end escalation (resolved notices to everyone notified) and send
        ``resolved`` to the receivers (Slack message updated, PagerDuty incident resolved).

        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        # One store transaction: the record, audit, walk state and notices commit together, and
        # the connection is taken once, not once per write behind an intake's writes (issue 9).
        async with self.pipeline.lock, transaction_of(self.store):
            alert = await self._known(fingerprint)
            esc = self._walking(fingerprint)
            await self.store.record_ack(fingerprint, "resolve", actor, now, source=source, comment=comment)
            await self.store.audit(actor, "resolve", now, target=fingerprint, source=source,
                                   detail={"comment": comment} if comment else None)
            await self.escalations.resolve(fingerprint, now, actor, alert, comment=comment)
            if esc is None:
                await self._timeline(fingerprint, now, "resolved", actor, comment)
            told = self._told(fingerprint, alert)
            if alert is not None and not alert.resolved(now) and told:
                await self.updates(alert, "resolved", now, f"resolve:{fingerprint}:{int(now * 1000)}", None,
                                   receivers=told)
            outcome = self._outcome("resolved", fingerprint, alert, esc, told, now)
            await self.pipeline.resolve_by_hand(fingerprint, now)
        self.log.info("alert resolved by hand", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self._answer(fingerprint, outcome, told)

    async def escalate_now(self, fingerprint: str, actor: str, source: str, now: float | None = None,
                           comment: str = "") -> dict[str, Any]:
        """Notify the escalation's next level now instead of at its deadline (audited ``escalate``).

        An alert without a running walk gets the timeline entry only (``escalated``, saying so).

        :return: the escalation status.
        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        async with self.pipeline.lock, transaction_of(self.store):
            alert, esc, was_acked = await self._subject(fingerprint)
            await self.store.audit(actor, "escalate", now, target=fingerprint, source=source,
                                   detail={"comment": comment} if comment else None)
            if esc is None:
                await self._timeline(fingerprint, now, "escalated", actor,
                                     comment or "no escalation runs for this alert: nobody was notified")
            else:
                await self.escalations.escalate_now(fingerprint, now, actor, alert, comment=comment)
                told = self._told(fingerprint, alert)
                if was_acked and alert is not None and not alert.resolved(now) and told:
                    await self.updates(alert, "unacknowledged", now, f"escalate:{fingerprint}:{int(now * 1000)}",
                                       ["slack"], receivers=told)
        self.log.info("alert escalated by hand", extra={"alert": fingerprint, "actor": actor, "source": source})
        return self.escalations.status(fingerprint)

    async def note(self, fingerprint: str, actor: str, source: str, text: str, now: float | None = None) -> None:
        """Add a note to the alert's timeline (``note``, with ``actor`` and ``text``; audited ``note``).

        :raises NotFoundError: unknown alert.
        """
        now = self.clock() if now is None else now
        async with self.pipeline.lock, transaction_of(self.store):
            await self._known(fingerprint)
            await self.store.audit(actor, "note", now, target=fingerprint, source=source, detail={"comment": text})
            await self._timeline(fingerprint, now, "note", actor, text)
        self.log.info("alert note added", extra={"alert": fingerprint, "actor": actor, "source": source})
