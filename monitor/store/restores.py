"""Recorded test restores (restore drills): kept in the state store's kv, audited.

The operations guide asks for a monthly test restore and sets an RTO of 4 hours.
``codebook-monitor backup record-restore --duration 47m [--kind database]`` calls
:func:`record_restore`; the daemon hands :func:`read_restores` to the ``backup`` probe, which
exports ``probe_backup_restore_last_timestamp_seconds{kind}`` and
``probe_backup_restore_duration_seconds{kind}`` for the shipped rules.

The kv value under :data:`RESTORES_KEY` is ``{kind: {"at": unix seconds, "duration": seconds,
"actor": str, "note": str}}``: the last drill of each kind; every drill is also an audit entry
(action ``backup.record_restore``, target ``backup:<kind>``), which keeps the history.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RESTORES_KEY", "record_restore", "read_restores"]

#: The store kv key of the last recorded restore per kind.
RESTORES_KEY = "backup:restores"


async def record_restore(store: Any, kind: str, duration: float, at: float, *, actor: str,
                         note: str = "", source: str = "cli") -> dict[str, Any]:
    """Store a test restore of ``kind`` that took ``duration`` seconds and ended at ``at``; audit it.

    :param store: an open state store (:class:`monitor.store.base.StateStore`).
    :param duration: seconds (> 0). :param at: Unix seconds the drill ended.
    :return: the stored entry ``{"at", "duration", "actor", "note"}``.
    :raises ValueError: ``duration`` is not positive or ``kind`` is empty.
    """
    if not kind:
        raise ValueError("kind must not be empty")
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration:g}s")
    entry = {"at": float(at), "duration": float(duration), "actor": actor, "note": note}
    async with store.transaction():
        current = await store.kv_get(RESTORES_KEY)
        state = dict(current) if isinstance(current, dict) else {}
        state[kind] = entry
        await store.kv_set(RESTORES_KEY, state, at)
        await store.audit(actor, "backup.record_restore", at, target=f"backup:{kind}", source=source,
                          detail={"duration_seconds": float(duration), "note": note})
    return entry


async def read_restores(store: Any) -> dict[str, dict[str, float]]:
    """Return ``{kind: {"at": unix seconds, "duration": seconds}}`` of the last drill of each kind."""
    current = await store.kv_get(RESTORES_KEY)
    if not isinstance(current, dict):
        return {}
    out = {}
    for kind, e in current.items():
        num = (int, float)
        if isinstance(e, dict) and isinstance(e.get("at"), num) and isinstance(e.get("duration"), num):
            out[str(kind)] = {"at": float(e["at"]), "duration": float(e["duration"])}
    return out
