"""The daemon's event loop choice and the start-up freeze (``monitor/daemon/eventloop.py``)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from monitor.daemon.eventloop import freeze_startup_objects, loop_factory, run, space_full_collections, warmup_seconds


def test_asyncio_when_asked_and_uvloop_by_default_when_installed():
    assert loop_factory("asyncio") == ("asyncio", None)
    uvloop = pytest.importorskip("uvloop")
    name, factory = loop_factory("auto")
    assert name == "uvloop" and factory is uvloop.new_event_loop
    assert loop_factory("uvloop")[0] == "uvloop"


def test_unknown_loop_is_an_error():
    with pytest.raises(ValueError, match="unknown event loop 'tokio'"):
        loop_factory("tokio")


@pytest.mark.parametrize("choice", ["asyncio", "auto"])
def test_run_calls_main_on_the_chosen_loop(choice):
    async def main():
        return type(asyncio.get_running_loop()).__module__

    module = run(main, choice)
    assert module.startswith("asyncio" if choice == "asyncio" or loop_factory("auto")[0] == "asyncio" else "uvloop")


def test_freeze_moves_live_objects_out_of_the_collectors_generations():
    try:
        assert freeze_startup_objects() > 1000
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_the_second_freeze_waits_for_every_probe_and_scrape_to_run_once():
    assert warmup_seconds([(15.0, 5.0), (60.0, 10.0)]) == 70.0
    assert warmup_seconds([]) == 0.0
    assert warmup_seconds([(86400.0, 10.0)]) == 600.0


def test_full_collections_are_spaced_and_young_ones_kept():
    before = gc.get_threshold()
    try:
        space_full_collections()
        assert gc.get_threshold() == (before[0], before[1], 1000)
    finally:
        gc.set_threshold(*before)
