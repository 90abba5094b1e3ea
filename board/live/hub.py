"""The live hub: committed events → rendered fragments → every subscribed WebSocket.

One hub per web process. It hears nudges on the bus, then reads the committed events after its
last sequence number from the events table (the outbox) and, in the same snapshot, the views of
the boards they touch — a view it holds brought up to date from the rows its events touched
(render.Change), not read whole; renders each touched fragment ONCE per audience, frames it once and
writes the same bytes to every subscribed socket. A socket that cannot take it at once gets a
bounded queue and a sender task until it has caught up; one whose queue is full is cut off
(close 1013, "try again later"): the client reconnects and gets a full snapshot, which is what
every (re)connect gets. Every `anti_entropy_s` the hub reads the events table anyway,
so an event whose nudge was lost (a crash between commit and publish, a Redis outage) reaches
the boards within seconds. Sequence numbers skipped by a concurrent transaction still in flight
are watched until they commit (or for `gap_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from board.auth import sessions
from board.live.audiences import Audience, affected, announcements, channels_of, touched
from board.live.bus import Bus
from board.live.frames import text_frame
from board.live.render import Change, Renderer
from board.live.subscriber import CLOSE_RESTART, CLOSE_SLOW, CLOSE_UNAUTHENTICATED, Subscriber
from board.observability import metrics
from board.observability.logs import Throttled
from board.storage import db
from board.storage.schema import events
from board.usecases import queries

log = logging.getLogger("board.live")

HEARTBEAT_ID = "live-beat"
_AGES = re.compile(r'<span class="age"[^>]*>[^<]*</span>')


READ_LIMIT = 2000  # events read per catch-up round
# Audiences whose sockets get what changed (board.live.fragments, Renderer.delta), from the
# view they show: a view the hub keeps and brings up to date with the rows each catch-up's
# events touched (render.Change), not a read of it all.
VIEWED = frozenset({"board", "wall", "city", "reviews", "log"})
# Audiences pushed only when what they show changed (a count), not on every event heard.
QUIET = frozenset({"review_count"})
# Audiences whose view the clock alone changes (a job going overdue, a new tour): re-read by the
# timed refresh, each only once the time its view named has come (Renderer.changes_at), or its
# last whole read is `resync_s` old (what no deadline names: the desk's 90-day memory of places).
TIMED = frozenset({"board", "my", "wall", "city"})


@contextlib.asynccontextmanager
async def _collect_after() -> AsyncIterator[None]:
    """Hold the cyclic garbage collector until the sockets have what was read: a full
    collection in a process with a thousand sockets stops it for 50–200 ms, and inside a
    catch-up that pause is added to every socket's latency; after it, it falls between events.
    (Nothing is kept from the collector for longer than one catch-up.)"""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Hub:
    def __init__(self, renderer: Renderer, bus: Bus, *, queue_size: int = 64,
                 anti_entropy_s: float = 2.0, heartbeat_s: float = 15.0,
                 refresh_s: float = 30.0, gap_s: float = 10.0, session_check_s: float = 5.0,
                 resync_s: float = 600.0, timeouts: sessions.Timeouts | None = None) -> None:
        self.renderer = renderer
        self.engine = renderer.engine
        self.bus = bus
        self.queue_size = queue_size
        self.anti_entropy_s = anti_entropy_s
        self.heartbeat_s = heartbeat_s
        self.refresh_s = refresh_s
        self.gap_s = gap_s
        self.session_check_s = session_check_s
        self.resync_s = resync_s
        self.timeouts = timeouts or sessions.Timeouts()
        self.audiences: dict[Audience, set[Subscriber]] = defaultdict(set)
        self.last_seq = 0    # the newest event read
        self.shown_seq = 0   # the newest event whose updates are on every socket's way
        self.pending: dict[int, float] = {}      # skipped seq → give up at (monotonic)
        self.renders: Counter[str] = Counter()   # audience kind → renders, for figures & tests
        self.kicked = 0
        self.nudges = 0                          # bus messages heard
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cache: dict[Audience, tuple[int, float, Any, str]] = {}  # the last snapshot
        self._views: dict[Audience, Any] = {}    # VIEWED audiences: the view their sockets show
        self._frames: dict[int, tuple[str, bytes]] = {}  # recent messages, framed once
        self._sent: dict[Audience, str] = {}     # last pushed, minus ages
        self._due: dict[Audience, datetime | None] = {}  # TIMED: when time may change it next
        self._soonest: datetime | None = None   # the earliest of them ahead: refresh then
        self._whole_at: dict[Audience, float] = {}  # TIMED: its last whole read (monotonic)
        self._listeners: Counter[str] = Counter()  # bus channel → audiences with sockets
        self.publish_enabled = True              # tests turn it off to lose nudges
        self._failing = Throttled(log)           # a database outage: one line, then summaries
        self._shown = threading.Condition()      # told each time shown_seq moves (view_of)

    # lifecycle

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        newest = await run_in_threadpool(queries.newest_seq, self.engine)
        self.last_seq = self.shown_seq = newest
        await self.bus.start(self._on_bus)
        await self.bus.subscribe(sessions.REVOKED)
        self._tasks = [asyncio.create_task(self._run(), name="live-hub"),
                       asyncio.create_task(self._beat(), name="live-heartbeat")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        self._tasks = []
        subs = self.subscribers
        await asyncio.gather(*(s.close(CLOSE_RESTART) for s in subs), return_exceptions=True)
        self.audiences.clear()
        self._listeners.clear()
        await self.bus.stop()
        self.loop = None

    # the write side calls this, after commit, from any thread

    def committed(self, evs: list[dict[str, Any]]) -> None:
        if not self.publish_enabled:
            return
        self.bus.publish_threadsafe(announcements(evs))
        self.wake_threadsafe()

    def wake_threadsafe(self) -> None:
        loop, wake = self.loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    def _on_bus(self, channel: str, data: str) -> None:
        if channel == sessions.REVOKED:
            self._close_sessions(sessions.parse_message(data))
            return
        self.nudges += 1
        if self._wake is not None:
            self._wake.set()

    # revocation: a revoked or timed-out session's sockets close at once, in every process

    async def revoke(self, session_ids: Iterable[int]) -> None:
        """Close these sessions' sockets here, and tell every other process's hub."""
        ids = set(session_ids)
        if not ids:
            return
        self._close_sessions(ids)
        try:
            await self.bus.publish(sessions.REVOKED, sessions.message(ids))
        except Exception:  # noqa: BLE001 - the others re-check their sessions within seconds
            log.warning("could not announce revoked sessions %s on the bus", sorted(ids))

    def _close_sessions(self, ids: set[int]) -> None:
        for sub in self.subscribers:
            if sub.session_id in ids and not sub.done:
                self.cut(sub, CLOSE_UNAUTHENTICATED, "session ended")

    async def _check_sessions(self) -> None:
        """The backstop: close sockets whose session timed out or was revoked unheard."""
        held = {s.session_id for s in self.subscribers
                if s.session_id is not None and not s.done}
        if held:
            live = await run_in_threadpool(sessions.live_ids, self.engine, held, self.timeouts)
            self._close_sessions(held - live)

    # subscriptions

    async def join(self, sub: Subscriber) -> None:
        """Snapshot first, then every later change: both go through the hub lock in order."""
        assert self._lock is not None
        new: set[str] = set()
        async with self._lock:
            for audience in sub.audiences:
                text = await self._snapshot(audience)
                self._sent.setdefault(audience, _AGES.sub("", text))
                self._whole_at.setdefault(audience, time.monotonic())
                sub.offer(text, self._frame(text))
                group = self.audiences[audience]
                if not group:
                    new |= self._listen(audience, 1)
                group.add(sub)
        if new:
            await self.bus.subscribe(*new)

    async def leave(self, sub: Subscriber) -> None:
        if not any(sub in self.audiences.get(a, ()) for a in sub.audiences):
            return
        gone = self._remove(sub)
        if sub.sender is not None:
            sub.sender.cancel()
        if gone:
            await self.bus.unsubscribe(*gone)

    def _remove(self, sub: Subscriber) -> set[str]:
        """Take a socket out of its audiences; returns the channels nobody listens to now."""
        gone: set[str] = set()
        for audience in sub.audiences:
            group = self.audiences.get(audience)
            if group is None or sub not in group:
                continue
            group.discard(sub)
            if not group:
                del self.audiences[audience]
                self._cache.pop(audience, None)
                self._sent.pop(audience, None)
                self._views.pop(audience, None)
                self._due.pop(audience, None)
                self._whole_at.pop(audience, None)
                gone |= self._listen(audience, -1)
        return gone

    def _listen(self, audience: Audience, step: int) -> set[str]:
        """Count an audience in (1) or out (-1) of its channels' listeners; returns the channels
        that just gained their first or lost their last (a socket's join and leave cost the
        same however many audiences the process serves)."""
        changed = set()
        for channel in channels_of(audience):
            self._listeners[channel] += step
            if self._listeners[channel] == (1 if step > 0 else 0):
                changed.add(channel)
            if not self._listeners[channel]:
                del self._listeners[channel]
        return changed

    def view_of(self, audience: Audience, newest: Callable[[], int],
                wait_s: float = 0.0) -> Any | None:
        """The view this process's sockets of `audience` show, when it holds every event up to
        the seq `newest()` gives (asked only when a socket here follows it), waiting up to
        `wait_s` for the hub to read that far (None: none follows it, or the hub is further
        behind). From a worker thread, never the loop's: the view is replaced whole, never
        changed in place, and read after the mark."""
        if audience not in self._views:
            return None
        seq = newest()
        if self.shown_seq < seq and wait_s > 0:
            with self._shown:
                self._shown.wait_for(lambda: self.shown_seq >= seq, wait_s)
        if self.shown_seq < seq:
            return None
        return self._views.get(audience)

    @property
    def subscribers(self) -> set[Subscriber]:
        return {s for group in self.audiences.values() for s in group}

    @property
    def sockets(self) -> int:
        return len(self.subscribers)

    # the loop

    async def _run(self) -> None:
        assert self._wake is not None
        last_refresh = last_check = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._wait_s())
            self._wake.clear()
            try:
                while await self.catch_up() >= READ_LIMIT:  # far behind: keep reading
                    pass
                if time.monotonic() - last_check >= self.session_check_s:
                    last_check = time.monotonic()
                    await self._check_sessions()
                if (time.monotonic() - last_refresh >= self.refresh_s
                        or self._soonest is not None and self.renderer.clock() >= self._soonest):
                    last_refresh = time.monotonic()
                    # Pushed only when time alone changed what they show (a job went overdue),
                    # not every minute of an age: the browser counts ages up.
                    await self.refresh(self._timely, only_if_changed=True)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the database may be down: try again next tick
                if db.database_unavailable(e):  # an outage: one line, then summaries
                    self._failing.failed("live catch-up failed, database unavailable: %s",
                                         str(e).strip().splitlines()[0] if str(e).strip() else "")
                else:
                    log.exception("live catch-up failed")
                await asyncio.sleep(min(self.anti_entropy_s, 1.0))

    def _wait_s(self) -> float:
        """Until the next catch-up without a nudge: the anti-entropy interval, or sooner when
        a screen's deadline comes first (a job shows OVERDUE at its deadline, not up to a
        refresh interval later)."""
        if self._soonest is None:
            return self.anti_entropy_s
        left = (self._soonest - self.renderer.clock()).total_seconds()
        return min(self.anti_entropy_s, max(left, 0.0))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            # shown_seq, not last_seq: a beat falling inside a catch-up must not claim the
            # events still being rendered (a client may count the beat's mark as caught up).
            beat = self._seq_mark(self.shown_seq)
            frame = self._frame(beat)
            for sub in self.subscribers:
                if not sub.done and not sub.offer(beat, frame):
                    self.kick(sub, CLOSE_SLOW)

    async def catch_up(self) -> int:
        """Read committed events after the last seen; re-render what they touched. The events
        and the views of the boards they touched are read in one trip to a worker thread."""
        assert self._lock is not None
        async with self._lock, _collect_after():
            shown = {a: self._views.get(a) for a, subs in list(self.audiences.items())
                     if subs and a[0] in VIEWED}
            evs, views = await run_in_threadpool(self._read_new_views, shown)
            if not evs:
                return 0
            for audience in self._hit(evs, list(self.audiences)):
                if audience not in views:
                    await self._broadcast(audience)
                else:
                    self._show_view(audience, *views[audience], after_events=True)
            self.shown_seq = self.last_seq
            with self._shown:
                self._shown.notify_all()
            metrics.observe_events(evs)  # count them, and commit → on the sockets' queues
            self._failing.recovered("live catch-up working again")
            return len(evs)

    def _hit(self, evs: list[dict[str, Any]], candidates: Iterable[Audience]) -> list[Audience]:
        """The audiences (of those with sockets) that these events change."""
        precincts: set[str | None] = set()
        units: set[int] = set()
        for ev in evs:
            p, u = touched(ev)
            precincts |= p
            units |= u
        kinds = {ev["kind"] for ev in evs}
        return [a for a in candidates
                if self.audiences.get(a) and affected(a, precincts, units, kinds)]

    def _read_new_views(self, shown: dict[Audience, Any]
                        ) -> tuple[list[dict[str, Any]], dict[Audience, tuple[Any, str | None]]]:
        """New events, and for each followed audience they touch its view and what changed
        since `shown` (each trip to a thread waits for one and then for the loop: commit →
        first socket pays for every trip)."""
        with metrics.reading("catch_up"), db.read(self.engine) as conn:
            # one snapshot: the views show exactly these events
            evs = self._read_new(conn)
            if not evs:
                return evs, {}
            change = Change.of(evs)
            return evs, {a: self._read_view(a, shown[a], conn, change)
                         for a in self._hit(evs, shown)}

    def _timely(self, audience: Audience) -> bool:
        """Whether the timed refresh must read this audience again: the clock has reached the
        time its view named (a deadline, a tour), or its last whole read is `resync_s` old."""
        if audience[0] not in TIMED:
            return False
        if audience not in self._due or audience not in self._whole_at:
            return True
        if time.monotonic() - self._whole_at[audience] >= self.resync_s:
            return True
        due = self._due[audience]
        return due is not None and self.renderer.clock() >= due

    async def refresh(self, which: Callable[[Audience], bool],
                      only_if_changed: bool = False) -> None:
        """Re-read audiences whose view changes with time alone (overdue, tour) whole: one
        at a time, each under the lock, so a catch-up waits for one view read, not for every
        wall and board of the process (a city's walls re-read at once held its updates for
        seconds). Asked again under the lock: a pass running beside (the hub's own, at a
        deadline) may have read it meanwhile."""
        assert self._lock is not None
        for audience in [a for a in list(self.audiences) if which(a)]:
            async with self._lock, _collect_after():
                if self.audiences.get(audience) and which(audience):
                    await self._broadcast(audience, only_if_changed)
                    self._whole_at[audience] = time.monotonic()
        now = self.renderer.clock()
        self._soonest = min((d for d in self._due.values() if d is not None and d > now),
                            default=None)

    async def _broadcast(self, audience: Audience, only_if_changed: bool = False) -> None:
        if audience[0] in VIEWED:
            await self._view_update(audience, after_events=not only_if_changed)
            return
        text = await self._render(audience)
        self._show_text(audience, text, only_if_changed)

    def _keep(self, audience: Audience, view: Any) -> None:
        """The view an audience's sockets now show, and when the clock alone may change it."""
        self._views[audience] = view
        self._set_due(audience, self.renderer.changes_at(audience, view))

    def _set_due(self, audience: Audience, due: datetime | None) -> None:
        """When the clock alone may next change what the audience shows: the hub refreshes it
        then. Only a deadline ahead moves the hub's next wake; one come already (a view read
        at its deadline) waits for the refresh interval, so no view is read again and again."""
        self._due[audience] = due
        if due is not None and (self._soonest is None or due < self._soonest) \
                and due > self.renderer.clock():
            self._soonest = due

    def _show_text(self, audience: Audience, text: str, only_if_changed: bool) -> None:
        key = _AGES.sub("", text)
        if (only_if_changed or audience[0] in QUIET) and self._sent.get(audience) == key:
            return
        self._sent[audience] = key
        self._fan_out([audience], text)

    def _fan_out(self, audiences: Iterable[Audience], text: str) -> None:
        frame = self._frame(text)
        for audience in audiences:
            for sub in list(self.audiences.get(audience, ())):
                if sub.done:
                    continue
                if not sub.offer(text, frame):
                    self.kick(sub, CLOSE_SLOW)

    def _frame(self, text: str) -> bytes:
        """The message as one WebSocket frame, encoded once however many sockets get it."""
        memo = self._frames.get(id(text))
        if memo is None or memo[0] is not text:
            memo = (text, text_frame(text))
            if len(self._frames) >= 16:
                self._frames.clear()
            self._frames[id(text)] = memo
        return memo[1]

    def kick(self, sub: Subscriber, code: int) -> None:
        """Cut a socket off without waiting for it: the others never wait for a slow one."""
        self.kicked += 1
        if code == CLOSE_SLOW:
            metrics.SEND_DROPS.labels(sub.audience[0]).inc()
        self.cut(sub, code, "queue full")

    def cut(self, sub: Subscriber, code: int, why: str) -> None:
        """Close one socket now (from the hub's loop), without waiting for its peer."""
        log.info("closing a %s socket (%s)", sub.audience[0], why)
        sub.done = True
        sub.close_code = code
        if sub.sender is not None:
            sub.sender.cancel()
        loop = asyncio.get_running_loop()
        gone = self._remove(sub)
        if gone:
            loop.create_task(self.bus.unsubscribe(*gone))
        loop.create_task(sub.close(code))

    async def _view_update(self, audience: Audience, after_events: bool = True) -> None:
        """A board (review queue, command log) gets only what changed since the view its
        sockets show (fragments.py)."""
        old = self._views.get(audience)
        view, text = await run_in_threadpool(self._read_view, audience, old)
        self._show_view(audience, view, text, after_events)

    def _show_view(self, audience: Audience, view: Any, text: str | None,
                   after_events: bool) -> None:
        self.renders[audience[0]] += 1
        if not self.audiences.get(audience):
            return  # all its sockets left meanwhile: keep no view that later events won't move
        self._keep(audience, view)
        # After events, even when nothing shown changed, say which events the page now shows:
        # the view may already have shown one committed while the previous update was read.
        if text is not None or after_events:
            self._fan_out([audience], (text or "") + self._seq_mark(self.last_seq))

    def _read_view(self, audience: Audience, old: Any, source: db.Source | None = None,
                   change: Change | None = None) -> tuple[Any, str | None]:
        """The view now and what its sockets need of it: the whole when they show none yet
        (or when they always get the whole). Given the change since `old`, only the rows it
        touched are read."""
        view = self.renderer.view(audience, source, old, change)
        if old is None:
            return view, self.renderer.body(audience, view)
        return view, self.renderer.delta(audience, old, view)

    @staticmethod
    def _seq_mark(seq: int) -> str:
        """Which events a message shows: every event up to `seq` (also the heartbeat)."""
        return (f'<span id="{HEARTBEAT_ID}" hidden data-seq="{seq}" '
                f'data-at="{int(time.time())}"></span>')

    async def _render(self, audience: Audience) -> str:
        text, due = await run_in_threadpool(self._read_text, audience)
        self.renders[audience[0]] += 1
        self._cache[audience] = (self.last_seq, time.monotonic(), None, text)
        self._set_due(audience, due)
        return text

    def _read_text(self, audience: Audience) -> tuple[str, datetime | None]:
        """An audience read and rendered whole, and when the clock alone may next change it."""
        if audience[0] in QUIET:  # the review count: events alone change it
            return self.renderer.review_count(audience[1]), None
        view = self.renderer.view(audience)
        return self.renderer.body(audience, view), self.renderer.changes_at(audience, view)

    async def _snapshot(self, audience: Audience) -> str:
        if audience[0] in VIEWED:
            # The snapshot shows the very view the audience's next update starts from, so a
            # socket that joins between a commit and its catch-up converges with the rest.
            view = self._views.get(audience)
            if view is None:
                view = await run_in_threadpool(self.renderer.view, audience)
                self._keep(audience, view)
                self.renders[audience[0]] += 1
            cached = self._cache.get(audience)
            if cached and cached[2] is view:
                return cached[3]
            text = await run_in_threadpool(self.renderer.body, audience, view)
            self._cache[audience] = (self.last_seq, time.monotonic(), view, text)
            return text
        cached = self._cache.get(audience)
        if cached and cached[0] == self.last_seq and time.monotonic() - cached[1] < 5:
            return cached[3]
        return await self._render(audience)

    # the outbox reads

    def _read_new(self, source: db.Source | None = None) -> list[dict[str, Any]]:
        cols = (events.c.seq, events.c.job_id, events.c.unit_id, events.c.precinct,
                events.c.kind, events.c.payload, events.c.at, events.c.actor, events.c.after)
        now = time.monotonic()
        self.pending = {s: t for s, t in self.pending.items() if t > now}
        cond = events.c.seq > self.last_seq
        if self.pending:
            cond = sa.or_(cond, events.c.seq.in_(sorted(self.pending)))
        with db.read(source or self.engine) as conn:
            rows = conn.execute(sa.select(*cols).where(cond).order_by(events.c.seq)
                                .limit(READ_LIMIT)).mappings().all()
        out = []
        for row in rows:
            seq = row["seq"]
            if seq in self.pending:
                del self.pending[seq]
            elif seq > self.last_seq:
                # A transaction that took an earlier number may not have committed yet.
                for missing in range(self.last_seq + 1, min(seq, self.last_seq + 500)):
                    self.pending[missing] = now + self.gap_s
                self.last_seq = seq
            out.append(dict(row))
        return out


def of(conn: HTTPConnection) -> Hub:
    """The web process's hub (one per app)."""
    return conn.app.state.hub
