"""Side by side: codebook-monitor against the stack it replaces (Debian's prometheus,
prometheus-blackbox-exporter and prometheus-alertmanager), on the same workload and targets.

Every process runs on 127.0.0.1 ports of its own with its own temporary data folder, and is
stopped by its PID. The targets are :mod:`benchmarks.target_server` (one small process, every
path ``/t/<n>/health`` a target, all switched at once between ok / hang / refuse).

Resource figures come from alternating runs (ours alone, then the peer stack alone, repeated):
CPU seconds per wall second and peak RSS (``VmHWM``) of the processes of each side (the peer:
prometheus + blackbox_exporter + alertmanager, each shown too). Latency figures come from one
run with both sides probing the same targets at once. Each figure is printed for both sides
with min / median / max over the runs and the ratio ours / peer, with the load average before
and after, and the issue-10 target it is held to (``met`` or ``NOT met``).

Workloads (``--workloads``, comma-separated; all by default):

- ``targets1000``, ``targets5000`` (any ``targets<N>``): N api probes (ours) / blackbox ``http``
  probes whose body must say ``"status": "healthy"`` (peer) every ``--interval`` (15 s).
  Figures: CPU-s/s, peak RSS, target hits against the expected count, missed runs and the gaps
  between a target's samples (from the samples each side stored: ``probe_success[..]``), our
  scheduling lag measured from our sample timestamps against each probe's phase, and (both
  sides probing at once) probe duration median / p99.
- ``outage``: ``--outage-targets`` (1,000) targets healthy, then all failing (``--outage-mode``
  hang or refuse) for two intervals, then all recovered. Figures: CPU-s/s healthy / during /
  after, how many targets were OK on their first run after recovery, and how many were OK
  ``--after`` (60) seconds after recovery.
- ``fault``: one target probed every 5 s by both sides at once, the rule ``probe_success == 0``
  with ``for: 10s`` evaluated every 5 s, ``group_wait: 0s``, a webhook receiver; the target
  starts failing ``--fault-trials`` times. Figure: fault -> firing notification minus ``for``.
- ``rules``: both scrape 1,020 series every 15 s and evaluate the same 20 rules (10 recording,
  10 alerting) every 15 s. Figures: CPU-s/s of the evaluating process (ours / prometheus) and the
  group's last evaluation duration.
- ``storm``: 1,000 alerts in one ``POST /api/v2/alerts`` to each side (ours: its Alertmanager
  API intake; peer: alertmanager), grouped by (alertname, service) into 200 webhook
  notifications. Figures: seconds to the last of them (minus ``group_wait``), CPU seconds.

Run::

    python benchmarks/compare_stack.py                  # every workload, 3 runs each (~1 h)
    python benchmarks/compare_stack.py --workloads targets1000,outage,targets5000
    python benchmarks/compare_stack.py --quick          # one short run of each workload
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.daemon.scheduler import spread  # noqa: E402 - after the path fix-up

TICK = os.sysconf("SC_CLK_TCK")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """One started process, known by its PID; stopped by that PID only."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """Return the user + system CPU seconds so far (every thread)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / TICK

    def _status(self, key: str) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
        except FileNotFoundError:
            pass
        return math.nan

    def rss_mib(self) -> float:
        """Return the resident set size now, MiB."""
        return self._status("VmRSS")

    def peak_rss_mib(self) -> float:
        """Return the peak resident set size since start (``VmHWM``), MiB."""
        return self._status("VmHWM")

    def stop(self) -> None:
        """Send SIGTERM, then SIGKILL after 20 s; by PID."""
        if self.popen.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)


def start(name: str, cmd: list[str], folder: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``cmd`` with its output in ``folder/<name>.log``."""
    log = folder / f"{name}.log"
    out = log.open("wb")
    popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                             env={**os.environ, **(env or {})})
    return Proc(name, popen, log)


def wait_http(url: str, proc: Proc, timeout: float = 180.0) -> None:
    """Wait until ``url`` answers 200 (the process must stay alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}); see {proc.log}:\n"
                               + proc.log.read_text()[-2000:])
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{proc.name}: {url} not ready after {timeout:g}s; see {proc.log}")


# --------------------------------------------------------------------------------------------
# the targets
# --------------------------------------------------------------------------------------------


