"""The run command's garbage-collection policy: applied inside, restored after."""

from __future__ import annotations

import gc

from trio_harvest.ops.gcpolicy import THRESHOLDS, tuned


def test_tuned_collects_less_often_and_freezes_startup_then_restores() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    startup = [object() for _ in range(3)], {"state": [1, 2]}
    with tuned():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > frozen_before  # start-up's objects left out
        assert not any(o is startup for o in gc.get_objects())
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert any(o is startup for o in gc.get_objects())


def test_cyclic_garbage_made_inside_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with tuned():
        cycle = Node()
        alive = [cycle]
        del cycle
        alive.clear()
        assert gc.collect() >= 1


def test_the_previous_settings_come_back_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with tuned((5_000, 5, 5)):
            assert gc.get_threshold() == (5_000, 5, 5)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
