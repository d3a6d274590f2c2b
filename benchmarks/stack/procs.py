"""Processes started and stopped by PID, their CPU and memory, and the target server."""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stack import ROOT

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


def loadavg() -> str:
    """Return the 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
