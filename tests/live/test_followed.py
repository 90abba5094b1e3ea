"""Views followed by their events' rows (render.Change) equal views read whole, and a catch-up
reads rows in proportion to what its events touched, not to the board."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.domain.lifecycle import TransitionError
from board.live.audiences import Audience
from board.live.render import Change
from board.live.replica import Replica, normal
from board.observability import metrics
from board.storage import db
from board.storage.schema import events, jobs, units
from board.usecases import Conflict, Invalid, NewJob
from tests.conftest import make_job, point_in
from tests.live.test_fragments import assert_same
from tests.live.test_live import BOARD75, FakeSocket, make_hub, run, subscribe, until

FOLLOWED: list[Audience] = [
    ("board", "75", "supervisor", False),
    ("board", "75", "view", True),
    ("board", "120", "supervisor", False),
    ("wall", "75"),
    ("city", frozenset({"*"})),
    ("city", frozenset({"120"})),
]
REGION = {"board": "board-body", "wall": "wall-body", "city": "city-counters"}
EVENT_COLS = (events.c.seq, events.c.job_id, events.c.unit_id, events.c.precinct,
              events.c.kind, events.c.payload, events.c.at, events.c.actor, events.c.after)


def new_events(engine: sa.Engine, after: int) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(*EVENT_COLS).where(events.c.seq > after)
                                              .order_by(events.c.seq)).mappings()]


def state(engine: sa.Engine, job: int) -> Any:
    with db.read(engine) as conn:
        return conn.execute(sa.select(jobs.c.status, jobs.c.version, jobs.c.unit_id,
                                      jobs.c.precinct).where(jobs.c.id == job)).one()


def unit_version(engine: sa.Engine, unit: int) -> tuple[int, str]:
    with db.read(engine) as conn:
        row = conn.execute(sa.select(units.c.version, units.c.status)
                           .where(units.c.id == unit)).one()
    return row.version, row.status


def test_followed_views_equal_views_read_whole(world, dispatch, clock) -> None:
    """Every kind of change, one at a time and in bursts: creates (P1 too, unrouted too,
    backdated to before open jobs at the same place: the desk's memory of those changes),
    the whole lifecycle, holds, priorities, routes, links, reopens, overdue marks, notes, log
    entries, units off and on duty, a unit added, and the clock moving."""
    d, admin = dispatch, world.actors["admin"]
    renderer = make_hub(d).renderer
    lat, lon = point_in(d.geo, "75")
    unit_ids = [world.unit(u) for u in ("75-A", "75-B", "75-C")]
    ids = [make_job(d, "75") for _ in range(6)] + [make_job(d, "120")]
    rnd = random.Random(20)

    def create(step: int) -> None:
        kind = rnd.choice(["noise", "p1", "unrouted", "120", "spread", "backdated"])
        if kind == "backdated":  # earlier than open jobs at its place: their memory changes
            ev = d.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party",
                                             address="1 TEST STREET", lat=lat, lon=lon,
                                             created_at=clock.now - timedelta(
                                                 hours=rnd.randint(1, 48))), source="manual")
        elif kind == "unrouted":
            ev = d.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party",
                                             address=f"{step} NOWHERE"), source="manual")
        elif kind == "spread":
            ev = d.create_job(SYSTEM, NewJob("Illegal Parking", "Blocked Hydrant",
                                             address=f"{step} SOME STREET",
                                             lat=lat + step * 1e-4, lon=lon), source="manual")
        else:
            ids.append(make_job(d, "120" if kind == "120" else "75",
                                *(("Blocked Driveway", "No Access") if kind == "p1" else ())))
            return
        ids.append(ev["job_id"])

    def act(step: int) -> None:
        roll = rnd.random()
        if roll < 0.15:
            create(step)
            return
        if roll < 0.2:
            unit = rnd.choice(unit_ids)
            v, status = unit_version(d.engine, unit)
            d.unit_status(admin, unit, v, "available" if status != "available"
                          else rnd.choice(["off_duty", "out_of_service"]), "a reason")
            return
        if roll < 0.23:
            d.log_entry(admin, "75", f"entry {step} about #{rnd.choice(ids)}")
            return
        if roll < 0.25 and step == 40:
            unit_ids.append(d.add_unit(admin, "75-0", "75")["unit_id"])
            return
        j = rnd.choice(ids)
        s = state(d.engine, j)
        v = s.version
        if roll < 0.3:
            d.note(admin, j, "a note")
        elif roll < 0.35:
            d.mark_overdue(SYSTEM, j, rnd.choice(["ack", "arrive", "close"]))
        elif roll < 0.4 and s.precinct is None:
            d.route(admin, j, v, rnd.choice(["75", "120"]), None)
        elif roll < 0.45:
            d.link(admin, j, v, rnd.choice([None, *ids]))
        elif s.status == "new":
            rnd.choice([lambda: d.assign(admin, j, v, rnd.choice(unit_ids)),
                        lambda: d.hold(admin, j, v, "wait"),
                        lambda: d.admin_close(admin, j, v, "duplicate"),
                        lambda: d.set_priority(admin, j, v, rnd.choice([1, 2, 3, 4]))])()
        elif s.status == "held":
            d.release(admin, j, v)
        elif s.status == "assigned":
            rnd.choice([lambda: d.acknowledge(admin, j, v),
                        lambda: d.reassign(admin, j, v, rnd.choice(unit_ids)),
                        lambda: d.unassign(admin, j, v, "needed elsewhere"),
                        lambda: d.reorder(admin, j, v, 0)])()
        elif s.status == "acknowledged":
            d.en_route(admin, j, v)
        elif s.status == "en_route":
            d.on_scene(admin, j, v)
        elif s.status == "on_scene":
            d.close(admin, j, v, "action_taken")
        elif s.status == "closed":
            d.reopen(admin, j, v, "called back")

    views = {a: renderer.view(a) for a in FOLLOWED}
    # what a socket of each shows: the snapshot, then every delta the hub would send
    pages = {a: Replica(f'<div id="{REGION[a[0]]}"></div>') for a in FOLLOWED}
    for a, page in pages.items():
        page.apply(renderer.body(a, views[a]))

    def show(a: Audience, new: Any) -> None:
        if (delta := renderer.delta(a, views[a], new)) is not None:
            pages[a].apply(delta)
        views[a] = new

    seq = max(e["seq"] for e in new_events(d.engine, 0))
    followed = 0
    for step in range(150):
        with contextlib.suppress(Invalid, Conflict, TransitionError):  # refused: writes nothing
            act(step)
        if step % 25 == 24:
            clock.advance(minutes=25)  # overdue moves with the clock alone
            for a in [a for a in views if a[0] == "city"]:
                show(a, renderer.view(a))  # the hub's timed refresh reads it whole
        if step % 3:
            continue  # some events one at a time, others in bursts
        evs = new_events(d.engine, seq)
        if not evs:
            continue
        seq = evs[-1]["seq"]
        change = Change.of(evs)
        for a, old in list(views.items()):
            show(a, renderer.view(a, None, old, change))
            fresh = renderer.view(a)
            assert_same(renderer.body(a, views[a]), renderer.body(a, fresh))
            region = REGION[a[0]]
            assert_same(pages[a].html(region), normal(renderer.body(a, fresh), region))
            if a[0] == "board":
                assert views[a] == fresh, a
        followed += not change.whole
    assert followed > 30


def rows_per_catch_up(world, dispatch, open_jobs: int) -> float:  # type: ignore[no-untyped-def]
    """Rows a hub's catch-ups read per event over one job's life, on a board of `open_jobs`."""
    sgt, unit = world.actors["sgt75"], world.unit("75-A")
    for _ in range(open_jobs):
        make_job(dispatch, "75")
    metrics.count_rows()

    async def scenario() -> float:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            for audience in (BOARD75, ("board", "75", "view", False), ("wall", "75"),
                             ("city", frozenset({"*"})), ("my", unit)):
                await subscribe(hub, audience, FakeSocket())
            await hub.catch_up()
            before, n = metrics.rows_read("catch_up"), 0
            for k in range(3):
                job = make_job(dispatch, "75")
                await hub.catch_up()  # the first catch-up of a view reads it whole: not counted
                if k == 0:
                    before = metrics.rows_read("catch_up")
                    continue
                steps = [lambda j, v: dispatch.assign(sgt, j, v, unit),
                         lambda j, v: dispatch.acknowledge(sgt, j, v),
                         lambda j, v: dispatch.en_route(sgt, j, v),
                         lambda j, v: dispatch.on_scene(sgt, j, v),
                         lambda j, v: dispatch.close(sgt, j, v, "action_taken")]
                for v, step in enumerate(steps, start=1):
                    step(job, v)
                    await hub.catch_up()
                    n += 1
                n += 1  # the create
            return (metrics.rows_read("catch_up") - before) / n
        finally:
            await hub.stop()

    return run(scenario())


def test_a_catch_up_reads_what_its_events_touched_not_the_board(world, dispatch) -> None:
    small = rows_per_catch_up(world, dispatch, 5)
    large = rows_per_catch_up(world, dispatch, 150)  # the same board with 150 more open jobs
    print(f"\nrows per event: {small:.1f} at 5 open jobs, {large:.1f} at 155")
    assert large <= small * 1.2, (small, large)
    assert large < 40  # a board of 150 open jobs read whole would be 150 rows an event


def test_a_board_followed_through_the_hub_still_gets_every_update(world, dispatch) -> None:
    """A catch-up that follows the view still pushes each change (a check that the counting
    test above is not passing because nothing is read)."""
    sgt = world.actors["sgt75"]

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            s = FakeSocket()
            await subscribe(hub, BOARD75, s)
            for _ in range(3):
                job = await asyncio.to_thread(make_job, dispatch, "75")
                await hub.catch_up()
                await until(lambda job=job: f'id="job-{job}"' in s.texts[-1])
            await asyncio.to_thread(dispatch.assign, sgt, job, 1,
                                                  world.unit("75-B"))
            await hub.catch_up()
            await until(lambda: f'id="unit-{world.unit("75-B")}"' in s.texts[-1])
        finally:
            await hub.stop()

    run(scenario())


def test_the_json_board_is_the_followed_view_while_it_is_current(world, dispatch, clock,
                                                                 monkeypatch) -> None:
    """While a socket of this process follows the reader's board, GET /precincts/75/board
    answers from the hub's view (no board read) with exactly what a read gives. A write the
    hub has not read yet, or a deadline the clock has reached, sends it to the database."""
    from board.live.audiences import board_of
    from board.live.bus import InProcessBus
    from board.live.hub import Hub
    from board.live.render import Renderer
    from board.usecases import queries
    from board.web import api
    from board.web.app import templates
    from board.web.endpoint import Call

    d, sgt = dispatch, world.actors["sgt75"]
    ids = [make_job(d, "75") for _ in range(3)]
    d.assign(sgt, ids[0], 1, world.unit("75-A"))
    reads: list[int] = []
    real = queries.board
    monkeypatch.setattr(queries, "board", lambda *a, **k: reads.append(1) or real(*a, **k))

    def answer(live: Any) -> dict[str, Any]:
        return api.get_board(Call(d, sgt, {"precinct": "75"}, None, live))

    async def scenario() -> None:
        hub = Hub(Renderer(d.engine, d.geo, templates().env, clock=d.clock), InProcessBus(),
                  anti_entropy_s=3600)
        d.listeners[:] = [hub.committed]
        await hub.start()
        try:
            assert board_of(sgt, "75") == BOARD75
            socket = FakeSocket()
            await subscribe(hub, BOARD75, socket)
            fresh = await asyncio.to_thread(answer, None)
            reads.clear()
            assert await asyncio.to_thread(answer, hub) == fresh
            assert reads == []  # the hub's view: no board read
            # a write the hub has not read yet: the database answers, the write in it
            hub.publish_enabled = False
            await asyncio.to_thread(d.assign, sgt, ids[1], 1, world.unit("75-B"))
            got = await asyncio.to_thread(answer, hub)
            assert reads == [1]
            assert any(j["id"] == ids[1] for lane in got["lanes"] for j in lane["jobs"])
            await hub.catch_up()
            reads.clear()
            assert await asyncio.to_thread(answer, hub) == got and reads == []
            # a read that comes before the hub has read a write waits for it, briefly
            await asyncio.to_thread(d.assign, sgt, ids[2], 1, world.unit("75-C"))
            newest = queries.newest_seq(d.engine)
            waiting = asyncio.create_task(
                asyncio.to_thread(hub.view_of, BOARD75, lambda: newest, 5.0))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            await hub.catch_up()
            screen = await waiting
            assert any(c.id == ids[2] for lane in screen.view.lanes for c in lane.jobs)
            assert hub.view_of(("board", "120", "supervisor", False), lambda: 0,
                               5.0) is None  # none follows it
            # a reader whose clock is behind the view's moment: read
            clock.advance(minutes=-1)
            await asyncio.to_thread(answer, hub)
            assert reads == [1]
            clock.advance(minutes=1)
            reads.clear()
            # the clock reaches a deadline of the view: read, as time alone may have moved it
            clock.advance(hours=6)
            late = await asyncio.to_thread(answer, hub)
            cards = [*late["queue"], *(j for lane in late["lanes"] for j in lane["jobs"])]
            assert reads == [1] and any(c["overdue"] for c in cards)
        finally:
            await hub.stop()

    run(scenario())


def test_the_json_board_converts_only_the_cards_that_changed(world, dispatch,
                                                             monkeypatch) -> None:
    """A followed board's JSON is kept by card from one read to the next: after one
    assignment on a board of twenty jobs, the next read converts that job's card alone, and
    answers what a read of the database answers."""
    from board.web import api
    from board.web.endpoint import Call

    d, sgt = dispatch, world.actors["sgt75"]
    ids = [make_job(d, "75") for _ in range(20)]
    converted: list[int] = []
    card_json = api.card_json
    monkeypatch.setattr(api, "card_json", lambda c: converted.append(c.id) or card_json(c))

    def answer(live: Any) -> dict[str, Any]:
        return api.get_board(Call(d, sgt, {"precinct": "75"}, None, live))

    async def scenario() -> None:
        hub = make_hub(d)
        hub.renderer.clock = d.clock  # the readers' moment: the view is current for them
        await hub.start()
        try:
            await subscribe(hub, BOARD75, FakeSocket())
            await asyncio.to_thread(answer, hub)
            assert sorted(converted) == sorted(ids)  # the first read converts every card
            await asyncio.to_thread(d.assign, sgt, ids[7], 1, world.unit("75-A"))
            await hub.catch_up()
            converted.clear()
            got = await asyncio.to_thread(answer, hub)
            assert converted == [ids[7]]
            assert got == await asyncio.to_thread(answer, None)  # as the database says
            assert [j["id"] for lane in got["lanes"] for j in lane["jobs"]] == [ids[7]]
        finally:
            await hub.stop()

    run(scenario())
