"""Isolation under attack, all at once (issue 9, "Measured", second bullet): the real daemon under
the hostile inputs of the issue, repeated for ``--seconds``, while it scrapes a 1,000,000-series
target, probes a local HTTP target every second and pages through a webhook.

    .venv/bin/python benchmarks/hostile_combined.py [--seconds 60] [--for 5s] [--keep DIR]

The parts, all local:

- the daemon: ``python -m monitor run --config monitor.yaml`` (SQLite state in a temp folder),
  started and stopped by :func:`tests.daemon.test_daemon_cli.start_run` / ``stop_process``;
- a 1 s ``api`` probe of an HTTP target (``tests/support/notify_servers.FakeHTTP``, healthy until
  the fault), a rule ``probe_success{probe="target"} == 0`` with ``for: --for`` (evaluation
  interval 1 s), routed (``group_wait: 0s``) to a webhook receiver: a local sink recording each
  POST's arrival time;
- a scrape job (``--scrape-interval``, default 15 s as the daemon's) of a target exposing
  1,000,000 series, with the default ``sample_limit`` (50,000): served by
  ``benchmarks/hostile_targets.py --serve`` in its own process (``tests/support/hostile_servers.py``);
- the attack, in its own process (this script with ``--attack``), one client per input, each
  sending its input again as soon as it is answered, for ``--seconds``: the 5,000-term
  ``1-1-…`` and the 5,000-deep parentheses (``tests/daemon/test_daemon_query_isolation.HOSTILE``),
  the nested-quantifier regex in ``label_replace``, ``sum(count_over_time(up[1h:1ms]))`` (two
  clients: the query pool fills up), a 300 MB body to ``/api/v1/slack/actions`` declared by
  ``Content-Length`` and another sent chunked, and a 5,000-alert ``POST /api/v2/alerts`` (intake
  token; the same ``startsAt`` each time, as a Prometheus re-sends its alerts, routed to the
  same webhook); it prints how each was answered.

Meanwhile this process polls ``GET /health`` every 100 ms (latency p50/p99/max), samples the
daemon's RSS from ``/proc/<pid>/status`` every 250 ms (growth: the largest sample minus the one
taken when the daemon was ready, before the attack; the daemon's query worker processes, started
by the first query, are counted in), and at the middle of the attack makes the
probe target answer 503: fault to webhook delivery of the firing ``TargetDown``. Scheduler lag
comes from the daemon's own ``monitor_scheduler_lag_seconds`` histogram (every job: probes,
scrape, rule groups), read from ``/metrics`` before and after the attack: the share of runs that
started more than 100 ms late (the 0.1 bucket) and the p99 interpolated as
``histogram_quantile`` does; with the probe's runs (``monitor_probe_runs_total``) and missed runs.
Also printed: the CPU seconds the daemon's main thread (the event loop) used per second of the
attack, which tells a loop with too much work from a machine too busy to run it.

Each figure is printed against its target, with the load average; exit status 1 when the daemon
exited during the run, 2 when it lived but a target was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.daemon.test_daemon_cli import start_run, stop_process  # noqa: E402
from tests.daemon.test_daemon_query_isolation import EVIL, HOSTILE  # noqa: E402
from tests.support.daemon_helpers import HEALTH_DOC, metric_values  # noqa: E402
from tests.support.notify_servers import FakeHTTP, Recorded, Reply  # noqa: E402

INTAKE_TOKEN = "ck_bench_intake_token_0123456789"
SLACK_SECRET = "bench-slack-signing-secret-0000"
RULE = "TargetDown"
MiB = 1 << 20

#: The hostile inputs: name -> (method, path, what to send).
QUERIES = {
    "minus_5000_terms": "-".join(["1"] * 5000),
    "parens_5000_deep": "(" * 5000 + "1" + ")" * 5000,
    "nested_quantifier_regex": f'label_replace(label_replace(vector(1),"v","{EVIL}","",""),"x","$1","v","(a+)+$")',
    "subquery_1h_1ms": "sum(count_over_time(up[1h:1ms]))",
}
assert QUERIES["minus_5000_terms"] == HOSTILE["1-1-1-… 5,000 terms (SIGSEGV before)"][0]
assert QUERIES["parens_5000_deep"] == HOSTILE["5,000-deep parentheses (3.7 s before)"][0]

CONFIG = """\
server: {{host: 127.0.0.1, port: {{port}}}}
log: {{level: WARNING}}
probes:
  - {{name: target, kind: api, url: '{target}', interval: 1s, timeout: 800ms}}
scrape:
  - {{name: huge, url: '{hostile}/1m', interval: {scrape_interval}, timeout: {scrape_interval}}}
rules:
  files: [rules.yaml]
  evaluation_interval: 1s
