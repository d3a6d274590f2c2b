"""Probes sharded across replicas: probe runs per second and CPU per replica with 1, 2 and 3
replicas, and the time for a killed replica's probes to run again.

    .venv/bin/python benchmarks/sharding_bench.py [--targets 1500] [--interval 5] [--window 30]
        [--replicas 1,2,3] [--dsn postgresql://postgres@127.0.0.1:5432/test]

Real ``codebook-monitor run`` processes (``cluster.shard_probes``, heartbeat 1 s, member timeout
3 s) over one fresh PostgreSQL schema each round; ``--targets`` ``api`` probes every
``--interval`` seconds against one local HTTP server (in this process) that counts the hits of
each target. For each replica count, once every replica owns its share and has run it once, the
script measures over ``--window`` seconds: probe runs (``monitor_probe_runs_total``) per second
and CPU (user + system, ``/proc/<pid>/stat``) of each replica, and their totals. The offered load
is fixed (``targets / interval`` runs per second): the figures to compare are the CPU per
replica and the CPU per run. Then, with the most replicas, one (not the leader) is killed with
SIGKILL and the script prints, over the killed replica's targets, the time from the kill to each
target's next hit (median and max) against the bound ``member_timeout + heartbeat + probe
timeout + interval``. With ``os.getloadavg()``: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.daemon.scheduler import spread  # noqa: E402
from monitor.daemon.sharding import rendezvous_owner  # noqa: E402
from tests.support.cluster import HitCounter, Replica, replica_config, start_replica, stop_replica  # noqa: E402

HEARTBEAT = 1.0
MEMBER_TIMEOUT = 3.0  # the default: 3 x heartbeat_interval
PROBE_TIMEOUT = 2.0


async def _wait(check, timeout: float, what: str, *, fatal: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            if fatal:
                raise SystemExit(f"timed out waiting for {what}")
            print(f"  (timed out waiting for {what}: saturated)")
            return False
        await asyncio.sleep(0.5)
    return True


async def _round(args: argparse.Namespace, n: int, targets: list[str], workdir: Path, *, kill: bool) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(args.dsn)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    members = [f"r{i}" for i in range(n)]
    replicas: list[Replica] = []
    try:
        async with HitCounter() as server, httpx.AsyncClient(timeout=10) as client:
            began = time.time()
            for m in members:
                text = replica_config(member=m, targets=targets, target_url=server.url, dsn=args.dsn, schema=schema,
                                      interval=args.interval, timeout=PROBE_TIMEOUT, heartbeat=HEARTBEAT)
                replicas.append(await start_replica(workdir / f"{n}-{m}", text, m))

            async def settled() -> bool:
                owned = [await r.metric(client, "monitor_probes_owned") for r in replicas]
                seen = [await r.metric(client, "monitor_cluster_members") for r in replicas]
                return seen == [float(n)] * n and sum(owned) == len(targets)
            await _wait(settled, 120, "the replicas to split the probes")
            t0 = time.time()

            async def all_hit() -> bool:
                return all(server.first_hit_after(t, t0) for t in targets)
            await _wait(all_hit, 10 * args.interval, "a first round of probes", fatal=False)

            runs0 = [await r.metric(client, "monitor_probe_runs_total") for r in replicas]
            cpu0 = [r.cpu_seconds() for r in replicas]
            w0 = time.monotonic()
            await asyncio.sleep(args.window)
            elapsed = time.monotonic() - w0
            runs = [await r.metric(client, "monitor_probe_runs_total") - a for r, a in zip(replicas, runs0)]
            cpu = [r.cpu_seconds() - c for r, c in zip(replicas, cpu0)]
            for r, k, c in zip(replicas, runs, cpu):
                print(f"  replicas={n} {r.member}: {k / elapsed:7.1f} probes/s  CPU {100 * c / elapsed:5.1f}%  "
                      f"{1000 * c / max(k, 1):5.2f} ms CPU per run")
            print(f"  replicas={n} total: {sum(runs) / elapsed:7.1f} probes/s  CPU {100 * sum(cpu) / elapsed:5.1f}%  "
                  f"{1000 * sum(cpu) / max(sum(runs), 1):5.2f} ms CPU per run  "
                  f"(offered {len(targets) / args.interval:.1f}/s; loadavg {os.getloadavg()[0]:.1f})")
            overlaps = server.overlaps(args.interval)
            when = sorted(spread(f"probe:{t}", args.interval) + b * args.interval - began
                          for t, bs in overlaps.items() for b in bs)
            at = f" (at {when[0]:.0f} to {when[-1]:.0f} s after the first replica started)" if when else ""
            print(f"  replicas={n}: targets hit twice in one interval: {len(overlaps)}{at}")

            if kill:
                victim = replicas[-1]
                lost = [t for t in targets if rendezvous_owner(t, members) == victim.member]
                await stop_replica(victim, kill=True)
                killed = time.time()

                async def resumed() -> bool:
                    return all(server.first_hit_after(t, killed) for t in lost)
                await _wait(resumed, 20 * args.interval, "the killed replica's targets to be probed again")
                delays = sorted(h - killed for t in lost if (h := server.first_hit_after(t, killed)) is not None)
                bound = MEMBER_TIMEOUT + HEARTBEAT + PROBE_TIMEOUT + args.interval
                print(f"  kill -9 {victim.member} ({len(lost)} targets): probed again after median "
                      f"{statistics.median(delays):.1f} s, max {delays[-1]:.1f} s (bound {bound:.0f} s = "
                      f"member_timeout {MEMBER_TIMEOUT:g} + heartbeat {HEARTBEAT:g} + probe timeout "
                      f"{PROBE_TIMEOUT:g} + interval {args.interval:g}; two intervals = {2 * args.interval:g} s)")
    finally:
        for r in replicas:
            await stop_replica(r)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def main() -> None:
    """Run one round per replica count and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=1500)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--window", type=float, default=30.0)
    p.add_argument("--replicas", default="1,2,3")
    p.add_argument("--dsn", default=os.environ.get("MONITOR_TEST_DATABASE_URL",
                                                    "postgresql://postgres@127.0.0.1:5432/test"))
    args = p.parse_args()
    counts = [int(x) for x in args.replicas.split(",")]
    targets = [f"t{i:05d}" for i in range(args.targets)]
    print(f"sharding: {args.targets} api probes every {args.interval:g} s, window {args.window:g} s, "
          f"{os.cpu_count()} CPUs, loadavg {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            await _round(args, n, targets, Path(tmp), kill=n == max(counts) and n > 1)


if __name__ == "__main__":
    asyncio.run(main())
