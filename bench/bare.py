"""The limit: a broadcast server written with the `websockets` library alone.

    python bench/bare.py PORT [--deflate] [--ping S]

Board clients connect to /ws and get the current snapshot, then every broadcast. The benchmark
driver connects to /control and sends "S<text>" (set the snapshot) or "B<text>" (broadcast
this text to every board client now) — the same bytes the board sent, at the same rate. With
channels (bench/cityday.py: one per screen), a client connects to /ws/<channel> and the driver
sends "S<channel>\0<text>" / "B<channel>\0<text>"; "/ws" is the channel "". No
database, no rendering, no sessions: what is left is the cost of the frames themselves. It runs
on uvloop, as the board's uvicorn does, so the two differ by what they do, not by their loop.
`--ping S` pings every client every S seconds, as uvicorn does (its default: 20): the idle
baseline (bench/fanout.py --idle).
"""

from __future__ import annotations

import asyncio
import sys

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: dict[str, set[ServerConnection]] = {}
snapshots: dict[str, str] = {}


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    if path == "/control":
        async for msg in ws:
            text = msg if isinstance(msg, str) else msg.decode()
            channel, sep, body = text[1:].partition("\0")
            if not sep:
                channel, body = "", text[1:]
            if text.startswith("S"):
                snapshots[channel] = body
            else:
                broadcast(clients.get(channel, ()), body)
        return
    channel = path[len("/ws/"):] if path.startswith("/ws/") else ""
    await ws.send(snapshots.get(channel, ""))
    clients.setdefault(channel, set()).add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients[channel].discard(ws)


async def main(port: int) -> None:
    deflate = "deflate" if "--deflate" in sys.argv else None
    ping = float(sys.argv[sys.argv.index("--ping") + 1]) if "--ping" in sys.argv else None
    async with serve(handler, "127.0.0.1", port, compression=deflate, max_size=None,
                     ping_interval=ping, ping_timeout=ping, backlog=2048):
        await asyncio.Future()


if __name__ == "__main__":
    assert websockets.__version__
    uvloop.run(main(int(sys.argv[1])))  # the event loop the board's uvicorn runs on