state: {{backend: sqlite, path: state.db}}
receivers:
  - name: hook
    webhook_configs: [{{url: '{hook}/hook', send_resolved: true}}]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 5s, repeat_interval: 1h}}
api:
  slack_signing_secret: {slack_secret}
  tokens:
    - {{name: prometheus, token: {intake_token}, scopes: [intake]}}
"""

RULES = """\
groups:
  - name: combined
    interval: 1s
    rules:
      - alert: {rule}
        expr: probe_success{{probe="target"}} == 0
        for: {for_}
        labels: {{severity: critical}}
        annotations: {{summary: target down}}
"""


# -- the attack (its own process) ------------------------------------------------------------


def _storm(n: int) -> list[dict[str, Any]]:
    """``n`` alerts as a Prometheus sends them again and again: the same ``startsAt`` each time."""
    starts = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return [{"labels": {"alertname": "Storm", "severity": "warning", "instance": f"host-{i}"},
             "annotations": {"summary": f"storm {i}"}, "startsAt": starts} for i in range(n)]


async def _big_body(total: int) -> AsyncIterator[bytes]:
    piece = b"payload=" + b"x" * (64 * 1024 - 8)
    for _ in range(total // len(piece)):
        yield piece


ATTACKS = (*QUERIES, "subquery_1h_1ms_2", "slack_300mb_declared", "slack_300mb_chunked", "intake_5000_alerts")


async def attack(url: str, seconds: float, inputs: list[str]) -> dict[str, Any]:
    """Send every hostile input in a loop for ``seconds``; return, per input, how it was answered
    (status code or exception name -> count) and its mean and largest answer time."""
    end = time.monotonic() + seconds
    outcomes: dict[str, Counter] = {}
    times: dict[str, list[float]] = {}
    storm = _storm(5000)

    async def loop(name: str, c: httpx.AsyncClient, send: Any) -> None:
        seen = outcomes.setdefault(name, Counter())
        took = times.setdefault(name, [])
        while time.monotonic() < end:
            t = time.perf_counter()
            try:
                r = await send(c)
                seen[str(r.status_code)] += 1
            except httpx.HTTPError as e:
                seen[type(e).__name__] += 1
                await asyncio.sleep(0.05)  # a refused connection returns at once: do not spin
            took.append(time.perf_counter() - t)

    def query(q: str) -> Any:
        return lambda c: c.post("/api/v1/query", data={"query": q})

    def slack(chunked: bool) -> Any:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": "1",
                   "X-Slack-Signature": "v0=" + "0" * 64}
        if not chunked:
            headers["Content-Length"] = str(300 * MiB)
        return lambda c: c.post("/api/v1/slack/actions", content=_big_body(300 * MiB), headers=headers)

    intake = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    senders: dict[str, Any] = {name: query(q) for name, q in QUERIES.items()}
    senders["subquery_1h_1ms_2"] = senders["subquery_1h_1ms"]
    senders["slack_300mb_declared"] = slack(False)
    senders["slack_300mb_chunked"] = slack(True)
    senders["intake_5000_alerts"] = lambda c: c.post("/api/v2/alerts", json=storm, headers=intake)
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        await asyncio.gather(*(loop(name, c, senders[name]) for name in inputs))
    await asyncio.sleep(max(0.0, end - time.monotonic()))  # no inputs: the baseline, as long
    return {name: {"answers": dict(outcomes[name]), "mean_s": round(statistics.mean(times[name]), 3),
                   "max_s": round(max(times[name]), 3)} for name in inputs}


# -- the measurement -------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """Return the resident set size of process ``pid`` in MiB (``None``: the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def loop_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds (user + system) the main thread of ``pid`` (the event loop) used."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Return the ids of the child processes of ``pid`` (its query workers)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def pct(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``values``, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def lag_buckets(text: str) -> dict[float, float]:
    """Return the cumulative ``monitor_scheduler_lag_seconds`` buckets of an exposition: ``le -> count``."""
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("monitor_scheduler_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus's ``histogram_quantile`` over cumulative ``buckets`` (linear within a bucket)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total == 0:
        return float("nan")
    rank = q * total
    prev_b, prev_c = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"):
                return prev_b
            return prev_b + (b - prev_b) * (rank - prev_c) / max(buckets[b] - prev_c, 1e-12)
        prev_b, prev_c = b, buckets[b]
    return prev_b


@contextlib.contextmanager
def hostile_target() -> Iterator[str]:
    """Serve the routes of ``benchmarks/hostile_targets.py`` (``/1m``: 1,000,000 series) in their
    own process; yield the base URL."""
    server = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "hostile_targets.py"), "--serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield f"http://127.0.0.1:{int(server.stdout.readline())}"  # type: ignore[union-attr]
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)


