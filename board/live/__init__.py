"""Live updates: committed events → rendered fragments → every subscribed WebSocket.

  audiences.py  who hears what (no I/O)
  render.py     a view read from the database, rendered as the partial an audience sees
  hub.py        the hub: outbox reads, render once per audience, bounded per-socket queues
  sockets.py    the WebSocket routes, authorized once at subscription
  pages.py      the wall display and citywide pages
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.routing import BaseRoute

from board.bus import Bus
from board.live import pages, sockets
from board.live.hub import Hub
from board.live.render import Renderer


def make_hub(dispatch: Any, env: Environment, bus: Bus, tile_url: str | None = None,
             **kw: Any) -> Hub:
    return Hub(Renderer(dispatch.engine, dispatch.geo, env, tile_url), bus, **kw)


routes: list[BaseRoute] = [*pages.routes, *sockets.routes]
