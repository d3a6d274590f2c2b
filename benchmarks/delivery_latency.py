"""Delivery latency of a running daemon: firing -> webhook, a 1,000-alert storm, a 5,000-alert intake.

The daemon is the real one (``python -m monitor run`` in a subprocess, SQLite state in a temporary
folder, ``api.intake_open``), its one receiver a webhook to ``benchmarks/target_server.py`` (a
subprocess that stamps each notification's arrival). Alerts enter through ``POST /api/v2/alerts``
(what Prometheus sends); each figure is measured from the start of the POST.

- ``firing_to_webhook``: ``--singles`` alerts, one per POST and alert name (``group_wait: 0s``,
  ``group_by: [alertname]``), ~0.3 s apart: seconds from the POST to its webhook notification
  (min / median / max). Issue 10's target: <= 20 ms median. ``firing_wait``: the same with
  ``group_wait: 500ms`` (subtracted): the group's flush comes from its timer, not from the POST.
- ``storm``: 1,000 alerts in one POST (20 alert names x 10 services x 5 instances), grouped by
  (alertname, service) into 200 notifications, ``group_wait: 1s``: seconds from the POST to the
  last of them, minus ``group_wait`` (the figure ``benchmarks/compare_stack.py`` prints for its
  storm workload). Target: <= 0.5 s. Also the POST's own seconds and the daemon's CPU seconds.
- ``intake``: ``--intake`` (5,000) alerts in one POST, one group each (``group_by: [alertname,
  instance]``, ``group_wait: 0s``): the POST's seconds and the seconds to the last notification.

Each workload starts a fresh daemon. The load average is printed before and after.

Run::

    .venv/bin/python benchmarks/delivery_latency.py [--singles 20] [--intake 5000] [--workloads firing,storm,intake]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
#: A folder for py-spy profiles of each daemon (``--py-spy``), or "".
PY_SPY = ""


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> str:
    """Return the 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    """Wait until ``url`` answers 200 while ``proc`` lives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:g}s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 20 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Hooks:
    """The webhook receiver (``benchmarks/target_server.py`` control port) in a subprocess."""

    def __init__(self, folder: Path) -> None:
        self.control = free_port()
        self.log = folder / "targets.log"
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "target_server.py"),
                                      "--port", str(free_port()), "--control-port", str(self.control)],
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.control}/stats", self.proc, self.log, 30)
        self.url = f"http://127.0.0.1:{self.control}/webhook/ours"

    def received(self, clear: bool = False) -> list[dict[str, Any]]:
        """Notifications so far: ``{"t", "status", "alerts", "group", "alertnames"}``."""
        r = httpx.request("DELETE" if clear else "GET", f"http://127.0.0.1:{self.control}/webhooks", timeout=10)
        return list(r.json()["webhooks"])


class Daemon:
    """``python -m monitor run`` with one webhook receiver and the given route."""

    def __init__(self, folder: Path, hook_url: str, route: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg = {"server": {"host": "127.0.0.1", "port": port}, "api": {"intake_open": True},
               "state": {"backend": "sqlite", "path": str(folder / "state.db")},
               "alerting": {"route": {"receiver": "hook", "repeat_interval": "4h", **route}},
               "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url, "send_resolved": True}]}]}
        path = folder / "monitor.yaml"
        path.write_text(json.dumps(cfg, indent=1))
        self.log = folder / "daemon.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(path)],
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=folder,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.base = f"http://127.0.0.1:{port}"
        wait_http(self.base + "/-/ready", self.proc, self.log)
        self.http = httpx.Client(base_url=self.base, timeout=600)  # built once: not part of a figure
        time.sleep(1.0)  # leadership taken, the worker running
        self.spy: subprocess.Popen[bytes] | None = None
        if PY_SPY:
            out = Path(PY_SPY) / f"{folder.name}.txt"
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self.spy = subprocess.Popen([spy, "record", "--pid", str(self.proc.pid), "--rate", "250",
                                         "--format", "raw", "--output", str(out), "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)

    def stop(self) -> None:
        """Stop the profiler (it writes its output) and the daemon."""
        self.http.close()
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            self.spy.wait(30)
        stop(self.proc)

    def post(self, alerts: list[dict[str, Any]]) -> float:
        """POST ``alerts`` to the v2 intake; return the seconds the request took."""
        t = time.time()
        self.http.post("/api/v2/alerts", json=alerts).raise_for_status()
        return time.time() - t


def _wait(hooks: Hooks, done, timeout: float = 300.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = hooks.received()
        if done(got):
            return got
        time.sleep(0.02)
    return got


def firing(root: Path, hooks: Hooks, singles: int, group_wait: float = 0.0) -> dict[str, Any]:
    """One alert per POST and alert name: seconds from the POST to its notification, minus ``group_wait``."""
    d = Daemon(root / f"firing-{group_wait:g}", hooks.url, {"group_by": ["alertname"],
                                                            "group_wait": f"{group_wait * 1000:.0f}ms",
                                                            "group_interval": "5m"})
    try:
        hooks.received(clear=True)
        lat, posts = [], []
        for i in range(singles):
            name = f"Single{i}"
            t0 = time.time()
            posts.append(d.post([{"labels": {"alertname": name, "severity": "critical"},
                                  "annotations": {"summary": "x"}}]))
            got = _wait(hooks, lambda g, n=name: any(n in h["alertnames"] for h in g), 30)
            t = min((h["t"] for h in got if name in h["alertnames"]), default=float("nan"))
            lat.append(t - t0 - group_wait)
            time.sleep(0.3)
        return {"alerts": singles, "group_wait_s": group_wait, "seconds_min": round(min(lat), 4),
                "seconds_median": round(statistics.median(lat), 4), "seconds_max": round(max(lat), 4),
                "post_seconds_median (the intake request alone)": round(statistics.median(posts), 4)}
    finally:
        d.stop()


def storm(root: Path, hooks: Hooks) -> dict[str, Any]:
    """1,000 alerts in one POST -> the last of 200 grouped notifications, minus group_wait."""
    group_wait = 1.0
    alerts = [{"labels": {"alertname": f"Storm{a}", "service": f"svc{s}", "instance": f"i{i}",
                          "severity": "critical" if a < 10 else "warning"},
               "annotations": {"summary": "storm", "description": "bench"}}
              for a in range(20) for s in range(10) for i in range(5)]
    d = Daemon(root / "storm", hooks.url, {"group_by": ["alertname", "service"], "group_wait": "1s",
                                           "group_interval": "5m"})
    try:
        hooks.received(clear=True)
        cpu0, t0 = cpu_seconds(d.proc.pid), time.time()
        post_s = d.post(alerts)
        got = _wait(hooks, lambda g: len({h["group"] for h in g}) >= 200 and sum(h["alerts"] for h in g) >= 1000)
        cpu = cpu_seconds(d.proc.pid) - cpu0
        last = max(h["t"] for h in got)
        return {"alerts": len(alerts), "notifications": len(got), "alerts_notified": sum(h["alerts"] for h in got),
                "post_s": round(post_s, 3),
                "first_notification_s (minus group_wait)": round(min(h["t"] for h in got) - t0 - group_wait, 3),
                "last_notification_s (minus group_wait)": round(last - t0 - group_wait, 3),
                "cpu_s": round(cpu, 2)}
    finally:
        d.stop()


def intake(root: Path, hooks: Hooks, n: int) -> dict[str, Any]:
    """``n`` alerts in one POST, one group each: the POST's seconds and the last notification's."""
    alerts = [{"labels": {"alertname": "Intake", "severity": "warning", "instance": f"host-{i}"},
               "annotations": {"summary": f"intake {i}"}} for i in range(n)]
    d = Daemon(root / "intake", hooks.url, {"group_by": ["alertname", "instance"], "group_wait": "0s",
                                            "group_interval": "5m"})
    try:
        hooks.received(clear=True)
        cpu0, t0 = cpu_seconds(d.proc.pid), time.time()
        post_s = d.post(alerts)
        got = _wait(hooks, lambda g: sum(h["alerts"] for h in g) >= n, 600)
        cpu = cpu_seconds(d.proc.pid) - cpu0
        return {"alerts": n, "post_s": round(post_s, 3), "notifications": len(got),
                "last_notification_s": round(max(h["t"] for h in got) - t0, 3), "cpu_s": round(cpu, 2)}
    finally:
        d.stop()


def main() -> None:
    """Command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="firing,firing_wait,storm,intake")
    ap.add_argument("--singles", type=int, default=20)
    ap.add_argument("--intake", type=int, default=5000)
    ap.add_argument("--py-spy", default="", metavar="DIR",
                    help="record a py-spy profile of each daemon into DIR/<workload>.txt (collapsed stacks)")
    args = ap.parse_args()
    global PY_SPY
    PY_SPY = args.py_spy
    out: dict[str, Any] = {"load_average_before": loadavg()}
    with tempfile.TemporaryDirectory(prefix="delivery-latency-") as tmp:
        root = Path(tmp)
        hooks = Hooks(root)
        try:
            for name in args.workloads.split(","):
                if name == "firing":
                    out["firing_to_webhook"] = firing(root, hooks, args.singles)
                elif name == "firing_wait":
                    out["firing_wait"] = firing(root, hooks, args.singles, group_wait=0.5)
                elif name == "storm":
                    out["storm"] = storm(root, hooks)
                elif name == "intake":
                    out["intake"] = intake(root, hooks, args.intake)
                else:
                    sys.exit(f"unknown workload {name}")
                print(json.dumps({name: out.get({"firing": "firing_to_webhook"}.get(name, name))}), flush=True)
        finally:
            stop(hooks.proc)
    out["load_average_after"] = loadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
