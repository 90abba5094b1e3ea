"""The live hub: committed events → rendered fragments → every subscribed WebSocket.

One hub per web process. It hears nudges on the bus, then reads the committed events after its
last sequence number from the events table (the outbox), works out which audiences they touch,
renders each touched fragment ONCE per audience and puts the same string on every subscribed
socket's bounded queue; one sender task per socket drains it. A socket whose queue is full is
cut off (close 1013, "try again later"): the client reconnects and gets a full snapshot, which
is what every (re)connect gets. Every `anti_entropy_s` the hub reads the events table anyway,
so an event whose nudge was lost (a crash between commit and publish, a Redis outage) reaches
the boards within seconds. Sequence numbers skipped by a concurrent transaction still in flight
are watched until they commit (or for `gap_s`).

Audiences (what one rendering serves):
  ("board", precinct, mode, citywide)  partials/board_body.html    /ws/board/{precinct}
  ("my", unit_id)                      partials/my_queue.html      /ws/my
  ("wall", precinct)                   partials/wall_body.html     /ws/wall/{precinct}
  ("city", scope)                      partials/city_counters.html /ws/city

Authorization is decided once, when the socket subscribes, from the session cookie (or a wall
device token); nothing a client sends is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlparse
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from board import auth, db, queries
from board.access import CITYWIDE, Actor, Forbidden, Role
from board.bus import Bus
from board.flags import FLAG_LABELS
from board.lifecycle import OPEN, WORKING, Status
from board.pages import page, render
from board.priorities import Deadlines, overdue
from board.schema import events, jobs, units

log = logging.getLogger("board.live")

Audience = tuple[Any, ...]
HEARTBEAT_ID = "live-beat"
_AGES = re.compile(r'<span class="age"[^>]*>[^<]*</span>')
TOUR_TZ = ZoneInfo("America/New_York")
TICKER = 12

# Close codes: the htmx ws extension reconnects (with backoff) on 1006/1011/1012/1013.
CLOSE_SLOW = 1013        # try again later: cut off for not keeping up
CLOSE_RESTART = 1012     # service restart
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


READ_LIMIT = 2000  # events read per catch-up round


def _now() -> datetime:
    return datetime.now(UTC)


def tour_start(now: datetime) -> datetime:
    """NYPD tours: 23:00–07:00, 07:00–15:00, 15:00–23:00, local time."""
    local = now.astimezone(TOUR_TZ)
    start_hour = max((h for h in (7, 15, 23) if local.hour >= h), default=None)
    if start_hour is None:
        day = local - timedelta(days=1)
        start = day.replace(hour=23, minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


# -- who hears what ---------------------------------------------------------------------------

def channels_of(audience: Audience) -> set[str]:
    kind = audience[0]
    if kind == "board":
        return {f"precinct:{audience[1]}", *(["precinct:-"] if audience[3] else [])}
    if kind == "wall":
        return {f"precinct:{audience[1]}"}
    if kind == "my":
        return {f"unit:{audience[1]}"}
    return {"city"}


def _touched(ev: Any) -> tuple[set[str | None], set[int]]:
    payload = ev["payload"] or {}
    precincts: set[str | None] = {ev["precinct"]}
    if ev["kind"] == "route":
        precincts |= {payload.get("precinct"), payload.get("from")}
    units = {u for u in (ev["unit_id"], payload.get("from_unit_id")) if isinstance(u, int)}
    return precincts, units


def event_channels(ev: dict[str, Any]) -> set[str]:
    """Where a committed event is announced."""
    precincts, units = _touched(ev)
    return ({f"precinct:{p if p else '-'}" for p in precincts}
            | {f"unit:{u}" for u in units} | {"city"})


def announcements(evs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(channel, message) pairs that wake every hub whose audiences these events touch."""
    channels: set[str] = set()
    for ev in evs:
        channels |= event_channels(ev)
    seq = max((ev["seq"] for ev in evs), default=0)
    return [(c, json.dumps({"seq": seq})) for c in sorted(channels)]


def _sees(scope: frozenset[str], precinct: str | None) -> bool:
    return precinct is not None and (CITYWIDE in scope or precinct in scope)


def affected(audience: Audience, precincts: set[str | None], units: set[int]) -> bool:
    kind = audience[0]
    if kind == "board":
        return audience[1] in precincts or (audience[3] and None in precincts)
    if kind == "wall":
        return audience[1] in precincts
    if kind == "my":
        return audience[1] in units
    return any(_sees(audience[1], p) for p in precincts)


# -- the sockets ------------------------------------------------------------------------------

