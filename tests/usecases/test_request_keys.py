"""A request's own key (a phone's tap, sent again after its answer was lost): recorded on the
events it writes, so the same request on an old version is answered with what it wrote the
first time, never as a conflict with itself, and nothing is written twice."""

from __future__ import annotations

from dataclasses import replace

import pytest

from board.domain.access import Forbidden
from board.usecases import Conflict, Dispatch
from tests.conftest import World, make_job
from tests.usecases.test_usecases import refused


@pytest.fixture
def on_75a(dispatch: Dispatch, world: World) -> int:
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    return job


def test_the_same_request_again_is_answered_with_its_own_event(dispatch: Dispatch, world: World,
                                                               on_75a: int) -> None:
    tap = replace(world.actors["off75a"], request_key="tap-0001-abcd")
    first = dispatch.acknowledge(tap, on_75a, 2)
    assert first["payload"]["request_key"] == "tap-0001-abcd"
    seen: list[object] = []
    dispatch.listeners.append(seen.append)
    again = dispatch.acknowledge(tap, on_75a, 2)
    assert again["seq"] == first["seq"] and again["replayed"] is True
    assert seen == []  # nothing new to tell the boards
    # The same step on that old version by another request is still a conflict.
    other = replace(tap, request_key="tap-0002-abcd")
    refused(dispatch, Conflict, lambda: dispatch.acknowledge(other, on_75a, 2))
    refused(dispatch, Conflict, lambda: dispatch.acknowledge(world.actors["off75a"], on_75a, 2))


def test_a_key_answers_only_for_its_own_person_and_step(dispatch: Dispatch, world: World,
                                                        on_75a: int) -> None:
    tap = replace(world.actors["off75a"], request_key="tap-0001-abcd")
    dispatch.acknowledge(tap, on_75a, 2)
    sgt = replace(world.actors["sgt75"], request_key="tap-0001-abcd")
    refused(dispatch, Conflict, lambda: dispatch.acknowledge(sgt, on_75a, 2))
    refused(dispatch, Conflict, lambda: dispatch.en_route(tap, on_75a, 2))


def test_the_same_request_after_the_job_moved_on(dispatch: Dispatch, world: World,
                                                 on_75a: int) -> None:
    """The tap was written, then the desk sent the job to another unit: sent again, the
    officer is told it was done, not refused for a job no longer theirs."""
    tap = replace(world.actors["off75a"], request_key="tap-0001-abcd")
    first = dispatch.acknowledge(tap, on_75a, 2)
    dispatch.reassign(world.actors["sgt75"], on_75a, 3, world.unit("75-B"))
    assert dispatch.acknowledge(tap, on_75a, 2)["seq"] == first["seq"]
    refused(dispatch, Conflict, lambda: dispatch.acknowledge(
        replace(tap, request_key="tap-0002-abcd"), on_75a, 2))


def test_a_key_never_lets_a_stranger_through(dispatch: Dispatch, world: World,
                                             on_75a: int) -> None:
    tap = replace(world.actors["off75a"], request_key="tap-0001-abcd")
    dispatch.acknowledge(tap, on_75a, 2)
    stranger = replace(world.actors["off120"], request_key="tap-0001-abcd")
    refused(dispatch, Forbidden, lambda: dispatch.acknowledge(stranger, on_75a, 2))
