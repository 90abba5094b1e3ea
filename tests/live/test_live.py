"""The live hub: render once per audience, bounded queues, scope at subscription, anti-entropy.

The hub is driven directly with fake sockets (no browser, no network) for the properties of
fan-out; the WebSocket routes are driven over a real socket (uvicorn) with the `websockets`
client, every wait bounded.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.live import hub as live
from board.live import subscriber
from board.live.audiences import Audience
from board.live.bus import InProcessBus
from board.live.hub import Hub
from board.live.render import TOUR_TZ, Renderer, tour_start
from board.live.replica import Replica, normal
from board.live.subscriber import CLOSE_SLOW, Subscriber
from board.storage.schema import events
from board.web.app import templates
from board.web.socket_protocol import LeanSocketProtocol
from tests.conftest import PASSWORD, closed_after_test, make_job, run

# -- fakes and helpers ------------------------------------------------------------------------


class FakeSocket:
    """Records what it is sent; `stuck` never finishes a send (a client that stopped reading)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.texts: list[str] = []
        self.closed: int | None = None
        self._never = asyncio.Event()

    async def send_text(self, data: str) -> None:
        if self.stuck:
            await self._never.wait()
        self.texts.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = code


def make_hub(dispatch, clock=None, **kw: Any) -> Hub:  # type: ignore[no-untyped-def]
    """A hub wired like create_app wires it: the use cases' listener nudges it after commit.
    Its screens tell time by `clock` (a test's), or the real one."""
    renderer = Renderer(dispatch.engine, dispatch.geo, templates().env,
                        clock=clock or (lambda: datetime.now(UTC)))
    hub = Hub(renderer, InProcessBus(), **kw)
    dispatch.listeners[:] = [hub.committed]
    return hub