class Socket(Protocol):
    async def send_text(self, data: str) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Subscriber:
    """One socket: a bounded queue of fragments and the task that sends them in order."""

    def __init__(self, socket: Socket, audience: Audience, maxsize: int) -> None:
        self.socket = socket
        self.audience = audience
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.done = asyncio.Event()
        self.close_code: int | None = None
        self.sent = 0
        self.sender: asyncio.Task[None] | None = None

    def offer(self, text: str) -> bool:
        if self.done.is_set():
            return True
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False

    async def run(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                await self.socket.send_text(text)
                self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the peer is gone
            self.done.set()

    async def close(self, code: int) -> None:
        """Stop sending and close the socket; bounded even if the peer never reads."""
        if self.close_code is None:
            self.close_code = code
        if self.sender is not None and self.sender is not asyncio.current_task():
            self.sender.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(code), 1.0)
        self.done.set()


# -- rendering --------------------------------------------------------------------------------

@dataclass
class Renderer:
    """Reads a view from the database and renders its partial: run in a worker thread."""

    engine: sa.Engine
    geo: Any
    env: Environment
    tile_url: str | None = None
    clock: Callable[[], datetime] = _now

    def _render(self, name: str, **context: Any) -> str:
        ctx = {"actor": None, "csrf": "", "now": self.clock(), "flashes": [],
               "FLAG_LABELS": FLAG_LABELS, "tile_url": self.tile_url, **context}
        return self.env.get_template(name).render(ctx).strip()

    def render(self, audience: Audience) -> str:
        kind = audience[0]
        if kind == "board":
            return self.board(*audience[1:])
        if kind == "my":
            return self.my(audience[1])
        if kind == "wall":
            return self.wall(audience[1])
        return self.city(audience[1])

    def board(self, precinct: str, mode: str, citywide: bool) -> str:
        role = Role.SUPERVISOR if mode == "supervisor" else Role.COMMANDER
        who = Actor(None, "live", role, frozenset({CITYWIDE} if citywide else {precinct}))
        view = queries.board(self.engine, who, precinct, self.clock())
        return self._render("partials/board_body.html", view=view, precinct=precinct, mode=mode,
                            units=view.lanes)

    def my(self, unit_id: int) -> str:
        who = Actor(None, "live", Role.OFFICER, frozenset({CITYWIDE}), unit_id)
        q = queries.officer_queue(self.engine, who, self.clock())
        return self._render("partials/my_queue.html", q=q, mode="officer")

    def wall(self, precinct: str) -> str:
        now = self.clock()
        who = Actor(None, "live", Role.WALL, frozenset({precinct}))
        view = queries.board(self.engine, who, precinct, now)
        with db.read(self.engine) as conn:
            closed_tour = conn.execute(
                sa.select(sa.func.count()).select_from(jobs).where(
                    jobs.c.precinct == precinct, jobs.c.status == "closed",
                    jobs.c.closed_at >= tour_start(now))).scalar() or 0
            ticker = conn.execute(
                sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id,
                          events.c.actor, events.c.payload, events.c.after,
                          jobs.c.complaint_type)
                .select_from(events.outerjoin(jobs, jobs.c.id == events.c.job_id))
                .where(events.c.precinct == precinct,
                       events.c.kind.not_in(["view_photo", "unit_position"]))
                .order_by(events.c.seq.desc()).limit(TICKER)).all()
        return self._render("partials/wall_body.html", view=view, precinct=precinct,
                            mode="view", units=view.lanes, closed_tour=closed_tour,
                            ticker=ticker, tz=TOUR_TZ)

    def city(self, scope: frozenset[str]) -> str:
        now = self.clock()
        rows = city_counters(self.engine, self.geo, scope, now)
        return self._render("partials/city_counters.html", rows=rows, total=totals(rows))


