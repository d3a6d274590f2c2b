"""Probes sharded across three replicas (issue 15 item 3): real ``codebook-monitor run``
processes over one PostgreSQL schema probe 300 targets on a local server that counts the hits of
each; one replica is killed with SIGKILL; its targets are probed again within two intervals, no
target is probed by two replicas in one interval, and the alert on the lost member pages once
(local PagerDuty Events API v2)."""

from __future__ import annotations

import time

import httpx

from monitor.daemon.sharding import rendezvous_owner
from tests.support.cluster import HitCounter, replica_config, start_replica, stop_replica
from tests.support.daemon_helpers import eventually
from tests.support.notify_servers import FakeHTTP, PagerDutyEvents

TARGETS = [f"t{i:03d}" for i in range(300)]
MEMBERS = ["r0", "r1", "r2"]
INTERVAL = 15.0
TIMEOUT = 2.0
HEARTBEAT = 1.0

#: The membership shrank within the last 10 minutes (the replicas only join before the kill).
RULES = """\
groups:
  - name: cluster
    interval: 1s
    rules:
      - alert: ClusterMemberLost
        expr: max_over_time(monitor_cluster_members[10m]) > monitor_cluster_members
        labels: {severity: critical}
        annotations: {summary: a probing replica stopped heartbeating}
"""


async def test_three_replicas_split_the_probes_and_take_over_a_killed_ones(tmp_path, pg_schema):
    dsn, schema = pg_schema
    pd = PagerDutyEvents()
    async with HitCounter() as targets, FakeHTTP(pd) as pagerduty, httpx.AsyncClient(timeout=10) as client:
        replicas = []
        try:
            for m in MEMBERS:  # r0 starts first and leads
                text = replica_config(member=m, targets=TARGETS, target_url=targets.url, dsn=dsn, schema=schema,
                                      interval=INTERVAL, timeout=TIMEOUT, heartbeat=HEARTBEAT,
                                      pagerduty_url=pagerduty.url, rules=RULES)
                replicas.append(await start_replica(tmp_path / m, text, m, rules=RULES))

            async def settled():
                for r in replicas:
                    assert r.proc.returncode is None, r.stderr()[-3000:]
                members = [await r.metric(client, "monitor_cluster_members") for r in replicas]
                owned = [await r.metric(client, "monitor_probes_owned") for r in replicas]
                return members == [3.0] * 3 and sum(owned) == len(TARGETS) and all(owned) and owned
            owned = await eventually(settled, timeout=120, what="three members owning every probe once")
            settled_at = time.time()
            expected = [sum(rendezvous_owner(t, MEMBERS) == m for t in TARGETS) for m in MEMBERS]
            assert owned == expected

            async def all_probed():
                return all(targets.first_hit_after(t, settled_at) for t in TARGETS)
            await eventually(all_probed, timeout=4 * INTERVAL, what="every target probed after settling")

            victim = replicas[1]
            lost = [t for t in TARGETS if rendezvous_owner(t, MEMBERS) == victim.member]
            await stop_replica(victim, kill=True)
            killed_at = time.time()

            async def taken_over():
                return all(targets.first_hit_after(t, killed_at) for t in lost)
            await eventually(taken_over, timeout=10 * INTERVAL, what="the killed replica's targets probed again")
            late = {t: round(h - killed_at, 1) for t in lost
                    if (h := targets.first_hit_after(t, killed_at)) is not None and h - killed_at > 2 * INTERVAL}
            assert not late, f"probed again later than two intervals after the kill: {late}"

            survivors = [replicas[0], replicas[2]]
            async def rebalanced():
                owned = [await r.metric(client, "monitor_probes_owned") for r in survivors]
                members = [await r.metric(client, "monitor_cluster_members") for r in survivors]
                return members == [2.0, 2.0] and sum(owned) == len(TARGETS)
            await eventually(rebalanced, timeout=60, what="two members owning every probe")

            async def paged():
                return pd.pages >= 1
            await eventually(paged, timeout=120, what="the page for the lost member")
            # one more full interval of probing (and of rule evaluations resending the alert)
            resume = time.time()
            async def another_round():
                return all(targets.first_hit_after(t, resume) for t in TARGETS)
            await eventually(another_round, timeout=4 * INTERVAL, what="another round of probes")
            assert pd.pages == 1, pd.paged
            assert "ClusterMemberLost" in str(pd.paged[0])
            assert targets.overlaps(INTERVAL) == {}, "a target was probed twice in one interval"
        finally:
            for r in replicas:
                await stop_replica(r)
    for r in replicas:
        if r is not replicas[1]:
            assert r.proc.returncode == 0, r.stderr()[-3000:]
            assert "Traceback" not in r.stderr(), r.stderr()[-3000:]