class Bench:
    """The probe target, the webhook sink and what was seen."""

    def __init__(self) -> None:
        self.healthy = True
        self.fault_at: float | None = None
        self.paged_at: float | None = None
        self.deliveries = Counter[str]()

    def target(self, req: Recorded) -> Reply:
        """Answer the probe: healthy until the fault, then 503."""
        return Reply(200, HEALTH_DOC) if self.healthy else Reply(503, {**HEALTH_DOC, "status": "unhealthy"})

    def hook(self, req: Recorded) -> Reply:
        """Record a webhook delivery: the first firing TargetDown after the fault is the page."""
        now = time.time()
        body = json.loads(req.body)
        req.body = b""  # the storm's bodies are megabytes: keep none of them
        for a in body.get("alerts", []):
            self.deliveries[f"{a['labels'].get('alertname')}:{a['status']}"] += 1
            if (a["labels"].get("alertname") == RULE and a["status"] == "firing" and self.paged_at is None
                    and self.fault_at is not None):
                self.paged_at = now
        return Reply(200, b"")


async def sample(stop: asyncio.Event, every: float, fn: Any) -> None:
    """Call ``fn()`` (a coroutine) every ``every`` seconds until ``stop`` is set."""
    while not stop.is_set():
        t = time.monotonic()
        await fn()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, every - (time.monotonic() - t)))


