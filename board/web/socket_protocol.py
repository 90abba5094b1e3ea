"""The WebSocket protocol `board serve` runs uvicorn with: uvicorn's own (websockets, sans-I/O),
holding less for each of the hours a live socket lasts.

A thousand idle board sockets are mostly what the server keeps per connection (BENCHMARKS.md,
"Idle screens and memory per socket"). Of uvicorn's ~20 KB a socket, three things are never
needed once the socket is open, or are far bigger than what they hold:
- the receive queue is an `asyncio.Queue` and the flow-control flag an `asyncio.Event`: five
  deques (~3.8 KB) for a queue that holds one message at a time, read by the endpoint's one task
  (`Inbox`, `Flag`);
- the handshake's request: websockets' parser keeps it for the connection's life, with its
  headers (~2.8 KB, the cookie the longest), after uvicorn has copied them into the scope;
- the handshake's response, never read again once sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


async def _woken(waiters: list[asyncio.Future[None]]) -> None:
    """Wait, among `waiters`, until `_wake` wakes them (or the wait is cancelled)."""
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    finally:
        waiters.remove(waiter)


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


class Inbox:
    """An unbounded first-in first-out queue of what the client sent, as `asyncio.Queue` is
    used here (`put_nowait`, `get`, `empty`), holding two lists rather than four deques."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        _wake(self._waiters)

    async def get(self) -> Any:
        while not self._items:
            await _woken(self._waiters)
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Flag:
    """A flag tasks can wait for, as `asyncio.Event` is used here (`set`, `clear`, `is_set`,
    `wait`), its waiters in a list rather than a deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            _wake(self._waiters)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            await _woken(self._waiters)
        return True


class LeanSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol with a lighter queue and flag, letting go of the handshake once the
    socket is open (`uvicorn.Config(ws=LeanSocketProtocol)`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The scope holds its own copy of the headers, and the response is made: nothing reads
        # the request again, but websockets' parser keeps it as long as the connection lasts.
        event.headers.clear()
        self.request = None

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and message["type"] == "websocket.accept":
            self.response = None  # sent: never read again
