"""The limit: a broadcast server written with the `websockets` library alone.

    python bench/bare.py PORT

Board clients connect to /ws and get the current snapshot, then every broadcast. The benchmark
driver connects to /control and sends "S<text>" (set the snapshot) or "B<text>" (broadcast
this text to every board client now) — the same bytes the board sent, at the same rate. No
database, no rendering, no sessions: what is left is the cost of the frames themselves. It runs
on uvloop, as the board's uvicorn does, so the two differ by what they do, not by their loop.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()
snapshot = [""]


async def handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path == "/control":
        async for msg in ws:
            text = msg if isinstance(msg, str) else msg.decode()
            if text.startswith("S"):
                snapshot[0] = text[1:]
            else:
                broadcast(clients, text[1:])
        return
    await ws.send(snapshot[0])
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)


async def main(port: int) -> None:
    deflate = "deflate" if "--deflate" in sys.argv else None
    async with serve(handler, "127.0.0.1", port, compression=deflate, max_size=None,
                     ping_interval=None, backlog=2048):
        await asyncio.Future()


if __name__ == "__main__":
    assert websockets.__version__
    uvloop.run(main(int(sys.argv[1])))  # the event loop the board's uvicorn runs on
