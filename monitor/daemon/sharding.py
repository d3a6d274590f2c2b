"""Probes sharded across replicas: rendezvous hashing over the live members (``cluster.shard_probes``).

Membership: every replica writes a heartbeat row to the shared PostgreSQL state store every
``H = cluster.heartbeat_interval`` seconds (:class:`~monitor.store.members.Members`, scheduler job
``cluster:heartbeat``) and reads back the live members (heartbeat no older than
``T = cluster.member_timeout`` by the database's clock). Each probe is run by the live member
of highest weight ``xxh3_64(member_id NUL probe name)`` (rendezvous, or highest-random-weight,
hashing: when a member joins or leaves, only the probes it gains or loses move, about ``1/N``
of them). The leader alone routes, escalates and sends, as before
(:mod:`monitor.daemon.leadership`): sharding changes who probes, not who pages.

No probe runs on two members at once. Three rules make the argument:

1. *A view is a lease.* A member runs a probe only while its last successful heartbeat *started*
   less than ``L = 2H`` ago (:meth:`ProbeShards.may_run`, checked once the run has its
   concurrency slot, just before it starts). A member that cannot reach the database, or whose
   loop stalls, stops starting runs after ``L``; its runs in flight end within their timeout.
2. *A member that sees itself lose a probe removes its job at once*; a member that sees itself
   gain one adds its job but admits no run before a hand-over delay.
3. *The hand-over delay* is ``L + timeout`` (the probe's timeout) when the probe's previous owner
   is still live (a member joined) or unknown (this member just started, the probe is new, or
   this member's own view had lapsed); it is ``timeout`` alone when the previous owner is gone
   (dead or left).

Join: B's row is committed at ``t0``; B's heartbeat returns at ``b >= t0`` and B starts the probe
no earlier than ``b + L + timeout``. The old owner A runs the probe at ``r`` only on a view from a
heartbeat started at ``s`` with ``r < s + L``; a heartbeat started after ``t0`` sees B and stops
the probe, so ``s <= t0`` and A's last run starts before ``t0 + L`` and ends before
``t0 + L + timeout <= B's start``. Death: the others see A gone once the database's ``now()`` is
``T`` past A's last heartbeat ``h``; A's view lease started at ``s <= h`` and ``T >= L``
(enforced by the config), so A starts nothing after ``s + L <= h + T``, and what it had in
flight ends within ``timeout``: waiting ``timeout`` after seeing A gone is enough. A clean
shutdown stops the probes, then deletes the row (:meth:`Members.leave`): the others take over at
their next heartbeat, after ``timeout``. Runs are at a fixed phase of each probe's interval on
every replica (:func:`monitor.daemon.scheduler.spread`), so the new owner's first run falls on
the same grid as the old owner's runs.

Timing: a dead member's probes run again after at most ``T + H`` (seen by the others) plus the
probe's timeout plus one probe interval (the next instant of its phase).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import xxhash
from prometheus_client import CollectorRegistry, Gauge

from monitor.config.cluster import ClusterConfig
from monitor.errors import StoreError
from monitor.store.members import Members

log = logging.getLogger("monitor.cluster")

#: A view of the members is trusted for this many heartbeat intervals after its heartbeat started.
LEASE_HEARTBEATS = 2


def rendezvous_owner(key: str, members: Sequence[str]) -> str | None:
    """Return the member of highest weight ``xxh3_64(member NUL key)`` (ties: the greater id), or
    ``None`` without members. The same on every host and every run (no per-process salt)."""
    best: tuple[int, str] | None = None
    for m in members:
        w = (xxhash.xxh3_64_intdigest(f"{m}\0{key}".encode()), m)
        if best is None or w > best:
            best = w
    return None if best is None else best[1]


class ProbeShards:
    """The probes this replica runs: heartbeats, ownership, hand-over delays, and their metrics.

    :param config: the ``cluster:`` section (``shard_probes`` on).
    :param state: ``() -> PostgresStore | None``: the opened state store (``None`` before start).
    :param settings: ``() -> {probe name: ProbeSettings}`` of the running configuration.
    :param on_change: called after the set of owned probes changed (the daemon adds and removes
        probe jobs).
    :param registry: where ``monitor_cluster_members`` and ``monitor_probes_owned`` go.
    :param clock: monotonic seconds (leases and hand-over delays never use wall time).
    """

    def __init__(self, config: ClusterConfig, *, state: Callable[[], Any], settings: Callable[[], Mapping[str, Any]],
                 on_change: Callable[[], None], registry: CollectorRegistry,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.member_id = config.member_id
        self.interval = float(config.heartbeat_interval)
        self.timeout = config.timeout
        self.lease = LEASE_HEARTBEATS * self.interval
        self._state = state
        self._settings = settings
        self._on_change = on_change
        self._clock = clock
        self._members: Members | None = None
        #: the live members of the last successful heartbeat (sorted), and when that heartbeat started
        self.view: tuple[str, ...] = ()
        self.view_at = -math.inf
        #: owned probe -> monotonic time before which none of its runs is admitted
        self.owned: dict[str, float] = {}
        self._known: set[str] = set()
        self._conflict = False
        self._left = False
        self._beating = asyncio.Lock()  # a heartbeat in flight at shutdown must not re-insert the row after leave()
        self.members_gauge = Gauge("monitor_cluster_members",
                                   "Live members of the probe-sharding cluster, as this replica's last heartbeat saw "
                                   "them (0 while it is not a member).", registry=registry)
        self.owned_gauge = Gauge("monitor_probes_owned", "Probes this replica runs (cluster.shard_probes).",
                                 registry=registry)

    def members(self) -> Members | None:
        """Return this replica's membership row handle (``None`` before the state store is open)."""
        if self._members is None and self._state() is not None:
            self._members = Members(self._state(), self.member_id, timeout=self.timeout)
        return self._members

    def owner(self, name: str, view: Sequence[str] | None = None) -> str | None:
        """Return the member that runs probe ``name`` in ``view`` (default: the current view)."""
        return rendezvous_owner(name, self.view if view is None else view)

    def may_run(self, name: str) -> bool:
        """Whether a run of probe ``name`` may start now: owned, past its hand-over delay, and the
        view of the members younger than the lease (see the module's rules 1-3)."""
        not_before = self.owned.get(name)
        now = self._clock()
        return not_before is not None and now >= not_before and now - self.view_at < self.lease

    async def beat(self) -> None:
        """Write the heartbeat, read the live members, and rebalance when they changed (scheduler
        job ``cluster:heartbeat``; never raises: a failed heartbeat leaves the lease to run out)."""
        async with self._beating:
            if not self._left:
                await self._beat()

    async def _beat(self) -> None:
        members = self.members()
        if members is None:
            return
        started = self._clock()
        try:
            beat = await asyncio.wait_for(members.beat(), self.interval)
        except (StoreError, asyncio.TimeoutError) as exc:
            log.warning("cluster heartbeat failed; probes stop when the view lease runs out",
                        extra={"error": f"{type(exc).__name__}: {exc}", "member": self.member_id})
            return
        if beat.conflict != self._conflict:
            self._conflict = beat.conflict
            if beat.conflict:
                log.error("another live replica has this cluster.member_id; running no probe until its row expires",
                          extra={"member": self.member_id})
        view = () if beat.conflict else beat.members
        lapsed = started - self.view_at >= self.lease  # the old view (and its ownership) is void
        old = () if lapsed else self.view
        if lapsed:
            self.owned = {}
        self.view, self.view_at = view, started
        self.members_gauge.set(len(view))
        if view != old or lapsed:
            self.rebalance(old)

    def rebalance(self, old: Sequence[str]) -> None:
        """Recompute the owned probes for the current view; ``old`` is the view they were owned in."""
        settings = self._settings()
        now = self._clock()
        owned: dict[str, float] = {}
        for name, s in settings.items():
            if self.owner(name) != self.member_id:
                continue
            if name in self.owned:
                owned[name] = self.owned[name]
                continue
            prev = self.owner(name, old) if name in self._known else None
            gone = prev is not None and prev != self.member_id and prev not in self.view
            owned[name] = now + float(s.timeout) + (0.0 if gone else self.lease)
        changed = owned.keys() != self.owned.keys()
        self.owned = owned
        self._known = set(settings)
        self.owned_gauge.set(len(owned))
        if old != self.view:
            log.info("cluster membership changed", extra={"member": self.member_id, "members": list(self.view),
                                                          "probes_owned": len(owned), "probes": len(settings)})
        if changed:
            self._on_change()

    async def leave(self) -> None:
        """Delete this replica's membership row (at shutdown, once its probes are stopped)."""
        self.owned = {}
        async with self._beating:
            self._left = True
            members = self._members
            if members is None or self._state() is None:
                return
            try:
                await asyncio.wait_for(members.leave(), self.interval)
            except (StoreError, asyncio.TimeoutError) as exc:
                log.warning("leaving the cluster failed; the row expires by itself",
                            extra={"error": f"{type(exc).__name__}: {exc}"})


class LeaderSavesRuleState:
    """The rule alerts' state store of a sharded replica (an
    :class:`~monitor.rules.state.AlertStateStore`): every replica restores from it, only the leader
    saves.

    The table is replaced whole by each save. With sharded probes and rules evaluated locally,
    each replica's alerts differ (each sees its own shard), so replicas saving in turn would
    overwrite each other's ``for`` timers; the leader's are the ones that page.

    :param store: the state store.
    :param is_leader: ``() -> bool``.
    """

    def __init__(self, store: Any, is_leader: Callable[[], bool]) -> None:
        self._store = store
        self._is_leader = is_leader

    async def load_rule_alerts(self) -> list[dict[str, Any]]:
        """Return every saved row."""
        return list(await self._store.load_rule_alerts())

    async def save_rule_alerts(self, rows: list[dict[str, Any]]) -> None:
        """Replace the saved rows with ``rows`` when leading; do nothing while following."""
        if self._is_leader():
            await self._store.save_rule_alerts(rows)