class TargetServer:
    """``benchmarks/target_server.py`` in a process of its own (its CPU is nobody's)."""

    def __init__(self, folder: Path) -> None:
        self.port, self.control = free_port(), free_port()
        self.proc = start("targets", [sys.executable, str(ROOT / "benchmarks" / "target_server.py"),
                                      "--port", str(self.port), "--control-port", str(self.control)], folder)
        wait_http(f"http://127.0.0.1:{self.control}/stats", self.proc, 30)

    def url(self, i: int) -> str:
        """Return the base URL of target ``i`` (our api probe appends ``/health``)."""
        return f"http://127.0.0.1:{self.port}/t/{i}"

    def metrics_url(self) -> str:
        """Return the URL of the 1,020-series ``/metrics`` exposition."""
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def webhook(self) -> str:
        """Return the webhook receiver's base URL (a side posts to ``<webhook>/<side>``)."""
        return f"http://127.0.0.1:{self.control}/webhook"

    def webhooks(self, clear: bool = False) -> list[dict[str, Any]]:
        """Return the webhook notifications received so far (and forget them with ``clear``)."""
        r = httpx.request("DELETE" if clear else "GET", f"http://127.0.0.1:{self.control}/webhooks", timeout=10)
        return list(r.json()["webhooks"])

    def mode(self, mode: str) -> None:
        """Switch every target to ``ok``, ``hang``, ``refuse`` or ``error``."""
        httpx.post(f"http://127.0.0.1:{self.control}/mode/{mode}", timeout=10).raise_for_status()

    def hits(self) -> dict[str, int]:
        """Return the requests received so far, by client family (``ours``, ``blackbox``)."""
        return dict(httpx.get(f"http://127.0.0.1:{self.control}/stats", timeout=10).json()["hits"])

    def stop(self) -> None:
        """Stop the target server."""
        self.proc.stop()


# --------------------------------------------------------------------------------------------
# the two systems
# --------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """What both sides are asked to do: probe targets, scrape ``/metrics``, evaluate a rule file,
    route alerts to a webhook."""

    n: int = 0  #: api probes (ours) / blackbox targets (peer): targets 0..n-1
    interval: float = 15.0  #: probe and scrape interval, seconds
    timeout: float = 5.0
    scrape: bool = False  #: both scrape the targets' /metrics (1,020 series)
    rules: str | None = None  #: a Prometheus rule file both load
    eval_interval: float = 15.0
    webhook: str | None = None  #: base URL; each side sends to <webhook>/<side>
    group_by: list[str] = field(default_factory=lambda: ["alertname"])
    group_wait: float = 0.0
    group_interval: float = 10.0

    def route(self) -> dict[str, Any]:
        """Return the routing tree both sides use (Alertmanager's format, which ours reads too)."""
        return {"receiver": "hook", "group_by": self.group_by, "group_wait": f"{self.group_wait * 1000:.0f}ms",
                "group_interval": f"{self.group_interval * 1000:.0f}ms", "repeat_interval": "4h"}

    def receivers(self, side: str) -> list[dict[str, Any]]:
        """Return the one webhook receiver of ``side``."""
        return [{"name": "hook", "webhook_configs": [{"url": f"{self.webhook}/{side}", "send_resolved": True}]}]


class System:
    """One side: started on a workload, its processes measured, its samples queried."""

    name = "?"
    procs: list[Proc]
    query_url: str
    metrics_url: str
    alerts_url: str  #: the Alertmanager v2 API's alerts endpoint

    def stop(self) -> None:
        """Stop every process of this side, by PID."""
        for p in reversed(self.procs):
            p.stop()

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Run an instant PromQL query at ``at`` (Unix seconds) through the side's query API."""
        r = httpx.get(self.query_url, params={"query": expr, "time": f"{at:.3f}"}, timeout=120)
        r.raise_for_status()
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{self.name}: {expr}: {body}")
        return list(body["data"]["result"])

    def samples(self, metric: str, end: float, seconds: float) -> dict[str, list[tuple[float, float]]]:
        """Return ``{target URL: [(timestamp, value), ...]}`` of ``metric`` in ``(end - seconds, end]``."""
        out: dict[str, list[tuple[float, float]]] = {}
        for series in self.query(f"{metric}[{int(math.ceil(seconds))}s]", end):
            key = self.target_of(series["metric"])
            out.setdefault(key, []).extend((float(t), float(v)) for t, v in series["values"])
        return out

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the target URL a series belongs to."""
        raise NotImplementedError

    def own_metric(self, name: str) -> list[float]:
        """Return the values of metric ``name`` on the side's own ``/metrics`` (every series)."""
        text = httpx.get(self.metrics_url, timeout=60).text
        out = []
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                out.append(float(line.rsplit(" ", 1)[1]))
        return out


class Ours(System):
    """``python -m monitor run`` on a generated ``monitor.yaml``."""

    name = "ours"

    def __init__(self, folder: Path, targets: TargetServer, w: Workload) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": port},
            "state": {"backend": "sqlite", "path": str(folder / "state.db")},
            "rules": {"query_max_series": 1_000_000, "evaluation_interval": f"{w.eval_interval * 1000:.0f}ms"},
            "probes": [{"name": f"t{i}", "kind": "api", "url": targets.url(i),
                        "interval": f"{w.interval * 1000:.0f}ms", "timeout": f"{w.timeout * 1000:.0f}ms"}
                       for i in range(w.n)],
        }
        if w.scrape:
            cfg["scrape"] = [{"name": "bench", "url": targets.metrics_url(), "interval": f"{w.interval * 1000:.0f}ms",
                              "timeout": f"{w.timeout * 1000:.0f}ms"}]
        if w.rules:
            (folder / "rules.yaml").write_text(w.rules)
            cfg["rules"]["files"] = [str(folder / "rules.yaml")]
        if w.webhook:
            cfg["alerting"] = {"route": w.route()}
            cfg["receivers"] = w.receivers(self.name)
        path = folder / "monitor.yaml"
        path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
        self.procs = [start("codebook-monitor", [sys.executable, "-m", "monitor", "run", "--config", str(path)],
                            folder, env={"PYTHONPATH": str(ROOT)})]
        self.base = f"http://127.0.0.1:{port}"
        self.query_url = self.base + "/api/v1/query"
        self.metrics_url = self.base + "/metrics"
        self.alerts_url = self.base + "/api/v2/alerts"
        wait_http(self.base + "/-/ready", self.procs[0])

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the probe's base URL, which our series carry as ``target``."""
        return labels["target"]


