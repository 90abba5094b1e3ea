"""Pay per byte once: one encoded WebSocket frame for every socket of an audience.

Through ASGI, every `send_text` is encoded to UTF-8 and framed again for each socket (and
deflated again, when permessage-deflate is on), and each socket needs a task to await it: at
1,000 board sockets that per-socket work, not rendering, was the fan-out's cost. The hub makes
the frame once per message (`text_frame`) and, where a connection allows it, writes those same
bytes to each socket's transport (`Direct.write`). It allows it when uvicorn's websockets
protocol serves the socket, the handshake is done, no close was sent, no extension (such as
permessage-deflate) was negotiated and the transport is not paused for flow control; otherwise
the message takes the ordinary ASGI path, queued behind anything not yet sent.

`RawSend` (outermost middleware) keeps the server's own `send` in the scope, before other
middleware wraps it, so a live socket can find its connection.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from websockets.frames import Frame, Opcode

RAW_SEND = "board.raw_send"
_NEEDS = ("transport", "conn", "writable", "close_sent", "handshake_complete", "disconnected")


def text_frame(text: str) -> bytes:
    """A server's (unmasked, unfragmented) text frame carrying `text`."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class RawSend:
    """ASGI middleware: remember the server's send callable for WebSocket connections."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        # Not a coroutine: returning the app's own awaitable keeps no frame of this middleware
        # alive for the hours a live socket lasts.
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        return self.app(scope, receive, send)


class Direct:
    """Writes ready-made frames to one uvicorn connection's transport, when that is safe."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, frame: bytes) -> bool:
        p = self.protocol
        if (p.close_sent or p.disconnected or not p.handshake_complete
                or not p.writable.is_set() or p.conn.extensions or p.transport.is_closing()):
            return False
        p.transport.write(frame)
        return True

    def abort(self) -> None:
        """Drop the connection (a peer that never reads cannot take even a close frame)."""
        self.protocol.transport.abort()


def direct(scope: dict[str, Any]) -> Direct | None:
    """The connection's direct writer, or None when it is served some other way."""
    protocol = getattr(scope.get(RAW_SEND), "__self__", None)
    if protocol is None or not all(hasattr(protocol, a) for a in _NEEDS):
        return None
    return Direct(protocol)
