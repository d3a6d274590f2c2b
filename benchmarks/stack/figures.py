"""One workload's figures per side, the spacing and lag of stored samples, and the report."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from monitor.daemon.scheduler import spread
from stack.procs import TargetServer

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


def ratio(f: Figures, key: str) -> float:
    """Return ours / peer of the medians of ``key`` (NaN when the peer's is 0 or missing)."""
    o, p = f.med("ours", key), f.med("peer", key)
    return o / p if p else math.nan


def held(value: float, limit: float, unit: str, strict: bool = False) -> tuple[bool, str]:
    """Return whether ``value`` is at most (``strict``: under) ``limit``, and it shown with ``unit``."""
    ok = value < limit if strict else value <= limit
    return (not math.isnan(value) and ok), f"{value:.3g}{unit}"


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
        r = ratio(fig, key) if o and p else math.nan
        lines.append(f"| {key} | {_fmt(o)} | {_fmt(p)} | {'-' if math.isnan(r) else f'{r:.3g}'} |")
    lines += [f"- {n}" for n in fig.notes]
    for label, _key, check in fig.targets:
        ok, shown = check(fig)
        lines.append(f"- target: {label}: {'met' if ok else 'NOT met'} ({shown})")
    return "\n".join(lines)