def city_counters(engine: sa.Engine, geo: Any, scope: frozenset[str],
                  now: datetime) -> list[dict[str, Any]]:
    """Every precinct in scope: unassigned, overdue, open by stage, closed this tour."""
    keys = ("unassigned", "held", "overdue", *(s.value for s in WORKING), "closed_tour")
    with db.read(engine) as conn:
        open_rows = conn.execute(
            sa.select(jobs.c.precinct, jobs.c.status, jobs.c.unit_id, jobs.c.ack_due,
                      jobs.c.arrive_due, jobs.c.close_due)
            .where(jobs.c.precinct.is_not(None), jobs.c.status.in_([s.value for s in OPEN]))
        ).all()
        closed = dict(conn.execute(
            sa.select(jobs.c.precinct, sa.func.count()).where(
                jobs.c.precinct.is_not(None), jobs.c.status == "closed",
                jobs.c.closed_at >= tour_start(now)).group_by(jobs.c.precinct)).all())
    known = set(geo.precincts()) if geo is not None else set()
    names = {p for p in known | {r.precinct for r in open_rows} | set(closed) if _sees(scope, p)}
    table = {p: dict.fromkeys(keys, 0) for p in names}
    for r in open_rows:
        if r.precinct not in table:
            continue
        row = table[r.precinct]
        if r.status == Status.NEW.value and r.unit_id is None:
            row["unassigned"] += 1
        elif r.status == Status.HELD.value:
            row["held"] += 1
        elif r.status in row:
            row[r.status] += 1
        if overdue(r.status, Deadlines(r.ack_due, r.arrive_due, r.close_due), now):
            row["overdue"] += 1
    for p, n in closed.items():
        if p in table:
            table[p]["closed_tour"] = n
    return [{"precinct": p, **table[p]}
            for p in sorted(table, key=lambda p: (len(p), p))]


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The citywide line under the precincts' counters."""
    total: dict[str, int] = defaultdict(int)
    for r in rows:
        for k, v in r.items():
            if k != "precinct":
                total[k] += v
    return total


# -- the hub ----------------------------------------------------------------------------------

