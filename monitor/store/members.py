"""Membership of the replicas sharing one PostgreSQL state store: one heartbeat row per member.

Table ``cluster_members`` (migration 30): ``member_id`` (the configured ``cluster.member_id``),
``instance`` (a random token of the running process), ``joined_at`` and ``heartbeat_at`` (Unix
seconds, by the database's clock). A member is live while ``now() - heartbeat_at`` is at most the
member timeout, ``now()`` being the database's: the members' own clocks never meet, so a skewed
host clock cannot make a live member look dead or a dead one live.

Two processes configured with the same ``member_id`` cannot both be members: a heartbeat takes
the row only if it is this process's (same ``instance``) or has expired; the other process is
told (:attr:`Beat.conflict`) and runs no probe until the row is free.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

#: Rows of members gone for longer than this many member timeouts are deleted by a heartbeat.
FORGET_AFTER = 100

_NOW = "EXTRACT(EPOCH FROM now())::double precision"

_BEAT = (
    "INSERT INTO cluster_members (member_id, instance, joined_at, heartbeat_at) "
    f"VALUES ($1, $2, {_NOW}, {_NOW}) "
    "ON CONFLICT (member_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, instance = excluded.instance, "
    "joined_at = CASE WHEN cluster_members.instance = excluded.instance THEN cluster_members.joined_at "
    "ELSE excluded.joined_at END "
    "WHERE cluster_members.instance = excluded.instance OR cluster_members.heartbeat_at < excluded.heartbeat_at - $3 "
    "RETURNING member_id")
_LIVE = f"SELECT member_id FROM cluster_members WHERE heartbeat_at >= {_NOW} - $1 ORDER BY member_id"
_FORGET = f"DELETE FROM cluster_members WHERE heartbeat_at < {_NOW} - $1"
_LEAVE = "DELETE FROM cluster_members WHERE member_id = $1 AND instance = $2"


@dataclass(frozen=True)
class Beat:
    """What one heartbeat saw.

    :ivar members: the live member ids, sorted (this member among them unless ``conflict``).
    :ivar conflict: another live process holds this ``member_id``: this one is not a member.
    """

    members: tuple[str, ...]
    conflict: bool = False


class Members:
    """This process's heartbeat row, and the live members, in a PostgreSQL state store.

    :param store: the opened :class:`~monitor.store.postgres.PostgresStore` (its pool and schema).
    :param member_id: this replica's id (``cluster.member_id``).
    :param timeout: seconds without a heartbeat after which a member is dead (``cluster.member_timeout``).
    :param instance: this process's token (random by default; a restarted process is a new instance).

    Example::

        members = Members(store, "monitor-a", timeout=15.0)
        beat = await members.beat()     # Beat(members=("monitor-a", "monitor-b"))
        await members.leave()           # clean shutdown: the others take the probes at once
    """

    def __init__(self, store: Any, member_id: str, *, timeout: float, instance: str | None = None) -> None:
        self.store = store
        self.member_id = member_id
        self.timeout = timeout
        self.instance = instance or uuid.uuid4().hex

    async def beat(self) -> Beat:
        """Write this member's heartbeat and return the live members, in one transaction.

        :raises StoreError: the database cannot be reached.
        """
        async with self.store._begin() as c:  # noqa: SLF001 - one transaction of the store's own pool
            took = await c.fetchrow(_BEAT, self.member_id, self.instance, float(self.timeout))
            rows = await c.fetch(_LIVE, float(self.timeout))
            await c.execute(_FORGET, float(self.timeout * FORGET_AFTER))
        live = tuple(r["member_id"] for r in rows)
        if took is None:
            return Beat(tuple(m for m in live if m != self.member_id), conflict=True)
        return Beat(live)

    async def leave(self) -> None:
        """Delete this member's row (clean shutdown, once its probes are stopped).

        :raises StoreError: the database cannot be reached (the row then expires by itself).
        """
        async with self.store._begin() as c:  # noqa: SLF001
            await c.execute(_LEAVE, self.member_id, self.instance)
