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

The pieces live in ``benchmarks/stack/`` (processes, the two sides, figures and report, the
workloads); this script parses the command line and runs the workloads asked for.

Run::

    python benchmarks/compare_stack.py                  # every workload, 3 runs each (~1 h)
    python benchmarks/compare_stack.py --workloads targets1000,outage,targets5000
    python benchmarks/compare_stack.py --quick          # one short run of each workload
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from stack.alerting import workload_fault, workload_rules, workload_storm  # noqa: E402 - after the path fix-up
from stack.figures import report  # noqa: E402
from stack.probing import workload_outage, workload_targets  # noqa: E402
from stack.procs import ALERTMANAGER, BLACKBOX, PROMETHEUS, TargetServer, loadavg  # noqa: E402


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
