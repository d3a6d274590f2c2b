"""The dispatcher: aggregation groups and their timers; at each group flush, the group's mute and
dedup decision. No I/O, no clock.

Semantics of Alertmanager ``dispatch/dispatch.go`` (``Dispatcher``, ``aggrGroup``); the flush runs
the pure front of the receiver pipeline (``notify/notify.go`` ``createReceiverStage``): the mute
stages (:mod:`monitor.alerting.mute`), the route's time intervals and the dedup decision against
the notification log (:mod:`monitor.alerting.nflog`, ``DedupStage.needsUpdate``). Its output, a
:class:`Notification` per group and receiver, goes on to the durable stages (numbering, outbox:
:mod:`monitor.alerting.stage`).

- Each alert is routed (``Route.match``); for every matching route it joins the aggregation
  group keyed by ``<route key>:<group labels>`` (the route's ``group_by`` labels of the alert).
- A new group waits ``group_wait`` before its first flush — unless the alert started more than
  ``group_wait`` ago, then it flushes at once. After each flush the next one is
  ``group_interval`` later.
- At a flush the group's alerts are marked by the mute stages (inhibition, silences,
  maintenance windows); muted alerts are left out of the notification but stay visible with
  their markers. A route's ``mute_time_intervals`` (or being outside its
  ``active_time_intervals``) suppresses the whole notification.
- A notification is produced when a firing alert appeared that was not in the last one; when
  every alert is now resolved and the last one had firing alerts; when a resolved alert is new
  and the receiver sends resolved messages; or when ``repeat_interval`` has passed since the
  last one. Resolved alerts are included (the notifier decides whether to send them) and are
  dropped from the group after the flush; an empty group is deleted.

``Dispatcher.process(alerts, now)`` = ``put`` then ``flush``; call it again at
``next_wakeup()``. Due times are kept in a heap, so ``flush`` and ``next_wakeup`` cost what is due,
not what is held (a storm of thousands of groups is flushed by the one call at its due time).
All times are Unix seconds.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.alert import Alert
from model.labels import Labels, common_labels
from monitor.alerting.maintenance import TimeIntervals
from monitor.alerting.mute import MuteStages
from monitor.alerting.nflog import DEFAULT_RETENTION, Entry, NotificationLog
from monitor.alerting.route import Route, RouteMatch

__all__ = ["Notification", "Dispatcher", "GroupView"]


@dataclass(frozen=True, slots=True)
class Notification:
    """What should be sent to one receiver for one aggregation group (a notification intent).

    :ivar receiver: receiver name.
    :ivar group_key: ``<route key>:{<group labels>}``, stable across restarts (dedup key material).
    :ivar group_labels: the group's ``group_by`` labels.
    :ivar alerts: unmuted alerts, firing first then resolved, each sorted by labels.
    :ivar at: when the flush happened (Unix seconds).
    :ivar route: the matched route and its options.
    """

    receiver: str
    group_key: str
    group_labels: Labels
    alerts: tuple[Alert, ...]
    at: float
    route: RouteMatch

    @property
    def firing(self) -> list[Alert]:
        """The alerts firing at ``at``."""
        return [a for a in self.alerts if not a.resolved(self.at)]

    @property
    def resolved(self) -> list[Alert]:
        """The alerts resolved at ``at``."""
        return [a for a in self.alerts if a.resolved(self.at)]

    @property
    def status(self) -> str:
        """``"firing"`` if any alert fires, else ``"resolved"`` (webhook ``status``)."""
        return "firing" if self.firing else "resolved"

    def common_labels(self) -> dict[str, str]:
        """Labels shared (same value) by every alert (webhook ``commonLabels``)."""
        return common_labels([a.labels.as_dict() for a in self.alerts])

    def common_annotations(self) -> dict[str, str]:
        """Annotations shared by every alert (webhook ``commonAnnotations``)."""
        return common_labels([dict(a.annotations) for a in self.alerts])


@dataclass(slots=True)
class _Group:
    key: str
    route: RouteMatch
    labels: Labels
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    has_flushed: bool = False


@dataclass(frozen=True, slots=True)
class GroupView:
    """A read-only view of one aggregation group (for the API's ``/alerts/groups``)."""

    key: str
    receiver: str
    labels: Labels
    alerts: tuple[Alert, ...]
    next_flush: float


class Dispatcher:
    """Group routed alerts and decide when to notify; no I/O, no clock.

    :param route: the root of the routing tree.
    :param mutes: alert-level mute stages (none by default).
    :param time_intervals: named intervals for routes' ``mute_time_intervals`` /
        ``active_time_intervals``.
    :param send_resolved: ``receiver -> bool``: does the receiver send resolved messages
        (affects only whether a newly resolved alert alone triggers a notification).
    :param nflog_retention: seconds a group's last-notification record is kept after the group
        is gone (Alertmanager ``--data.retention``, 120h).

    Example (manual clock)::

        d = Dispatcher(build_route(cfg.route))
        d.process([alert], now=t0)            # [] - group_wait has not passed
        d.process([], now=d.next_wakeup())    # [Notification(...)]
    """

    def __init__(self, route: Route, *, mutes: MuteStages | None = None,
                 time_intervals: TimeIntervals | None = None,
                 send_resolved: Callable[[str], bool] = lambda receiver: True,
                 nflog_retention: float = DEFAULT_RETENTION) -> None:
        self.route = route
        self.mutes = mutes or MuteStages()
        self.time_intervals = time_intervals or TimeIntervals({})
        self.send_resolved = send_resolved
        self.nflog = NotificationLog(nflog_retention)
        self._groups: dict[str, _Group] = {}
        self._alerts: dict[str, Alert] = {}
        self._index: tuple[Any, Any] | None = None  # (instant, mute index) shared by flushes at one instant
        self._resume: dict[str, float] = {}  # group key -> last notification before a restart
        self._due: dict[str, float] = {}  # fingerprint -> its first group notification (escalation waits)
        self._timers: list[tuple[float, str]] = []  # heap of (next_flush, group key); stale entries skipped
        self._members: Counter[str] = Counter()  # fingerprint -> how many groups hold it
        self._orphans: set[str] = set()  # fingerprints that left a group (candidates for _gc)
        self._nflog_gc_at = -math.inf
        self._holds: list[set[str]] = []  # groups an intake batch is still being put into (hold())

    def restore(self, entries: Mapping[str, Entry]) -> None:
        """Seed the notification log from persisted entries (restart recovery, before :meth:`put`).

        A group re-formed for a restored entry that had firing alerts counts as flushed: it keeps
        its timers, flushing at the next multiple of ``group_interval`` after its last
        notification (never waiting ``group_wait`` again), and its ``repeat_interval`` counts
        from that notification. An entry with no firing alerts is a group that was deleted once
        empty (everything resolved and notified: Alertmanager ``dispatch.go`` stops and deletes
        an empty ``aggrGroup``), so an alert that fires again later starts a new group and waits
        ``group_wait``, as it would have without the restart.
        """
        for key, entry in entries.items():
            self.nflog.restore(key, entry)
            if entry.firing:
                self._resume[key] = entry.at

    # -- input ----------------------------------------------------------------------------------

    def hold(self) -> set[str]:
        """Start a hold: the groups that :meth:`put` ``(hold=...)`` touches are not flushed until
        :meth:`release` (an intake batch put in chunks is flushed whole, not a chunk at a time).

        :return: the hold (the set of group keys it holds back), for ``put`` and ``release``.
        """
        keys: set[str] = set()
        self._holds.append(keys)
        return keys

    def release(self, hold: set[str]) -> None:
        """End ``hold``: its groups flush at their due times (at once when they are due)."""
        self._holds = [h for h in self._holds if h is not hold]
        for key in hold:
            g = self._groups.get(key)
            if g is not None:
                heapq.heappush(self._timers, (g.next_flush, key))

    def put(self, alerts: Iterable[Alert], now: float, *, hold: set[str] | None = None) -> None:
        """Add or update alerts (by fingerprint) and insert them into their groups.

        :param hold: a :meth:`hold`: the groups touched are held back from :meth:`flush` until
            it is released.
        """
        t = now
        for alert in alerts:
            fp = alert.fingerprint
            old = self._alerts.get(fp)
            new = old is None or not old.overlaps(alert)
            alert = old.merge(alert) if old is not None and not new else alert
            self._alerts[fp] = alert
            if new:
                self._due.pop(fp, None)
            self._index = None
            for match in self.route.routes_for(alert.labels):
                group_labels = match.opts.group_labels(alert.labels)
                key = f"{match.route_key}:{_fmt_labels(group_labels)}"
                g = self._groups.get(key)
                if g is None:
                    g = _Group(key, match, group_labels, t + match.group_wait)
                    last = self._resume.pop(key, None)
                    if last is not None:
                        g.has_flushed = True
                        gi = match.group_interval
                        g.next_flush = last + gi * max(1, math.ceil((t - last) / gi)) if gi > 0 else t
                    self._groups[key] = g
                    heapq.heappush(self._timers, (g.next_flush, key))
                if fp not in g.alerts:
                    self._members[fp] += 1
                g.alerts[fp] = alert
                if hold is not None:
                    hold.add(key)
                # An alert older than group_wait needs no waiting (aggrGroup.insert).
                if not g.has_flushed and alert.starts_at + match.group_wait < t and g.next_flush > t:
                    g.next_flush = t
                    heapq.heappush(self._timers, (t, key))
                if new:
                    self._due[fp] = min(self._due.get(fp, g.next_flush), g.next_flush)
            if not self._members[fp]:
                self._orphans.add(fp)  # in no group: forgotten once resolved

    def forget_resolved(self, fingerprint: str) -> dict[str, Entry]:
        """Drop an alert its receivers were told is resolved outside the groups (resolved by hand):
        out of every group, and counted as resolved in each group's notification log, so no
        flush announces it again — neither firing nor resolved — and its next episode is new.

        :return: the changed log entries by group key (to persist: ``TransitionLog.record``).
        """
        alert = self._alerts.pop(fingerprint, None)
        self._due.pop(fingerprint, None)
        self._index = None
        if alert is None:
            return {}
        changed: dict[str, Entry] = {}
        for match in self.route.routes_for(alert.labels):
            key = f"{match.route_key}:{_fmt_labels(match.opts.group_labels(alert.labels))}"
            g = self._groups.get(key)
            if g is not None:
                g.alerts.pop(fingerprint, None)
                if not g.alerts:
                    del self._groups[key]
            entry = self.nflog.get(key)
            if entry is not None and fingerprint in entry.firing:
                new = Entry(entry.firing - {fingerprint}, entry.resolved | {fingerprint}, entry.at)
                self.nflog.restore(key, new)
                changed[key] = new
        return changed

    def notified_receivers(self, fingerprint: str, labels: Labels) -> list[str]:
        """Return the receivers (route order, no repeats) whose group notification log has told
        them of the alert ``fingerprint`` (firing or resolved): those to which follow-ups about it
        (acknowledged, resolved by hand) may go. An alert muted at every flush is in none."""
        out: list[str] = []
        for match in self.route.routes_for(labels):
            entry = self.nflog.get(f"{match.route_key}:{_fmt_labels(match.opts.group_labels(labels))}")
            if entry is not None and (fingerprint in entry.firing or fingerprint in entry.resolved) \
                    and match.receiver not in out:
                out.append(match.receiver)
        return out

    # -- output ---------------------------------------------------------------------------------

    def flush(self, now: float, limit: int | None = None) -> list[Notification]:
        """Flush the groups due at ``now`` (earliest due first; at most ``limit`` groups: call
        again while :meth:`next_wakeup` is due); return the notifications to send, in group-key
        order. Held groups (:meth:`hold`) wait for their release."""
        t = now
        due: set[str] = set()
        while self._timers and self._timers[0][0] <= t and (limit is None or len(due) < limit):
            at, key = heapq.heappop(self._timers)
            g = self._groups.get(key)
            if g is None or g.next_flush != at or key in due:
                continue  # a stale entry: re-timed, flushed or deleted
            if any(key in h for h in self._holds):
                continue  # pushed again at its release
            due.add(key)
        out: list[Notification] = []
        for key in sorted(due):
            n = self._flush_group(self._groups[key], t)
            if n is not None:
                out.append(n)
        self._gc(t)
        return out

    def process(self, alerts: Iterable[Alert], now: float) -> list[Notification]:
        """``put(alerts, now)`` then ``flush(now)``."""
        self.put(alerts, now)
        return self.flush(now)

    def next_wakeup(self) -> float | None:
        """Return the earliest time a group is due, or ``None`` when there are no groups."""
        timers = self._timers
        while timers:
            at, key = timers[0]
            g = self._groups.get(key)
            if g is not None and g.next_flush == at:
                return at
            heapq.heappop(timers)
        return None

    def waiting(self, now: float) -> set[str]:
        """Fingerprints whose first group notification is not due yet at ``now``: escalation
        waits for the route's ``group_wait`` like the receivers do (and sees the mutes that
        apply when it is due)."""
        return {fp for fp, due in self._due.items() if due > now}

    # -- views ----------------------------------------------------------------------------------

    def alerts(self, now: float) -> list[Alert]:
        """Return every alert held, with status markers computed at ``now`` (muted ones included)."""
        held = list(self._alerts.values())
        sources = self.mutes.index(held, now)
        return [self.mutes.mark(a, sources, now) for a in sorted(held, key=lambda a: a.labels)]

    def groups(self) -> list[GroupView]:
        """Return the current aggregation groups."""
        return [GroupView(g.key, g.route.receiver, g.labels, tuple(g.alerts.values()), g.next_flush)
                for g in sorted(self._groups.values(), key=lambda g: g.key)]

    def state(self) -> dict[str, Any]:
        """Return the notification log (group key -> last firing/resolved fingerprints and time)."""
        return self.nflog.state()

    # -- internals ------------------------------------------------------------------------------

    def _flush_group(self, g: _Group, t: float) -> Notification | None:
        g.has_flushed = True
        g.next_flush = t + g.route.group_interval
        heapq.heappush(self._timers, (g.next_flush, g.key))
        # One index per instant and alert set, shared by every group flushed at ``t``.
        if self._index is None or self._index[0] != t:
            self._index = (t, self.mutes.index(self._alerts.values(), t))
        sources = self._index[1]
        marked = [self.mutes.mark(a, sources, t) for a in g.alerts.values()]
        resolved_fps = [a.fingerprint for a in marked if a.resolved(t)]
        notification = None
        if not self._time_muted(g.route, t):
            visible = [a for a in marked if a.state == "active"]
            firing = sorted((a for a in visible if not a.resolved(t)), key=lambda a: a.labels)
            resolved = sorted((a for a in visible if a.resolved(t)), key=lambda a: a.labels)
            fset = frozenset(a.fingerprint for a in firing)
            rset = frozenset(a.fingerprint for a in resolved)
            if self.nflog.needs_update(g.key, fset, rset, send_resolved=self.send_resolved(g.route.receiver),
                                       repeat_interval=g.route.repeat_interval, now=t):
                self.nflog.log(g.key, fset, rset, t)
                notification = Notification(g.route.receiver, g.key, g.labels, tuple(firing + resolved), t, g.route)
        # Resolved alerts have been handled (sent or muted): drop them (DeleteIfNotModified).
        for fp in resolved_fps:
            if g.alerts.pop(fp, None) is not None:
                self._members[fp] -= 1
                if not self._members[fp]:
                    del self._members[fp]
                    self._orphans.add(fp)
        if not g.alerts:
            del self._groups[g.key]
        return notification

    def _time_muted(self, route: RouteMatch, t: float) -> bool:
        opts = route.opts
        if opts.mute_time_intervals and self.time_intervals.active(opts.mute_time_intervals, t):
            return True
        if opts.active_time_intervals and not self.time_intervals.active(opts.active_time_intervals, t):
            return True
        return False

    def _gc(self, t: float) -> None:
        """Forget resolved alerts no group holds (only those that left a group are looked at);
        the notification log's expired entries at most once a minute (its retention is hours)."""
        for fp in list(self._orphans):
            a = self._alerts.get(fp)
            if self._members.get(fp):
                self._orphans.discard(fp)  # back in a group
            elif a is None or a.resolved(t):
                self._orphans.discard(fp)
                if a is not None:
                    del self._alerts[fp]
                    self._due.pop(fp, None)
                    self._index = None
        if t - self._nflog_gc_at >= 60.0:
            self._nflog_gc_at = t
            self.nflog.gc(t, self._groups)


def _fmt_labels(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
