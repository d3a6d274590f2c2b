"""Chaos: ``kill -9`` the daemon at random moments while alerts fire and resolve; then check, per
alert, that every transition had its effect once, in order, at every sink (webhook, Slack, PagerDuty).

    .venv/bin/python benchmarks/chaos.py --kills 20 [--postgres] [--seed 7]

Local parts only: the webhook, Slack and PagerDuty sinks of ``benchmarks/chaos_sinks.py`` (on
``tests/support/notify_servers.py``'s servers), and an HTTP target whose ``/health`` is
toggled healthy / 503. The daemon is the real process (``python -m monitor run --config ...``), on
its own port each round, with SQLite state (default) or PostgreSQL (``--postgres``:
127.0.0.1:5432 db ``test``, a fresh schema dropped at the end). Its config: an ``api`` probe of the
target every 1 s; a rule ``probe_success == 0`` with ``for: 2s`` (``resend_delay: 5s``: a firing
alert the rule manager stops sending resolves 20 s after its last evaluation); route ``group_by: ['...']``
(one group per alert), ``group_wait: 0s``, ``group_interval: 1s``, ``repeat_interval: 1h`` (so no
repeat falls in the run) to a webhook, a Slack and a PagerDuty receiver, ``send_resolved: true``; an intake
token. Meanwhile the driver raises and resolves intake alerts (``POST /api/v2/alerts``, each raise
with its own ``startsAt``, each resolve the same alert with ``endsAt`` now, retried until the
daemon answers 200, as a Prometheus would) and toggles the target, at random moments.

Each round runs the daemon a few seconds and ends with ``kill -9`` at a random moment of one of
the kinds: ``random``; ``in_send`` (the webhook, Slack or PagerDuty sink kills the daemon while
it handles a request: the send completes, its mark never happens); ``after_resolve`` (0-50 ms
after an intake resolve was answered 200, before its notification can be sent); ``after_raise``
(0-50 ms after an intake raise); ``after_target_up`` (0.3-1.5 s after the target came back, around
the rule's resolve and its send). After the last
round the daemon is restarted, the target made healthy, every open intake alert resolved, and it
runs until the webhook has been quiet for ``--quiet`` seconds.

What counts as lost, duplicated and out of order, per alert and episode at the webhook and by
effect at Slack and PagerDuty, is in ``benchmarks/chaos_sinks.py`` (:func:`analyse`).

Prints the counts per sink and their sums, and the command line; exit status 1 when a sum is not
0. ``run_chaos()`` is the same for the tests (``tests/daemon/test_daemon_chaos.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from tests.support.notify_servers import FakeHTTP, Recorded, Reply  # noqa: E402 - after the path fix-up
from chaos_sinks import (INTAKE, RULE, SLACK_TOKEN, Raise, Result, Sinks, analyse, iso,  # noqa: E402
                         uptime)

ADMIN_TOKEN = "ck_chaos_admin_token_0123456789abcdef"
INTAKE_TOKEN = "ck_chaos_intake_token_0123456789abcd"
PD_KEY = "R0CHAOS00000000000000000000000demo"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
HEALTH_DOC = {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1.0.0",
              "checks": {"database": "healthy"}}
SLOTS = 3
#: A resolved intake slot is raised again only after this many seconds of daemon uptime.
COOLDOWN_S = 3.0
#: Longest wait at the end for the outbox to empty (above the outbox's 60 s claim lease).
SETTLE_MAX_S = 150.0

RULES = f"""\
groups:
  - name: chaos
    interval: 1s
    rules:
      - alert: {RULE}
        expr: probe_success{{probe="target"}} == 0
        for: 2s
        labels: {{severity: warning}}
        annotations: {{summary: target down}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, target: str, hook: str, pd: str, slack: str, schema: str | None) -> Path:
    state = (f"state: {{backend: postgres, dsn: '{PG_DSN}', schema: {schema}}}" if schema
             else f"state: {{backend: sqlite, path: '{tmp / 'state.db'}'}}")
    (tmp / "rules.yaml").write_text(RULES)
    cfg = tmp / "monitor.yaml"
    cfg.write_text(f"""\
server: {{host: 127.0.0.1, port: '${{CHAOS_PORT}}'}}
log: {{level: INFO}}
probes:
  - {{name: target, kind: api, url: '{target}', interval: 1s, timeout: 800ms}}
rules:
  files: [rules.yaml]
  evaluation_interval: 1s
  resend_delay: 5s
{state}
receivers:
  - name: chaos
    webhook_configs: [{{url: '{hook}/hook', send_resolved: true}}]
    pagerduty_configs: [{{routing_key: {PD_KEY}, url: '{pd}', send_resolved: true}}]
    slack_configs: [{{channel: '#chaos', token: {SLACK_TOKEN}, api_url: '{slack}/api/', send_resolved: true}}]
alerting:
  resolve_timeout: 1h
  route: {{receiver: chaos, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
api:
  tokens:
    - {{name: chaos-admin, token: {ADMIN_TOKEN}, scopes: [read, ack, admin]}}
    - {{name: chaos-intake, token: {INTAKE_TOKEN}, scopes: [intake]}}
""")
    return cfg


