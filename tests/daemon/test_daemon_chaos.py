"""A small chaos run (``benchmarks/chaos.py``): the real daemon process is killed with ``kill -9``
four times at random moments while a rule alert and intake alerts fire and resolve; every
transition must have its effect exactly once, in order, at every sink: the webhook (deduplicating
by ``Idempotency-Key``), Slack (one channel message per transition, every one resolved at the
end) and PagerDuty (one page per episode, every incident resolved, no resolve for a key never
triggered).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def _chaos():
    spec = importlib.util.spec_from_file_location("benchmarks_chaos", ROOT / "benchmarks" / "chaos.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


async def test_kill_9_loses_duplicates_and_reorders_nothing(tmp_path: Path) -> None:
    res = await _chaos().run_chaos(kills=4, postgres=False, seed=None, quiet=4.0, workdir=tmp_path,
                                   round_s=(2.0, 4.0))
    why = "\n".join(res.details)
    assert (res.lost, res.duplicated, res.out_of_order) == (0, 0, 0), why
    assert (res.slack_duplicated, res.slack_left_firing) == (0, 0), why
    assert (res.pd_duplicated, res.pd_resolve_unknown, res.pd_left_open) == (0, 0, 0), why
    assert res.raises > 0 and res.deliveries > 0 and res.slack_posts > 0 and res.pd_pages > 0
