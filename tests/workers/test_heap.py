"""Start-up objects leave the collector's generations; garbage left by start-up is collected first."""

from __future__ import annotations

import gc
import weakref

import pytest

from workers.broker import build_middleware
from workers.heap import freeze_startup_objects
from workers.middleware import FreezeStartupObjects


class _Thing:
    pass


@pytest.fixture()
def unfrozen():
    yield
    gc.unfreeze()  # this test process keeps collecting as usual afterwards


def _tracked(obj) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_start_are_exempt_and_start_up_garbage_is_collected_first(unfrozen):
    kept = _Thing()
    cycle = _Thing()
    cycle.me = cycle
    gone = weakref.ref(cycle)
    del cycle
    assert _tracked(kept)
    exempt = freeze_startup_objects()
    assert gone() is None  # collected, not frozen for the life of the process
    assert not _tracked(kept)  # no full pass walks it any more
    assert exempt > 0  # (the count drops as frozen objects are freed, so it is not compared again)
    later = _Thing()
    assert _tracked(later)  # what is allocated afterwards is collected as usual


def test_worker_processes_freeze_once_the_cli_has_booted_them(unfrozen):
    assert any(isinstance(m, FreezeStartupObjects) for m in build_middleware())
    kept = _Thing()
    FreezeStartupObjects().after_process_boot(broker=None)
    assert not _tracked(kept)
