"""Alerts resolved by hand stay resolved until their episode ends.

An alert resolved by hand (``codebook-monitor ack --resolve``, the API, a Slack button) while its
condition still holds keeps arriving firing: the rule goes on firing, a Prometheus keeps sending
it. PagerDuty's semantics decide what that means: a resolved incident stays resolved, and a new
trigger after the condition cleared opens a new incident. So:

- while the alert that arrives is the same episode — it started (``starts_at``) at or before the
  resolve by hand — it is taken as resolved at the time of the resolve: it is not listed as
  firing, no group announces it again (no ``repeat_interval`` re-send, no second resolved
  message when the condition finally clears) and escalation does not restart;
- when that episode ends (the alert arrives resolved) the record is dropped;
- an alert that started after the resolve is a new episode: it fires, notifies and escalates anew.

The records are kept in the state store (``kv`` keys ``hand_resolved:<fingerprint>``), so a restart
keeps them. Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from model.alert import Alert

__all__ = ["HandResolved", "KV_PREFIX"]

KV_PREFIX = "hand_resolved:"


class HandResolved:
    """The alerts resolved by hand whose episode goes on: ``{fingerprint: resolved at}``.

    :param store: the state store (``kv_scan``, ``kv_set``).

    Usage (the alert pipeline does this)::

        episodes = HandResolved(store)
        await episodes.load()                      # after a restart
        await episodes.mark(fingerprint, now)      # resolved by hand
        alerts, told = await episodes.apply(alerts, now)  # each ingest: same episode -> resolved
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.resolved_at: dict[str, float] = {}

    async def load(self) -> int:
        """Read the records from the store; return how many are open."""
        rows = await self.store.kv_scan(KV_PREFIX)
        self.resolved_at = {k[len(KV_PREFIX):]: float(v["resolved_at"]) for k, v in rows.items()
                            if isinstance(v, dict) and v.get("resolved_at") is not None}
        return len(self.resolved_at)

    async def mark(self, fingerprint: str, at: float) -> None:
        """Record that ``fingerprint`` was resolved by hand at ``at`` (durable first)."""
        await self.store.kv_set(KV_PREFIX + fingerprint, {"resolved_at": at}, at)
        self.resolved_at[fingerprint] = at

    async def _drop(self, fingerprint: str, now: float) -> None:
        await self.store.kv_set(KV_PREFIX + fingerprint, {"resolved_at": None}, now)
        self.resolved_at.pop(fingerprint, None)

    async def apply(self, alerts: Iterable[Alert], now: float) -> tuple[list[Alert], set[str]]:
        """Return ``alerts`` with each of a hand-resolved episode resolved at its resolve time, and
        the fingerprints of those (their receivers were told already).

        An alert that arrives resolved ends its episode (the record is dropped); one that started
        after the resolve is a new episode (the record is dropped, the alert passes unchanged).
        """
        out = []
        told: set[str] = set()
        for a in alerts:
            at = self.resolved_at.get(a.fingerprint)
            if at is None:
                out.append(a)
                continue
            if a.starts_at > at:
                await self._drop(a.fingerprint, now)
                out.append(a)
                continue
            if a.resolved(now):
                await self._drop(a.fingerprint, now)
            out.append(a.resolve(at))
            told.add(a.fingerprint)
        return out, told
