"""``cluster:`` — replicas that share the PostgreSQL state store and split the probes.

Off by default: one process probes everything, as before. With ``shard_probes: true`` each
replica writes a heartbeat row to the state store every ``heartbeat_interval``; a member whose
row is older than ``member_timeout`` (measured by the database's clock) is dead; every probe is
run by one live member, chosen by rendezvous hashing (see :mod:`monitor.daemon.sharding`).

Example::

    cluster:
      shard_probes: true
      member_id: monitor-a      # default: the host name; unique per replica
      heartbeat_interval: 5s
      member_timeout: 15s       # default: 3 x heartbeat_interval
"""

from __future__ import annotations

import socket
from typing import Any

from pydantic import Field, model_validator

from model.duration import PositiveDuration, format_duration
from monitor.config.validation import Section, located_error

#: Heartbeats a member may miss before the others take its probes (the default ``member_timeout``).
MISSED_HEARTBEATS = 3


class ClusterConfig(Section):
    """The ``cluster:`` section.

    :ivar shard_probes: split the probes between the live replicas (needs ``state.backend: postgres``).
    :ivar member_id: this replica's name in the membership table; unique among the replicas
        (default: the host name, so two replicas on one host must each set one).
    :ivar heartbeat_interval: seconds between heartbeats (default 5s); a change of membership is
        seen within one interval.
    :ivar member_timeout: seconds without a heartbeat after which a member is dead and its probes
        move (default ``3 x heartbeat_interval``; at least ``2 x heartbeat_interval``).
    """

    shard_probes: bool = False
    member_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=200)
    heartbeat_interval: PositiveDuration = 5.0
    member_timeout: PositiveDuration | None = None

    @model_validator(mode="after")
    def _timeouts(self) -> ClusterConfig:
        if self.member_timeout is None:
            self.member_timeout = MISSED_HEARTBEATS * self.heartbeat_interval
        elif self.member_timeout < 2 * self.heartbeat_interval:
            hb, got = format_duration(self.heartbeat_interval), format_duration(self.member_timeout)
            raise located_error([(("member_timeout",), f"must be at least twice heartbeat_interval ({hb}), got {got}")])
        return self

    @property
    def timeout(self) -> float:
        """``member_timeout`` in seconds (resolved at load)."""
        assert self.member_timeout is not None  # resolved by the validator
        return float(self.member_timeout)


def cluster_problems(cluster: ClusterConfig, state_backend: str) -> list[tuple[str, str]]:
    """Return ``(key path, message)`` for each cross-section error of ``cluster:``."""
    if cluster.shard_probes and state_backend != "postgres":
        return [("cluster.shard_probes", "needs state.backend: postgres (the replicas' membership lives there)")]
    return []


def shard_warnings(config: Any) -> list[str]:
    """Return the warnings of a sharded configuration (``check`` prints them, the daemon logs them).

    Without remote write, or rules evaluated against a remote store, each replica's rules see
    only the samples of the probes it runs itself. A dead replica's probe runs again within
    ``member_timeout + heartbeat_interval + timeout + interval`` (:mod:`monitor.daemon.sharding`):
    within two intervals only when the first three fit in one interval.
    """
    cluster = getattr(config, "cluster", None)
    if cluster is None or not cluster.shard_probes:
        return []
    out = []
    remote_write = getattr(config, "remote_write", None)
    datasource = getattr(getattr(config, "rules", None), "datasource", None)
    if not remote_write and not datasource:
        out.append("cluster.shard_probes is on without remote_write or a remote rules datasource: each replica's "
                   "rules see only the probes it runs (its shard), so alerts on probe samples fire only where the "
                   "probe runs and only the leader's shard pages")
    takeover = cluster.timeout + float(cluster.heartbeat_interval)
    slow = [p.name for p in getattr(config, "probes", []) if takeover + float(p.timeout) > float(p.interval)]
    if slow:
        out.append(f"{len(slow)} probe(s) (first: {slow[0]!r}) have an interval shorter than cluster.member_timeout "
                   f"+ heartbeat_interval ({format_duration(takeover)}) + their timeout: when a replica dies, their "
                   "next run can come later than two intervals")
    return out
