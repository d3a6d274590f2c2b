"""SLO rule evaluation cost: what the generated groups of N SLOs cost per evaluation.

The shipped SLOs (examples/slos.yaml: API availability, API latency, database, Pinecone and LLM
availability) are copied ``--copies`` times under different service names, their rules generated
(:func:`monitor.slo.generate.rule_file_text`) and loaded into a real
:class:`~monitor.rules.manager.RuleManager` over a real :class:`~monitor.tsdb.store.SampleStore`.
The store holds ``--hours`` of raw samples every 15 s for each copy: ``http_requests_total`` by
status and endpoint (12 series), the latency histogram (10 buckets + count for 4 endpoints) and
three ``probe_success`` series. The rules are first evaluated every minute over that history (so
the recorded ``slo:*`` series exist, as in a running daemon), then ``--repeat`` evaluations at
"now" are timed.

Prints one JSON document: SLOs, rules, raw series, the history build time, and the median and
max wall time of one evaluation of every SLO group, with ``os.getloadavg()``.

    .venv/bin/python -m benchmarks.slo_eval [--copies 10] [--hours 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import yaml

from model.labels import Labels
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import RuleText
from monitor.slo.generate import rule_file_text
from monitor.slo.model import SLO
from monitor.tsdb.store import SampleStore

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = ("/a", "/b", "/c", "/d")
BUCKETS = ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")


def _slos(copies: int) -> list[SLO]:
    shipped = yaml.safe_load((ROOT / "examples" / "slos.yaml").read_text())["slos"]
    out = []
    for i in range(copies):
        for item in shipped:
            data = dict(item)
            data["service"] = f"{item['service']}-{i}"
            sli = json.loads(json.dumps(item["sli"]))  # a deep copy; each copy reads its own series
            if "ratio" in sli:
                for k in ("error_query", "total_query"):
                    q = sli["ratio"][k].replace("http_requests_total{", f'http_requests_total{{copy="{i}",')
                    sli["ratio"][k] = q.replace("http_requests_total[", f'http_requests_total{{copy="{i}"}}[')
            if "latency" in sli:
                sli["latency"]["selector"] = f'{{copy="{i}"}}'
            if "probe" in sli:
                sli["probe"]["selector"] = sli["probe"]["selector"][:-1] + f', copy="{i}"}}'
            data["sli"] = sli
            out.append(SLO.model_validate(data))
    return out


def _history(store: SampleStore, copies: int, start: float, end: float) -> int:
    series = 0
    for i in range(copies):
        c = str(i)
        labels = []
        for ep in ENDPOINTS:
            for status, rate in (("200", 9.0), ("500", 0.01), ("404", 0.1)):
                labels.append((Labels.of({"__name__": "http_requests_total", "copy": c, "endpoint": ep,
                                          "status": status}), rate))
            for le in BUCKETS:
                labels.append((Labels.of({"__name__": "http_request_duration_seconds_bucket", "copy": c,
                                          "endpoint": ep, "le": le}), 9.0 if le != "0.1" else 5.0))
            labels.append((Labels.of({"__name__": "http_request_duration_seconds_count", "copy": c,
                                      "endpoint": ep}), 9.0))
        for kind in ("database", "pinecone", "llm"):
            labels.append((Labels.of({"__name__": "probe_success", "copy": c, "kind": kind, "probe": kind}), -1))
        series += len(labels)
        batch = []
        n = int((end - start) / 15)
        for j in range(n + 1):
            t = start + 15 * j
            for lb, rate in labels:
                batch.append((lb, int(t * 1000), 1.0 if rate < 0 else rate * 15 * j))
        store.append_batch(batch)
    return series


async def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return the figures (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=10, help="copies of the 5 shipped SLOs (default 10: 50 SLOs)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours of raw history (default 2)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    now = time.time()
    start = now - args.hours * 3600
    store = SampleStore(retention_seconds=args.hours * 3600 + 600, max_series=1_000_000)
    series = _history(store, args.copies, start, now)
    slos = _slos(args.copies)
    engine = Engine(store)
    mgr = RuleManager(store, engine, clock=lambda: now)
    errors = mgr.load([RuleText("<slos>", rule_file_text(slos))])
    assert not errors, errors[:3]
    t0 = time.perf_counter()
    for t in range(int(start) + 300, int(now) - 60, 60):
        await mgr.eval_all(float(t))
    history_s = time.perf_counter() - t0
    times = []
    for k in range(args.repeat):
        t1 = time.perf_counter()
        await mgr.eval_all(now + k)
        times.append(time.perf_counter() - t1)
    rules = sum(len(g.rules) for g in mgr.groups())
    return {"slos": len(slos), "rules": rules, "raw_series": series, "hours": args.hours,
            "history_evaluations": int((now - 60 - start - 300) // 60),
            "history_build_seconds": round(history_s, 2),
            "eval_all_median_seconds": round(statistics.median(times), 4),
            "eval_all_max_seconds": round(max(times), 4),
            "loadavg": os.getloadavg()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
