"""The daemon freezes what its start built out of the collector's walks (issue 9: full
collections walking the start's objects stalled the event loop 45-65 ms every ~0.8 s of an intake)."""

from __future__ import annotations

import gc

from monitor import cli
from monitor.gcpause import freeze_long_lived


async def test_objects_alive_at_the_freeze_are_left_out_of_later_collections():
    kept = [[i] for i in range(1000)]  # containers the collector tracks
    try:
        frozen = freeze_long_lived()
        assert frozen >= len(kept) and gc.get_freeze_count() == frozen
        assert not any(any(o is k for k in kept[:3]) for o in gc.get_objects(generation=2))
        await cli._started(None)  # what `codebook-monitor run` does once it serves
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
