"""The review queue: flagged closes wait for a finding, recorded as an event, within scope."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from board.accountability import reviews
from board.storage import db
from board.storage.schema import events, jobs
from board.usecases import Forbidden, Invalid
from tests.conftest import Clock, World, make_job


def quick_close(world: World, clock: Clock, precinct: str = "75") -> int:
    """Assigned and closed two minutes later without arriving: flagged twice."""
    d = world.dispatch
    sgt, unit, off = (("sgt75", "75-A", "off75a") if precinct == "75"
                      else ("sgt120", "120-A", "off120"))
    job = make_job(d, precinct)
    d.assign(world.actors[sgt], job, 1, world.unit(unit))
    clock.advance(minutes=2)
    d.close(world.actors[off], job, 2, "action_taken")
    return job


def worked_close(world: World, clock: Clock) -> int:
    d, off = world.dispatch, world.actors["off75a"]
    job = make_job(d)
    d.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    d.acknowledge(off, job, 2)
    d.on_scene(off, job, 3)
    clock.advance(minutes=8)
    d.close(off, job, 4, "action_taken")
    return job


def test_flagged_closes_wait_for_review_and_clean_ones_do_not(world: World,
                                                             clock: Clock) -> None:
    flagged = quick_close(world, clock)
    worked_close(world, clock)
    admin = make_job(world.dispatch)
    world.dispatch.admin_close(world.actors["sgt75"], admin, 1, "duplicate")
    rows = reviews.pending(world.dispatch.engine, world.actors["sgt75"], "75", clock.now)
    assert [(r.card.id, r.flags) for r in rows] == [
        (flagged, ["no_arrival", "quick_close"]), (admin, ["administrative"])]
    assert [e.kind for e in rows[0].timeline] == ["create", "assign", "close"]
    assert reviews.count(world.dispatch.engine, world.actors["sgt75"]) == 2
    assert reviews.count(world.dispatch.engine, world.actors["cmd"]) == 2
    assert reviews.count(world.dispatch.engine, world.actors["sgt120"]) == 0


def test_a_finding_is_an_event_and_takes_the_job_off_the_queue(world: World,
                                                              clock: Clock) -> None:
    job = quick_close(world, clock)
    d, sgt = world.dispatch, world.actors["sgt75"]
    with pytest.raises(Invalid):
        d.review(sgt, job, 3, "no_issue", "   ")  # a comment is required
    with pytest.raises(Invalid):
        d.review(sgt, job, 3, "fine", "ok")
    ev = d.review(sgt, job, 3, "spoken_to", "Told 75-A to go to the scene first.")
    assert ev["kind"] == "review"
    assert ev["payload"] == {"finding": "spoken_to",
                             "comment": "Told 75-A to go to the scene first."}
    assert reviews.pending(d.engine, sgt, "75", clock.now) == []
    with pytest.raises(Invalid, match="not waiting"):
        d.review(sgt, job, 3, "no_issue", "again")


def test_a_reopened_finding_reopens_the_job_and_its_next_close_comes_back(
        world: World, clock: Clock) -> None:
    job = quick_close(world, clock)
    d, sgt = world.dispatch, world.actors["sgt75"]
    d.review(sgt, job, 3, "reopened", "Nobody went there; send a unit.")
    with db.read(d.engine) as conn:
        status, version = conn.execute(sa.select(jobs.c.status, jobs.c.version)
                                       .where(jobs.c.id == job)).one()
        kinds = conn.execute(sa.select(events.c.kind).where(events.c.job_id == job)
                             .order_by(events.c.seq)).scalars().all()
    assert (status, version) == ("new", 4)
    assert kinds[-2:] == ["review", "reopen"]
    assert reviews.pending(d.engine, sgt, "75", clock.now) == []
    d.assign(sgt, job, 4, world.unit("75-B"))
    d.close(world.actors["off75b"], job, 5, "action_taken")
    assert reviews.pending(d.engine, sgt, "75", clock.now)[0].flags == [
        "no_arrival", "quick_close", "reopened"]


def test_scope_nobody_reviews_or_reads_outside_their_role_and_precincts(
        world: World, clock: Clock) -> None:
    job = quick_close(world, clock)
    d = world.dispatch
    for who in ("off75a", "cmd", "sgt120", "wall75"):
        with pytest.raises(Forbidden):
            d.review(world.actors[who], job, 3, "no_issue", "ok")
    for who in ("off75a", "sgt120", "wall75"):
        with pytest.raises(Forbidden):
            reviews.pending(d.engine, world.actors[who], "75", clock.now)
    assert reviews.count(d.engine, world.actors["off75a"]) == 0
    assert len(reviews.pending(d.engine, world.actors["cmd"], "75", clock.now)) == 1
    with pytest.raises(Forbidden):  # a stale version is no way round the scope check
        d.review(world.actors["sgt120"], job, 99, "no_issue", "ok")
