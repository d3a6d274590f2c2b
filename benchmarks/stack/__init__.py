"""The pieces of ``benchmarks/compare_stack.py``: codebook-monitor side by side with the stack it
replaces (Debian's prometheus, prometheus-blackbox-exporter and prometheus-alertmanager).

- :mod:`.procs`: processes started and stopped by PID, their CPU and memory (:class:`~.procs.Meter`),
  and the target server (``benchmarks/target_server.py``) in a process of its own;
- :mod:`.systems`: the workload both sides run, and the two sides (:class:`~.systems.Ours`,
  :class:`~.systems.Peer`) configured for it;
- :mod:`.figures`: one workload's figures per side, sample spacing and lag, and the report table;
- :mod:`.probing`: the ``targets<N>`` and ``outage`` workloads;
- :mod:`.alerting`: the ``rules``, ``fault`` and ``storm`` workloads.
"""

from __future__ import annotations

from pathlib import Path

#: The checkout (``monitor``, ``probes``, ``benchmarks``).
ROOT = Path(__file__).resolve().parents[2]
