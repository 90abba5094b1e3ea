"""Optimistic concurrency for real: supervisors in separate threads drag the same job at the same
moment, through one Dispatch whose engine pools connections the way production does. Exactly one
write wins; every other gets a Conflict; the events table holds the winner's move only."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.domain.access import SYSTEM, Actor
from board.storage.schema import events, jobs, units
from board.usecases import Conflict, Dispatch
from tests.conftest import World, make_job

JOIN_TIMEOUT = 60


@dataclass
class Outcome:
    actor: Actor
    unit_id: int
    event: dict[str, Any] | None = None
    error: BaseException | None = None


def race(dispatch: Dispatch, job_id: int, contenders: list[tuple[Actor, int]],
         version: int = 1) -> list[Outcome]:
    """Every contender assigns the job to its unit at once, from its own thread."""
    barrier = threading.Barrier(len(contenders))
    outcomes = [Outcome(actor, unit_id) for actor, unit_id in contenders]

    def drag(outcome: Outcome) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            outcome.event = dispatch.assign(outcome.actor, job_id, version, outcome.unit_id)
        except BaseException as e:  # noqa: B036 - reported back to the test thread
            outcome.error = e

    threads = [threading.Thread(target=drag, args=(o,), name=f"drag-{o.actor.name}",
                                daemon=True) for o in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a dragging thread hung"
    return outcomes


def check_one_winner(dispatch: Dispatch, job_id: int, outcomes: list[Outcome],
                     heard: list[list[dict[str, Any]]]) -> Outcome:
    winners = [o for o in outcomes if o.error is None]
    losers = [o for o in outcomes if o.error is not None]
    unexpected = [o.error for o in losers if not isinstance(o.error, Conflict)]
    assert not unexpected, f"losers must get Conflict, got {unexpected!r}"
    assert len(winners) == 1, f"{len(winners)} winners"
    winner = winners[0]
    assert winner.event is not None and winner.event["actor"] == winner.actor.name

    for loser in losers:
        conflict = loser.error
        assert isinstance(conflict, Conflict)
        assert (conflict.job_id, conflict.expected, conflict.current) == (job_id, 1, 2)
        # the loser is told who beat them to it
        assert (conflict.by, conflict.kind) == (winner.actor.name, "assign")
        assert winner.actor.name in str(conflict)

    with dispatch.engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        evs = conn.execute(sa.select(events).where(events.c.job_id == job_id)
                           .order_by(events.c.seq)).all()
    assert (row.status, row.version, row.unit_id) == ("assigned", 2, winner.unit_id)
    assigns = [e for e in evs if e.kind == "assign"]
    assert len(assigns) == 1
    assert (assigns[0].actor, assigns[0].unit_id, assigns[0].seq) == (
        winner.actor.name, winner.unit_id, winner.event["seq"])
    assert [e.kind for e in evs] == ["create", "assign"]
    # listeners heard the winner's event, and nothing from the losers
    told = [ev for batch in heard for ev in batch if ev["job_id"] == job_id]
    assert [ev["kind"] for ev in told] == ["create", "assign"]
    assert told[1]["seq"] == winner.event["seq"]
    return winner


def stack_is_numbered(dispatch: Dispatch, unit_id: int) -> None:
    with dispatch.engine.connect() as conn:
        positions = conn.execute(
            sa.select(jobs.c.stack_pos).where(
                jobs.c.unit_id == unit_id,
                jobs.c.status.in_(["assigned", "acknowledged", "en_route", "on_scene"]))
            .order_by(jobs.c.stack_pos)).scalars().all()
    assert positions == list(range(len(positions)))


@pytest.mark.parametrize("attempt", range(30))
def test_two_supervisors_drag_the_same_job(dispatch: Dispatch, world: World,
                                           attempt: int) -> None:
    heard: list[list[dict[str, Any]]] = []
    dispatch.listeners.append(heard.append)
    a, b = world.unit("75-A"), world.unit("75-B")
    # some rounds start with jobs already stacked on the units, so the race also moves them
    for _ in range(attempt % 3):
        for unit in (a, b):
            dispatch.assign(world.actors["sgt75"], make_job(dispatch, "75"), 1, unit)
    job_id = make_job(dispatch, "75")
    contenders = [(world.actors["sgt75"], a), (world.actors["city"], b)]
    if attempt % 2:
        contenders.reverse()
    outcomes = race(dispatch, job_id, contenders)
    winner = check_one_winner(dispatch, job_id, outcomes, heard)
    stack_is_numbered(dispatch, a)
    stack_is_numbered(dispatch, b)
    loser_unit = b if winner.unit_id == a else a
    with dispatch.engine.connect() as conn:
        on_loser = conn.execute(sa.select(jobs.c.id).where(jobs.c.unit_id == loser_unit,
                                                           jobs.c.id == job_id)).all()
    assert on_loser == []


def test_two_supervisors_keep_dragging_fresh_jobs(dispatch: Dispatch, world: World) -> None:
    """Thirty races in a row on one board: stacks grow and stay numbered 0..n-1."""
    heard: list[list[dict[str, Any]]] = []
    dispatch.listeners.append(heard.append)
    a, b = world.unit("75-A"), world.unit("75-B")
    wins = {a: 0, b: 0}
    for attempt in range(30):
        job_id = make_job(dispatch, "75")
        contenders = [(world.actors["sgt75"], a), (world.actors["city"], b)]
        if attempt % 2:
            contenders.reverse()
        winner = check_one_winner(dispatch, job_id, race(dispatch, job_id, contenders), heard)
        wins[winner.unit_id] += 1
    assert sum(wins.values()) == 30
    stack_is_numbered(dispatch, a)
    stack_is_numbered(dispatch, b)
    with dispatch.engine.connect() as conn:
        assigns = conn.execute(sa.select(sa.func.count()).select_from(events)
                               .where(events.c.kind == "assign")).scalar()
    assert assigns == 30


@pytest.fixture
def eight(dispatch: Dispatch, world: World) -> list[tuple[Actor, int]]:
    """Eight supervisors of the 75th and five more units: some of them share a unit."""
    for callsign in ("75-D", "75-E", "75-F", "75-G", "75-H"):
        world.units[callsign] = dispatch.add_unit(SYSTEM, callsign, "75")["unit_id"]
    callsigns = ["75-A", "75-B", "75-C", "75-D", "75-E", "75-A", "75-B", "75-F"]
    people = []
    for n, callsign in enumerate(callsigns):
        uid = auth.add_user(dispatch.engine, f"racer{n}", "correct horse 311", "supervisor",
                            "75", display_name=f"Sgt Racer {n}")
        actor = auth.user_actor(dispatch.engine, uid)
        assert actor is not None
        people.append((actor, world.unit(callsign)))
    return people


@pytest.mark.parametrize("attempt", range(5))
def test_eight_supervisors_race_for_one_job(dispatch: Dispatch, world: World,
                                            eight: list[tuple[Actor, int]],
                                            attempt: int) -> None:
    heard: list[list[dict[str, Any]]] = []
    dispatch.listeners.append(heard.append)
    for _ in range(attempt):
        for _actor, unit in eight[:4]:
            dispatch.assign(world.actors["sgt75"], make_job(dispatch, "75"), 1, unit)
    job_id = make_job(dispatch, "75")
    contenders = eight[attempt:] + eight[:attempt]
    outcomes = race(dispatch, job_id, contenders)
    check_one_winner(dispatch, job_id, outcomes, heard)
    assert sum(isinstance(o.error, Conflict) for o in outcomes) == 7
    for unit in {u for _a, u in eight}:
        stack_is_numbered(dispatch, unit)


def test_a_race_does_not_block_other_jobs(dispatch: Dispatch, world: World,
                                          eight: list[tuple[Actor, int]]) -> None:
    """Eight supervisors, eight different jobs, at once: everyone wins their own."""
    job_ids = [make_job(dispatch, "75") for _ in eight]
    barrier = threading.Barrier(len(eight))
    errors: list[BaseException] = []

    def drag(actor: Actor, unit_id: int, job_id: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            dispatch.assign(actor, job_id, 1, unit_id)
        except BaseException as e:  # noqa: B036 - reported back to the test thread
            errors.append(e)

    threads = [threading.Thread(target=drag, args=(actor, unit, job), daemon=True)
               for (actor, unit), job in zip(eight, job_ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with dispatch.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.id, jobs.c.unit_id, jobs.c.version)
                            .where(jobs.c.id.in_(job_ids)).order_by(jobs.c.id)).all()
    assert [(r.unit_id, r.version) for r in rows] == [(u, 2) for _a, u in eight]
    for unit in {u for _a, u in eight}:
        stack_is_numbered(dispatch, unit)


def test_parallel_unit_status_requests_one_wins(world: World, live_server) -> None:  # type: ignore[no-untyped-def]
    """20 parallel POST /units/<id>/status against version 1 over real HTTP: one 200, the rest
    409 naming the winner; one event, version 2 (issue 10, defect 3)."""
    import httpx

    token = auth.create_token(world.dispatch.engine, "sgt75", "race")
    unit = world.unit("75-C")
    barrier = threading.Barrier(20)
    answers: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=live_server.url, timeout=JOIN_TIMEOUT) as http:
            barrier.wait(timeout=JOIN_TIMEOUT)
            answers.append(http.post(f"/api/v1/units/{unit}/status", json={
                "version": 1, "status": "out_of_service", "reason": "race"},
                headers={"Authorization": f"Bearer {token}"}))

    threads = [threading.Thread(target=post, daemon=True) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 19, codes
    for r in answers:
        if r.status_code == 409:
            assert (r.json()["by"], r.json()["unit_id"], r.json()["current_version"]) == (
                "SGT75", unit, 2)
    with world.dispatch.engine.connect() as conn:
        version = conn.execute(sa.select(units.c.version).where(units.c.id == unit)).scalar()
        written = conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.unit_id == unit, events.c.kind == "unit_status")).scalar()
    assert (version, written) == (2, 1)