BLACKBOX_YML = """\
modules:
  health:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status": *"healthy"']
"""


class Peer(System):
    """prometheus + blackbox_exporter + alertmanager."""

    name = "peer"

    def __init__(self, folder: Path, targets: TargetServer, w: Workload) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        bb_port, prom_port, am_port = free_port(), free_port(), free_port()
        (folder / "blackbox.yml").write_text(BLACKBOX_YML.format(timeout=f"{w.timeout:g}"))
        am: dict[str, Any] = {"route": {"receiver": "none"}, "receivers": [{"name": "none"}]}
        if w.webhook:
            am = {"route": w.route(), "receivers": w.receivers(self.name)}
        (folder / "alertmanager.yml").write_text(json.dumps(am, indent=1))
        scrape: list[dict[str, Any]] = []
        if w.n:
            scrape.append({
                "job_name": "blackbox", "metrics_path": "/probe", "params": {"module": ["health"]},
                "scrape_interval": f"{w.interval * 1000:.0f}ms", "scrape_timeout": f"{w.timeout * 1000:.0f}ms",
                "static_configs": [{"targets": [targets.url(i) + "/health" for i in range(w.n)]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{bb_port}"},
                ],
            })
        if w.scrape:
            scrape.append({"job_name": "bench", "scrape_interval": f"{w.interval * 1000:.0f}ms",
                           "scrape_timeout": f"{w.timeout * 1000:.0f}ms",
                           "static_configs": [{"targets": [f"127.0.0.1:{targets.port}"]}]})
        prom: dict[str, Any] = {
            "global": {"scrape_interval": f"{w.interval * 1000:.0f}ms",
                       "evaluation_interval": f"{w.eval_interval * 1000:.0f}ms"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": scrape,
        }
        if w.rules:
            (folder / "rules.yaml").write_text(w.rules)
            prom["rule_files"] = [str(folder / "rules.yaml")]
        (folder / "prometheus.yml").write_text(json.dumps(prom, indent=1))
        (folder / "prom-data").mkdir()
        (folder / "am-data").mkdir()
        self.procs = [
            start("blackbox_exporter", [BLACKBOX, f"--config.file={folder / 'blackbox.yml'}",
                                        f"--web.listen-address=127.0.0.1:{bb_port}"], folder),
            start("alertmanager", [ALERTMANAGER, f"--config.file={folder / 'alertmanager.yml'}",
                                   f"--storage.path={folder / 'am-data'}",
                                   f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                  folder),
            start("prometheus", [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'prom-data'}", "--storage.tsdb.retention.time=2h",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"], folder),
        ]
        wait_http(f"http://127.0.0.1:{bb_port}/-/healthy", self.procs[0])
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", self.procs[1])
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", self.procs[2])
        self.query_url = f"http://127.0.0.1:{prom_port}/api/v1/query"
        self.metrics_url = f"http://127.0.0.1:{prom_port}/metrics"
        self.alerts_url = f"http://127.0.0.1:{am_port}/api/v2/alerts"

    def target_of(self, labels: dict[str, str]) -> str:
        """Return the probed URL the peer puts in ``instance``, without ``/health``."""
        return labels["instance"].removesuffix("/health")


# --------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------


class Meter:
    """CPU seconds of a side's processes over a window, and their RSS sampled every 0.5 s."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self.t0 = time.monotonic()
        self.cpu0 = [p.cpu_seconds() for p in procs]
        self.peak_sum = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_sum = max(self.peak_sum, sum(p.rss_mib() for p in self.procs))

    def done(self) -> dict[str, Any]:
        """End the window: CPU-s per wall-s (total and per process), peak RSS (sum of VmHWM)."""
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self.t0
        per = {p.name: (p.cpu_seconds() - c0) / wall for p, c0 in zip(self.procs, self.cpu0)}
        return {"wall_s": wall, "cpu_per_s": sum(per.values()), "cpu_per_s_by_process": per,
                "peak_rss_mib": sum(p.peak_rss_mib() for p in self.procs),
                "peak_rss_mib_by_process": {p.name: p.peak_rss_mib() for p in self.procs},
                "peak_rss_sum_sampled_mib": self.peak_sum}


def quantile(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def sample_quality(series: dict[str, list[tuple[float, float]]], n_targets: int, interval: float,
                   window: float) -> dict[str, Any]:
    """Missed runs and sample spacing of one side, from the samples it stored in ``window``.

    A gap of ``k`` intervals between two samples of a target is ``k - 1`` missed runs; a target
    without a sample in the window misses ``window / interval`` runs.
    """
    missed = 0
    deviations: list[float] = []
    gaps = 0
    for values in series.values():
        ts = sorted(t for t, _ in values)
        for a, b in zip(ts, ts[1:]):
            gap = b - a
            k = round(gap / interval)
            missed += max(0, k - 1)
            deviations.append(abs(gap - interval))
            gaps += 1
    missed += max(0, n_targets - len(series)) * int(window // interval)
    within = sum(1 for d in deviations if d <= 0.01 * interval)
    return {"missed_runs": missed, "gaps": gaps,
            "gap_within_1pct": within / gaps if gaps else math.nan,
            "gap_dev_p99_ms": quantile(deviations, 0.99) * 1000, "gap_dev_max_ms": max(deviations, default=0) * 1000}


def our_lags(series: dict[str, list[tuple[float, float]]], targets: TargetServer, n: int,
             interval: float) -> list[float]:
    """Our runs' scheduling lag: each sample's timestamp (the run's start) after its phase."""
    phase_of = {targets.url(i): spread(f"probe:t{i}", interval) for i in range(n)}
    lags = []
    for key, values in series.items():
        phase = phase_of.get(key)
        if phase is None:
            continue
        for t, _ in values:
            lag = (t - phase) % interval
            lags.append(lag if lag < interval / 2 else lag - interval)  # a ms-truncated early stamp
    return lags


def loadavg() -> str:
    """Return the 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One workload's figures: per side, a list of values per measure (one per run)."""

    title: str
    ours: dict[str, list[float]] = field(default_factory=dict)
    peer: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, Callable[[Figures], tuple[bool, str]]]] = field(default_factory=list)

    def add(self, side: str, values: dict[str, float]) -> None:
        """Append one run's figures of ``side``."""
        table = self.ours if side == "ours" else self.peer
        for k, v in values.items():
            table.setdefault(k, []).append(v)

    def med(self, side: str, key: str) -> float:
        """Return the median of ``key`` over the runs of ``side``."""
        vals = [v for v in (self.ours if side == "ours" else self.peer).get(key, []) if not math.isnan(v)]
        return statistics.median(vals) if vals else math.nan


def steady_run(system_cls: type[System], folder: Path, targets: TargetServer, w: Workload, warmup: float,
               seconds: float) -> tuple[System, dict[str, Any], dict[str, float]]:
    """Start a side, let it warm up, measure it for ``seconds``; return it still running."""
    system = system_cls(folder, targets, w)
    time.sleep(warmup)
    hits0 = targets.hits()
    meter = Meter(system.procs)
    time.sleep(seconds)
    res = meter.done()
    hits1 = targets.hits()
    hits = {k: hits1.get(k, 0) - hits0.get(k, 0) for k in hits1}
    return system, res, hits


def workload_targets(n: int, args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """N healthy targets: alternating runs for resources, one concurrent run for latency."""
    w = Workload(n, args.interval, args.timeout)
    fig = Figures(f"{n:,} HTTP targets every {w.interval:g} s (timeout {w.timeout:g} s), "
                  f"{args.repeats} alternating runs of {args.seconds:g} s after {args.warmup:g} s warm-up")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system, res, hits = steady_run(cls, root / f"t{n}-{cls.name}-{r}", targets, w, args.warmup,
                                           args.seconds)
            try:
                end = time.time()
                succ = system.samples("probe_success", end, args.seconds)
                q = sample_quality(succ, n, w.interval, args.seconds)
                family = "ours" if cls is Ours else "blackbox"
                expected = n * res["wall_s"] / w.interval
                row = {"cpu_per_s": res["cpu_per_s"], "peak_rss_mib": res["peak_rss_mib"],
                       "hits_per_expected": hits.get(family, 0) / expected, "missed_runs": q["missed_runs"],
                       "gap_within_1pct": q["gap_within_1pct"], "gap_dev_p99_ms": q["gap_dev_p99_ms"],
                       "ok_fraction": sum(1 for v in succ.values() if v and v[-1][1] == 1) / n}
                for pname, cpu in res["cpu_per_s_by_process"].items():
                    row[f"cpu_per_s[{pname}]"] = cpu
                for pname, rss in res["peak_rss_mib_by_process"].items():
                    row[f"peak_rss_mib[{pname}]"] = rss
                if cls is Ours:
                    lags = our_lags(succ, targets, n, w.interval)
                    row["lag_p50_ms"] = quantile(lags, 0.5) * 1000
                    row["lag_p99_ms"] = quantile(lags, 0.99) * 1000
                    row["lag_max_ms"] = max(lags, default=math.nan) * 1000
                fig.add(cls.name, row)
            finally:
                system.stop()
    print(f"  concurrent run: both sides on the same targets ... load {loadavg()}", flush=True)
    ours = Ours(root / f"t{n}-both-ours", targets, w)
    try:
        peer = Peer(root / f"t{n}-both-peer", targets, w)
        try:
            time.sleep(args.warmup + args.seconds)
            end = time.time()
            for system in (ours, peer):
                d = [v for vals in system.samples("probe_duration_seconds", end, args.seconds).values()
                     for _, v in vals]
                fig.add(system.name, {"concurrent_duration_p50_ms": quantile(d, 0.5) * 1000,
                                      "concurrent_duration_p99_ms": quantile(d, 0.99) * 1000})
        finally:
            peer.stop()
    finally:
        ours.stop()
    ratio = _ratio
    fig.targets = [
        ("CPU <= 1.0x the peer", "cpu_per_s", lambda f: _held(ratio(f, "cpu_per_s"), 1.0, "x")),
        ("peak RSS <= 0.5x the peer", "peak_rss_mib", lambda f: _held(ratio(f, "peak_rss_mib"), 0.5, "x")),
        ("0 missed runs", "missed_runs", lambda f: _held(max(f.ours.get("missed_runs", [math.nan])), 0, "")),
    ]
    if n <= 1000:
        fig.targets.append(("scheduler lag p99 < 20 ms", "lag_p99_ms",
                            lambda f: _held(max(f.ours.get("lag_p99_ms", [math.nan])), 20, " ms", strict=True)))
    else:
        fig.targets += [
            ("scheduler lag p99 < 100 ms", "lag_p99_ms",
             lambda f: _held(max(f.ours.get("lag_p99_ms", [math.nan])), 100, " ms", strict=True)),
            ("every sample one interval apart (+-1 %)", "gap_within_1pct",
             lambda f: (min(f.ours.get("gap_within_1pct", [0])) >= 1.0,
                        f"{min(f.ours.get('gap_within_1pct', [0])) * 100:.2f} % of gaps within 1 %")),
        ]
    return fig


def workload_outage(n: int, args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """N targets healthy, then all failing for two intervals, then all recovered."""
    w = Workload(n, args.interval, args.timeout)
    healthy, down, after = 2 * w.interval, 2 * w.interval, args.after
    fig = Figures(f"mass outage: {n:,} targets every {w.interval:g} s, all '{args.outage_mode}' for "
                  f"{down:g} s, then recovered; {args.outage_repeats} alternating runs")
    for r in range(args.outage_repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.outage_repeats}: {cls.name} ... load {loadavg()}", flush=True)
            system = cls(root / f"outage-{cls.name}-{r}", targets, w)
            try:
                time.sleep(args.warmup)
                m = Meter(system.procs)
                time.sleep(healthy)
                h = m.done()
                targets.mode(args.outage_mode)
                m = Meter(system.procs)
                time.sleep(down)
                d = m.done()
                targets.mode("ok")
                up = time.time()
                m = Meter(system.procs)
                time.sleep(w.interval + w.timeout + 2)
                first_window_end = time.time()
                time.sleep(max(0.0, up + after - time.time()))
                a = m.done()
                end = time.time()
                succ = system.samples("probe_success", end, end - up + 1)
                first_ok = 0
                ok_late = 0
                for values in succ.values():
                    after_up = sorted((t, v) for t, v in values if t >= up + 0.05)
                    if after_up and after_up[0][0] <= first_window_end and after_up[0][1] == 1:
                        first_ok += 1
                    if after_up and after_up[-1][1] == 1 and after_up[-1][0] >= end - w.interval - w.timeout:
                        ok_late += 1
                fig.add(cls.name, {"cpu_per_s_healthy": h["cpu_per_s"], "cpu_per_s_during": d["cpu_per_s"],
                                   "cpu_per_s_after": a["cpu_per_s"],
                                   "during_over_healthy": d["cpu_per_s"] / h["cpu_per_s"],
                                   "ok_first_run_after_recovery": first_ok,
                                   f"ok_{after:g}s_after_recovery": ok_late,
                                   "peak_rss_mib": a["peak_rss_mib"]})
            finally:
                system.stop()
    fig.targets = [
        ("CPU during <= 1.5x healthy", "during_over_healthy",
         lambda f: _held(max(f.ours.get("during_over_healthy", [math.nan])), 1.5, "x")),
        (f"{n:,} of {n:,} OK one interval after recovery", "ok_first_run_after_recovery",
         lambda f: (min(f.ours.get("ok_first_run_after_recovery", [0])) == n,
                    f"{min(f.ours.get('ok_first_run_after_recovery', [0])):.0f} of {n:,} (worst run)")),
    ]
    return fig


def rules_file() -> str:
    """Return the ``rules`` workload's rule file: one group of 20 rules (10 recording, 10
    alerting) over the 1,020 ``bench_requests_total`` series."""
    rules = []
    for k in range(10):
        rules.append({"record": f"service:bench_requests:rate1m_{k}",
                      "expr": f'sum by (service) (rate(bench_requests_total{{code="200",instance!="i{k}"}}[1m]))'})
    for k in range(10):
        rules.append({"alert": f"BenchErrorRatio{k}",
                      "expr": f'sum by (service) (rate(bench_requests_total{{code="500"}}[1m])) / '
                              f'sum by (service) (rate(bench_requests_total[1m])) > 0.{k + 1}',
                      "for": "1m", "labels": {"severity": "warning"},
                      "annotations": {"summary": "error ratio of {{ $labels.service }}", "description": "bench"}})
    return json.dumps({"groups": [{"name": "bench", "rules": rules}]}, indent=1)


def workload_rules(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """Both scrape the 1,020 series and evaluate the same 20 rules at the same interval."""
    w = Workload(0, args.interval, args.timeout, scrape=True, rules=rules_file(), eval_interval=args.interval)
    fig = Figures(f"20 rules (10 recording, 10 alerting) over 1,020 scraped series, scrape and evaluation every "
                  f"{w.interval:g} s, {args.repeats} alternating runs of {args.seconds:g} s")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system = cls(root / f"rules-{cls.name}-{r}", targets, w)
            try:
                time.sleep(args.warmup)
                meter = Meter(system.procs)
                durations: list[float] = []
                deadline = time.monotonic() + args.seconds
                metric = ("monitor_rule_group_last_duration_seconds" if cls is Ours
                          else "prometheus_rule_group_last_duration_seconds")
                while time.monotonic() < deadline:
                    durations += system.own_metric(metric)
                    time.sleep(min(w.eval_interval, max(0.0, deadline - time.monotonic())))
                res = meter.done()
                main_proc = "codebook-monitor" if cls is Ours else "prometheus"
                fig.add(cls.name, {"cpu_per_s": res["cpu_per_s"],
                                   "cpu_per_s_evaluator_process": res["cpu_per_s_by_process"][main_proc],
                                   "group_duration_ms_median": statistics.median(durations) * 1000
                                   if durations else math.nan,
                                   "peak_rss_mib": res["peak_rss_mib"]})
            finally:
                system.stop()
    fig.notes.append("evaluator process: ours = the daemon; peer = prometheus alone (the issue's comparison)")
    fig.targets = [
        ("process CPU <= 2x Prometheus", "cpu_per_s_evaluator_process",
         lambda f: _held(_ratio(f, "cpu_per_s_evaluator_process"), 2.0, "x")),
        ("group duration <= 0.5x Prometheus", "group_duration_ms_median",
         lambda f: _held(_ratio(f, "group_duration_ms_median"), 0.5, "x")),
    ]
    return fig


FAULT_RULES = """\
groups:
  - name: fault
    interval: {interval}
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        for: {for_}
        labels: {{severity: critical}}
        annotations: {{summary: target down, description: bench}}
"""


def _wait_webhook(targets: TargetServer, side: str, status: str, since: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for h in targets.webhooks():
            if h["side"] == side and h["status"] == status and h["t"] >= since:
                return float(h["t"])
        time.sleep(0.05)
    return None


def workload_fault(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """One target probed every 5 s by both sides at once; it fails; time to the webhook."""
    interval, for_ = 5.0, 10.0
    w = Workload(1, interval, min(args.timeout, 4.0), eval_interval=interval,
                 rules=FAULT_RULES.format(interval=f"{interval:g}s", for_=f"{for_:g}s"), webhook=targets.webhook,
                 group_by=["alertname"], group_wait=0.0, group_interval=5.0)
    fig = Figures(f"fault -> notification: one target probed every {interval:g} s by both sides at once, "
                  f"rule probe_success == 0 for {for_:g} s evaluated every {interval:g} s, group_wait 0, "
                  f"webhook receiver; {args.fault_trials} faults")
    ours = Ours(root / "fault-ours", targets, w)
    try:
        peer = Peer(root / "fault-peer", targets, w)
        try:
            time.sleep(2 * interval + 2)
            for trial in range(args.fault_trials):
                print(f"  fault {trial + 1}/{args.fault_trials} ... load {loadavg()}", flush=True)
                # a random phase against both sides' schedules
                time.sleep((trial * 1.7) % interval)
                t0 = time.time()
                targets.mode("error")
                for system in (ours, peer):
                    t = _wait_webhook(targets, system.name, "firing", t0, 120)
                    fig.add(system.name, {"fault_to_notification_minus_for_s":
                                          (t - t0 - for_) if t is not None else math.nan})
                targets.mode("ok")
                t1 = time.time()
                for system in (ours, peer):
                    if _wait_webhook(targets, system.name, "resolved", t1, 120) is None:
                        fig.notes.append(f"{system.name}: no resolved notification after fault {trial + 1}")
                time.sleep(interval)
        finally:
            peer.stop()
    finally:
        ours.stop()
    fig.notes.append("includes up to one probe interval and one evaluation interval on both sides")
    return fig


def storm_alerts(names: int = 20, services: int = 10, instances: int = 5) -> list[dict[str, Any]]:
    """Return the storm: ``names`` x ``services`` x ``instances`` alerts (1,000), grouped by
    (alertname, service) into ``names`` x ``services`` groups (200)."""
    # no startsAt: each side stamps the time it received them (an alert that started over
    # group_wait ago would be flushed at once by Alertmanager, before its group is complete)
    return [{"labels": {"alertname": f"Storm{a}", "service": f"svc{s}", "instance": f"i{i}",
                        "severity": "critical" if a < names // 2 else "warning"},
             "annotations": {"summary": "storm", "description": "bench"}}
            for a in range(names) for s in range(services) for i in range(instances)]


def workload_storm(args: argparse.Namespace, root: Path, targets: TargetServer) -> Figures:
    """1,000 alerts posted to each side's Alertmanager v2 API -> the last of 200 grouped notifications."""
    group_wait = 1.0
    w = Workload(0, webhook=targets.webhook, group_by=["alertname", "service"], group_wait=group_wait,
                 group_interval=300.0)
    alerts = storm_alerts()
    groups = len({(a["labels"]["alertname"], a["labels"]["service"]) for a in alerts})
    fig = Figures(f"alert storm: {len(alerts):,} alerts in one POST /api/v2/alerts -> the last of {groups} grouped "
                  f"webhook notifications (group_wait {group_wait:g} s, subtracted); {args.repeats} alternating runs")
    for r in range(args.repeats):
        for cls in (Ours, Peer):
            print(f"  run {r + 1}/{args.repeats}: {cls.name} alone ... load {loadavg()}", flush=True)
            system = cls(root / f"storm-{cls.name}-{r}", targets, w)
            try:
                time.sleep(3)
                targets.webhooks(clear=True)
                meter = Meter(system.procs)
                t0 = time.time()
                httpx.post(system.alerts_url, json=alerts, timeout=120).raise_for_status()
                posted = time.time() - t0
                deadline = time.monotonic() + 120
                got: list[dict[str, Any]] = []
                while time.monotonic() < deadline:
                    got = [h for h in targets.webhooks() if h["side"] == cls.name and h["status"] == "firing"]
                    if len({h["group"] for h in got}) >= groups and sum(h["alerts"] for h in got) >= len(alerts):
                        break
                    time.sleep(0.05)
                res = meter.done()
                last = max((h["t"] for h in got), default=math.nan)
                cpu = res["cpu_per_s"] * res["wall_s"]
                fig.add(cls.name, {"post_s": posted, "last_notification_s": last - t0 - group_wait,
                                   "notifications": len(got),
                                   "alerts_notified": sum(h["alerts"] for h in got), "cpu_s": cpu})
            finally:
                system.stop()
    fig.targets = [("storm -> last grouped notification <= 0.5 s", "last_notification_s",
                    lambda f: _held(f.med("ours", "last_notification_s"), 0.5, " s"))]
    fig.notes.append("cpu_s: CPU seconds of the side's processes from the POST to the last notification "
                     "(peer: prometheus and blackbox_exporter idle beside alertmanager)")
    return fig


def _ratio(f: Figures, key: str) -> float:
    o, p = f.med("ours", key), f.med("peer", key)
    return o / p if p else math.nan


def _held(value: float, limit: float, unit: str, strict: bool = False) -> tuple[bool, str]:
    ok = value < limit if strict else value <= limit
    return (not math.isnan(value) and ok), f"{value:.3g}{unit}"


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _fmt(values: Iterable[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.4g}"
    return f"{min(vals):.4g} / {statistics.median(vals):.4g} / {max(vals):.4g}"


def report(fig: Figures) -> str:
    """Format one workload's figures as a table: ours, peer (min / median / max), ratio."""
    lines = [f"## {fig.title}", "", "| measure | ours (min / med / max) | peer (min / med / max) | ours / peer |",
             "|---|---|---|---|"]
    for key in sorted(set(fig.ours) | set(fig.peer), key=lambda k: ("[" in k, k)):
        o, p = fig.ours.get(key, []), fig.peer.get(key, [])
        r = _ratio(fig, key) if o and p else math.nan
        lines.append(f"| {key} | {_fmt(o)} | {_fmt(p)} | {'-' if math.isnan(r) else f'{r:.3g}'} |")
    lines += [f"- {n}" for n in fig.notes]
    for label, _key, check in fig.targets:
        ok, shown = check(fig)
        lines.append(f"- target: {label}: {'met' if ok else 'NOT met'} ({shown})")
    return "\n".join(lines)


def main() -> None:
    """Run the chosen workloads and print their tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="targets1000,outage,targets5000,fault,rules,storm",
                    help="comma-separated: targets1000, targets5000, outage, fault, rules, storm")
    ap.add_argument("--quick", action="store_true", help="one short run of each workload")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per side (resource figures)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds of each run")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--outage-mode", choices=["hang", "refuse"], default="hang")
    ap.add_argument("--outage-repeats", type=int, default=2)
    ap.add_argument("--outage-targets", type=int, default=1000)
    ap.add_argument("--after", type=float, default=60.0, help="seconds watched after recovery")
    ap.add_argument("--fault-trials", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, data)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.warmup, args.outage_repeats, args.after = 1, 30.0, 17.0, 1, 30.0
        args.fault_trials = 2
    for exe in (PROMETHEUS, BLACKBOX, ALERTMANAGER):
        if not Path(exe).exists():
            sys.exit(f"{exe} not found: apt-get install prometheus prometheus-blackbox-exporter "
                     "prometheus-alertmanager")
    versions = [subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
                or subprocess.run([exe, "--version"], capture_output=True, text=True).stderr.splitlines()[0]
                for exe in (PROMETHEUS, BLACKBOX, ALERTMANAGER)]
    root = Path(tempfile.mkdtemp(prefix="compare-stack-"))
    print(f"# compare_stack: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"peer: {'; '.join(versions)}")
    print(f"host: {os.cpu_count()} CPUs; load average {loadavg()}; data in {root}", flush=True)
    targets = TargetServer(root)
    results: dict[str, Any] = {}
    try:
        for name in [x.strip() for x in args.workloads.split(",") if x.strip()]:
            print(f"\n# workload {name} (load average {loadavg()})", flush=True)
            targets.mode("ok")
            if name.startswith("targets") and name.removeprefix("targets").isdigit():
                fig = workload_targets(int(name.removeprefix("targets")), args, root, targets)
            elif name == "outage":
                fig = workload_outage(args.outage_targets, args, root, targets)
            elif name == "rules":
                fig = workload_rules(args, root, targets)
            elif name == "fault":
                fig = workload_fault(args, root, targets)
            elif name == "storm":
                fig = workload_storm(args, root, targets)
            else:
                sys.exit(f"unknown workload {name}")
            fig.notes.append(f"load average after: {loadavg()}")
            print(report(fig), flush=True)
            results[name] = {"title": fig.title, "ours": fig.ours, "peer": fig.peer, "notes": fig.notes}
    finally:
        targets.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
