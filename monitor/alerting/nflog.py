"""The notification log: what was last notified for each aggregation group (Alertmanager ``nflog/nflog.go``).

Two records per group key (``<route key>:{<group labels>}``):

- :class:`NotificationLog`, in memory: the last notification's firing and resolved fingerprints
  and its time (``nflogpb.Entry``). The dispatcher asks it at each group flush whether the
  group needs a notification (``notify/notify.go`` ``DedupStage.needsUpdate``) and logs what it
  sent. Entries outlive their group by ``retention`` seconds (Alertmanager ``--data.retention``,
  120 h).
- :class:`TransitionLog`, in the state store (kv ``nflog:<group key>`` =
  ``{"tid": transition id, "seq": n, "at": Unix seconds}``): the numbering of the group's
  transitions. The same content within ``repeat_interval`` keeps its number, so a notification
  replayed after a restart (the in-memory log is empty then) is the same outbox row and is not
  sent twice; new content, or the same content once ``repeat_interval`` has passed, takes the
  next number. The transition id is computed from the message by the caller
  (``monitor.notify.outbox_stage.transition_id``). The same record keeps the group's
  :class:`Entry` (``"firing"``, ``"resolved"``, ``"notified_at"``), written once the
  notification's outbox rows are: after a restart :meth:`TransitionLog.entries` seeds the
  in-memory log, so a group is neither re-announced nor left without its resolved message, and
  its repeat and group-interval timers resume from the last notification (Alertmanager keeps
  its nflog on disk for the same reason). Only the leader writes these keys, so a
  :class:`TransitionLog` keeps what it read and wrote (write-through): a flush reads nothing back
  from the store; inside :meth:`TransitionLog.batch` its writes are collected and written with
  one statement at the end (a group's number and entry are one write).

Times are Unix seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "NotificationLog", "TransitionLog", "KV_PREFIX", "DEFAULT_RETENTION"]

#: Seconds an entry is kept after its group is gone (Alertmanager ``--data.retention``).
DEFAULT_RETENTION = 120 * 3600.0
#: The state store kv key prefix of the persisted numbering.
KV_PREFIX = "nflog:"
_ENTRY_FIELDS = ("firing", "resolved", "notified_at")


@dataclass(slots=True)
class Entry:
    """The last notification of a group (Alertmanager ``nflogpb.Entry``)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at: float


class NotificationLog:
    """The in-memory log the dispatcher deduplicates against.

    >>> log = NotificationLog()
    >>> log.needs_update("g", frozenset({"a"}), frozenset(), send_resolved=True, repeat_interval=3600, now=0)
    True
    >>> log.log("g", frozenset({"a"}), frozenset(), 0)
    >>> log.needs_update("g", frozenset({"a"}), frozenset(), send_resolved=True, repeat_interval=3600, now=60)
    False
    """

    def __init__(self, retention: float = DEFAULT_RETENTION) -> None:
        self.retention = retention
        self._entries: dict[str, Entry] = {}

    def needs_update(self, key: str, firing: frozenset[str], resolved: frozenset[str], *, send_resolved: bool,
                     repeat_interval: float, now: float) -> bool:
        """Whether group ``key`` with these unmuted alerts needs a notification (``DedupStage.needsUpdate``).

        Yes when a firing alert is new, when every alert is now resolved and the last
        notification had firing ones, when a resolved alert is new and the receiver sends
        resolved messages, or when ``repeat_interval`` seconds have passed since the last one.
        """
        entry = self._entries.get(key)
        if entry is None:
            return bool(firing)
        if not firing <= entry.firing:
            return True
        if not firing:
            return bool(entry.firing)
        if send_resolved and not resolved <= entry.resolved:
            return True
        return entry.at <= now - repeat_interval

    def log(self, key: str, firing: frozenset[str], resolved: frozenset[str], now: float) -> None:
        """Record the notification just produced for group ``key``."""
        self._entries[key] = Entry(firing, resolved, now)

    def gc(self, now: float, live: Iterable[str]) -> None:
        """Forget entries older than the retention whose group (not in ``live``) is gone."""
        keep = set(live)
        horizon = now - self.retention
        for key in [k for k, e in self._entries.items() if e.at < horizon and k not in keep]:
            del self._entries[key]

    def restore(self, key: str, entry: Entry) -> None:
        """Seed the entry of group ``key`` (restart recovery; :meth:`TransitionLog.entries`)."""
        self._entries[key] = entry

    def get(self, key: str) -> Entry | None:
        """Return the entry of group ``key``, or ``None``."""
        return self._entries.get(key)

    def state(self) -> dict[str, Any]:
        """Return the log as ``{group key: {"firing": [fp], "resolved": [fp], "at": seconds}}``."""
        return {k: {"firing": sorted(e.firing), "resolved": sorted(e.resolved), "at": e.at}
                for k, e in self._entries.items()}