class Hub:
    def __init__(self, renderer: Renderer, bus: Bus, *, queue_size: int = 64,
                 anti_entropy_s: float = 2.0, heartbeat_s: float = 15.0,
                 refresh_s: float = 30.0, gap_s: float = 10.0) -> None:
        self.renderer = renderer
        self.engine = renderer.engine
        self.bus = bus
        self.queue_size = queue_size
        self.anti_entropy_s = anti_entropy_s
        self.heartbeat_s = heartbeat_s
        self.refresh_s = refresh_s
        self.gap_s = gap_s
        self.audiences: dict[Audience, set[Subscriber]] = defaultdict(set)
        self.last_seq = 0
        self.pending: dict[int, float] = {}      # skipped seq → give up at (monotonic)
        self.renders: Counter[str] = Counter()   # audience kind → renders, for figures & tests
        self.kicked = 0
        self.nudges = 0                          # bus messages heard
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cache: dict[Audience, tuple[int, float, str]] = {}
        self._sent: dict[Audience, str] = {}     # last pushed, minus ages
        self.publish_enabled = True              # tests turn it off to lose nudges

    # lifecycle

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.last_seq = await run_in_threadpool(self._max_seq)
        await self.bus.start(self._on_bus)
        self._tasks = [asyncio.create_task(self._run(), name="live-hub"),
                       asyncio.create_task(self._beat(), name="live-heartbeat")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        self._tasks = []
        subs = [s for group in self.audiences.values() for s in group]
        await asyncio.gather(*(s.close(CLOSE_RESTART) for s in subs), return_exceptions=True)
        self.audiences.clear()
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
        self.nudges += 1
        if self._wake is not None:
            self._wake.set()

    # subscriptions

    async def join(self, sub: Subscriber) -> None:
        """Snapshot first, then every later change: both go through the hub lock in order."""
        assert self._lock is not None
        async with self._lock:
            text = await self._snapshot(sub.audience)
            self._sent.setdefault(sub.audience, _AGES.sub("", text))
            sub.offer(text)
            before = self._channels()
            self.audiences[sub.audience].add(sub)
            new = self._channels() - before
        sub.sender = asyncio.create_task(sub.run(), name="live-sender")
        if new:
            await self.bus.subscribe(*new)

    async def leave(self, sub: Subscriber) -> None:
        group = self.audiences.get(sub.audience)
        if group is None or sub not in group:
            return
        gone = self._remove(sub)
        if sub.sender is not None:
            sub.sender.cancel()
        if gone:
            await self.bus.unsubscribe(*gone)

    def _remove(self, sub: Subscriber) -> set[str]:
        """Take a socket out of its audience; returns the channels nobody listens to now."""
        group = self.audiences.get(sub.audience)
        if group is None or sub not in group:
            return set()
        before = self._channels()
        group.discard(sub)
        if not group:
            del self.audiences[sub.audience]
            self._cache.pop(sub.audience, None)
            self._sent.pop(sub.audience, None)
        return before - self._channels()

    def _channels(self) -> set[str]:
        return {c for a, subs in self.audiences.items() if subs for c in channels_of(a)}

    @property
    def sockets(self) -> int:
        return sum(len(s) for s in self.audiences.values())

    # the loop

    async def _run(self) -> None:
        assert self._wake is not None
        last_refresh = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.anti_entropy_s)
            self._wake.clear()
            try:
                while await self.catch_up() >= READ_LIMIT:  # far behind: keep reading
                    pass
                if time.monotonic() - last_refresh >= self.refresh_s:
                    last_refresh = time.monotonic()
                    await self.refresh(lambda a: a[0] in ("wall", "city"))
                    # Boards and queues have forms in them: push only when time alone changed
                    # what they show (a job went overdue), not every minute of an age.
                    await self.refresh(lambda a: a[0] in ("board", "my"), only_if_changed=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be down: try again next tick
                log.exception("live catch-up failed")
                await asyncio.sleep(min(self.anti_entropy_s, 1.0))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            beat = (f'<span id="{HEARTBEAT_ID}" hidden data-seq="{self.last_seq}" '
                    f'data-at="{int(time.time())}"></span>')
            self._fan_out(list(self.audiences), beat)

    async def catch_up(self) -> int:
        """Read committed events after the last seen; re-render what they touched."""
        assert self._lock is not None
        async with self._lock:
            evs = await run_in_threadpool(self._read_new)
            if not evs:
                return 0
            precincts: set[str | None] = set()
            units: set[int] = set()
            for ev in evs:
                p, u = _touched(ev)
                precincts |= p
                units |= u
            touched = [a for a in list(self.audiences)
                       if self.audiences.get(a) and affected(a, precincts, units)]
            for audience in touched:
                await self._broadcast(audience)
            return len(evs)

    async def refresh(self, which: Callable[[Audience], bool],
                      only_if_changed: bool = False) -> None:
        """Re-render audiences whose view changes with time alone (ages, overdue, tour)."""
        assert self._lock is not None
        async with self._lock:
            for audience in [a for a in list(self.audiences) if which(a)]:
                await self._broadcast(audience, only_if_changed)

    async def _broadcast(self, audience: Audience, only_if_changed: bool = False) -> None:
        text = await self._render(audience)
        key = _AGES.sub("", text)
        if only_if_changed and self._sent.get(audience) == key:
            return
        self._sent[audience] = key
        self._fan_out([audience], text)

    def _fan_out(self, audiences: Iterable[Audience], text: str) -> None:
        for audience in audiences:
            for sub in list(self.audiences.get(audience, ())):
                if sub.done.is_set():
                    continue
                if not sub.offer(text):
                    self.kick(sub, CLOSE_SLOW)

    def kick(self, sub: Subscriber, code: int) -> None:
        """Cut a socket off without waiting for it: the others never wait for a slow one."""
        self.kicked += 1
        log.info("cutting off a slow %s socket (queue full)", sub.audience[0])
        sub.done.set()
        sub.close_code = code
        if sub.sender is not None:
            sub.sender.cancel()
        loop = asyncio.get_running_loop()
        gone = self._remove(sub)
        if gone:
            loop.create_task(self.bus.unsubscribe(*gone))
        loop.create_task(sub.close(code))

    async def _render(self, audience: Audience) -> str:
        text = await run_in_threadpool(self.renderer.render, audience)
        self.renders[audience[0]] += 1
        self._cache[audience] = (self.last_seq, time.monotonic(), text)
        return text

    async def _snapshot(self, audience: Audience) -> str:
        cached = self._cache.get(audience)
        if cached and cached[0] == self.last_seq and time.monotonic() - cached[1] < 5:
            return cached[2]
        return await self._render(audience)

    # the outbox reads

    def _max_seq(self) -> int:
        with db.read(self.engine) as conn:
            return conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0

    def _read_new(self) -> list[dict[str, Any]]:
        cols = (events.c.seq, events.c.job_id, events.c.unit_id, events.c.precinct,
                events.c.kind, events.c.payload)
        now = time.monotonic()
        self.pending = {s: t for s, t in self.pending.items() if t > now}
        cond = events.c.seq > self.last_seq
        if self.pending:
            cond = sa.or_(cond, events.c.seq.in_(sorted(self.pending)))
        with db.read(self.engine) as conn:
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


def make_hub(dispatch: Any, env: Environment, bus: Bus, tile_url: str | None = None,
             **kw: Any) -> Hub:
    return Hub(Renderer(dispatch.engine, dispatch.geo, env, tile_url), bus, **kw)


# -- the WebSocket routes ---------------------------------------------------------------------

def _hub(conn: WebSocket | Request) -> Hub:
    return conn.app.state.hub


def _same_origin(ws: WebSocket) -> bool:
    """Cookies ride along on a cross-site socket too: only our own pages may open one."""
    origin = ws.headers.get("origin")
    return origin is None or urlparse(origin).netloc == ws.headers.get("host", "")


async def _socket_actor(ws: WebSocket) -> Actor | None:
    token = ws.query_params.get("token")
    engine = ws.app.state.dispatch.engine
    if token:
        actor = await run_in_threadpool(auth.token_actor, engine, token, "wall")
        return actor if actor and actor.role is Role.WALL else None
    if "session" not in ws.scope:
        return None
    return await run_in_threadpool(auth.current_actor, ws)


def _audience(kind: str, actor: Actor, ws: WebSocket) -> Audience:
    """What this actor may watch here, or Forbidden: decided once, at subscription."""
    if kind == "board":
        precinct = ws.path_params["precinct"]
        queries.check_precinct(actor, precinct)
        mode = "supervisor" if actor.may("assign") else "view"
        return ("board", precinct, mode, actor.citywide)
    if kind == "wall":
        precinct = ws.path_params["precinct"]
        queries.check_precinct(actor, precinct)
        return ("wall", precinct)
    if kind == "my":
        if actor.unit_id is None:
            raise Forbidden("you are not on a unit")
        with db.read(ws.app.state.dispatch.engine) as conn:  # one row, once per subscription
            precinct = conn.execute(sa.select(units.c.precinct)
                                    .where(units.c.id == actor.unit_id)).scalar()
        queries.check_precinct(actor, precinct)
        return ("my", actor.unit_id)
    if actor.role not in (Role.COMMANDER, Role.ADMIN, Role.SUPERVISOR):
        raise Forbidden("the citywide view is for commanders")
    return ("city", actor.precincts)


def _socket(kind: str) -> Callable[[WebSocket], Any]:
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        if not _same_origin(ws):
            await ws.close(CLOSE_FORBIDDEN)
            return
        actor = await _socket_actor(ws)
        if actor is None:
            await ws.close(CLOSE_UNAUTHENTICATED)
            return
        try:
            audience = _audience(kind, actor, ws)
        except Forbidden:
            await ws.close(CLOSE_FORBIDDEN)
            return
        hub = _hub(ws)
        sub = Subscriber(ws, audience, hub.queue_size)
        await hub.join(sub)

        async def drain() -> None:
            # Client messages are read only to notice the close; they are never obeyed.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return

        reader = asyncio.create_task(drain())
        done = asyncio.create_task(sub.done.wait())
        try:
            await asyncio.wait({reader, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            done.cancel()
            await hub.leave(sub)
            if sub.sender is not None:
                sub.sender.cancel()
    return endpoint


# -- the pages: wall display and citywide view ------------------------------------------------

async def wall_page(request: Request) -> Response:
    """/wall/<pct>?token=<device token>: the token logs the device in; only that precinct."""
    precinct = request.path_params["precinct"]
    token = request.query_params.get("token")
    if token:
        engine = request.app.state.dispatch.engine
        actor = await run_in_threadpool(auth.token_actor, engine, token, "wall")
        if actor is None or actor.role is not Role.WALL or not actor.sees(precinct):
            return render(request, None, "error.html", 403, code=403,
                          message="This display token is not valid for this precinct.")
        if request.session.get("user_id") != actor.id:
            request.session.clear()
            request.session["user_id"] = actor.id

    @page
    async def show(request: Request, actor: Actor) -> Response:
        queries.check_precinct(actor, precinct)
        ws_url = f"/ws/wall/{quote(precinct)}" + (f"?token={quote(token)}" if token else "")
        body = await run_in_threadpool(_hub(request).renderer.wall, precinct)
        return render(request, actor, "wall.html", precinct=precinct, ws_url=ws_url, body=body)
    return await show(request)


async def city_page(request: Request) -> Response:
    @page
    async def show(request: Request, actor: Actor) -> Response:
        if actor.role not in (Role.COMMANDER, Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden("the citywide view is for commanders")
        hub = _hub(request)
        rows = await run_in_threadpool(city_counters, hub.engine, hub.renderer.geo,
                                       actor.precincts, _now())
        return render(request, actor, "city.html", rows=rows, total=totals(rows))
    return await show(request)


routes: list[BaseRoute] = [
    Route("/wall/{precinct}", wall_page),
    Route("/city", city_page),
    WebSocketRoute("/ws/board/{precinct}", _socket("board")),
    WebSocketRoute("/ws/wall/{precinct}", _socket("wall")),
    WebSocketRoute("/ws/my", _socket("my")),
    WebSocketRoute("/ws/city", _socket("city")),
]
