"""Property-based tests (hypothesis) of the lifecycle and the stacks (issue 10, "make trust
checkable"): any sequence of actions by any actors, allowed or not, leaves every job and unit
in a valid state, refusals write nothing, and the event log replays to the same state.

The sequences run through the real use cases on the suite's database (SQLite, or PostgreSQL
with DATABASE_URL); each example works on jobs of its own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from board.domain.access import SYSTEM, Forbidden
from board.domain.lifecycle import (
    ALLOWED,
    OPEN,
    WORKING,
    Status,
    TransitionError,
    allowed_actions,
    transition,
)
from board.storage.schema import events, jobs, units
from board.usecases import Conflict, Invalid, NewJob, NotFound, UnitConflict, queries
from tests.conftest import World, point_in

ACTORS = ("sgt75", "sgt120", "off75a", "off75b", "off120", "city", "cmd", "admin")
# Weighted towards the 75th's people, so sequences reach deep into the lifecycle.
LIKELY = ("sgt75", "sgt75", "sgt75", "off75a", "off75a", "off75a", "off75b", "city", *ACTORS)
UNITS = ("75-A", "75-B", "75-C", "120-A")
ACTIONS = ("assign", "reassign", "unassign", "reorder", "acknowledge", "en_route", "on_scene",
           "close", "admin_close", "hold", "release", "reopen", "set_priority", "route", "note",
           "view_photo", "unit_status")
REFUSALS = (Forbidden, Conflict, TransitionError, Invalid, UnitConflict, NotFound)

@given(st.lists(st.sampled_from(sorted(ALLOWED)), max_size=30))
def test_any_transition_sequence_keeps_a_valid_status(actions: list[str]) -> None:
    """The pure lifecycle: a refused step changes nothing, an allowed one lands in a status,
    and allowed_actions says exactly which steps transition() accepts."""
    status = Status.NEW
    for action in actions:
        allowed = action in allowed_actions(status)
        try:
            after = transition(action, status)
        except TransitionError:
            assert not allowed
            continue
        assert allowed and after in Status
        status = after


def _snapshot(conn: sa.Connection) -> tuple[list[tuple], list[tuple], int]:
    j = [tuple(r) for r in conn.execute(sa.select(jobs).order_by(jobs.c.id))]
    u = [tuple(r) for r in conn.execute(sa.select(units).order_by(units.c.id))]
    n = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    return j, u, n


def _do(world: World, job_ids: list[int], s: tuple[Any, ...]) -> None:
    action, who, j, callsign, n, stale = s
    d, actor = world.dispatch, world.actors[who]
    job_id = job_ids[j]
    with d.engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        unit = conn.execute(sa.select(units).where(units.c.id == world.unit(callsign))).one()
    version = row.version - 1 if stale and row.version > 1 else row.version
    uid = unit.id
    calls = {
        "assign": lambda: d.assign(actor, job_id, version, uid, n),
        "reassign": lambda: d.reassign(actor, job_id, version, uid, n),
        "unassign": lambda: d.unassign(actor, job_id, version, "needed elsewhere"),
        "reorder": lambda: d.reorder(actor, job_id, version, n),
        "acknowledge": lambda: d.acknowledge(actor, job_id, version),
        "en_route": lambda: d.en_route(actor, job_id, version),
        "on_scene": lambda: d.on_scene(actor, job_id, version),
        "close": lambda: d.close(actor, job_id, version,
                                 ("action_taken", "summons_issued", "gone_on_arrival")[n % 3],
                                 n if n % 3 == 1 else None),
        "admin_close": lambda: d.admin_close(actor, job_id, version, "duplicate"),
        "hold": lambda: d.hold(actor, job_id, version, "waiting"),
        "release": lambda: d.release(actor, job_id, version),
        "reopen": lambda: d.reopen(actor, job_id, version, "not done"),
        "set_priority": lambda: d.set_priority(actor, job_id, version, 1 + n),
        "route": lambda: d.route(actor, job_id, version, ("75", "120")[n % 2]),
        "note": lambda: d.note(actor, job_id, "a note"),
        "view_photo": lambda: d.view_photo(actor, job_id, n % 2),
        "unit_status": lambda: d.unit_status(
            actor, uid, unit.version - (1 if stale else 0),
            ("available", "out_of_service", "off_duty")[n % 3], "flat tyre"),
    }
    with d.engine.connect() as conn:
        before = _snapshot(conn)
    try:
        calls[action]()
        event(f"{action} done")
    except REFUSALS as refusal:
        event(f"{action} refused: {type(refusal).__name__}")
        with d.engine.connect() as conn:
            assert _snapshot(conn) == before, f"a refused {action} wrote something"


def _check(world: World) -> None:
    """Valid states, and the events replay to the jobs and units as stored."""
    with world.dispatch.engine.connect() as conn:
        job_rows = conn.execute(sa.select(jobs)).all()
        unit_rows = {u.id: u for u in conn.execute(sa.select(units))}
        evs = conn.execute(sa.select(events).order_by(events.c.seq)).all()
    replay: dict[int, dict[str, Any]] = {}
    versions: dict[int, int] = defaultdict(int)
    unit_status: dict[int, str] = {}
    for e in evs:
        p = e.payload or {}
        if e.kind == "unit_status":
            unit_status[e.unit_id] = p["to"]
            continue
        if e.job_id is None:
            continue
        if e.kind == "create":
            replay[e.job_id] = {"status": "new", "unit_id": None, "priority": p["priority"],
                                "precinct": e.precinct, "disposition": None}
        r = replay[e.job_id]
        if e.after is not None:
            versions[e.job_id] += 1
            r["status"] = e.after
        if e.kind in ("assign", "reassign"):
            r["unit_id"] = e.unit_id
        elif e.kind in ("unassign", "reopen"):
            r["unit_id"] = None
        if e.kind in ("close", "admin_close"):
            r["disposition"] = p["disposition"]
        elif e.kind == "reopen":
            r["disposition"] = None
        elif e.kind == "set_priority":
            r["priority"] = p["to"]
        elif e.kind == "route":
            r["precinct"] = p["precinct"]
    stacks: dict[int, list[int | None]] = defaultdict(list)
    for row in job_rows:
        status = Status(row.status)
        # a working job is on a unit; a queued one is not; a closed one keeps who worked it
        if status in WORKING:
            assert row.unit_id is not None, row
        elif status is not Status.CLOSED:
            assert row.unit_id is None, row
        assert (status is Status.CLOSED) == (row.closed_at is not None) == (
            row.disposition is not None), row
        assert 1 <= row.priority <= 4
        if status in WORKING:
            assert unit_rows[row.unit_id].precinct == row.precinct
            stacks[row.unit_id].append(row.stack_pos)
        assert status in OPEN or status is Status.CLOSED
        assert row.version == versions[row.id], row
        stored = {"status": row.status, "unit_id": row.unit_id, "priority": row.priority,
                  "precinct": row.precinct, "disposition": row.disposition}
        assert replay[row.id] == stored, (row.id, replay[row.id], stored)
    for unit_id, positions in stacks.items():
        assert sorted(positions) == list(range(len(positions))), (unit_id, positions)
    # a write's answer (its card alone) shows what the job page's card shows
    now = world.dispatch.clock()
    for row in job_rows:
        assert (queries.job_card(world.dispatch.engine, SYSTEM, row.id, now)
                == queries.job(world.dispatch.engine, SYSTEM, row.id, now).card), row
    for unit_id, u in unit_rows.items():
        assert u.status == unit_status.get(unit_id, "available")
        assert u.version == 1 + sum(1 for e in evs
                                    if e.kind == "unit_status" and e.unit_id == unit_id)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_actions_by_any_actors_keep_states_valid_and_replayable(world: World,
                                                                   data: st.DataObject) -> None:
    """Up to 25 steps; mostly steps the job's status allows (so sequences reach closes,
    reopens and re-stacking), the rest anything at all."""
    d = world.dispatch
    job_ids = []
    for precinct in ("75", "75", "75", "120"):
        lat, lon = point_in(d.geo, precinct)
        job_ids.append(d.create_job(SYSTEM, NewJob(
            "Noise - Residential", "Loud Music/Party", lat=lat, lon=lon,
            media=("https://311.example/a.jpg", "https://311.example/b.jpg")))["job_id"])
    for _ in range(data.draw(st.integers(1, 25))):
        j = data.draw(st.integers(0, 3))
        with d.engine.connect() as conn:
            status = conn.execute(sa.select(jobs.c.status)
                                  .where(jobs.c.id == job_ids[j])).scalar()
        fitting = [a for a in allowed_actions(status) if a in ACTIONS]
        # draws of a fixed shape (the database's state only decides what they mean)
        pick, fits = data.draw(st.integers(0, 99)), data.draw(st.integers(0, 9)) < 7
        action = fitting[pick % len(fitting)] if fits else ACTIONS[pick % len(ACTIONS)]
        rest = data.draw(st.tuples(st.sampled_from(LIKELY), st.sampled_from(UNITS),
                                   st.integers(0, 3), st.integers(0, 5).map(lambda i: i == 0)))
        _do(world, job_ids, (action, rest[0], j, rest[1], rest[2], rest[3]))
    _check(world)
