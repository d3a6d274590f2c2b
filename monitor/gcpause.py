"""Pausing Python's cyclic garbage collector around work that holds many short-lived objects.

A full (generation 2) collection walks every live container object with the GIL held. Work
that keeps hundreds of thousands of objects alive for a while — an ad-hoc query's samples
(:mod:`monitor.promql.adhoc`), a scrape's parsed batch (:mod:`monitor.scrape.scraper`: 50,000 samples
of a target at its ``sample_limit``) — gets them promoted to the oldest generation and triggers
full collections that walk them: event-loop stalls of 60-100 ms per collection on a quiet
machine, several per scrape. None of that work makes reference cycles, so reference counting
frees it all; the collector can wait until it ends.

What the start built is moved out of the collector's reach once the daemon serves
(:func:`monitor.daemon.eventloop.freeze_startup_objects`): 45-65 ms loop stalls every ~0.8 s
during a 5,000-alert intake came from walking the start's objects again and again.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused_gc"]

_gc_lock = threading.Lock()
_gc_pausers = 0  # paused_gc() blocks active in any thread or task
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while the block runs (in any thread or coroutine;
    nested and concurrent blocks count, the last one out restores it as it was).

    Usage::

        with paused_gc():
            batch = parse(body)     # many objects, no cycles
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()

