"""A generator run in a second process: items in order, its errors here, never ahead by much."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from board.intake.aside import AHEAD, aside


def pids_and_squares(n: int):
    for i in range(n):
        yield os.getpid(), i * i


def collector_on():
    yield gc.isenabled()


def fails_after(n: int):
    yield from range(n)
    raise ValueError(f"row {n} is bad")


class Unpicklable(Exception):
    def __init__(self, what: str, lock: object) -> None:
        super().__init__(what)
        self.lock = lock


def fails_unpicklably():
    yield 1
    raise Unpicklable("cannot travel", threading.Lock())


def dies():
    yield 1
    os._exit(3)


def counted(path: Path, n: int):
    """Big items, each noted in a file once made: how far ahead the child runs."""
    for i in range(n):
        path.write_text(str(i))
        yield "x" * 1_000_000


def test_items_come_back_in_order_from_another_process():
    with aside(pids_and_squares, 200) as items:
        got = list(items)
    assert [square for _, square in got] == [i * i for i in range(200)]
    assert {pid for pid, _ in got} != {os.getpid()} and len({pid for pid, _ in got}) == 1
    assert multiprocessing.active_children() == []


def test_the_childs_exception_is_raised_here_after_its_items():
    got = []
    with pytest.raises(ValueError, match="row 3 is bad"), aside(fails_after, 3) as items:
        got.extend(items)
    assert got == [0, 1, 2]
    with pytest.raises(RuntimeError, match="Unpicklable: cannot travel"), \
            aside(fails_unpicklably) as items:
        list(items)
    with pytest.raises(RuntimeError, match="ended without a word"), aside(dies) as items:
        list(items)
    assert multiprocessing.active_children() == []


def test_the_child_waits_for_the_reader_and_stops_when_it_leaves(tmp_path):
    made = tmp_path / "made"
    with aside(counted, made, 1000) as items:
        next(items)
        time.sleep(0.5)  # time enough to make hundreds, were it not waiting on its sends
        # one read, one being sent, AHEAD made and waiting, one made and waiting to join them
        assert int(made.read_text()) == AHEAD + 2  # ahead so far, no further
    assert multiprocessing.active_children() == []  # left early: stopped, not left waiting


def test_the_child_never_collects_what_it_inherited():
    """Its collector is off (an inherited, unreachable connection is never finalised there);
    this process's is as it was."""
    assert gc.isenabled()
    with aside(collector_on) as items:
        assert list(items) == [False]
    assert gc.isenabled()


def test_the_heap_at_the_fork_is_frozen_here_while_the_child_runs():
    """The collector's full passes here skip what existed at the fork while items arrive; the
    heap is as it was once the child is done, however it ended."""
    assert gc.get_freeze_count() == 0
    with aside(pids_and_squares, 3) as items:
        frozen = gc.get_freeze_count()
        list(items)
    assert frozen > 1000 and gc.get_freeze_count() == 0
    with pytest.raises(ValueError), aside(fails_after, 1) as items:
        list(items)
    assert gc.get_freeze_count() == 0


def unpicklable_items():
    yield 1
    yield threading.Lock()
    yield from range(10_000)  # never made: the child ends at the item it cannot send


def test_an_item_that_cannot_travel_ends_the_child_with_the_reason():
    with pytest.raises(TypeError, match="pickle"), aside(unpicklable_items) as items:
        assert next(items) == 1
        list(items)
    assert multiprocessing.active_children() == []