async def until(pred, timeout: float = 5.0, step: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(step)


async def subscribe(hub: Hub, audience: Audience, socket: FakeSocket) -> Subscriber:
    sub = Subscriber(socket, audience, hub.queue_size)
    await hub.join(sub)
    return sub


BOARD75 = ("board", "75", "supervisor", False)
BOARD120 = ("board", "120", "supervisor", False)


# -- the hub, driven directly -----------------------------------------------------------------


def test_render_once_send_many(world, dispatch) -> None:
    """One event, 500 sockets on one board: one rendering, the same string on every socket."""
    job = make_job(dispatch, "75")
    unit = world.unit("75-A")

    async def scenario() -> tuple[float, int]:
        hub = make_hub(dispatch, queue_size=8)
        await hub.start()
        try:
            socks = [FakeSocket() for _ in range(500)]
            for s in socks:
                await subscribe(hub, BOARD75, s)
            assert hub.renders["board"] == 1  # snapshots come from the cache while current
            await until(lambda: all(len(s.texts) == 1 for s in socks))
            before = hub.renders["board"]
            await asyncio.to_thread(dispatch.assign, world.actors["sgt75"], job, 1, unit)
            t0 = time.perf_counter()
            await until(lambda: all(len(s.texts) == 2 for s in socks))
            elapsed = time.perf_counter() - t0
            assert hub.renders["board"] - before == 1
            first = socks[0].texts[1]
            assert all(s.texts[1] is first for s in socks)  # the very same object
            assert f'id="unit-{unit}"' in first and f'id="job-{job}"' in first
            return elapsed, hub.renders["board"] - before
        finally:
            await hub.stop()

    elapsed, renders = run(scenario())
    print(f"\nfan-out: 1 event → 500 sockets: {renders} render, all delivered in "
          f"{elapsed * 1000:.1f} ms (incl. commit→hub wake)")


def test_slow_consumer_is_cut_off_others_keep_receiving(world, dispatch) -> None:
    jobs_ = [make_job(dispatch, "75") for _ in range(12)]
    sgt = world.actors["sgt75"]

    async def scenario() -> None:
        hub = make_hub(dispatch, queue_size=4)
        await hub.start()
        try:
            fast = [FakeSocket() for _ in range(3)]
            slow = FakeSocket(stuck=True)
            subs = [await subscribe(hub, BOARD75, s) for s in fast]
            slow_sub = await subscribe(hub, BOARD75, slow)
            for i, job in enumerate(jobs_):
                await asyncio.to_thread(dispatch.hold, sgt, job, 1, f"wait {i}")
                await hub.catch_up()
            await until(lambda: all(len(s.texts) >= 1 + len(jobs_) for s in fast))
            await until(lambda: slow.closed is not None)
            assert slow.closed == CLOSE_SLOW
            assert slow_sub.done and slow_sub not in hub.audiences[BOARD75]
            assert hub.kicked == 1
            assert not any(s.done for s in subs)
            # Every healthy socket, following its fragments, shows every job held.
            board = Replica()
            for text in fast[0].texts:
                board.apply(text)
            assert board.html("board-body").count('data-status="held"') == len(jobs_)
            assert len(slow_sub.waiting or ()) <= 4  # memory stayed bounded
        finally:
            await hub.stop()

    run(scenario())


def test_a_precinct_socket_never_gets_another_precincts_fragment(world, dispatch) -> None:
    j75 = make_job(dispatch, "75")
    j120 = make_job(dispatch, "120")

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            s75, s120, w120, my120 = FakeSocket(), FakeSocket(), FakeSocket(), FakeSocket()
            await subscribe(hub, BOARD75, s75)
            await subscribe(hub, BOARD120, s120)
            await subscribe(hub, ("wall", "120"), w120)
            await subscribe(hub, ("my", world.unit("120-A")), my120)
            await until(lambda: all(s.texts for s in (s75, s120, w120, my120)))
            sgt75 = world.actors["sgt75"]
            await asyncio.to_thread(dispatch.assign, sgt75, j75, 1, world.unit("75-A"))
            await asyncio.to_thread(dispatch.note, sgt75, j75, "secret 75 note")
            await until(lambda: len(s75.texts) >= 2)
            await hub.catch_up()
            assert len(s120.texts) == 1 and len(w120.texts) == 1 and len(my120.texts) == 1
            await asyncio.to_thread(dispatch.hold, world.actors["sgt120"], j120, 1, "wait")
            await until(lambda: len(s120.texts) >= 2 and len(w120.texts) >= 2)
            for text in [*s120.texts, *w120.texts, *my120.texts]:
                assert f'id="job-{j75}"' not in text
                assert 'data-precinct="75"' not in text
                assert "75-A" not in text
        finally:
            await hub.stop()

    run(scenario())


def test_lost_publish_is_repaired_by_anti_entropy(world, dispatch) -> None:
    """The commit happened, the nudge never did (crash between commit and publish)."""
    job = make_job(dispatch, "75")
    unit = world.unit("75-B")

    async def scenario() -> float:
        hub = make_hub(dispatch, anti_entropy_s=2.0)
        await hub.start()
        try:
            sock = FakeSocket()
            await subscribe(hub, BOARD75, sock)
            await until(lambda: len(sock.texts) == 1)
            hub.publish_enabled = False  # the listener is deaf: nothing is published
            t0 = time.monotonic()
            await asyncio.to_thread(dispatch.assign, world.actors["sgt75"], job, 1, unit)
            await until(lambda: len(sock.texts) == 2, timeout=5)
            took = time.monotonic() - t0
            assert f'id="unit-{unit}"' in sock.texts[1]
            lane = sock.texts[1].split(f'id="unit-{unit}"')[1].split("</section>")[0]
            assert f'id="job-{job}"' in lane
            return took
        finally:
            await hub.stop()

    took = run(scenario())
    assert took < 4.0
    print(f"\nanti-entropy repaired a lost publish in {took:.2f} s")


class HeldRead:
    """Once armed, holds the hub's next view read (a catch-up's, a refresh's) in its worker
    thread until `release`: what the loop does meanwhile is the test."""

    def __init__(self, hub: Hub) -> None:
        self.hub, self.view = hub, hub.renderer.view
        self.base = hub.last_seq
        self.armed = False
        self.reading, self.released = threading.Event(), threading.Event()
        hub.renderer.view = self._view  # type: ignore[method-assign]

    def arm(self) -> None:
        self.armed = True

    def _view(self, audience: Audience, *args: Any) -> Any:
        if self.armed and not self.reading.is_set():
            self.reading.set()
            self.released.wait(10)
        return self.view(audience, *args)

    def release(self) -> None:
        self.released.set()


def test_a_skipped_sequence_number_is_picked_up_when_it_commits(world, dispatch) -> None:
    """On PostgreSQL a transaction can commit seq n+2 before another commits n+1."""
    job = make_job(dispatch, "75")

    def insert(seq: int, text: str) -> None:
        with dispatch.engine.begin() as conn:
            conn.execute(events.insert().values(
                seq=seq, job_id=job, precinct="75", actor="X", source="test",
                at=datetime.now(UTC), kind="note", payload={"text": text}))

    async def scenario() -> None:
        hub = make_hub(dispatch, anti_entropy_s=0.2)
        await hub.start()
        try:
            wall = FakeSocket()
            await subscribe(hub, ("wall", "75"), wall)
            await until(lambda: len(wall.texts) == 1)
            base = hub.last_seq
            await asyncio.to_thread(insert, base + 2, "second")
            await until(lambda: len(wall.texts) == 2)
            assert base + 1 in hub.pending
            await asyncio.to_thread(insert, base + 1, "first")
            await until(lambda: len(wall.texts) == 3)
            assert not hub.pending
            assert f'data-seq="{base + 1}"' in wall.texts[2]
        finally:
            await hub.stop()

    run(scenario())


def test_a_heartbeat_never_claims_an_event_whose_update_is_not_sent_yet(world, dispatch) -> None:
    """The heartbeat's `data-seq` says "every event up to here is on your socket": a beat that
    falls while the board view of a new event is still being read must carry the old number,
    and the update itself comes before any beat that names it."""
    job = make_job(dispatch, "75")
    unit = world.unit("75-A")

    async def scenario() -> None:
        hub = make_hub(dispatch, heartbeat_s=0.02)
        await hub.start()
        read = HeldRead(hub)
        base = read.base
        try:
            sock = FakeSocket()
            await subscribe(hub, BOARD75, sock)
            read.arm()
            await asyncio.to_thread(dispatch.assign, world.actors["sgt75"], job, 1, unit)
            await asyncio.to_thread(read.reading.wait, 10)
            held = len(sock.texts)
            await until(lambda: len(sock.texts) >= held + 3)  # beats while the read is held
            read.release()
            await until(lambda: any(f'id="job-{job}"' in t and "live-beat" in t and len(t) > 200
                                    for t in sock.texts[held:]))
            await until(lambda: len(sock.texts) >= held + 8)
        finally:
            read.release()
            await hub.stop()
        marks = [(len(t), int(re.search(r'data-seq="(\d+)"', t)[1])) for t in sock.texts[1:]]
        update = next(i for i, (n, _) in enumerate(marks) if n > 200)
        assert all(seq == base for _, seq in marks[:update]), marks
        assert marks[update][1] == hub.last_seq > base
        assert all(seq == hub.last_seq for _, seq in marks[update:]), marks

    run(scenario())


@pytest.mark.parametrize("read_by", ["catch_up", "refresh"])
def test_a_board_left_during_a_read_is_read_afresh_by_the_next_socket(world, dispatch,
                                                                      read_by: str) -> None:
    """The last socket of a board leaves while the hub reads its view (for an event, or for the
    time-driven refresh); later events reach no one there. The next socket to open must get the
    board as it is now, not the view that read finished after everyone had gone."""
    first, second = make_job(dispatch, "75"), make_job(dispatch, "75")
    unit = world.unit("75-A")
    sgt = world.actors["sgt75"]

    async def scenario() -> tuple[str, str]:
        hub = make_hub(dispatch)
        await hub.start()
        read = HeldRead(hub)
        try:
            sub = await subscribe(hub, BOARD75, FakeSocket())
            read.arm()
            if read_by == "catch_up":
                reading: Any = asyncio.to_thread(dispatch.assign, sgt, first, 1, unit)
            else:
                reading = hub.refresh(lambda a: a == BOARD75, only_if_changed=True)
            task = asyncio.ensure_future(reading)
            await asyncio.to_thread(read.reading.wait, 10)
            await hub.leave(sub)         # the board's last socket goes mid-read
            read.release()
            await task
            await until(lambda: hub.shown_seq == hub.last_seq)
            seen = hub.last_seq
            await asyncio.to_thread(dispatch.assign, sgt, second, 1, unit)  # heard by no one
            await until(lambda: hub.shown_seq == hub.last_seq > seen)
            late = FakeSocket()
            await subscribe(hub, BOARD75, late)
            await until(lambda: len(late.texts) == 1)
            fresh = await asyncio.to_thread(lambda: hub.renderer.body(BOARD75,
                                                                      read.view(BOARD75)))
            return late.texts[0], fresh
        finally:
            read.release()
            await hub.stop()

    snapshot, fresh = run(scenario())
    assert f'id="job-{second}"' in fresh
    assert live._AGES.sub("", snapshot) == live._AGES.sub("", fresh)


def test_an_update_shows_exactly_the_events_its_mark_names(world, dispatch) -> None:
    """The events and the board view of one catch-up are read in one snapshot: a job assigned
    while that catch-up reads comes in the next message, under its own sequence number, never
    in the message that names only the earlier event."""
    first, second = make_job(dispatch, "75"), make_job(dispatch, "75")
    unit = world.unit("75-A")
    sgt = world.actors["sgt75"]

    async def scenario() -> tuple[list[str], int]:
        hub = make_hub(dispatch)
        view = hub.renderer.view
        wrote = []

        def view_after_a_write(audience, *args):  # type: ignore[no-untyped-def]
            if hub.last_seq > base and not wrote:  # the first event's catch-up, mid-read
                wrote.append(dispatch.assign(sgt, second, 1, unit))
            return view(audience, *args)

        hub.renderer.view = view_after_a_write  # type: ignore[method-assign]
        await hub.start()
        try:
            sock = FakeSocket()
            base = hub.last_seq
            await subscribe(hub, BOARD75, sock)
            await asyncio.to_thread(dispatch.assign, sgt, first, 1, unit)
            # shown_seq says the update is on every socket's way; wait for it to arrive too
            await until(lambda: hub.shown_seq >= base + 2
                        and any(f'data-seq="{base + 2}"' in t for t in sock.texts))
            return sock.texts[1:], base
        finally:
            await hub.stop()

    updates, base = run(scenario())
    marked = {int(re.findall(r'data-seq="(\d+)"', t)[-1]): t for t in updates}
    assert f'id="job-{first}"' in marked[base + 1]
    assert f'id="job-{second}"' not in marked[base + 1]
    assert f'id="job-{second}"' in marked[base + 2]


def test_officer_queue_and_city_counters_follow_events(world, dispatch) -> None:
    job = make_job(dispatch, "75")
    unit_a, unit_b = world.unit("75-A"), world.unit("75-B")

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            a, b, city, city120 = FakeSocket(), FakeSocket(), FakeSocket(), FakeSocket()
            await subscribe(hub, ("my", unit_a), a)
            await subscribe(hub, ("my", unit_b), b)
            await subscribe(hub, ("city", frozenset({"*"})), city)
            await subscribe(hub, ("city", frozenset({"120"})), city120)
            await until(lambda: all(s.texts for s in (a, b, city, city120)))
            assert 'id="city-75"' in city.texts[0] and 'id="city-75"' not in city120.texts[0]
            sgt = world.actors["sgt75"]
            await asyncio.to_thread(dispatch.assign, sgt, job, 1, unit_a)
            await until(lambda: len(a.texts) == 2 and len(city.texts) == 2)
            assert f'id="job-{job}"' in a.texts[1] and len(b.texts) == 1
            row = re.search(r'id="city-75".*?</tr>', city.texts[1], re.S).group(0)
            assert re.search(r'data-k="assigned">1<', row)
            await asyncio.to_thread(dispatch.reassign, sgt, job, 2, unit_b)
            await until(lambda: len(a.texts) == 3 and len(b.texts) == 2)
            assert f'id="job-{job}"' not in a.texts[2]  # taken away from A
            assert f'id="job-{job}"' in b.texts[1]
            assert len(city120.texts) == 1  # never told about the 75th
        finally:
            await hub.stop()

    run(scenario())


def test_boards_are_pushed_when_time_alone_makes_a_job_overdue(world, dispatch, clock) -> None:
    job = make_job(dispatch, "75")

    async def scenario() -> None:
        hub = make_hub(dispatch, clock)
        await hub.start()
        try:
            sock = FakeSocket()
            await subscribe(hub, BOARD75, sock)
            await until(lambda: len(sock.texts) == 1)
            assert 'data-overdue=""' in sock.texts[0]
            clock.advance(minutes=1)  # older, not yet late: nothing to push
            await hub.refresh(lambda a: True, only_if_changed=True)
            assert len(sock.texts) == 1
            clock.advance(days=2)     # now late for every stage
            await hub.refresh(lambda a: True, only_if_changed=True)
            await until(lambda: len(sock.texts) == 2)
            assert f'id="job-{job}"' in sock.texts[1] and "OVERDUE" in sock.texts[1]
            await hub.refresh(lambda a: True, only_if_changed=True)
            await asyncio.sleep(0.1)
            assert len(sock.texts) == 2
        finally:
            await hub.stop()

    run(scenario())


def overdue_75(text: str) -> int:
    """The 75th's overdue count in the citywide counters."""
    row = re.search(r'id="city-75".*?</tr>', text, re.S).group(0)
    return int(re.search(r'data-k="overdue"[^>]*>(\d+)<', row).group(1))


def test_citywide_counters_are_read_again_only_when_a_deadline_in_them_passes(
        world, dispatch, clock) -> None:
    """The citywide counters name each precinct's next deadline: the timed refresh reads them
    again once the clock has passed it (and pushes the new overdue count), not on every pass."""
    make_job(dispatch, "75")
    city = ("city", frozenset({"*"}))

    async def scenario() -> None:
        hub = make_hub(dispatch, clock)
        await hub.start()
        try:
            sock = FakeSocket()
            await subscribe(hub, city, sock)
            await until(lambda: len(sock.texts) == 1)
            assert overdue_75(sock.texts[0]) == 0
            read = hub.renders["city"]
            clock.advance(minutes=1)  # not yet late: nothing read
            await hub.refresh(hub._timely, only_if_changed=True)
            assert hub.renders["city"] == read and len(sock.texts) == 1
            clock.advance(days=2)  # late: read once, pushed
            await hub.refresh(hub._timely, only_if_changed=True)
            assert hub.renders["city"] == read + 1
            await until(lambda: len(sock.texts) == 2)
            assert overdue_75(sock.texts[1]) == 1
            await hub.refresh(hub._timely, only_if_changed=True)  # no deadline ahead
            assert hub.renders["city"] == read + 1
            hub.refresh_s = 0  # nor at every refresh interval: only their deadlines move them
            await hub.refresh(hub._timely, only_if_changed=True)
            assert hub.renders["city"] == read + 1
        finally:
            await hub.stop()

    run(scenario())


def test_a_screen_is_refreshed_at_its_deadline_not_at_the_next_interval(world, dispatch,
                                                                        clock) -> None:
    """The hub wakes when the soonest deadline any screen shows has come: a board, a wall, an
    officer's queue and the citywide counters show the job late within the anti-entropy
    interval, not after the 30 s refresh (here an hour)."""
    job = make_job(dispatch, "75")
    unit = world.unit("75-A")
    dispatch.assign(world.actors["sgt75"], job, 1, unit)
    screens: list[Audience] = [BOARD75, ("wall", "75"), ("my", unit), ("city", frozenset({"*"}))]

    async def scenario() -> None:
        hub = make_hub(dispatch, clock, refresh_s=3600, anti_entropy_s=0.05)
        await hub.start()
        try:
            socks = [FakeSocket() for _ in screens]
            for audience, sock in zip(screens, socks, strict=True):
                await subscribe(hub, audience, sock)
            await until(lambda: all(len(s.texts) == 1 for s in socks))
            assert hub._soonest is not None and hub._soonest > clock()
            clock.advance(days=2)
            await until(lambda: all(len(s.texts) == 2 for s in socks), timeout=3)
            assert all("OVERDUE" in s.texts[1] for s in socks[:3])
            assert overdue_75(socks[3].texts[1]) == 1
            await asyncio.sleep(0.3)  # nothing ahead now: no more reads, nothing pushed
            assert all(len(s.texts) == 2 for s in socks)
        finally:
            await hub.stop()

    run(scenario())


def test_the_bus_hears_a_channel_while_any_audience_on_it_has_a_socket(world, dispatch) -> None:
    """A board and a wall of the 75th share its channel: it is heard until both have gone."""

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            board = await subscribe(hub, BOARD75, FakeSocket())
            second = await subscribe(hub, BOARD75, FakeSocket())
            wall = await subscribe(hub, ("wall", "75"), FakeSocket())
            unit = world.unit("75-A")
            mine = await subscribe(hub, ("my", unit), FakeSocket())
            assert {"precinct:75", f"unit:{unit}"} <= hub.bus.channels
            for sub in (board, second, mine):
                await hub.leave(sub)
            assert "precinct:75" in hub.bus.channels and f"unit:{unit}" not in hub.bus.channels
            hub.cut(wall, subscriber.CLOSE_UNAUTHENTICATED, "test")
            await until(lambda: "precinct:75" not in hub.bus.channels)
            await subscribe(hub, ("wall", "75"), FakeSocket())
            assert "precinct:75" in hub.bus.channels
        finally:
            await hub.stop()

    run(scenario())


def test_the_timed_refresh_reads_only_the_screens_the_clock_changed(world, dispatch,
                                                                    clock) -> None:
    """An idle city costs next to nothing: every 30 s the hub reads a board, a wall or an
    officer's queue again only once the clock has passed a deadline it shows (or a tour
    began), and pushes it only when what it shows changed; then not again until the next."""
    job = make_job(dispatch, "75")
    unit = world.unit("75-A")
    screens: list[Audience] = [BOARD75, ("wall", "75"), ("my", unit)]

    async def scenario() -> None:
        hub = make_hub(dispatch, clock)
        await hub.start()
        try:
            socks = [FakeSocket() for _ in screens]
            for audience, sock in zip(screens, socks, strict=True):
                await subscribe(hub, audience, sock)
            await asyncio.to_thread(dispatch.assign, world.actors["sgt75"], job, 1, unit)
            await until(lambda: all(len(s.texts) == 2 for s in socks))
            read = dict(hub.renders)
            clock.advance(minutes=1)  # older, nothing late yet: nothing read, nothing sent
            await hub.refresh(hub._timely, only_if_changed=True)
            assert dict(hub.renders) == read and all(len(s.texts) == 2 for s in socks)
            clock.advance(days=2)  # every stage late: each read once, and pushed
            await hub.refresh(hub._timely, only_if_changed=True)
            assert all(hub.renders[a[0]] == read[a[0]] + 1 for a in screens)
            await until(lambda: all(len(s.texts) == 3 for s in socks))
            assert all("OVERDUE" in s.texts[2] and f'id="job-{job}"' in s.texts[2]
                       for s in socks)
            read = dict(hub.renders)
            await hub.refresh(hub._timely, only_if_changed=True)  # no deadline is ahead
            assert dict(hub.renders) == read
            hub.resync_s = 0  # ... but a view is read whole again after `resync_s`
            await hub.refresh(hub._timely, only_if_changed=True)
            assert all(hub.renders[a[0]] == read[a[0]] + 1 for a in screens)
            await asyncio.sleep(0.05)
            assert all(len(s.texts) == 3 for s in socks)  # the same: not pushed
        finally:
            await hub.stop()

    run(scenario())


def test_a_close_policy_reaches_every_officers_queue_at_once(world, dispatch) -> None:
    """A policy names no unit, yet every queue shows its precinct's close policies (in the
    close form of each job): the change reaches every officer's queue with the event."""
    from board.domain.policies import PHOTO_BEFORE_CLOSE

    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            mine, other = FakeSocket(), FakeSocket()
            await subscribe(hub, ("my", world.unit("75-A")), mine)
            await subscribe(hub, ("my", world.unit("120-A")), other)
            await until(lambda: mine.texts and other.texts)
            await asyncio.to_thread(dispatch.set_policy, world.actors["admin"], "75",
                                    PHOTO_BEFORE_CLOSE, True)
            await until(lambda: len(mine.texts) == 2)
            assert 'class="policies"' not in mine.texts[0]
            assert 'class="policies"' in mine.texts[1]
            fresh = await asyncio.to_thread(hub.renderer.my, world.unit("75-A"))
            assert live._AGES.sub("", mine.texts[1]) == live._AGES.sub("", fresh)
        finally:
            await hub.stop()

    run(scenario())


# -- the WebSocket routes, over a real socket -------------------------------------------------


def web_login(base: str, username: str) -> httpx.Client:
    client = closed_after_test(httpx.Client(base_url=base, timeout=10))
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf,
                                    "next": ""})
    assert r.status_code == 303, r.text
    return client


