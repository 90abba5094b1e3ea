"""The one write path, for real: every use case through Dispatch, checked in the job row and the
events table it leaves behind (or, when refused, does not leave behind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from board.domain.access import SYSTEM, Forbidden
from board.domain.dispositions import BY_CODE
from board.domain.lifecycle import TransitionError
from board.domain.priorities import Rule
from board.storage.schema import events, jobs, units
from board.usecases import Conflict, Dispatch, Invalid, NewJob, UnitConflict, queries
from tests.conftest import Clock, World, make_job, point_in

PHOTOS = ("https://example.org/p/1.jpg", "https://example.org/p/2.jpg")


# -- reading what was written -----------------------------------------------------------------


def job_row(d: Dispatch, job_id: int) -> Any:
    with d.engine.connect() as conn:
        return conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()


def unit_row(d: Dispatch, unit_id: int) -> Any:
    with d.engine.connect() as conn:
        return conn.execute(sa.select(units).where(units.c.id == unit_id)).one()


def job_events(d: Dispatch, job_id: int) -> list[Any]:
    with d.engine.connect() as conn:
        return conn.execute(
            sa.select(events).where(events.c.job_id == job_id).order_by(events.c.seq)).all()


def all_events(d: Dispatch) -> list[tuple[Any, ...]]:
    with d.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(events).order_by(events.c.seq))]


def all_jobs(d: Dispatch) -> list[tuple[Any, ...]]:
    with d.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(jobs).order_by(jobs.c.id))]


def all_units(d: Dispatch) -> list[tuple[Any, ...]]:
    with d.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(units).order_by(units.c.id))]


def snapshot(d: Dispatch) -> tuple[list, list, list]:
    return all_jobs(d), all_units(d), all_events(d)


def version(d: Dispatch, job_id: int) -> int:
    return job_row(d, job_id).version


def stack(d: Dispatch, unit_id: int) -> list[tuple[int, int]]:
    """(job id, stack_pos) of a unit's working jobs, top first."""
    with d.engine.connect() as conn:
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.stack_pos)
            .where(jobs.c.unit_id == unit_id,
                   jobs.c.status.in_(["assigned", "acknowledged", "en_route", "on_scene"]))
            .order_by(jobs.c.stack_pos, jobs.c.id)).all()
    return [(r.id, r.stack_pos) for r in rows]


def job_flags(d: Dispatch, clock: Clock, world: World, job_id: int) -> frozenset[str]:
    return queries.job(d.engine, world.actors["admin"], job_id, clock()).card.flags


def refused(d: Dispatch, exc: type[Exception], call: Callable[[], Any]) -> Exception:
    """Run a call that must be refused; it must leave jobs, units and events as they were."""
    before = snapshot(d)
    seen: list[Any] = []
    d.listeners.append(seen.append)
    try:
        with pytest.raises(exc) as info:
            call()
    finally:
        d.listeners.remove(seen.append)
    assert snapshot(d) == before
    assert seen == []
    return info.value


def assigned(d: Dispatch, world: World, callsign: str = "75-A", precinct: str = "75",
             media: tuple[str, ...] = (), by: str = "sgt75") -> int:
    job_id = make_job(d, precinct, media=media)
    d.assign(world.actors[by], job_id, 1, world.unit(callsign))
    return job_id


def work_to_scene(d: Dispatch, world: World, job_id: int, officer: str = "off75a") -> None:
    actor = world.actors[officer]
    d.acknowledge(actor, job_id, version(d, job_id))
    d.en_route(actor, job_id, version(d, job_id))
    d.on_scene(actor, job_id, version(d, job_id))


# -- the officer's path -----------------------------------------------------------------------


def test_full_officer_path_writes_one_event_per_step(dispatch: Dispatch, world: World,
                                                     clock: Clock) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    unit = world.unit("75-A")
    job_id = make_job(dispatch, "75")
    created = job_events(dispatch, job_id)
    assert [(e.kind, e.before, e.after) for e in created] == [("create", None, "new")]
    assert job_row(dispatch, job_id).version == 1

    steps: list[tuple[Any, str, str, str, Callable[[int], dict[str, Any]]]] = [
        (sgt, "assign", "new", "assigned",
         lambda v: dispatch.assign(sgt, job_id, v, unit)),
        (off, "acknowledge", "assigned", "acknowledged",
         lambda v: dispatch.acknowledge(off, job_id, v)),
        (off, "en_route", "acknowledged", "en_route",
         lambda v: dispatch.en_route(off, job_id, v)),
        (off, "on_scene", "en_route", "on_scene",
         lambda v: dispatch.on_scene(off, job_id, v)),
        (off, "close", "on_scene", "closed",
         lambda v: dispatch.close(off, job_id, v, "summons_issued", summons_count=2)),
    ]
    for n, (actor, kind, before, after, step) in enumerate(steps, start=1):
        clock.advance(minutes=7)
        count = len(all_events(dispatch))
        ev = step(n)
        assert len(all_events(dispatch)) == count + 1
        last = job_events(dispatch, job_id)[-1]
        assert (last.kind, last.before, last.after) == (kind, before, after)
        assert (last.actor, last.actor_id, last.source) == (actor.name, actor.id, "web")
        assert last.unit_id == unit and last.precinct == "75"
        assert last.at == clock()
        assert last.seq == ev["seq"] and ev["kind"] == kind and ev["after"] == after
        row = job_row(dispatch, job_id)
        assert row.version == n + 1
        assert row.status == after
        assert row.unit_id == unit
        assert row.updated_at == clock()

    row = job_row(dispatch, job_id)
    summons = BY_CODE["summons_issued"]
    assert row.disposition == "summons_issued"
    assert row.resolution == summons.resolution
    assert row.summons_count == 2
    assert row.administrative is False
    assert row.closed_at == clock()
    close = job_events(dispatch, job_id)[-1]
    assert close.payload["disposition"] == "summons_issued"
    assert close.payload["resolution"] == summons.resolution
    assert close.payload["summons_count"] == 2
    assert [e.kind for e in job_events(dispatch, job_id)] == [
        "create", "assign", "acknowledge", "en_route", "on_scene", "close"]
    assert job_flags(dispatch, clock, world, job_id) == frozenset()


