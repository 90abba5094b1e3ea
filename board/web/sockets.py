"""The WebSocket routes: who may subscribe to which audience, decided once at subscription.

Authorization comes from the session cookie (a wall's too, once its token is exchanged); nothing
a client sends is read except to notice the close. Each socket remembers its session, so the hub
closes it when the session is revoked or times out.

A live socket lasts hours, and every coroutine between the server and its endpoint lasts as long:
`Shortcut` (the innermost middleware) sends it straight to its endpoint, past the exception
middleware and the router (their frames were ~5 KB of each socket), so the endpoint itself
answers a database outage as their handler did (close 1013, health.unavailable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from board.accountability import commandlog, reviews
from board.auth import accounts as auth
from board.domain.access import Actor, Forbidden, Role
from board.live import frames
from board.live import hub as live_hub
from board.live.audiences import Audience, board_of
from board.live.subscriber import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, Subscriber
from board.storage import db
from board.storage.schema import units
from board.usecases import queries
from board.web import health


def _same_origin(ws: WebSocket) -> bool:
    """Cookies ride along on a cross-site socket too: only our own pages may open one."""
    origin = ws.headers.get("origin")
    return origin is None or urlparse(origin).netloc == ws.headers.get("host", "")


async def _socket_actor(ws: WebSocket) -> Actor | None:
    """The socket's user, from the session cookie only (a wall's too: its token was exchanged
    for a session when the page loaded), so revoking the session closes the socket."""
    if "session" not in ws.scope:
        return None
    return await run_in_threadpool(auth.current_actor, ws)


def _audience(kind: str, actor: Actor, ws: WebSocket) -> Audience:
    """What this actor may watch here, or Forbidden: decided once, at subscription."""
    if kind == "board":
        precinct = ws.path_params["precinct"]
        queries.check_precinct(actor, precinct)
        return board_of(actor, precinct)
    if kind == "wall":
        precinct = ws.path_params["precinct"]
        queries.check_precinct(actor, precinct)
        return ("wall", precinct)
    if kind == "reviews":
        precinct = ws.path_params["precinct"]
        reviews.check_reader(actor, precinct)
        return ("reviews", precinct, actor.may("review"))
    if kind == "log":
        precinct = ws.path_params["precinct"]
        commandlog.check_reader(actor, precinct)
        return ("log", precinct, actor.may("log_entry"))
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


def _also(actor: Actor) -> tuple[Audience, ...]:
    """What every page of this actor hears besides its own: the header's review count."""
    return (("review_count", actor.precincts),) if actor.role in reviews.READERS else ()


async def _until_closed(ws: WebSocket) -> None:
    """Wait in the endpoint's own task (no task of its own per socket) for the end: the peer's
    close, or the hub's (revoked session, too slow, restart), which the server reports to the
    app as a disconnect too. Client messages are read only to notice it, never obeyed."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass


def _socket(kind: str) -> Callable[[WebSocket], Any]:
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        if not _same_origin(ws):
            await ws.close(CLOSE_FORBIDDEN)
            return
        try:
            sub = await _subscribe(kind, ws)
        except db.UNAVAILABLE as e:
            await health.unavailable(ws, e)
            return
        if sub is None:
            return
        hub = live_hub.of(ws)
        try:
            await _until_closed(ws)
        finally:
            await hub.leave(sub)
    return endpoint


async def _subscribe(kind: str, ws: WebSocket) -> Subscriber | None:
    """The socket's subscription, its snapshot sent; None when it was refused (and closed)."""
    actor = await _socket_actor(ws)
    if actor is None:
        await ws.close(CLOSE_UNAUTHENTICATED)
        return None
    try:
        audience = _audience(kind, actor, ws)
    except Forbidden:
        await ws.close(CLOSE_FORBIDDEN)
        return None
    hub = live_hub.of(ws)
    sub = Subscriber(ws, audience, hub.queue_size, session_id=actor.session_id,
                     also=_also(actor), direct=frames.direct(ws.scope))
    await hub.join(sub)
    return sub


routes: list[BaseRoute] = [
    WebSocketRoute("/ws/board/{precinct}", _socket("board")),
    WebSocketRoute("/ws/wall/{precinct}", _socket("wall")),
    WebSocketRoute("/ws/my", _socket("my")),
    WebSocketRoute("/ws/city", _socket("city")),
    WebSocketRoute("/ws/review/{precinct}", _socket("reviews")),
    WebSocketRoute("/ws/log/{precinct}", _socket("log")),
]


class Shortcut:
    """ASGI middleware (innermost): a socket of `routes` goes straight to its endpoint; every
    other connection goes on to the exception middleware and the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: it keeps no frame of its own alive for the socket's hours.
        if scope["type"] == "websocket":
            for route in routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    return route.endpoint(WebSocket(scope, receive, send))  # type: ignore[attr-defined]
        return self.app(scope, receive, send)