@contextmanager
def socket(base: str, path: str, client: httpx.Client | None = None,
           origin: str | None = None) -> Iterator[ClientConnection]:
    headers = {}
    if client is not None:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    headers["Origin"] = origin or base
    with connect(base.replace("http://", "ws://") + path, additional_headers=headers,
                 open_timeout=5, close_timeout=2) as ws:
        yield ws


def recv_until(ws: ClientConnection, pred, timeout: float = 5.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching message in time")
        text = ws.recv(timeout=left)
        if pred(text):
            return text


def closed_with(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


def test_sockets_snapshot_then_live_updates(world, dispatch, live_server) -> None:
    job = make_job(dispatch, "75")
    sgt = web_login(live_server.url, "sgt75")
    off = web_login(live_server.url, "off75a")
    with socket(live_server.url, "/ws/board/75", sgt) as board, \
            socket(live_server.url, "/ws/my", off) as my:
        snap = board.recv(timeout=5)
        assert snap.startswith('<div id="board-body"') and f'id="job-{job}"' in snap
        page = Replica()
        page.apply(snap)
        assert "No jobs assigned" in my.recv(timeout=5)
        t0 = time.monotonic()
        dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
        text = recv_until(board, lambda t: page.apply(t) or f'id="unit-{world.unit("75-A")}"' in t)
        took = time.monotonic() - t0
        lane = text.split(f'id="unit-{world.unit("75-A")}"')[1].split("</section>")[0]
        assert f'id="job-{job}"' in lane
        assert f'id="job-{job}"' in recv_until(my, lambda t: "my-queue" in t)
        # A message from the client is never obeyed: it cannot widen the socket's scope.
        board.send('{"precinct": "120", "subscribe": "/ws/board/120"}')
        other = make_job(dispatch, "120")
        dispatch.hold(world.actors["sgt120"], other, 1, "wait")
        dispatch.hold(world.actors["sgt75"], make_job(dispatch, "75"), 1, "wait")
        text = recv_until(board, lambda t: page.apply(t) or 'data-status="held"' in t)
        assert f'id="job-{other}"' not in text and 'data-precinct="120"' not in text
        # The page that followed the socket is the page a fresh load shows.
        assert page.html("board-body") == normal(sgt.get("/board/75").text, "board-body")
    print(f"\ncommit → board socket over uvicorn: {took * 1000:.1f} ms")
    sgt.close()
    off.close()


def test_a_peer_that_stopped_reading_is_cut_off_and_its_connection_ends(world, app,
                                                                         live_server) -> None:
    """A real client that completed the handshake and then never read again: once its queue is
    full the hub cuts it off; its close frame cannot get through (the peer's window is shut),
    so the connection is dropped, and the socket's endpoint ends with nothing of it left: the
    others never wait for it, and a stuck phone cannot pin memory for hours."""
    import base64
    import os
    import socket as sockets

    hub = app.state.hub
    hub.queue_size = 2
    sgt = web_login(live_server.url, "sgt75")
    host, port = live_server.url.removeprefix("http://").split(":")
    raw = sockets.socket()
    raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
    raw.settimeout(5)
    raw.connect((host, int(port)))
    cookie = "; ".join(f"{k}={v}" for k, v in sgt.cookies.items())
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall((f"GET /ws/board/75 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\nOrigin: {live_server.url}\r\n"
                 f"Cookie: {cookie}\r\n\r\n").encode())
    assert raw.recv(12) == b"HTTP/1.1 101"   # and never another byte read

    def ws_connections() -> int:
        return sum(isinstance(c, LeanSocketProtocol)
                   for c in live_server.server.server_state.connections)

    deadline = time.monotonic() + 5
    while hub.sockets < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert ws_connections() == 1
    big = "x" * 1_000_000  # a few of these fill every buffer between the hub and the peer
    for _ in range(8):
        hub.loop.call_soon_threadsafe(hub._fan_out, [BOARD75], big)
    deadline = time.monotonic() + 10
    while hub.sockets or ws_connections() or live_server.server.server_state.tasks:
        assert time.monotonic() < deadline, (hub.sockets, ws_connections())
        time.sleep(0.05)
    assert hub.kicked == 1
    raw.close()
    sgt.close()


def test_an_open_socket_lets_its_handshake_go_and_still_works(world, dispatch,
                                                             live_server) -> None:
    """Served by `LeanSocketProtocol`: once open, the socket keeps neither the handshake's
    request (its headers, cookie and all, are let go though websockets' parser holds the
    request) nor its response; its light queue and flag carry the live updates and the close."""
    from board.web.socket_protocol import Flag, Inbox

    hub = live_server.server.config.app.state.hub
    sgt = web_login(live_server.url, "sgt75")
    with socket(live_server.url, "/ws/board/75", sgt) as ws:
        assert ws.recv(timeout=5).startswith('<div id="board-body"')
        conn, = [c for c in live_server.server.server_state.connections
                 if isinstance(c, LeanSocketProtocol)]
        assert conn.request is None and conn.response is None
        kept = conn.conn.parser.gi_frame.f_locals["request"]  # websockets' parser's own copy
        assert kept.path == "/ws/board/75" and len(kept.headers) == 0
        assert isinstance(conn.queue, Inbox) and isinstance(conn.writable, Flag)
        assert any(k == b"cookie" for k, _ in conn.scope["headers"])  # the app's copy
        job = make_job(dispatch, "75")
        dispatch.hold(world.actors["sgt75"], job, 1, "wait")
        recv_until(ws, lambda t: f'id="job-{job}"' in t)
    deadline = time.monotonic() + 5
    while hub.sockets:  # the close reached the endpoint through the inbox
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sgt.close()


@pytest.mark.parametrize(("username", "path", "code"), [
    (None, "/ws/board/75", subscriber.CLOSE_UNAUTHENTICATED),
    ("sgt120", "/ws/board/75", subscriber.CLOSE_FORBIDDEN),
    ("off120", "/ws/board/75", subscriber.CLOSE_FORBIDDEN),
    ("sgt75", "/ws/wall/120", subscriber.CLOSE_FORBIDDEN),
    ("sgt75", "/ws/my", subscriber.CLOSE_FORBIDDEN),         # not on a unit
    ("off75a", "/ws/city", subscriber.CLOSE_FORBIDDEN),
    ("cmd", "/ws/board/76", subscriber.CLOSE_FORBIDDEN),
])
def test_subscription_is_authorized(world, live_server, username, path, code) -> None:
    client = web_login(live_server.url, username) if username else None
    with socket(live_server.url, path, client) as ws:
        assert closed_with(ws) == code


def test_a_socket_opened_while_the_database_is_down_is_told_to_come_back(
        world, live_server, monkeypatch) -> None:
    """The session's read fails: the socket closes with 1013 (try again later), as a page
    answers 503, and the client reconnects with backoff."""
    from board.web import sockets

    sgt = web_login(live_server.url, "sgt75")

    def down(conn):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(sockets.auth, "current_actor", down)
    with socket(live_server.url, "/ws/board/75", sgt) as ws:
        assert closed_with(ws) == subscriber.CLOSE_SLOW


def test_cross_site_socket_is_refused(world, live_server) -> None:
    sgt = web_login(live_server.url, "sgt75")
    with socket(live_server.url, "/ws/board/75", sgt, origin="http://evil.example") as ws:
        assert closed_with(ws) == subscriber.CLOSE_FORBIDDEN


def test_wall_token_logs_in_the_display_for_its_precinct_only(world, dispatch,
                                                              live_server) -> None:
    """The token on the first load becomes a session and a clean URL (issue 10, defect 7)."""
    token = auth.create_token(dispatch.engine, "wall75", "lobby screen")
    client = httpx.Client(base_url=live_server.url, timeout=10)
    first = client.get(f"/wall/75?token={token}")
    assert first.status_code == 303 and first.headers["location"] == "/wall/75"
    page = client.get("/wall/75")
    assert page.status_code == 200 and 'id="wall-body"' in page.text
    assert token not in page.text and 'ws-connect="/ws/wall/75"' in page.text
    assert client.get("/wall/120").status_code == 403
    assert client.get(f"/wall/120?token={token}").status_code == 403
    assert client.get("/board/75").status_code == 200  # read-only view
    assert client.get("/wall/75?token=brd_forged").status_code == 403
    sgt_token = auth.create_token(dispatch.engine, "sgt75", "not a wall")
    assert httpx.get(f"{live_server.url}/wall/75?token={sgt_token}").status_code == 403
    with socket(live_server.url, f"/ws/wall/75?token={token}") as ws:  # a token opens nothing
        assert closed_with(ws) == subscriber.CLOSE_UNAUTHENTICATED
    with socket(live_server.url, "/ws/wall/120", client) as ws:
        assert closed_with(ws) == subscriber.CLOSE_FORBIDDEN
    with socket(live_server.url, "/ws/wall/75", client) as ws:  # the device's session
        assert 'id="wall-body"' in ws.recv(timeout=5)
    client.close()


def test_a_precincts_counters_are_counted_once_for_every_scope(world, dispatch,
                                                              monkeypatch) -> None:
    """The citywide page and a commander's page of the 75th both show its row: counted once
    a catch-up, and each shows the count."""
    from board.live import render
    job = make_job(dispatch, "75")
    counted: list[set[str] | None] = []
    count = render.counted_with_deadlines

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        counted.append(kw.get("only"))
        return count(*args, **kw)

    monkeypatch.setattr(render, "counted_with_deadlines", counting)

    async def scenario() -> None:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            city, city75 = FakeSocket(), FakeSocket()
            await subscribe(hub, ("city", frozenset({"*"})), city)
            await subscribe(hub, ("city", frozenset({"75", "120"})), city75)
            await until(lambda: city.texts and city75.texts)
            sgt = world.actors["sgt75"]
            await asyncio.to_thread(dispatch.hold, sgt, job, 1, "waiting for a car")
            await until(lambda: len(city.texts) == 2 and len(city75.texts) == 2)
            counted.clear()  # the first event read them whole; they follow from here
            await asyncio.to_thread(dispatch.release, sgt, job, 2)
            await asyncio.to_thread(dispatch.assign, sgt, job, 3, world.unit("75-A"))
            await until(lambda: 'data-k="assigned">1<' in city.texts[-1]
                        and 'data-k="assigned">1<' in city75.texts[-1])
            for texts in (city.texts, city75.texts):
                row = re.search(r'id="city-75".*?</tr>', texts[-1], re.S).group(0)
                assert re.search(r'data-k="assigned">1<', row)
            assert counted and all(only == {"75"} for only in counted)
            assert len(counted) == len(city.texts) - 2  # once a catch-up, for both scopes
        finally:
            await hub.stop()

    run(scenario())


def test_city_page_for_commanders(world, dispatch, live_server) -> None:
    make_job(dispatch, "75")
    cmd = web_login(live_server.url, "cmd")
    page = cmd.get("/city")
    assert page.status_code == 200
    assert 'id="city-75"' in page.text and 'id="city-120"' in page.text
    assert 'id="city-76"' not in page.text  # only the commander's precincts
    off = web_login(live_server.url, "off75a")
    assert off.get("/city").status_code == 403


def test_tour_start() -> None:
    ny = TOUR_TZ
    at = datetime(2026, 7, 1, 16, 30, tzinfo=ny)
    assert tour_start(at).astimezone(ny).hour == 15
    at = datetime(2026, 7, 1, 3, 0, tzinfo=ny)
    start = tour_start(at).astimezone(ny)
    assert (start.day, start.hour) == (30, 23)


def test_event_count_helper_sanity(dispatch) -> None:
    """The hub starts at the newest event: it never replays history on start."""
    make_job(dispatch, "75")

    async def scenario() -> int:
        hub = make_hub(dispatch)
        await hub.start()
        try:
            return hub.last_seq
        finally:
            await hub.stop()

    with dispatch.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(events.c.seq))).scalar()
    assert run(scenario()) == newest
    assert SYSTEM.citywide


def test_officer_queue_socket_checks_the_units_precinct(world, dispatch, live_server) -> None:
    """An officer whose scope no longer covers their unit's precinct gets no queue stream."""

    from board.storage.schema import users

    make_job(dispatch, "75")
    off = web_login(live_server.url, "off75a")
    with dispatch.engine.begin() as conn:  # an admin moved the officer to the 120th
        conn.execute(users.update().where(users.c.username == "off75a").values(precincts="120"))
    with socket(live_server.url, "/ws/my", off) as ws:
        assert closed_with(ws) == subscriber.CLOSE_FORBIDDEN
    off.close()