class TransitionLog:
    """The persisted numbering of each group's transitions (see the module docstring).

    :param store: the state store (``kv_get`` / ``kv_set``).

    Example::

        numbers = TransitionLog(store)
        await numbers.number(group_key, transition_id(message), now, repeat_interval=3600)  # 'a1b2...#0'
    """

    #: The most records kept in memory (the cache is dropped beyond it and read again as needed).
    CACHE_LIMIT = 100_000

    def __init__(self, store: Any) -> None:
        self.store = store
        self._values: dict[str, dict[str, Any] | None] = {}  # kv key -> value (None: no record)
        self._dirty: dict[str, dict[str, Any]] | None = None  # inside batch(): kv key -> value to write
        self._dirty_at = 0.0

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Collect the writes of :meth:`number` and :meth:`record` and write them at the end, with
        one statement (``store.kv_set_many``). Use it inside the store transaction that writes the
        outbox rows, so numbers, rows and entries commit together. Nested use joins the outer one.
        """
        if self._dirty is not None:
            yield
            return
        self._dirty, self._dirty_at = {}, 0.0
        try:
            yield
            dirty = self._dirty
        finally:
            self._dirty = None
        if dirty:
            await self.store.kv_set_many(list(dirty.items()), self._dirty_at)

    def forget(self) -> None:
        """Drop what was cached (after a failed transaction: the store may not hold it)."""
        self._values.clear()

    async def _get(self, key: str) -> dict[str, Any] | None:
        if key in self._values:
            return self._values[key]
        value = await self.store.kv_get(key)
        value = value if isinstance(value, dict) else None
        self._remember(key, value)
        return value

    async def _set(self, key: str, value: dict[str, Any], now: float) -> None:
        if self._dirty is not None:
            self._dirty[key] = value
            self._dirty_at = max(self._dirty_at, now)
        else:
            await self.store.kv_set(key, value, now)
        self._remember(key, value)

    def _remember(self, key: str, value: dict[str, Any] | None) -> None:
        if len(self._values) >= self.CACHE_LIMIT:
            self._values.clear()
        self._values[key] = value

    async def number(self, group_key: str, tid: str, now: float, repeat_interval: float) -> str:
        """Return ``<tid>#<n>``: the group's current number when ``tid`` was the last transition
        and ``repeat_interval`` has not passed since, else the next number (stored)."""
        key = KV_PREFIX + group_key
        last = await self._get(key)
        seq = 0
        kept: dict[str, Any] = {}
        if last is not None:
            seq = int(last.get("seq", 0))
            if last.get("tid") == tid and now - float(last.get("at", 0)) < repeat_interval:
                return f"{tid}#{seq}"
            seq += 1
            kept = {k: v for k, v in last.items() if k in _ENTRY_FIELDS}
        await self._set(key, {**kept, "tid": tid, "seq": seq, "at": now}, now)
        return f"{tid}#{seq}"

    async def record(self, group_key: str, firing: Iterable[str], resolved: Iterable[str], now: float) -> None:
        """Persist the group's notification-log :class:`Entry` (its outbox rows are written)."""
        key = KV_PREFIX + group_key
        last = await self._get(key)
        value = dict(last) if last is not None else {}
        value.update(firing=sorted(firing), resolved=sorted(resolved), notified_at=now)
        await self._set(key, value, now)

    async def entries(self) -> dict[str, Entry]:
        """Return the persisted entries by group key (restart recovery)."""
        out = {}
        for key, value in (await self.store.kv_scan(KV_PREFIX)).items():
            if isinstance(value, dict):
                self._remember(key, value)
            if isinstance(value, dict) and "notified_at" in value:
                out[key[len(KV_PREFIX):]] = Entry(frozenset(value.get("firing") or ()),
                                                  frozenset(value.get("resolved") or ()),
                                                  float(value["notified_at"]))
        return out
