"""Probe sharding piece by piece: rendezvous hashing, membership rows in the real PostgreSQL
(database clock, duplicate member ids), the hand-over delays and the view lease of
:class:`~monitor.daemon.sharding.ProbeShards` on a manual clock, and the ``cluster:`` config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from monitor.config.cluster import ClusterConfig, shard_warnings
from monitor.config.loader import InvalidConfig, load_config_text
from monitor.daemon.sharding import LeaderSavesRuleState, ProbeShards, rendezvous_owner
from monitor.store.members import Members
from monitor.store.postgres import PostgresStore

KEYS = [f"probe-{i}" for i in range(3000)]


def test_rendezvous_moves_only_the_probes_of_the_member_that_left_or_joined():
    three = {k: rendezvous_owner(k, ["a", "b", "c"]) for k in KEYS}
    assert three == {k: rendezvous_owner(k, ["c", "a", "b"]) for k in KEYS}  # order does not matter
    for m in "abc":  # an even split: each a third, give or take
        assert 800 < sum(o == m for o in three.values()) < 1200
    two = {k: rendezvous_owner(k, ["a", "c"]) for k in KEYS}
    assert all(two[k] == three[k] for k in KEYS if three[k] != "b")  # only b's probes moved
    four = {k: rendezvous_owner(k, ["a", "b", "c", "d"]) for k in KEYS}
    assert all(four[k] in (three[k], "d") for k in KEYS)  # a joiner only takes, nobody swaps
    assert rendezvous_owner("x", []) is None


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def pg_store(pg_schema):
    dsn, schema = pg_schema
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    yield store
    await store.close()


def shards(member: str, store, clock: Clock, probes: dict, changes: list) -> ProbeShards:
    cfg = ClusterConfig(shard_probes=True, member_id=member, heartbeat_interval=1.0, member_timeout=600.0)
    return ProbeShards(cfg, state=lambda: store, settings=lambda: probes, on_change=lambda: changes.append(member),
                       registry=CollectorRegistry(), clock=clock)


async def test_a_joiner_waits_out_the_lease_and_a_dead_members_probes_wait_only_the_timeout(pg_store):
    clock = Clock()
    probes = {k: SimpleNamespace(timeout=5.0) for k in KEYS[:60]}
    changes: list[str] = []
    a = shards("a", pg_store, clock, probes, changes)
    b = shards("b", pg_store, clock, probes, changes)

    async def tick(seconds: float, *beating: ProbeShards) -> None:
        """Advance the clock by ``seconds`` in steps of at most 1 s (the heartbeat interval),
        each step followed by a heartbeat of every member in ``beating``."""
        while seconds > 1e-9:
            step = min(1.0, seconds)
            clock.t += step
            seconds -= step
            for m in beating:
                await m.beat()

    await a.beat()
    assert a.view == ("a",) and set(a.owned) == set(probes) and changes == ["a"]
    # Just started: the previous owners are unknown; nothing runs before lease + timeout (2 s + 5 s).
    await tick(6.9, a)
    assert not any(a.may_run(k) for k in probes)
    await tick(0.2, a)
    assert all(a.may_run(k) for k in probes)

    await b.beat()  # b joins
    b_own = {k for k in probes if rendezvous_owner(k, ["a", "b"]) == "b"}
    assert set(b.owned) == b_own and 0 < len(b_own) < len(probes)
    assert all(a.may_run(k) for k in b_own)  # a has not seen b yet ...
    await a.beat()
    assert not any(a.may_run(k) for k in b_own) and set(a.owned) == set(probes) - b_own  # ... now it has
    # b waits lease + timeout: a's last run of them (on a view at most 2 s old) has ended
    await tick(6.9, a, b)
    assert not any(b.may_run(k) for k in b_own)
    await tick(0.2, a, b)
    assert all(b.may_run(k) for k in b_own) and all(a.may_run(k) for k in a.owned)

    # a's view lapses (no heartbeat for the lease): it starts nothing, even what it owns.
    await tick(2.0, b)
    assert not any(a.may_run(k) for k in probes)
    await a.beat()  # fresh again, but its ownership was void: a full hand-over delay
    assert set(a.owned) == set(probes) - b_own and not any(a.may_run(k) for k in probes)
    await tick(7.1, a, b)
    assert all(a.may_run(k) for k in a.owned)

    await a.leave()  # a leaves cleanly: b takes its probes after their timeout alone
    a_own = set(probes) - b_own
    await b.beat()
    assert b.view == ("b",) and set(b.owned) == set(probes)
    await tick(4.9, b)
    assert not any(b.may_run(k) for k in a_own)
    await tick(0.2, b)
    assert all(b.may_run(k) for k in probes)
    assert b.members_gauge._value.get() == 1 and b.owned_gauge._value.get() == len(probes)  # noqa: SLF001


async def test_two_processes_with_one_member_id_cannot_both_be_members(pg_store):
    first = Members(pg_store, "same", timeout=600.0)
    second = Members(pg_store, "same", timeout=600.0)
    assert (await first.beat()).members == ("same",)
    beat = await second.beat()
    assert beat.conflict and beat.members == ()
    assert not (await first.beat()).conflict  # the first keeps its row
    await first.leave()
    assert (await second.beat()) == type(beat)(("same",))  # free: the second takes it


async def test_a_member_is_dead_by_the_database_clock(pg_store):
    await Members(pg_store, "old", timeout=5.0).beat()
    async with pg_store._begin() as c:  # noqa: SLF001 - age the row as a dead member's would be
        await c.execute("UPDATE cluster_members SET heartbeat_at = heartbeat_at - 10 WHERE member_id = 'old'")
    assert (await Members(pg_store, "new", timeout=5.0).beat()).members == ("new",)


def test_cluster_config_errors_name_the_key():
    with pytest.raises(InvalidConfig) as exc:
        load_config_text("cluster:\n  shard_probes: true\n")
    assert any("cluster.shard_probes" in str(e) and "postgres" in str(e) for e in exc.value.errors), exc.value.errors
    with pytest.raises(InvalidConfig) as exc:
        load_config_text("cluster:\n  heartbeat_interval: 5s\n  member_timeout: 6s\n")
    assert any("monitor.yaml:3:3: cluster.member_timeout: must be at least twice heartbeat_interval (5s)" in str(e)
               for e in exc.value.errors), exc.value.errors
    cfg = load_config_text("state: {backend: postgres, dsn: 'postgresql://x@h/db'}\n"
                           "cluster: {shard_probes: true, member_id: m1, heartbeat_interval: 2s}\n")
    assert cfg.cluster.timeout == 6.0 and cfg.cluster.member_id == "m1"
    assert shard_warnings(cfg) and "each replica's rules see only the probes it runs" in shard_warnings(cfg)[0]
    assert len(shard_warnings(cfg)) == 1
    fast = load_config_text("state: {backend: postgres, dsn: 'postgresql://x@h/db'}\n"
                            "cluster: {shard_probes: true, heartbeat_interval: 2s}\n"
                            "probes: [{name: quick, kind: disk, paths: [/], interval: 10s, timeout: 5s}]\n")
    want = "1 probe(s) (first: 'quick') have an interval shorter than cluster.member_timeout + heartbeat_interval (8s)"
    assert want in shard_warnings(fast)[1]
    assert shard_warnings(load_config_text("")) == []


def test_the_readme_configuration_loads():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Sharded probes"):readme.index("## Runbooks")]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    cfg = load_config_text(block, env={"MONITOR_STATE_DSN": "postgresql://monitor@db:5432/monitor"})
    assert cfg.cluster.shard_probes and cfg.cluster.timeout == 15.0 and cfg.cluster.member_id == "monitor-a"


async def test_only_the_leader_saves_rule_alert_state(pg_store):
    leading = False
    state = LeaderSavesRuleState(pg_store, lambda: leading)
    row = {"key": "f|g|A|1", "active_at": 1.0, "fired_at": None, "state": "pending", "labels": {"a": "1"}}
    await state.save_rule_alerts([row])
    assert await state.load_rule_alerts() == []
    leading = True
    await state.save_rule_alerts([row])
    assert [r["key"] for r in await state.load_rule_alerts()] == ["f|g|A|1"]
