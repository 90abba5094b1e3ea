"""One subscribed socket: the shared frame written straight to it when nothing is waiting, else a
bounded queue drained by its own sender task; a socket that cannot keep up is cut off (1013) and
resyncs with a fresh snapshot when it reconnects."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from board.live.audiences import Audience
from board.live.frames import Direct

# Close codes: the htmx ws extension reconnects (with backoff) on 1006/1011/1012/1013.
CLOSE_SLOW = 1013        # try again later: cut off for not keeping up


CLOSE_RESTART = 1012     # service restart


CLOSE_UNAUTHENTICATED = 4401


CLOSE_FORBIDDEN = 4403


class Socket(Protocol):
    async def send_text(self, data: str) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Subscriber:
    """One socket: the shared frame written straight to it when nothing is waiting, else a
    bounded list of waiting messages and a task that sends them in order, both made when first
    needed and dropped once all is sent (most sockets never need them: at 1,000 sockets each
    object here is kilobytes of the process).

    It hears its page's audience and any `also` (the header's review count): every message of
    every one of them goes the one way, in the order the hub rendered them."""

    __slots__ = ("socket", "audience", "audiences", "session_id", "maxsize", "waiting", "done",
                 "close_code", "sent", "sender", "direct", "direct_sent")

    def __init__(self, socket: Socket, audience: Audience, maxsize: int,
                 session_id: int | None = None, also: tuple[Audience, ...] = (),
                 direct: Direct | None = None) -> None:
        self.socket = socket
        self.audience = audience
        self.audiences = (audience, *also)
        self.session_id = session_id  # closed at once when this session is revoked
        self.maxsize = maxsize
        self.waiting: deque[str] | None = None  # only while `sender` runs
        self.done = False                        # closed, or the peer is gone: offer no more
        self.close_code: int | None = None
        self.sent = 0
        self.sender: asyncio.Task[None] | None = None
        self.direct = direct     # writes the audience's ready-made frame (frames.py)
        self.direct_sent = 0

    def offer(self, text: str, frame: bytes | None = None) -> bool:
        """Send now when nothing is waiting (the shared frame, straight to the connection),
        else queue behind what is waiting; False when the queue is full."""
        if self.done:
            return True
        if self.sender is None:
            if frame is not None and self.direct is not None and self.direct.write(frame):
                self.sent += 1
                self.direct_sent += 1
                return True
            self.waiting = deque()
            self.sender = asyncio.get_running_loop().create_task(self._send_waiting(),
                                                                 name="live-sender")
        elif len(self.waiting or ()) >= self.maxsize:
            return False
        assert self.waiting is not None
        self.waiting.append(text)
        return True

    async def _send_waiting(self) -> None:
        """Send what waits, in order, then end: the next message may go straight again."""
        waiting = self.waiting
        assert waiting is not None
        try:
            while waiting:
                await self.socket.send_text(waiting.popleft())
                self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the peer is gone
            self.done = True
            return
        self.sender = self.waiting = None

    async def close(self, code: int) -> None:
        """Stop sending and close the socket; bounded even if the peer never reads (then the
        connection is dropped, which ends its endpoint as a close would)."""
        if self.close_code is None:
            self.close_code = code
        self.done = True
        if self.sender is not None and self.sender is not asyncio.current_task():
            self.sender.cancel()
        try:
            await asyncio.wait_for(self.socket.close(code), 1.0)
        except Exception:  # noqa: BLE001 - the peer is gone or stuck
            if self.direct is not None:
                self.direct.abort()