def test_officer_may_go_en_route_without_acknowledging(dispatch: Dispatch, world: World) -> None:
    off = world.actors["off75a"]
    job_id = assigned(dispatch, world)
    dispatch.en_route(off, job_id, 2)
    assert job_row(dispatch, job_id).status == "en_route"


# -- events are append-only -------------------------------------------------------------------


def test_events_append_only_one_per_change(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    changes = 0
    a = make_job(dispatch, "75")
    b = make_job(dispatch, "75")
    changes += 2
    dispatch.assign(sgt, a, 1, world.unit("75-A"))
    dispatch.hold(sgt, b, 1, "waiting for callback")
    changes += 2
    early = all_events(dispatch)
    dispatch.acknowledge(off, a, 2)
    dispatch.release(sgt, b, 2)
    dispatch.set_priority(sgt, b, 3, 1)
    dispatch.note(off, a, "knocked, no answer")
    changes += 4
    rows = all_events(dispatch)
    assert len(rows) == changes + 4  # the world's four add_unit events
    seqs = [r[0] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert rows[:len(early)] == early  # nothing earlier was touched

    # a refused action writes nothing and changes nothing
    err = refused(dispatch, TransitionError, lambda: dispatch.acknowledge(sgt, b, 4))
    assert "cannot acknowledge a job that is new" in str(err)
    assert (job_row(dispatch, b).status, version(dispatch, b)) == ("new", 4)
    assert all_events(dispatch) == rows

    # and the sequence keeps climbing past the refusal
    dispatch.assign(sgt, b, 4, world.unit("75-B"))
    after = all_events(dispatch)
    assert after[:-1] == rows and after[-1][0] > rows[-1][0]


# -- optimistic concurrency -------------------------------------------------------------------


def test_stale_version_is_a_conflict_naming_who_changed_it(dispatch: Dispatch,
                                                           world: World) -> None:
    sgt, city = world.actors["sgt75"], world.actors["city"]
    job_id = make_job(dispatch, "75")
    dispatch.assign(sgt, job_id, 1, world.unit("75-A"))
    err = refused(dispatch, Conflict,
                  lambda: dispatch.assign(city, job_id, 1, world.unit("75-B")))
    assert isinstance(err, Conflict)
    assert sgt.name in str(err) and "assign" in str(err)
    assert (err.by, err.kind, err.expected, err.current) == (sgt.name, "assign", 1, 2)
    refused(dispatch, Conflict, lambda: dispatch.set_priority(city, job_id, 1, 1))
    refused(dispatch, Conflict, lambda: dispatch.unassign(city, job_id, 1, "wrong unit"))
    row = job_row(dispatch, job_id)
    assert (row.unit_id, row.version, row.status) == (world.unit("75-A"), 2, "assigned")


def test_conflict_after_a_reorder_names_the_reorder(dispatch: Dispatch, world: World) -> None:
    sgt, city = world.actors["sgt75"], world.actors["city"]
    first = assigned(dispatch, world)
    second = assigned(dispatch, world)
    dispatch.reorder(city, second, 2, 0)
    err = refused(dispatch, Conflict, lambda: dispatch.set_priority(sgt, second, 2, 1))
    assert isinstance(err, Conflict)
    assert (err.by, err.kind, err.current) == (city.name, "reorder", 3)
    assert city.name in str(err) and "reorder" in str(err)
    assert stack(dispatch, world.unit("75-A")) == [(second, 0), (first, 1)]


def test_a_fresh_version_goes_through(dispatch: Dispatch, world: World) -> None:
    sgt, city = world.actors["sgt75"], world.actors["city"]
    job_id = make_job(dispatch, "75")
    dispatch.set_priority(sgt, job_id, 1, 2)
    ev = dispatch.assign(city, job_id, 2, world.unit("75-B"))
    assert ev["actor"] == city.name
    assert job_row(dispatch, job_id).version == 3


# -- reassign, unassign, stacks ---------------------------------------------------------------


def test_reassign_moves_the_job_to_the_other_stack(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    a, b = world.unit("75-A"), world.unit("75-B")
    keep = assigned(dispatch, world, "75-A")
    move = assigned(dispatch, world, "75-A")
    already = assigned(dispatch, world, "75-B")
    dispatch.acknowledge(off, move, 2)
    assert stack(dispatch, a) == [(keep, 0), (move, 1)]

    ev = dispatch.reassign(sgt, move, 3, b)
    row = job_row(dispatch, move)
    assert (row.status, row.unit_id, row.version) == ("assigned", b, 4)
    assert stack(dispatch, a) == [(keep, 0)]
    assert stack(dispatch, b) == [(already, 0), (move, 1)]
    last = job_events(dispatch, move)[-1]
    assert (last.kind, last.before, last.after, last.unit_id) == (
        "reassign", "acknowledged", "assigned", b)
    assert last.payload["from_unit"] == "75-A" and last.payload["from_unit_id"] == a
    assert last.payload["unit"] == "75-B"
    assert ev["seq"] == last.seq

    # the old unit's officer can no longer touch it; the new one can
    refused(dispatch, Forbidden, lambda: dispatch.acknowledge(off, move, 4))
    dispatch.acknowledge(world.actors["off75b"], move, 4)

    # reassigning to the unit it is already on is not a move
    err = refused(dispatch, Invalid, lambda: dispatch.reassign(sgt, move, 5, b))
    assert "unit_id" in err.errors
    # nor to another precinct's unit
    err = refused(dispatch, Invalid,
                  lambda: dispatch.reassign(sgt, move, 5, world.unit("120-A")))
    assert "120-A" in err.errors["unit_id"]


def test_reassign_to_the_top_of_the_other_stack(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    b = world.unit("75-B")
    b1 = assigned(dispatch, world, "75-B")
    b2 = assigned(dispatch, world, "75-B")
    move = assigned(dispatch, world, "75-A")
    dispatch.reassign(sgt, move, 2, b, position=0)
    assert stack(dispatch, b) == [(move, 0), (b1, 1), (b2, 2)]


def test_unassign_needs_a_reason_and_returns_the_job_to_the_queue(dispatch: Dispatch,
                                                                  world: World) -> None:
    sgt = world.actors["sgt75"]
    a = world.unit("75-A")
    top = assigned(dispatch, world)
    rest = assigned(dispatch, world)
    for reason in ("", "   ", "\x00\x07"):
        err = refused(dispatch, Invalid, lambda r=reason: dispatch.unassign(sgt, top, 2, r))
        assert "reason" in err.errors

    dispatch.unassign(sgt, top, 2, "unit called to a 911 job")
    row = job_row(dispatch, top)
    assert (row.status, row.unit_id, row.stack_pos, row.version) == ("new", None, None, 3)
    last = job_events(dispatch, top)[-1]
    assert (last.kind, last.before, last.after) == ("unassign", "assigned", "new")
    assert last.payload["reason"] == "unit called to a 911 job"
    assert last.payload["from_unit"] == "75-A" and last.unit_id == a  # the unit it left
    assert stack(dispatch, a) == [(rest, 0)]
    view = queries.board(dispatch.engine, sgt, "75", dispatch.clock())
    assert top in [c.id for c in view.queue]

    # unassigning a job in the queue is refused by the lifecycle
    refused(dispatch, TransitionError, lambda: dispatch.unassign(sgt, top, 3, "again"))


def test_stacks_number_from_zero_and_keep_order(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    a = world.unit("75-A")
    one, two, three = (assigned(dispatch, world) for _ in range(3))
    assert stack(dispatch, a) == [(one, 0), (two, 1), (three, 2)]
    assert [e.payload["position"] for e in (job_events(dispatch, j)[-1]
                                            for j in (one, two, three))] == [0, 1, 2]

    top = make_job(dispatch, "75")
    ev = dispatch.assign(sgt, top, 1, a, position=0)
    assert ev["payload"]["position"] == 0
    assert stack(dispatch, a) == [(top, 0), (one, 1), (two, 2), (three, 3)]

    # a position past the end means the end; a negative one means the top
    far = make_job(dispatch, "75")
    assert dispatch.assign(sgt, far, 1, a, position=99)["payload"]["position"] == 4
    dispatch.reorder(sgt, far, 2, -5)
    assert stack(dispatch, a) == [(far, 0), (top, 1), (one, 2), (two, 3), (three, 4)]

    # reorder: move the third job to the top, then the top one to the bottom
    ev = dispatch.reorder(sgt, one, 2, 0)
    assert ev["kind"] == "reorder" and ev["payload"] == {"position": 0}
    assert stack(dispatch, a) == [(one, 0), (far, 1), (top, 2), (two, 3), (three, 4)]
    assert version(dispatch, one) == 3
    dispatch.reorder(sgt, far, 3, 4)
    assert stack(dispatch, a) == [(one, 0), (top, 1), (two, 2), (three, 3), (far, 4)]
    assert job_row(dispatch, one).status == "assigned"  # reorder changes no status

    # closing the top job renumbers the rest from 0
    work_to_scene(dispatch, world, one)
    dispatch.close(off, one, version(dispatch, one), "action_taken")
    assert stack(dispatch, a) == [(top, 0), (two, 1), (three, 2), (far, 3)]

    # only a job on a stack can be reordered, and by a supervisor
    queued = make_job(dispatch, "75")
    err = refused(dispatch, Invalid, lambda: dispatch.reorder(sgt, queued, 1, 0))
    assert "job_id" in err.errors
    refused(dispatch, Forbidden, lambda: dispatch.reorder(off, two, version(dispatch, two), 0))


# -- hold, administrative close, close, reopen ------------------------------------------------


def test_hold_and_release(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    job_id = make_job(dispatch, "75")
    err = refused(dispatch, Invalid, lambda: dispatch.hold(sgt, job_id, 1, ""))
    assert "reason" in err.errors
    dispatch.hold(sgt, job_id, 1, "complainant asked for a callback at 23:00")
    row = job_row(dispatch, job_id)
    assert (row.status, row.version) == ("held", 2)
    last = job_events(dispatch, job_id)[-1]
    assert (last.kind, last.before, last.after) == ("hold", "new", "held")
    assert last.payload["reason"] == "complainant asked for a callback at 23:00"

    refused(dispatch, TransitionError, lambda: dispatch.hold(sgt, job_id, 2, "again"))
    dispatch.release(sgt, job_id, 2)
    assert job_row(dispatch, job_id).status == "new"
    refused(dispatch, TransitionError, lambda: dispatch.release(sgt, job_id, 3))

    # a held job can be assigned straight from hold
    dispatch.hold(sgt, job_id, 3, "later")
    dispatch.assign(sgt, job_id, 4, world.unit("75-C"))
    assert job_events(dispatch, job_id)[-1].before == "held"


def test_admin_close_a_duplicate_from_the_queue(dispatch: Dispatch, world: World,
                                                clock: Clock) -> None:
    sgt = world.actors["sgt75"]
    job_id = make_job(dispatch, "75")
    clock.advance(minutes=1)
    ev = dispatch.admin_close(sgt, job_id, 1, "duplicate", note="same as 1234")
    row = job_row(dispatch, job_id)
    dup = BY_CODE["duplicate"]
    assert (row.status, row.administrative, row.disposition) == ("closed", True, "duplicate")
    assert row.resolution == dup.resolution
    assert row.closed_at == clock() and row.summons_count is None and row.version == 2
    last = job_events(dispatch, job_id)[-1]
    assert (last.kind, last.before, last.after, last.seq) == (
        "admin_close", "new", "closed", ev["seq"])
    assert last.payload["administrative"] is True and last.payload["note"] == "same as 1234"
    flags = job_flags(dispatch, clock, world, job_id)
    assert "no_arrival" not in flags and "quick_close" not in flags


def test_admin_close_from_hold_but_not_once_a_unit_has_it(dispatch: Dispatch,
                                                         world: World) -> None:
    sgt = world.actors["sgt75"]
    held = make_job(dispatch, "75")
    dispatch.hold(sgt, held, 1, "checking")
    dispatch.admin_close(sgt, held, 2, "not_police_jurisdiction")
    assert job_row(dispatch, held).status == "closed"
    working = assigned(dispatch, world)
    refused(dispatch, TransitionError,
            lambda: dispatch.admin_close(sgt, working, 2, "insufficient_information"))


def test_dispositions_must_fit_the_kind_of_close(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    queued = make_job(dispatch, "75")
    err = refused(dispatch, Invalid, lambda: dispatch.admin_close(sgt, queued, 1, "action_taken"))
    assert "disposition" in err.errors
    err = refused(dispatch, Invalid, lambda: dispatch.admin_close(sgt, queued, 1, "made_up"))
    assert "disposition" in err.errors

    job_id = assigned(dispatch, world)
    work_to_scene(dispatch, world, job_id)
    v = version(dispatch, job_id)
    err = refused(dispatch, Invalid, lambda: dispatch.close(off, job_id, v, "duplicate"))
    assert "disposition" in err.errors
    err = refused(dispatch, Invalid, lambda: dispatch.close(off, job_id, v, "summons_issued"))
    assert set(err.errors) == {"summons_count"}
    err = refused(dispatch, Invalid,
                  lambda: dispatch.close(off, job_id, v, "summons_issued", summons_count=0))
    assert set(err.errors) == {"summons_count"}
    err = refused(dispatch, Invalid,
                  lambda: dispatch.close(off, job_id, v, "gone_on_arrival", summons_count=3))
    assert set(err.errors) == {"summons_count"}

    dispatch.close(off, job_id, v, "gone_on_arrival")
    row = job_row(dispatch, job_id)
    assert row.resolution == BY_CODE["gone_on_arrival"].resolution
    assert row.summons_count is None and row.administrative is False


def test_reopen_returns_the_job_to_the_queue_and_keeps_history(dispatch: Dispatch, world: World,
                                                               clock: Clock) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    job_id = assigned(dispatch, world)
    work_to_scene(dispatch, world, job_id)
    clock.advance(minutes=20)
    dispatch.close(off, job_id, 5, "no_evidence")
    history = job_events(dispatch, job_id)

    refused(dispatch, Invalid, lambda: dispatch.reopen(sgt, job_id, 6, " "))
    refused(dispatch, Forbidden, lambda: dispatch.reopen(off, job_id, 6, "I was wrong"))
    clock.advance(minutes=30)
    ev = dispatch.reopen(sgt, job_id, 6, "complainant called back: still loud")
    row = job_row(dispatch, job_id)
    assert (row.status, row.unit_id, row.stack_pos, row.version) == ("new", None, None, 7)
    assert (row.disposition, row.resolution, row.closed_at, row.summons_count) == (
        None, None, None, None)
    after = job_events(dispatch, job_id)
    assert after[:-1] == history
    assert (after[-1].kind, after[-1].before, after[-1].after, after[-1].seq) == (
        "reopen", "closed", "new", ev["seq"])
    assert after[-1].payload["previous_disposition"] == "no_evidence"

    detail = queries.job(dispatch.engine, sgt, job_id, clock())
    kinds = [e.kind for e in detail.timeline]
    assert kinds == ["create", "assign", "acknowledge", "en_route", "on_scene", "close", "reopen"]
    old_close = detail.timeline[5]
    assert old_close.payload["disposition"] == "no_evidence" and old_close.after == "closed"
    assert "reopened" in detail.card.flags

    refused(dispatch, TransitionError, lambda: dispatch.reopen(sgt, job_id, 7, "again"))
    dispatch.assign(sgt, job_id, 7, world.unit("75-B"))
    assert job_row(dispatch, job_id).unit_id == world.unit("75-B")


# -- priority and routing ---------------------------------------------------------------------


def test_set_priority(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    job_id = make_job(dispatch, "75")
    start = job_row(dispatch, job_id).priority
    for bad in (0, 5, -1, 100):
        err = refused(dispatch, Invalid, lambda p=bad: dispatch.set_priority(sgt, job_id, 1, p))
        assert "priority" in err.errors
    new = 1 if start != 1 else 2
    ev = dispatch.set_priority(sgt, job_id, 1, new)
    row = job_row(dispatch, job_id)
    assert (row.priority, row.status, row.version) == (new, "new", 2)
    assert ev["payload"] == {"from": start, "to": new}
    last = job_events(dispatch, job_id)[-1]
    assert (last.kind, last.before, last.after) == ("set_priority", "new", "new")

    # officers don't prioritise; closed jobs have no priority left to set
    working = assigned(dispatch, world)
    refused(dispatch, Forbidden, lambda: dispatch.set_priority(off, working, 2, 1))
    dispatch.admin_close(sgt, job_id, 2, "duplicate")
    refused(dispatch, TransitionError, lambda: dispatch.set_priority(sgt, job_id, 3, 1))


def test_route_an_unrouted_job(dispatch: Dispatch, world: World, clock: Clock) -> None:
    sgt75, city = world.actors["sgt75"], world.actors["city"]
    ev = dispatch.create_job(SYSTEM, NewJob("Illegal Parking", "Blocked Hydrant", lat=None,
                                            lon=None, address="SOMEWHERE"), source="manual")
    job_id = ev["job_id"]
    row = job_row(dispatch, job_id)
    assert (row.precinct, row.route_method, row.status) == (None, "unrouted", "new")

    # a precinct supervisor can neither see nor route it
    refused(dispatch, Forbidden, lambda: queries.job(dispatch.engine, sgt75, job_id, clock()))
    assert queries.board(dispatch.engine, sgt75, "75", clock()).unrouted == []
    refused(dispatch, Forbidden, lambda: dispatch.route(sgt75, job_id, 1, "75"))
    refused(dispatch, Forbidden, lambda: dispatch.assign(sgt75, job_id, 1, world.unit("75-A")))

    # the citywide supervisor sees it in the unrouted queue and routes it
    board = queries.board(dispatch.engine, city, "75", clock())
    assert [c.id for c in board.unrouted] == [job_id]
    err = refused(dispatch, Invalid, lambda: dispatch.route(city, job_id, 1, "9999"))
    assert "precinct" in err.errors
    err = refused(dispatch, Invalid, lambda: dispatch.route(city, job_id, 1, "75", "120A"))
    assert "sector" in err.errors
    sector = dispatch.geo.sectors_of("75")[0]
    ev = dispatch.route(city, job_id, 1, "75", sector)
    row = job_row(dispatch, job_id)
    assert (row.precinct, row.sector, row.route_method, row.status, row.version) == (
        "75", sector, "manual", "new", 2)
    last = job_events(dispatch, job_id)[-1]
    assert (last.kind, last.actor, last.precinct) == ("route", city.name, None)
    assert last.payload["precinct"] == "75" and last.payload["from"] is None

    # now it is the 75th's job like any other
    assert queries.job(dispatch.engine, sgt75, job_id, clock()).card.precinct == "75"
    dispatch.assign(sgt75, job_id, 2, world.unit("75-A"))


def test_route_never_strands_a_job_on_another_precincts_unit(dispatch: Dispatch,
                                                              world: World) -> None:
    """A job on a 75th unit's stack routed into the 120th would be on no board at all."""
    city = world.actors["city"]
    job_id = assigned(dispatch, world, "75-A")
    err = refused(dispatch, Invalid, lambda: dispatch.route(city, job_id, 2, "120"))
    assert "precinct" in err.errors
    # a new sector in the same precinct is fine
    sector = dispatch.geo.sectors_of("75")[-1]
    dispatch.route(city, job_id, 2, "75", sector)
    row = job_row(dispatch, job_id)
    assert (row.precinct, row.sector, row.unit_id, row.status) == (
        "75", sector, world.unit("75-A"), "assigned")
    # from the queue it may go anywhere
    queued = make_job(dispatch, "75")
    dispatch.route(city, queued, 1, "120")
    assert job_row(dispatch, queued).precinct == "120"
    dispatch.assign(world.actors["sgt120"], queued, 2, world.unit("120-A"))


# -- units ------------------------------------------------------------------------------------


def test_unit_status_out_of_service_and_back(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    b = world.unit("75-B")
    v = unit_row(dispatch, b).version
    err = refused(dispatch, Invalid, lambda: dispatch.unit_status(sgt, b, v, "out_of_service"))
    assert "reason" in err.errors
    err = refused(dispatch, Invalid, lambda: dispatch.unit_status(sgt, b, v, "sleeping"))
    assert "status" in err.errors
    ev = dispatch.unit_status(sgt, b, v, "out_of_service", "vehicle collision")
    row = unit_row(dispatch, b)
    assert (row.status, row.status_reason, row.version) == (
        "out_of_service", "vehicle collision", v + 1)
    assert ev["kind"] == "unit_status" and ev["unit_id"] == b
    assert ev["payload"] == {"unit": "75-B", "from": "available", "to": "out_of_service",
                             "reason": "vehicle collision"}

    job_id = make_job(dispatch, "75")
    err = refused(dispatch, Invalid, lambda: dispatch.assign(sgt, job_id, 1, b))
    assert "75-B" in err.errors["unit_id"] and "vehicle collision" in err.errors["unit_id"]
    other = assigned(dispatch, world, "75-A")
    refused(dispatch, Invalid, lambda: dispatch.reassign(sgt, other, 2, b))

    # a stale unit version is refused too
    err = refused(dispatch, UnitConflict, lambda: dispatch.unit_status(sgt, b, v, "available"))
    assert (err.by, err.current) == ("SGT75", v + 1) and "75-B" in str(err)
    dispatch.unit_status(sgt, b, v + 1, "available")
    row = unit_row(dispatch, b)
    assert (row.status, row.status_reason) == ("available", None)
    dispatch.assign(sgt, job_id, 1, b)
    assert job_row(dispatch, job_id).unit_id == b


def test_officer_sets_own_unit_status_only(dispatch: Dispatch, world: World) -> None:
    """From the phone: meal / out of service and back, through the supervisor's use case."""
    off = world.actors["off75a"]
    a, b = world.unit("75-A"), world.unit("75-B")
    ev = dispatch.unit_status(off, a, 1, "out_of_service", "meal")
    assert (ev["actor"], ev["payload"]["to"], ev["payload"]["reason"]) == (
        "OFF75A", "out_of_service", "meal")
    assert unit_row(dispatch, a).status == "out_of_service"
    refused(dispatch, Forbidden, lambda: dispatch.unit_status(off, b, 1, "out_of_service", "x"))
    refused(dispatch, Forbidden, lambda: dispatch.unit_status(off, a, 2, "off_duty"))
    dispatch.unit_status(off, a, 2, "available")
    assert unit_row(dispatch, a).status == "available"
    assert unit_row(dispatch, b).status == "available"


# -- scope ------------------------------------------------------------------------------------

Call = Callable[[Dispatch, World, Any, int], Any]

WRITES: dict[str, Call] = {
    "assign": lambda d, w, a, j: d.assign(a, j, 2, w.unit("75-B")),
    "reassign": lambda d, w, a, j: d.reassign(a, j, 2, w.unit("75-B")),
    "unassign": lambda d, w, a, j: d.unassign(a, j, 2, "because"),
    "reorder": lambda d, w, a, j: d.reorder(a, j, 2, 0),
    "hold": lambda d, w, a, j: d.hold(a, j, 2, "because"),
    "release": lambda d, w, a, j: d.release(a, j, 2),
    "admin_close": lambda d, w, a, j: d.admin_close(a, j, 2, "duplicate"),
    "reopen": lambda d, w, a, j: d.reopen(a, j, 2, "because"),
    "set_priority": lambda d, w, a, j: d.set_priority(a, j, 2, 1),
    "route": lambda d, w, a, j: d.route(a, j, 2, "75"),
    "route_away": lambda d, w, a, j: d.route(a, j, 2, "120"),
    "acknowledge": lambda d, w, a, j: d.acknowledge(a, j, 2),
    "en_route": lambda d, w, a, j: d.en_route(a, j, 2),
    "on_scene": lambda d, w, a, j: d.on_scene(a, j, 2),
    "close": lambda d, w, a, j: d.close(a, j, 2, "action_taken"),
    "note": lambda d, w, a, j: d.note(a, j, "hello"),
    "view_photo": lambda d, w, a, j: d.view_photo(a, j, 0),
    "view_photo_bad_index": lambda d, w, a, j: d.view_photo(a, j, 7),
    "unit_status": lambda d, w, a, j: d.unit_status(a, w.unit("75-A"), 1, "off_duty"),
    "add_unit": lambda d, w, a, j: d.add_unit(a, "75-Z", "75"),
    "create_job": lambda d, w, a, j: d.create_job(
        a, NewJob("Noise - Street/Sidewalk", lat=point_in(d.geo, "75")[0],
                        lon=point_in(d.geo, "75")[1])),
    "update_311_fields": lambda d, w, a, j: d.update_311_fields(
        a, j, NewJob("Noise - Residential", "Banging/Pounding", address="2 OTHER ST")),
}
READ_ONLY_WRITES: dict[str, Call] = {
    "set_rule": lambda d, w, a, j: d.set_rule(a, Rule("Noise - Residential", "", 1, 5, 10,
                                                         20)),
    "unit_position": lambda d, w, a, j: d.unit_position(a, 40.7, -73.9),
}
OUT_OF_SCOPE = ["sgt120", "off120", "off75b", "cmd", "wall75"]


@pytest.fixture
def on_75a(dispatch: Dispatch, world: World) -> int:
    """A 75th job with photos, assigned to 75-A (version 2)."""
    return assigned(dispatch, world, "75-A", media=PHOTOS)


@pytest.mark.parametrize("who", OUT_OF_SCOPE)
@pytest.mark.parametrize("action", sorted(WRITES))
def test_out_of_scope_actors_are_forbidden(dispatch: Dispatch, world: World, on_75a: int,
                                           who: str, action: str) -> None:
    actor = world.actors[who]
    refused(dispatch, Forbidden, lambda: WRITES[action](dispatch, world, actor, on_75a))


@pytest.mark.parametrize("who", ["cmd", "wall75"])
@pytest.mark.parametrize("action", sorted(READ_ONLY_WRITES))
def test_readers_write_nothing(dispatch: Dispatch, world: World, on_75a: int, who: str,
                               action: str) -> None:
    actor = world.actors[who]
    refused(dispatch, Forbidden,
            lambda: READ_ONLY_WRITES[action](dispatch, world, actor, on_75a))


def test_officer_notes_and_views_photos_on_own_job(dispatch: Dispatch, world: World,
                                                   on_75a: int) -> None:
    off = world.actors["off75a"]
    ev = dispatch.note(off, on_75a, "on my way after this one")
    last = job_events(dispatch, on_75a)[-1]
    assert (last.kind, last.actor, last.before, last.after, last.seq) == (
        "note", off.name, None, None, ev["seq"])
    assert last.payload == {"text": "on my way after this one"}
    assert version(dispatch, on_75a) == 2  # a note changes no state

    _ev, url = dispatch.view_photo(off, on_75a, 1)
    last = job_events(dispatch, on_75a)[-1]
    # the event says which photo was seen, never where it is: a timeline shows no photo
    assert url == PHOTOS[1] and last.kind == "view_photo" and last.payload == {"index": 1}
    assert version(dispatch, on_75a) == 2

    for index in (2, -1, 99):
        err = refused(dispatch, Invalid, lambda i=index: dispatch.view_photo(off, on_75a, i))
        assert "index" in err.errors
    bare = assigned(dispatch, world)
    refused(dispatch, Invalid, lambda: dispatch.view_photo(off, bare, 0))


def test_an_officer_of_the_120th_cannot_read_the_75th(dispatch: Dispatch, world: World,
                                                      on_75a: int, clock: Clock) -> None:
    for who in ("off120", "sgt120"):
        refused(dispatch, Forbidden,
                lambda w=who: queries.job(dispatch.engine, world.actors[w], on_75a, clock()))
        refused(dispatch, Forbidden,
                lambda w=who: queries.board(dispatch.engine, world.actors[w], "75", clock()))


# -- flags ------------------------------------------------------------------------------------


def test_quick_close_within_five_minutes_of_assignment(dispatch: Dispatch, world: World,
                                                       clock: Clock) -> None:
    off = world.actors["off75a"]
    quick = assigned(dispatch, world)
    work_to_scene(dispatch, world, quick)
    clock.advance(minutes=4, seconds=59)
    dispatch.close(off, quick, 5, "action_taken")
    assert job_flags(dispatch, clock, world, quick) == {"quick_close"}

    slow = assigned(dispatch, world)
    work_to_scene(dispatch, world, slow)
    clock.advance(minutes=5, seconds=1)
    dispatch.close(off, slow, 5, "action_taken")
    assert job_flags(dispatch, clock, world, slow) == frozenset()


def test_closed_without_arriving(dispatch: Dispatch, world: World, clock: Clock) -> None:
    off = world.actors["off75a"]
    job_id = assigned(dispatch, world)
    dispatch.acknowledge(off, job_id, 2)
    dispatch.en_route(off, job_id, 3)
    clock.advance(minutes=12)
    dispatch.close(off, job_id, 4, "gone_on_arrival")
    assert job_flags(dispatch, clock, world, job_id) == {"no_arrival"}

    # a disposition that needs no arrival (information given) raises no flag
    info = assigned(dispatch, world)
    clock.advance(minutes=12)
    dispatch.close(off, info, 2, "additional_info")
    assert job_flags(dispatch, clock, world, info) == frozenset()


def test_photos_unviewed_and_viewed(dispatch: Dispatch, world: World, clock: Clock) -> None:
    off = world.actors["off75a"]
    unseen = assigned(dispatch, world, media=PHOTOS)
    work_to_scene(dispatch, world, unseen)
    clock.advance(minutes=15)
    dispatch.close(off, unseen, 5, "action_taken")
    assert job_flags(dispatch, clock, world, unseen) == {"photos_unviewed"}

    seen = assigned(dispatch, world, media=PHOTOS)
    work_to_scene(dispatch, world, seen)
    dispatch.view_photo(off, seen, 0)
    clock.advance(minutes=15)
    dispatch.close(off, seen, 5, "action_taken")
    assert job_flags(dispatch, clock, world, seen) == frozenset()

    # the flags on the board's closed list are the same as the job page's
    view = queries.board(dispatch.engine, world.actors["sgt75"], "75", clock())
    assert {c.id: c.flags for c in view.closed} == {unseen: {"photos_unviewed"},
                                                    seen: frozenset()}


def test_flags_after_reopen_are_the_latest_close(dispatch: Dispatch, world: World,
                                                 clock: Clock) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    job_id = assigned(dispatch, world)
    clock.advance(minutes=1)
    dispatch.close(off, job_id, 2, "action_taken")
    assert job_flags(dispatch, clock, world, job_id) == {"quick_close", "no_arrival"}
    dispatch.reopen(sgt, job_id, 3, "callback")
    clock.advance(minutes=1)
    dispatch.assign(sgt, job_id, 4, world.unit("75-A"))
    work_to_scene(dispatch, world, job_id)
    clock.advance(minutes=30)
    dispatch.close(off, job_id, version(dispatch, job_id), "action_taken")
    assert job_flags(dispatch, clock, world, job_id) == {"reopened"}


# -- 311 fields -------------------------------------------------------------------------------


def test_update_311_fields_changes_only_311_fields(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    lat, lon = point_in(dispatch.geo, "75")
    original = NewJob("Noise - Residential", "Loud Music/Party", "Residential Building/House",
                      "10 MAIN ST", "BROOKLYN", lat, lon, external_key="55500001",
                      fields={"incident_zip": "11207"}, external_status="Open")
    job_id = dispatch.create_job(SYSTEM, original, source="intake")["job_id"]
    dispatch.assign(sgt, job_id, 1, world.unit("75-A"))
    before = job_row(dispatch, job_id)
    count = len(job_events(dispatch, job_id))

    assert dispatch.update_311_fields(SYSTEM, job_id, original) is None
    assert len(job_events(dispatch, job_id)) == count
    assert job_row(dispatch, job_id) == before

    changed = NewJob("Noise - Residential", "Banging/Pounding", "Residential Building/House",
                     "10 MAIN ST", "BROOKLYN", lat, lon, external_key="55500001",
                     fields={"incident_zip": "11207", "bbl": "3012340001"},
                     media=PHOTOS, external_status="In Progress")
    ev = dispatch.update_311_fields(SYSTEM, job_id, changed)
    assert ev is not None
    last = job_events(dispatch, job_id)[-1]
    assert (last.kind, last.seq, last.before, last.after) == ("update_311", ev["seq"], None, None)
    assert last.payload == {"changed": ["descriptor", "external_status", "fields", "media"]}
    row = job_row(dispatch, job_id)
    assert (row.descriptor, row.external_status, row.media) == (
        "Banging/Pounding", "In Progress", list(PHOTOS))
    assert row.fields == {"incident_zip": "11207", "bbl": "3012340001"}
    dispatch_state = ("status", "unit_id", "stack_pos", "version", "priority", "precinct",
                      "sector", "disposition", "closed_at", "ack_due", "received_at")
    assert {k: getattr(row, k) for k in dispatch_state} == {
        k: getattr(before, k) for k in dispatch_state}
    assert [e.kind for e in job_events(dispatch, job_id)] == ["create", "assign", "update_311"]

    # the same row again changes nothing
    assert dispatch.update_311_fields(SYSTEM, job_id, changed) is None
    assert len(job_events(dispatch, job_id)) == count + 1


def test_update_311_fields_is_a_no_op_for_the_row_the_job_came_from(dispatch: Dispatch,
                                                                    world: World) -> None:
    """A job made from a request with a description (Open311) and untidy text, fed again."""
    lat, lon = point_in(dispatch.geo, "75")
    original = NewJob(" Noise - Residential ", "Loud Music/Party\x00", address=" 10 MAIN ST ",
                      lat=lat, lon=lon, fields={"incident_zip": "11207"},
                      description="music every night")
    job_id = dispatch.create_job(SYSTEM, original, source="open311")["job_id"]
    before = job_row(dispatch, job_id)
    assert before.fields == {"incident_zip": "11207", "description": "music every night"}
    assert dispatch.update_311_fields(SYSTEM, job_id, original) is None
    assert job_row(dispatch, job_id) == before
    assert [e.kind for e in job_events(dispatch, job_id)] == ["create"]


# -- hostile text -----------------------------------------------------------------------------


def test_hostile_text_is_stored_as_text(dispatch: Dispatch, world: World, on_75a: int) -> None:
    off = world.actors["off75a"]
    script = "<script>alert(1)</script>"
    dispatch.note(off, on_75a, script)
    assert job_events(dispatch, on_75a)[-1].payload["text"] == script

    dispatch.note(off, on_75a, "a\x00b\x07c\x1b[31m d\u202e\u200b e\r\nline two\tend\x7f ")
    assert job_events(dispatch, on_75a)[-1].payload["text"] == "abc[31m d e\nline two\tend"

    sql = "'); DROP TABLE events; --"
    dispatch.note(off, on_75a, sql)
    assert job_events(dispatch, on_75a)[-1].payload["text"] == sql

    err = refused(dispatch, Invalid, lambda: dispatch.note(off, on_75a, "x" * 3000))
    assert "text" in err.errors
    refused(dispatch, Invalid, lambda: dispatch.note(off, on_75a, "\x00\x01 \x02"))
    dispatch.note(off, on_75a, "y" * 2000)  # exactly the limit is fine

    long_note = "z" * 3000
    work_to_scene(dispatch, world, on_75a)
    refused(dispatch, Invalid,
            lambda: dispatch.close(off, on_75a, 5, "action_taken", note=long_note))
    dispatch.close(off, on_75a, 5, "action_taken", note=f"{script}\x00")
    assert job_events(dispatch, on_75a)[-1].payload["note"] == script


# -- listeners --------------------------------------------------------------------------------


def test_listeners_hear_each_event_after_commit(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    heard: list[list[dict[str, Any]]] = []
    visible: list[bool] = []

    def committed(evs: list[dict[str, Any]]) -> None:
        # read on another connection: the event must already be there for everyone
        with dispatch.engine.connect() as conn:
            seqs = set(conn.execute(sa.select(events.c.seq)).scalars())
        visible.append(all(e["seq"] in seqs for e in evs))

    dispatch.listeners.append(heard.append)
    dispatch.listeners.append(committed)
    job_id = make_job(dispatch, "75")
    dispatch.assign(sgt, job_id, 1, world.unit("75-A"))
    dispatch.acknowledge(off, job_id, 2)
    dispatch.note(off, job_id, "hi")
    dispatch.unit_status(sgt, world.unit("75-C"), 1, "off_duty")
    queued = make_job(dispatch, "75")
    assert [batch[0]["kind"] for batch in heard] == [
        "create", "assign", "acknowledge", "note", "unit_status", "create"]

    # refusals of every kind are heard by nobody
    for exc, call in [
        (TransitionError, lambda: dispatch.assign(sgt, job_id, 3, world.unit("75-B"))),
        (Conflict, lambda: dispatch.set_priority(sgt, job_id, 1, 1)),
        (Forbidden, lambda: dispatch.en_route(world.actors["off75b"], job_id, 3)),
        (Invalid, lambda: dispatch.note(off, job_id, "")),
        (Invalid, lambda: dispatch.assign(sgt, queued, 1, world.unit("75-C"))),
    ]:
        refused(dispatch, exc, call)

    assert len(heard) == 6 and all(len(batch) == 1 for batch in heard)
    assert visible == [True] * 6
    stored = {e.seq: e for e in job_events(dispatch, job_id)}
    for batch in heard[1:4]:
        ev = batch[0]
        row = stored[ev["seq"]]
        assert (row.kind, row.actor, row.before, row.after, row.payload) == (
            ev["kind"], ev["actor"], ev["before"], ev["after"], ev["payload"])


def test_officer_on_a_stale_screen_is_told_who_moved_the_job(world, dispatch) -> None:
    """The job was reassigned away while the officer's phone still showed it."""
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    dispatch.reassign(world.actors["sgt75"], job, 2, world.unit("75-B"))
    with pytest.raises(Conflict) as e:
        dispatch.acknowledge(world.actors["off75a"], job, 2)
    assert "SGT75" in str(e.value) and "reassign" in str(e.value)
    with pytest.raises(Forbidden):  # with the current version it is plainly not theirs
        dispatch.acknowledge(world.actors["off75a"], job, 3)
    with pytest.raises(Forbidden):  # and another precinct never learns who did what
        dispatch.acknowledge(world.actors["off120"], job, 2)


def test_only_citywide_eyes_change_rules(dispatch: Dispatch, world: World) -> None:
    """Rules apply to every precinct: a precinct supervisor cannot rewrite them (defect 6)."""
    rule = Rule("Noise - Residential", "", 1, 5, 10, 20)
    refused(dispatch, Forbidden, lambda: dispatch.set_rule(world.actors["sgt75"], rule))
    assert dispatch.set_rule(world.actors["city"], rule)["kind"] == "set_rule"
    assert dispatch.set_rule(world.actors["admin"], rule)["actor"] == "ADMIN"


def test_a_long_stack_moves_only_the_jobs_that_change_place(dispatch: Dispatch,
                                                             world: World) -> None:
    """Assigning to the end of a unit's stack moves no other job; taking its top job off
    renumbers the rest in one statement (every job of the stack was updated one by one on
    every assignment, under the unit's lock: the soak's stacks grew, and so did each write)."""
    sgt, unit = world.actors["sgt75"], world.unit("75-A")
    stack = [assigned(dispatch, world) for _ in range(8)]
    updates: list[tuple[str, bool]] = []

    def note(conn, cursor, statement, parameters, context, many) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE jobs SET stack_pos"):
            updates.append((statement, many))

    sa.event.listen(dispatch.engine, "before_cursor_execute", note)
    try:
        last = make_job(dispatch, "75")
        dispatch.assign(sgt, last, 1, unit)
        assert updates == []
        dispatch.unassign(sgt, stack[0], version(dispatch, stack[0]), "needed elsewhere")
        assert [many for _, many in updates] == [True]
    finally:
        sa.event.remove(dispatch.engine, "before_cursor_execute", note)
    with dispatch.engine.connect() as conn:
        places = dict(conn.execute(sa.select(jobs.c.id, jobs.c.stack_pos)
                                   .where(jobs.c.unit_id == unit)).all())
    assert places == {job: pos for pos, job in enumerate([*stack[1:], last])}


def test_a_close_reads_its_facts_row_not_its_timeline(dispatch: Dispatch, world: World) -> None:
    """A close's flags (and its review-queue row, and its policies' view of the round of work)
    come from the job's facts row, not from its timeline: the close holds the events' lock
    until it commits, so a fold of a long history there made every writer in the city wait
    (the hour-long soak's jobs went back and forth hundreds of times)."""
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    job_id = assigned(dispatch, world, media=("https://example.test/a.jpg",))
    for _ in range(20):
        dispatch.unassign(sgt, job_id, version(dispatch, job_id), "needed elsewhere")
        dispatch.assign(sgt, job_id, version(dispatch, job_id), world.unit("75-A"))
    work_to_scene(dispatch, world, job_id)
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(dispatch.engine, "before_cursor_execute", note)
    try:
        dispatch.close(off, job_id, version(dispatch, job_id), "action_taken", note="done")
    finally:
        sa.event.remove(dispatch.engine, "before_cursor_execute", note)
    assert seen and not [s for s in seen if "WHERE events.job_id" in s], \
        "the close read the job's timeline"
    flags = {"quick_close", "photos_unviewed"}
    assert queries.job(dispatch.engine, sgt, job_id, dispatch.clock()).card.flags == flags
    [waiting] = _review_rows(dispatch, job_id)
    assert set(waiting.flags) == flags


def _review_rows(d: Dispatch, job_id: int) -> list[Any]:
    from board.storage.schema import review_queue

    with d.engine.connect() as conn:
        return conn.execute(sa.select(review_queue).where(review_queue.c.job_id == job_id)).all()


def test_a_writes_answer_card_does_not_read_a_long_history(dispatch: Dispatch, world: World,
                                                          clock: Clock) -> None:
    """The card a write answers with (queries.job_card) is the job page's card, also after an
    overdue and a reopen, and while the job is open it reads the same rows on its 300th event
    as on its first (the hour-long soak's jobs went back and forth hundreds of times, and each
    answer read the whole timeline)."""
    from board.observability import metrics

    sgt, now = world.actors["sgt75"], dispatch.clock()
    job_id = make_job(dispatch, "75")
    unit = world.unit("75-A")

    def same() -> None:
        assert (queries.job_card(dispatch.engine, sgt, job_id, now)
                == queries.job(dispatch.engine, sgt, job_id, now).card)

    def rows() -> int:
        metrics.count_rows()
        with metrics.reading("card-test"):
            before = metrics.rows_read("card-test")
            queries.job_card(dispatch.engine, sgt, job_id, now)
            return metrics.rows_read("card-test") - before

    same()
    first = rows()
    for _ in range(150):
        dispatch.assign(sgt, job_id, version(dispatch, job_id), unit)
        dispatch.unassign(sgt, job_id, version(dispatch, job_id), "needed elsewhere")
    assert rows() == first
    clock.advance(minutes=600)  # nobody has it: late to be dispatched
    now = clock()
    assert dispatch.mark_overdue(SYSTEM, job_id, "dispatch") is not None
    same()
    assert "overdue" in queries.job_card(dispatch.engine, sgt, job_id, now).flags
    dispatch.admin_close(sgt, job_id, version(dispatch, job_id), "duplicate")
    same()
    dispatch.reopen(sgt, job_id, version(dispatch, job_id), "caller called back")
    same()
    assert {"reopened", "overdue"} <= queries.job_card(dispatch.engine, sgt, job_id, now).flags
