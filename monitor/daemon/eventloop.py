"""The event loop the daemon runs on, and how the process's memory is handed to the collector.

``uvloop`` (libuv under asyncio's API, by the authors of asyncpg) runs the same coroutines with
less CPU per socket operation and timer; ``benchmarks/compare_stack.py`` measured ~15 % less
CPU per probe run with it. The daemon uses it when it is installed (a dependency on Linux and
macOS) and falls back to asyncio's own loop otherwise, or when asked (``codebook-monitor run
--loop asyncio``).

:func:`freeze_startup_objects` moves everything allocated at start-up (modules, config models,
probes, compiled rules) out of the cyclic garbage collector's generations: its full
collections then walk only what the running daemon allocates since, which shortens the pauses
they put on the event loop (CPython's ``gc.freeze`` documentation recommends it after start-up
for the same reason).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger("monitor.daemon")

T = TypeVar("T")
#: ``auto``: uvloop when installed, else asyncio; ``uvloop``: uvloop or an error; ``asyncio``.
LoopChoice = Literal["auto", "uvloop", "asyncio"]
LOOP_CHOICES: tuple[str, ...] = ("auto", "uvloop", "asyncio")


def loop_factory(choice: str = "auto") -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """Return the name of the loop ``choice`` selects and a factory of it (``None``: asyncio's
    default loop).

    :param choice: one of :data:`LOOP_CHOICES`.
    :raises ValueError: an unknown choice, or ``uvloop`` when it is not installed.
    """
    if choice not in LOOP_CHOICES:
        raise ValueError(f"unknown event loop {choice!r}; expected one of {', '.join(LOOP_CHOICES)}")
    if choice == "asyncio":
        return "asyncio", None
    if importlib.util.find_spec("uvloop") is None:
        if choice == "uvloop":
            raise ValueError("event loop uvloop asked for, but the uvloop package is not installed")
        return "asyncio", None
    import uvloop

    return "uvloop", uvloop.new_event_loop


def run(main: Callable[[], Coroutine[Any, Any, T]], choice: str = "auto") -> T:
    """Run the coroutine ``main()`` to completion on the loop ``choice`` selects (see
    :func:`loop_factory`); ``main`` is called only once the loop is chosen.

    :raises ValueError: as :func:`loop_factory` (before ``main`` is called).
    """
    name, factory = loop_factory(choice)
    log.debug("event loop", extra={"loop": name})
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


#: Young-generation collections between two full ones (CPython's default: 10); see
#: :func:`space_full_collections`.
FULL_COLLECTION_THRESHOLD = 1000
#: The longest wait before the second freeze (:func:`warmup_seconds`).
MAX_WARMUP = 600.0


def warmup_seconds(intervals: list[tuple[float, float]]) -> float:
    """Return when the daemon has run every probe and scrape once: the longest ``interval +
    timeout`` of ``intervals`` (seconds), at most :data:`MAX_WARMUP`.

    By then every series the probes and scrapes report exists; freezing again then
    (:func:`freeze_startup_objects`) takes the sample store's series, which live as long as the
    daemon, out of every later collection: at 5,000 probes they were ~160,000 of the ~280,000
    objects a full collection walked (~140 ms of stall, every ~11 s).
    """
    return min(MAX_WARMUP, max((i + t for i, t in intervals), default=0.0))


def space_full_collections() -> None:
    """Let the collector's full collections come ~100 times less often (its young
    generations are collected as before).

    A probe result lives one interval, long enough to reach the oldest generation, so with
    thousands of probes the oldest generation grows by a quarter (CPython's other condition for a
    full collection) every few seconds, and each full collection stalls the loop for tens of
    milliseconds (hundreds on a loaded host): at 5,000 probes that was the whole of the
    scheduling lag's p99 (172 ms) and every sample gap beyond +-1 % of the interval. The
    garbage a probe run makes is reference cycles that die young (an httpx response and its
    stream), which the young collections still free: the daemon's memory stayed flat
    (``benchmarks/compare_stack.py``, 5,000 targets).
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)


def freeze_startup_objects() -> int:
    """Collect the start-up garbage, then move every object alive now to the collector's
    permanent generation (``gc.freeze``), which its collections no longer walk.

    Objects frozen are still freed when their last reference goes; only a reference cycle
    among them that becomes garbage is never collected (start-up holds none that does).

    :return: how many objects are frozen (``gc.get_freeze_count()``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