@contextlib.asynccontextmanager
async def attacker(url: str, seconds: float, inputs: str) -> AsyncIterator[asyncio.Task[dict[str, Any]]]:
    """Run the attack in its own process; yield a task giving its figures."""
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--attack", url, "--seconds", str(seconds),
                                                "--inputs", inputs, stdout=asyncio.subprocess.PIPE)

    async def result() -> dict[str, Any]:
        out, _ = await proc.communicate()
        return json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {"attack": "no output"}

    task = asyncio.create_task(result())
    try:
        yield task
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start everything, attack for ``args.seconds``, and return the figures."""
    bench = Bench()
    for_s = parse_seconds(args.for_)
    with hostile_target() as hostile:
        async with FakeHTTP(bench.target) as target, FakeHTTP(bench.hook, client_max_size=64 * MiB) as hook:
            (tmp / "rules.yaml").write_text(RULES.format(rule=RULE, for_=args.for_))
            proc, port = await start_run(tmp, CONFIG.format(
                target=target.url, hostile=hostile, hook=hook.url, scrape_interval=args.scrape_interval,
                slack_secret=SLACK_SECRET, intake_token=INTAKE_TOKEN))
            url = f"http://127.0.0.1:{port}"
            health: list[float] = []
            health_codes = Counter[str]()
            rss: list[float] = []  # the daemon's and its query workers' RSS together
            worker_rss: list[float] = []
            baseline = rss_mib(proc.pid) or 0.0
            stop = asyncio.Event()
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                async def poll_health() -> None:
                    t = time.perf_counter()
                    try:
                        r = await c.get("/health")
                        health_codes[str(r.status_code)] += 1
                    except httpx.HTTPError as e:
                        health_codes[type(e).__name__] += 1
                    health.append(time.perf_counter() - t)

                async def poll_rss() -> None:
                    v = rss_mib(proc.pid)
                    if v is not None:
                        workers = [rss_mib(c) or 0.0 for c in children(proc.pid)]
                        rss.append(v + sum(workers))
                        worker_rss.append(sum(workers))

                await asyncio.sleep(args.warmup)  # the probe and the rule have run; scrapes are failing
                before = (await c.get("/metrics")).text
                cpu_before = loop_cpu_seconds(proc.pid)
                samplers = [asyncio.create_task(sample(stop, 0.1, poll_health)),
                            asyncio.create_task(sample(stop, 0.25, poll_rss))]
                t_attack = time.monotonic()
                async with attacker(url, args.seconds, args.inputs) as attack_result:
                    await asyncio.sleep(args.seconds / 2)
                    bench.fault_at = time.time()
                    bench.healthy = False
                    attack = await attack_result
                    settle = time.monotonic() + for_s + 10  # a page not yet sent may still come
                    while bench.paged_at is None and time.monotonic() < settle and proc.returncode is None:
                        await asyncio.sleep(0.1)
                stop.set()
                await asyncio.gather(*samplers)
                attack_s = time.monotonic() - t_attack
                loop_cpu = loop_cpu_seconds(proc.pid) - cpu_before
                alive = proc.returncode is None
                after = (await c.get("/metrics")).text if alive else ""
            err = await stop_process(proc)
            exit_code = proc.returncode
    lag = {le: n - lag_buckets(before).get(le, 0.0) for le, n in lag_buckets(after).items()}
    runs_total = lag.get(float("inf"), 0.0)
    late = runs_total - lag.get(0.1, 0.0)
    probe_runs = sum(metric_values(after, "monitor_probe_runs_total", probe="target")) - sum(
        metric_values(before, "monitor_probe_runs_total", probe="target"))
    missed = sum(metric_values(after, "monitor_scheduler_missed_runs_total")) - sum(
        metric_values(before, "monitor_scheduler_missed_runs_total"))
    scrapes = {o: sum(metric_values(after, "monitor_scrapes_total", job="huge", outcome=o)) -
               sum(metric_values(before, "monitor_scrapes_total", job="huge", outcome=o))
               for o in ("success", "failure")}
    page_s = None if bench.paged_at is None or bench.fault_at is None else bench.paged_at - bench.fault_at
    growth = max(rss, default=baseline) - baseline
    figures = {
        "daemon_alive": (alive, "never exits", alive),
        "scheduler_lag_p99_ms": (round(histogram_quantile(0.99, lag) * 1000, 1) if runs_total else None,
                                 "< 100", runs_total > 0 and late / runs_total < 0.01),
        "scheduler_runs_later_than_100ms": (f"{late:.0f} of {runs_total:.0f}", "< 1 %",
                                            runs_total > 0 and late / runs_total < 0.01),
        "scheduler_missed_runs": (missed, "0", missed == 0),
        "probe_runs": (f"{probe_runs:.0f} in {attack_s:.0f} s", "one a second",
                       probe_runs >= attack_s - 2),
        "health_ms_p50": (round(pct(health, 0.5) * 1000, 1), "-", True),
        "health_ms_p99": (round(pct(health, 0.99) * 1000, 1), "< 100", pct(health, 0.99) < 0.1),
        "health_ms_max": (round(max(health) * 1000, 1), "-", True),
        "rss_growth_mib": (round(growth), "< 200", growth < 200),
        "fault_to_page_s": (None if page_s is None else round(page_s, 2), f"< for + 2 = {for_s + 2:g}",
                            page_s is not None and page_s < for_s + 2),
    }
    return {"figures": figures, "attack": attack, "health_answers": dict(health_codes), "health_polls": len(health),
            "rss_mib": {"at_ready": round(baseline), "max": round(max(rss, default=0)),
                        "last": round(rss[-1]) if rss else None,
                        "of_which_query_workers_max": round(max(worker_rss, default=0))},
            "loop_cpu_share": round(loop_cpu / attack_s, 2), "scrapes_of_huge": scrapes,
            "webhook": dict(bench.deliveries), "daemon_exit_code": exit_code,
            "daemon_log_tail": err[-1500:] if not alive else ""}


def parse_seconds(text: str) -> float:
    """``500ms``, ``5s``, ``1m`` -> seconds."""
    for unit, f in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * f
    return float(text)


def main() -> int:
    """Run the benchmark (or, with ``--attack``, only the attack) and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the attack (default 60)")
    p.add_argument("--for", dest="for_", default="5s", help="the TargetDown rule's `for` (default 5s)")
    p.add_argument("--scrape-interval", default="15s",
                   help="interval of the 1,000,000-series scrape (default 15s, the daemon's default)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds between ready and the attack (default 5)")
    p.add_argument("--keep", type=Path, default=None, help="a folder to keep the config and the daemon's log in")
    p.add_argument("--inputs", default=",".join(ATTACKS), help="the hostile inputs to send (default: all)")
    p.add_argument("--attack", metavar="URL", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.attack:
        print(json.dumps(asyncio.run(attack(a.attack, a.seconds, [i for i in a.inputs.split(",") if i]))), flush=True)
        return 0
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = a.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hostile-combined-")))
        tmp.mkdir(parents=True, exist_ok=True)
        res = asyncio.run(run(a, tmp))
    for name, v in res["attack"].items():
        print(f"  attack {name:26} {json.dumps(v)}")
    print(f"  event loop busy {res['loop_cpu_share']:.0%} of the attack (CPU seconds of the daemon's main thread "
          "per second: above ~70 % every job waits behind others)")
    print(f"  health answers {res['health_answers']} ({res['health_polls']} polls); rss {res['rss_mib']}; "
          f"scrapes of the 1M-series target {res['scrapes_of_huge']}; webhook {res['webhook']}")
    if res["daemon_log_tail"]:
        print("  daemon log tail:\n" + res["daemon_log_tail"])
    missed = []
    for name, (value, target, ok) in res["figures"].items():
        print(f"{name:34} {value!s:>18}   target {target:18} {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(name)
    print(f"seconds={a.seconds:g} for={a.for_} scrape_interval={a.scrape_interval} cpus={os.cpu_count()} "
          f"loadavg_before={tuple(round(x, 2) for x in load_before)} "
          f"loadavg_after={tuple(round(x, 2) for x in os.getloadavg())}")
    if not res["figures"]["daemon_alive"][2]:
        return 1
    return 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
