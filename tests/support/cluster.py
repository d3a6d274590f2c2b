"""Replicas sharding probes, for tests and benchmarks: real ``codebook-monitor run`` processes on
loopback ports over one PostgreSQL schema, and a target server counting the hits of every target.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web

from monitor.daemon.scheduler import spread
from tests.support.probe_servers import closed_port

ROOT = Path(__file__).resolve().parents[2]
HEALTH = {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1.0.0",
          "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}


class HitCounter:
    """An HTTP server on 127.0.0.1 answering ``GET /<target>/health`` with a healthy document and
    recording the time of every hit, per target."""

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = defaultdict(list)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _health(self, request: web.Request) -> web.Response:
        self.hits[request.match_info["target"]].append(time.time())
        return web.json_response(HEALTH)

    async def __aenter__(self) -> HitCounter:
        app = web.Application()
        app.router.add_get("/{target}/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def first_hit_after(self, target: str, t: float) -> float | None:
        """Return the time of ``target``'s first hit after ``t``, or ``None``."""
        return next((h for h in self.hits.get(target, []) if h > t), None)

    def overlaps(self, interval: float) -> dict[str, list[int]]:
        """Return ``{target: [interval index, ...]}`` of the intervals in which a target was hit
        more than once. Runs fall at the probe's phase (``spread("probe:<name>")``) on every
        replica; an interval is the window of one run, centred on its phase instant."""
        out: dict[str, list[int]] = {}
        for target, hits in self.hits.items():
            phase = spread(f"probe:{target}", interval)
            buckets: dict[int, int] = defaultdict(int)
            for h in hits:
                buckets[math.floor((h - phase + interval / 2) / interval)] += 1
            twice = sorted(b for b, n in buckets.items() if n > 1)
            if twice:
                out[target] = twice
        return out


def replica_config(*, member: str, targets: list[str], target_url: str, dsn: str, schema: str,
                   interval: float, timeout: float, heartbeat: float, pagerduty_url: str | None = None,
                   rules: str | None = None) -> str:
    """Return a ``monitor.yaml`` (with ``{port}`` to fill) of one sharding replica probing ``targets``."""
    probes = "".join(f"  - {{name: {t}, kind: api, url: \"{target_url}/{t}\", interval: {interval:g}s, "
                     f"timeout: {timeout:g}s}}\n" for t in targets)
    text = (f"server:\n  host: 127.0.0.1\n  port: {{port}}\n"
            f"state:\n  backend: postgres\n  dsn: \"{dsn}\"\n  schema: {schema}\n"
            f"cluster:\n  shard_probes: true\n  member_id: {member}\n  heartbeat_interval: {heartbeat:g}s\n"
            f"probes:\n{probes}")
    if rules is not None:
        text += "rules:\n  files: [rules.yaml]\n  evaluation_interval: 1s\n"
    if pagerduty_url is not None:
        text += ("receivers:\n  - name: pager\n    pagerduty_configs: [{routing_key: R0UT1NGKEYs3cr3t0000000000000000, "
                 f"url: \"{pagerduty_url}\"}}]\nalerting:\n  route: {{receiver: pager, group_wait: 0s}}\n")
    return text


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MONITOR_URL", None)
    return env


@dataclass
class Replica:
    """One ``codebook-monitor run`` process."""

    member: str
    proc: asyncio.subprocess.Process
    port: int
    directory: Path
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return (self.directory / "stderr.log").read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """Return the user + system CPU seconds the process used so far (``/proc/<pid>/stat``)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def metric(self, client: httpx.AsyncClient, name: str) -> float:
        """Return the sum of the samples of metric ``name`` on the replica's ``/metrics``."""
        r = await client.get(self.url + "/metrics")
        total = 0.0
        for line in r.text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


async def start_replica(directory: Path, config_text: str, member: str, rules: str | None = None) -> Replica:
    """Start ``python -m monitor run`` in ``directory`` on a free port; wait until it serves ``/health``.

    :raises RuntimeError: the process exited (its stderr in the message) or did not serve in 60 s.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if rules is not None:
        (directory / "rules.yaml").write_text(rules)
    for _ in range(3):
        port = closed_port()
        (directory / "monitor.yaml").write_text(config_text.replace("{port}", str(port)))
        with open(directory / "stderr.log", "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "run", "--config", "monitor.yaml", cwd=directory, env=_env(),
                stdout=asyncio.subprocess.DEVNULL, stderr=log)
        replica = Replica(member, proc, port, directory)
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    if "address already in use" in replica.stderr().lower():
                        break
                    raise RuntimeError(f"replica {member} exited with {proc.returncode}: {replica.stderr()[-3000:]}")
                try:
                    if (await client.get(replica.url + "/health")).status_code in (200, 503):
                        return replica
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            else:
                await stop_replica(replica)
                raise RuntimeError(f"replica {member} did not serve /health within 60 s: {replica.stderr()[-3000:]}")
    raise RuntimeError(f"replica {member}: no free port")


async def stop_replica(replica: Replica, *, kill: bool = False) -> None:
    """SIGKILL (``kill``) or SIGTERM the replica (SIGKILL after 30 s) and wait for it."""
    if replica.proc.returncode is not None:
        return
    if kill:
        replica.proc.kill()
    else:
        replica.proc.terminate()
    try:
        await asyncio.wait_for(replica.proc.wait(), 30)
    except asyncio.TimeoutError:
        replica.proc.kill()
        await replica.proc.wait()


def json_lines(text: str) -> list[dict]:
    """Return the JSON log lines of a replica's stderr."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