class Chaos:
    """The driver: local servers, the daemon process, the random actions and the check."""

    def __init__(self, kills: int, postgres: bool, seed: int, quiet: float, workdir: Path,
                 round_s: tuple[float, float], log: bool) -> None:
        self.kills = kills
        self.postgres = postgres
        self.rng = random.Random(seed)
        self.quiet = quiet
        self.tmp = workdir
        self.round_s = round_s
        self.log = log
        self.healthy = True
        self.toggles: list[tuple[float, bool]] = [(time.time(), True)]
        self.ups: list[tuple[float, float]] = []  # (ready, killed) per daemon run
        self.raises: list[Raise] = []
        self.events: list[tuple[float, str]] = []  # the driver's log, for the details
        self.last_resolve: dict[int, float] = {}
        self.open: dict[int, Raise] = {}
        self.sinks = Sinks(self._event, self._kill_in_send)
        self.kill_on: str | None = None  # the sink whose next request kills the daemon (in_send)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.kill_kinds: Counter = Counter()
        self.schema = f"chaos_{uuid.uuid4().hex[:10]}" if postgres else None
        self.keep_schema = False  # run_chaos sets it when the caller keeps the workdir

    # -- local servers -----------------------------------------------------------------------

    def _target(self, req: Recorded) -> Reply:
        if self.healthy:
            return Reply(200, HEALTH_DOC)
        return Reply(503, {**HEALTH_DOC, "status": "unhealthy"})

    def _kill_in_send(self, sink: str) -> None:
        """Kill the daemon while ``sink`` handles its request (the ``in_send`` kill): the sink has
        the message, the daemon never learns it, and its outbox row stays claimed, unmarked."""
        if self.kill_on == sink and self.proc is not None:
            self.kill_on = None
            self.proc.send_signal(signal.SIGKILL)
            self._event(f"kill -9 inside a {sink} send")

    def _set_target(self, healthy: bool) -> None:
        if healthy != self.healthy:
            self.healthy = healthy
            self.toggles.append((time.time(), healthy))
            self._event(f"target {'up' if healthy else 'down'}")

    def _event(self, what: str) -> None:
        self.events.append((time.time(), what))

    # -- the daemon --------------------------------------------------------------------------

    async def _start(self, cfg: Path, n: int) -> None:
        port = _free_port()
        env = {**os.environ, "CHAOS_PORT": str(port)}
        logf = open(self.tmp / f"daemon-{n:03d}.log", "wb")  # noqa: SIM115 (kept for the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
                                     cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited {self.proc.returncode}; see {self.tmp}/daemon-{n:03d}.log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(self.url + "/-/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("daemon not ready after 60 s")
                await asyncio.sleep(0.05)
        self.ups.append((time.time(), float("inf")))
        self._event(f"daemon {n} ready on port {port}")

    def _kill(self, kind: str) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.ups[-1] = (self.ups[-1][0], time.time())
        self.kill_kinds[kind] += 1
        self._event(f"kill -9 ({kind})")
        if self.log:
            print(f"  kill -9 ({kind}) after {self.ups[-1][1] - self.ups[-1][0]:.2f}s", flush=True)

    async def _post(self, c: httpx.AsyncClient, alert: dict[str, Any]) -> bool:
        """POST one alert to the intake; True when answered 200."""
        try:
            r = await c.post(self.url + "/api/v2/alerts", json=[alert], timeout=5)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    @staticmethod
    def _alert(slot: int, starts_at: str, ends_at: str | None = None) -> dict[str, Any]:
        a: dict[str, Any] = {"labels": {"alertname": INTAKE, "severity": "warning", "slot": str(slot)},
                             "annotations": {"summary": f"chaos slot {slot}"}, "startsAt": starts_at}
        if ends_at:
            a["endsAt"] = ends_at
        return a

    async def _raise(self, c: httpx.AsyncClient, slot: int) -> bool:
        starts = iso(time.time())
        if await self._post(c, self._alert(slot, starts)):
            r = Raise(slot, starts, time.time())
            self._event(f"raise slot {slot} startsAt={starts} (200)")
            self.raises.append(r)
            self.open[slot] = r
            return True
        return False

    async def _resolve(self, c: httpx.AsyncClient, slot: int) -> bool:
        r = self.open[slot]
        if await self._post(c, self._alert(slot, r.starts_at, iso(time.time()))):
            r.resolved = time.time()
            self.last_resolve[slot] = r.resolved
            self._event(f"resolve slot {slot} startsAt={r.starts_at} (200)")
            del self.open[slot]
            return True
        return False

    def _closed(self) -> list[int]:
        """Slots that may be raised again: not open, and resolved at least ``COOLDOWN_S`` seconds of
        daemon uptime ago (a resolve and a re-raise between two flushes of the group are one flap
        that Alertmanager's semantics collapse: no notification; that is not what is measured)."""
        now = time.time()
        return [s for s in range(SLOTS) if s not in self.open
                and self._uptime(self.last_resolve.get(s, 0.0), now) >= COOLDOWN_S]

    async def _act(self, c: httpx.AsyncClient) -> str:
        """One random action; returns what it did."""
        x = self.rng.random()
        if x < 0.35:
            self._set_target(not self.healthy)
            return "target_up" if self.healthy else "target_down"
        closed = self._closed()
        if (x < 0.7 and closed) or not self.open:
            return "raise" if closed and await self._raise(c, self.rng.choice(closed)) else "noop"
        return "resolve" if await self._resolve(c, self.rng.choice(sorted(self.open))) else "noop"

    async def _round(self, c: httpx.AsyncClient) -> None:
        kind = self.rng.choice(["random", "after_resolve", "after_raise", "after_target_up", "in_send"])
        end = time.monotonic() + self.rng.uniform(*self.round_s)
        while time.monotonic() < end:
            await asyncio.sleep(self.rng.uniform(0.1, 0.9))
            await self._act(c)
        if kind == "random":
            pass
        elif kind == "after_resolve":
            if not self.open and self._closed():
                await self._raise(c, self.rng.choice(self._closed()))
                await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            if self.open:
                await self._resolve(c, self.rng.choice(sorted(self.open)))
            await asyncio.sleep(self.rng.uniform(0, 0.05))
        elif kind == "in_send":
            self.kill_on = self.rng.choice(["webhook", "slack", "pagerduty"])
            until = time.monotonic() + 8
            while self.kill_on is not None and time.monotonic() < until:
                closed = self._closed()
                if closed:
                    await self._raise(c, self.rng.choice(closed))
                elif self.open:
                    await self._resolve(c, self.rng.choice(sorted(self.open)))
                await asyncio.sleep(0.5)
            self.kill_on = None
        elif kind == "after_raise":
            closed = self._closed()
            if closed:
                await self._raise(c, self.rng.choice(closed))
            await asyncio.sleep(self.rng.uniform(0, 0.05))
        else:
            if self.healthy:
                self._set_target(False)
                await asyncio.sleep(self.rng.uniform(3.5, 5))  # long enough to fire
            self._set_target(True)
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        self._kill(kind)

    async def run(self) -> Result:
        """Run every round, let the last daemon go quiet, and check the deliveries."""
        t0 = time.monotonic()
        async with FakeHTTP(self._target) as target, FakeHTTP(self.sinks.hook) as hook, \
                FakeHTTP(self.sinks.pagerduty) as pd, FakeHTTP(self.sinks.slack_api) as slack:
            cfg = _config(self.tmp, target.url, hook.url, pd.url, slack.url, self.schema)
            headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
            async with httpx.AsyncClient(headers=headers) as c:
                try:
                    for n in range(self.kills):
                        await self._start(cfg, n)
                        await self._round(c)
                        # down for a moment; the target may change meanwhile
                        await asyncio.sleep(self.rng.uniform(0, 1.0))
                        if self.rng.random() < 0.3:
                            self._set_target(not self.healthy)
                    await self._start(cfg, self.kills)
                    self._set_target(True)
                    for slot in sorted(self.open):
                        while not await self._resolve(c, slot):
                            await asyncio.sleep(0.2)
                    await self._until_quiet()
                finally:
                    if self.proc and self.proc.poll() is None:
                        self.proc.send_signal(signal.SIGTERM)
                        try:
                            self.proc.wait(20)
                        except subprocess.TimeoutExpired:
                            self.proc.kill()
                            self.proc.wait()
                    if self.ups and self.ups[-1][1] == float("inf"):
                        self.ups[-1] = (self.ups[-1][0], time.time())
                    if self.schema and not self.keep_schema:
                        await _drop_schema(self.schema)
        (self.tmp / "events.log").write_text("".join(f"{iso(t)} {w}\n" for t, w in self.events))
        res = self.analyse()
        res.seconds = time.monotonic() - t0
        return res

    async def _until_quiet(self) -> None:
        """Wait until the daemon holds no active alert (everything is resolved by then, an alert
        the rules stopped sending once its ``endsAt`` passes), the outbox is empty
        (``monitor_outbox_depth`` 0) and the webhook has had no delivery for ``quiet`` seconds, at
        most ``SETTLE_MAX_S`` (a row claimed by a killed process stays hidden for the outbox's 60 s
        lease)."""
        start = time.time()
        async with httpx.AsyncClient(timeout=5) as c:
            while time.time() - start < SETTLE_MAX_S:
                await asyncio.sleep(0.25)
                last = max([t for t, _, _ in self.sinks.hook_log] + [start])
                if time.time() - last < self.quiet:
                    continue
                depth = -1.0
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    held = (await c.get(self.url + "/api/v2/alerts",
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
                    if any(a.get("status", {}).get("state") == "active" for a in held):
                        continue
                    text = (await c.get(self.url + "/metrics")).text
                    depth = sum(float(line.split()[-1]) for line in text.splitlines()
                                if line.startswith("monitor_outbox_depth"))
                if depth == 0:
                    return
        self._event("settle: gave up waiting for an empty outbox")

    # -- the check ---------------------------------------------------------------------------

    def _uptime(self, a: float, b: float) -> float:
        return uptime(self.ups, a, b)

    def analyse(self) -> Result:
        """Count lost, duplicated and out-of-order transitions from the recorded deliveries."""
        return analyse(self.sinks, self.raises, self.toggles, self.ups, self.kill_kinds)


async def _drop_schema(schema: str) -> None:
    import asyncpg

    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def run_chaos(kills: int = 20, postgres: bool = False, seed: int | None = None, quiet: float = 6.0,
                    workdir: Path | None = None, round_s: tuple[float, float] = (2.0, 6.0),
                    log: bool = False) -> Result:
    """Run the chaos and return the counts (``workdir`` keeps the config and the daemon logs)."""
    seed = random.randrange(1 << 30) if seed is None else seed
    with contextlib.ExitStack() as stack:
        tmp = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        chaos = Chaos(kills, postgres, seed, quiet, tmp, round_s, log)
        chaos.keep_schema = workdir is not None
        if chaos.schema and log:
            print(f"  state schema: {chaos.schema}" + (" (kept)" if workdir else ""), flush=True)
        return await chaos.run()


def main() -> int:
    """Run from the command line; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--postgres", action="store_true", help=f"state in PostgreSQL ({PG_DSN}, a fresh schema)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", type=float, default=6.0, help="seconds without a webhook delivery to end")
    p.add_argument("--keep", type=Path, default=None,
                   help="an empty folder to keep the config, state, daemon logs and events.log in")
    a = p.parse_args()
    seed = random.randrange(1 << 30) if a.seed is None else a.seed
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
        if any(a.keep.iterdir()):
            p.error(f"--keep {a.keep}: the folder must be empty (a state file left there would be reused)")
    res = asyncio.run(run_chaos(a.kills, a.postgres, seed, a.quiet, a.keep, log=True))
    for d in res.details:
        print("  " + d)
    print(f"state={'postgres' if a.postgres else 'sqlite'} kills={a.kills} seed={seed} "
          f"kill_kinds={dict(res.kills)} intake_raises={res.raises} episodes={res.episodes} "
          f"webhook_alert_deliveries={res.deliveries} down_windows_checked={res.down_windows_checked} "
          f"seconds={res.seconds:.0f} loadavg={tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"webhook: lost={res.webhook[0]} duplicated={res.webhook[1]} out_of_order={res.webhook[2]} "
          f"redeliveries_same_key={res.redeliveries}")
    print(f"slack: posts={res.slack_posts} duplicated={res.slack_duplicated} left_firing={res.slack_left_firing}")
    print(f"pagerduty: events={res.pd_events} pages={res.pd_pages} duplicated_pages={res.pd_duplicated} "
          f"deduplicated_triggers={res.pd_deduplicated} resolve_repeated={res.pd_resolve_repeated} "
          f"resolve_unknown={res.pd_resolve_unknown} left_open={res.pd_left_open}")
    print(f"lost={res.lost} duplicated={res.duplicated} out_of_order={res.out_of_order}")
    cmd = [".venv/bin/python", "benchmarks/chaos.py", "--kills", str(a.kills), "--seed", str(seed)]
    if a.postgres:
        cmd.append("--postgres")
    print("command: " + shlex.join(cmd))
    return 1 if res.lost or res.duplicated or res.out_of_order else 0


if __name__ == "__main__":
    sys.exit(main())
