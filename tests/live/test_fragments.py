"""Per-change fragments: small, ordered, nothing lost, and a page that follows them ends up equal
to a fresh render — also for a socket that (re)connects in the middle of it all."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import random

import sqlalchemy as sa

from board.live.fragments import stable
from board.live.replica import Replica
from board.storage import db
from board.storage.schema import jobs
from board.usecases import Invalid, queries
from tests.conftest import make_job
from tests.live.test_live import BOARD75, FakeSocket, make_hub, run, subscribe, until


def assert_same(got: str, want: str) -> None:
    """Equal pages; else the lines that differ (one element per line), not a wall of HTML."""
    if got != want:
        split = lambda h: h.replace("><", ">\n<").splitlines()  # noqa: E731
        diff = difflib.unified_diff(split(want), split(got), "fresh render", "followed", n=2)
        raise AssertionError("\n".join(diff))


def test_stable_keeps_a_longest_increasing_run() -> None:
    assert stable([]) == set()
    assert stable([0, 1, 2]) == {0, 1, 2}
    order = [3, 0, 1, 4, 2]
    keep = stable(order)
    assert len(keep) == 3 and [order[i] for i in sorted(keep)] == sorted(order[i] for i in keep)


def version(dispatch, job: int) -> int:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job)).scalar_one()


def follow(texts: list[str], root: str = "board-body") -> Replica:
    page = Replica(f'<div id="{root}"></div><span id="live-beat"></span>')
    for t in texts:
        page.apply(t)
    return page


def fresh(hub) -> str:  # type: ignore[no-untyped-def]
    return Replica(hub.renderer.board("75", "supervisor", False)).html("board-body")


WALL75 = ("wall", "75")
VIEW75 = ("board", "75", "view", False)  # a commander's: no forms
# Each screen followed by fragments: its audience, its root element, a fresh render of it.
SCREENS = {
    "board": (BOARD75, "board-body", fresh),
    "commander": (VIEW75, "board-body",
                  lambda hub: Replica(hub.renderer.board("75", "view", False)).html("board-body")),
    "wall": (WALL75, "wall-body", lambda hub: Replica(hub.renderer.wall("75")).html("wall-body")),
}


def test_boards_and_walls_that_follow_the_fragments_equal_a_fresh_render(world, dispatch,
                                                                         monkeypatch) -> None:
    """Every kind of change, some one at a time and some in bursts; sockets join midway. The
    supervisors' board, a commander's and the wall of the 75th follow one view of its board,
    worked out once a catch-up, each with its own fragments."""
    sgt = world.actors["sgt75"]
    a, b, c = world.unit("75-A"), world.unit("75-B"), world.unit("75-C")
    ids = [make_job(dispatch, "75") for _ in range(8)]
    rnd = random.Random(75)
    worked_out: list[dict] = []  # each call's catch-up, by its memory of places (one each)
    board_after = queries.board_after

    def counted(*args, **kw):  # type: ignore[no-untyped-def]
        worked_out.append(args[-1])
        return board_after(*args, **kw)

    monkeypatch.setattr(queries, "board_after", counted)

    def act(step: int) -> None:
        with contextlib.suppress(Invalid):  # a refused change writes nothing: fine here
            change(step)

    def change(step: int) -> None:
        j = ids[step % len(ids)]
        v = version(dispatch, j)
        with db.read(dispatch.engine) as conn:  # closed at once: an open read blocks TRUNCATE
            status = conn.execute(
                sa.select(jobs.c.status, jobs.c.unit_id).where(jobs.c.id == j)).one()
        if status.status == "new":
            rnd.choice([lambda: dispatch.assign(sgt, j, v, rnd.choice([a, b, c])),
                        lambda: dispatch.hold(sgt, j, v, "wait"),
                        lambda: dispatch.admin_close(sgt, j, v, "duplicate"),
                        lambda: dispatch.set_priority(sgt, j, v, rnd.choice([1, 2, 3, 4]))])()
        elif status.status == "held":
            dispatch.release(sgt, j, v)
        elif status.status == "assigned":
            rnd.choice([lambda: dispatch.reassign(sgt, j, v, a if status.unit_id != a else b),
                        lambda: dispatch.unassign(sgt, j, v, "needed elsewhere"),
                        lambda: dispatch.reorder(sgt, j, v, 0)])()
        elif status.status == "closed":
            dispatch.reopen(sgt, j, v, "caller called back")

    def check(socket: FakeSocket, name: str, hub) -> None:  # type: ignore[no-untyped-def]
        _, root, render = SCREENS[name]
        assert_same(follow(socket.texts, root).html(root), render(hub))

    async def scenario() -> None:
        hub = make_hub(dispatch, queue_size=256)
        await hub.start()
        try:
            early = [FakeSocket() for _ in range(3)]
            for s in early:
                await subscribe(hub, BOARD75, s)
            others = {name: FakeSocket() for name in ("commander", "wall")}
            for name, s in others.items():
                await subscribe(hub, SCREENS[name][0], s)
            late = {name: FakeSocket() for name in SCREENS}
            caught = 0
            for step in range(60):
                await asyncio.to_thread(act, step)
                # some events one at a time, others in bursts (the hub also reads on its own)
                if step % 3 == 0:
                    caught += bool(await hub.catch_up())
                    # right after each update, not only at the end: a later whole swap of a
                    # part must not hide a wrong update before it
                    mark = f'data-seq="{hub.shown_seq}"'
                    watched = {"board": early[0], **others}
                    await until(lambda m=mark, w=watched: all(
                        s.texts and m in s.texts[-1] for s in w.values()))
                    for name, s in watched.items():
                        check(s, name, hub)
                if step == 20:               # reconnects: snapshot, then the same updates
                    for name, s in late.items():
                        await subscribe(hub, SCREENS[name][0], s)
                if step == 35:
                    unit = world.unit("75-C")
                    with dispatch.engine.connect() as conn:
                        from board.storage.schema import units
                        uv = conn.execute(sa.select(units.c.version)
                                          .where(units.c.id == unit)).scalar_one()
                    await asyncio.to_thread(dispatch.unit_status, sgt, unit, uv,
                                            "out_of_service", "flat tyre")
            # one view of the 75th's board a catch-up, whatever number of screens show it
            assert len(worked_out) >= caught
            assert len(worked_out) == len({id(memo) for memo in worked_out})
            new = await asyncio.to_thread(make_job, dispatch, "75")
            ids.append(new)
            await hub.catch_up()
            everyone = [*early, *others.values(), *late.values()]
            await until(lambda: all(f'id="job-{new}"' in s.texts[-1] for s in everyone))
            # Every socket of an audience got the very same messages, in the same order.
            n = len(late["board"].texts) - 1
            assert all(s.texts[-n:] == late["board"].texts[1:] for s in early)
            assert all(s.texts == early[0].texts for s in early)
            seqs = [int(t.rsplit('data-seq="', 1)[1].split('"')[0]) for t in early[0].texts[1:]]
            assert seqs == sorted(seqs)
            for name, s in [("board", early[0]), *others.items(), *late.items()]:
                check(s, name, hub)
            for name, s in [("board", early[0]), *others.items()]:
                _, root, render = SCREENS[name]
                truth = render(hub)
                assert f'id="job-{new}"' in truth
                # Updates, not the whole again: only the snapshot holds the root element.
                assert all(f'id="{root}"' not in t for t in s.texts[1:])
                # The comparison is strict: lose one update or swap two and the page is wrong.
                texts = s.texts
                assert follow(texts[:-1], root).html(root) != truth  # the new job never came
                i = next(i for i in range(len(texts) - 1, 1, -1)
                         if follow(texts[:i - 1] + [texts[i], texts[i - 1]] + texts[i + 1:],
                                   root).html(root) != truth)
                assert i > 1
        finally:
            await hub.stop()

    run(scenario())


def test_a_board_read_while_a_job_closes_shows_it_once(world, dispatch) -> None:
    """The board is read in several statements; a close committed between them must not show
    the job both open and closed (on PostgreSQL each statement of a READ COMMITTED transaction
    saw its own snapshot: one id twice in a view, and a page following the fragments broke)."""
    sgt = world.actors["sgt75"]
    job = make_job(dispatch, "75")
    closed_once: list[bool] = []

    def close_between(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "closed_at DESC" in statement and not closed_once:  # the recently closed read
            closed_once.append(True)
            dispatch.admin_close(sgt, job, 1, "duplicate")

    sa.event.listen(dispatch.engine, "before_cursor_execute", close_between)
    try:
        view = queries.board(dispatch.engine, sgt, "75", dispatch.clock())
    finally:
        sa.event.remove(dispatch.engine, "before_cursor_execute", close_between)
    assert closed_once  # the close did land in the middle of the read
    shown = [c.id for c in [*view.queue, *view.closed,
                            *(c for lane in view.lanes for c in lane.jobs)]]
    assert shown.count(job) == 1 and len(shown) == len(set(shown))
    assert [c.id for c in view.queue] == [job]  # the snapshot the read began with


def test_one_assignment_pushes_the_card_lanes_and_counters_only(world, dispatch) -> None:
    """Sizes do not grow with jobs × units: one assignment on a board of 40 jobs stays small."""
    sgt = world.actors["sgt75"]
    ids = [make_job(dispatch, "75") for _ in range(40)]

    async def scenario() -> tuple[int, int]:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            s = FakeSocket()
            await subscribe(hub, BOARD75, s)
            await until(lambda: len(s.texts) == 1)
            await asyncio.to_thread(dispatch.assign, sgt, ids[5], 1, world.unit("75-A"))
            await until(lambda: len(s.texts) == 2)
            delta = s.texts[1]
            assert f'id="job-{ids[5]}" hx-swap-oob="delete"' in delta
            assert f'id="unit-{world.unit("75-A")}"' in delta and 'id="counters"' in delta
            assert f'id="job-{ids[6]}"' not in delta  # untouched cards stay where they are
            # "Assign to…" lists units once per page, not once per card.
            assert s.texts[0].count('data-unit-id="' + str(world.unit("75-B")) + '"') <= 3
            assert follow(s.texts).html("board-body") == fresh(hub)
            return len(s.texts[0]), len(delta.encode())
        finally:
            await hub.stop()

    snapshot, delta = run(scenario())
    assert delta < 4096 and delta * 8 < snapshot
    print(f"\nsnapshot {snapshot} B, one assignment {delta} B")


def test_a_job_added_to_a_long_stack_sends_its_card_not_the_lane(world, dispatch) -> None:
    """A unit working thirty jobs: one more assigned, one moved to the top, one sent back —
    each sends the lane's head and the cards that moved, never the thirty (the hour-long soak's
    messages grew with the lanes)."""
    sgt = world.actors["sgt75"]
    a = world.unit("75-A")
    ids = [make_job(dispatch, "75") for _ in range(32)]
    for j in ids[:30]:
        dispatch.assign(sgt, j, version(dispatch, j), a)

    async def scenario() -> list[str]:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            s = FakeSocket()
            await subscribe(hub, BOARD75, s)
            steps = [lambda: dispatch.assign(sgt, ids[30], version(dispatch, ids[30]), a),
                     lambda: dispatch.reorder(sgt, ids[20], version(dispatch, ids[20]), 0),
                     lambda: dispatch.unassign(sgt, ids[3], version(dispatch, ids[3]), "back")]
            for n, step in enumerate(steps, start=2):
                await asyncio.to_thread(step)
                await until(lambda n=n: len(s.texts) == n)
                assert_same(follow(s.texts).html("board-body"), fresh(hub))
            return s.texts
        finally:
            await hub.stop()

    texts = run(scenario())
    for delta in texts[1:]:
        assert f'id="unit-{a}"' not in delta            # not the whole lane
        assert delta.count('class="job-card') <= 2     # the card that moved (and nothing else)
        assert len(delta.encode()) * 10 < len(texts[0].encode())
    assert f'id="unit-head-{a}"' in texts[1] and f'id="unit-head-{a}"' in texts[3]
    assert f'beforeend:#stack-{a}' in texts[1] or 'beforebegin:#job-' in texts[1]


def test_the_same_frame_goes_straight_to_each_connection(world, dispatch, app,
                                                        live_server) -> None:
    """Without permessage-deflate, the hub writes its one encoded frame to every connection;
    the pages those sockets build still equal a fresh page. With it, the ASGI path."""
    from websockets.sync.client import connect

    from tests.live.test_live import web_login

    sgt = web_login(live_server.url, "sgt75")
    cookie = "; ".join(f"{k}={v}" for k, v in sgt.cookies.items())
    url = live_server.url.replace("http://", "ws://") + "/ws/board/75"
    headers = {"Cookie": cookie, "Origin": live_server.url}
    job = make_job(dispatch, "75")
    with connect(url, additional_headers=headers, compression=None) as plain, \
            connect(url, additional_headers=headers) as deflated:
        pages = [Replica(), Replica()]
        for ws, page in zip((plain, deflated), pages, strict=True):
            page.apply(ws.recv(timeout=5))
        dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
        for ws, page in zip((plain, deflated), pages, strict=True):
            while f'id="unit-{world.unit("75-A")}"' not in (text := ws.recv(timeout=5)):
                page.apply(text)
            page.apply(text)
        subs = sorted(app.state.hub.audiences[BOARD75], key=lambda s: -s.direct_sent)
        assert [s.direct_sent for s in subs][0] >= 2 and subs[1].direct_sent == 0
        truth = Replica(sgt.get("/board/75").text).html("board-body")
        assert pages[0].html("board-body") == truth == pages[1].html("board-body")
    sgt.close()


def test_a_walls_closes_this_tour_start_again_at_the_next_tour(world, dispatch, clock) -> None:
    """At a new tour only the wall's "closed this tour" changes (no job is open): its counters
    are still sent, and the followed wall equals a fresh one."""
    sgt = world.actors["sgt75"]
    job = make_job(dispatch, "75")

    async def scenario() -> None:
        hub = make_hub(dispatch, clock)
        await hub.start()
        try:
            sock = FakeSocket()
            await subscribe(hub, WALL75, sock)
            await asyncio.to_thread(dispatch.admin_close, sgt, job, version(dispatch, job),
                                    "duplicate")
            await hub.catch_up()
            await until(lambda: len(sock.texts) == 2)
            assert "<b>1</b> closed this tour" in sock.texts[1]
            clock.advance(hours=7)  # 17:00 in New York: the 23:00 tour has begun
            await hub.refresh(lambda a: True, only_if_changed=True)
            await until(lambda: len(sock.texts) == 3)
            assert 'id="wall-counters"' in sock.texts[2] and 'id="queue"' not in sock.texts[2]
            assert_same(follow(sock.texts, "wall-body").html("wall-body"),
                        SCREENS["wall"][2](hub))
            assert "<b>0</b> closed this tour" in sock.texts[2]
        finally:
            await hub.stop()

    run(scenario())
