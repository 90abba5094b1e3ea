"""Live updates: committed events → rendered fragments → every subscribed WebSocket.

  audiences.py  who hears what (no I/O)
  render.py     a view read from the database, rendered as the partial an audience sees
  hub.py        the hub: outbox reads, render once per audience, fan-out to subscribers
  subscriber.py one socket: direct writes, else a bounded queue; cut off when it lags
  bus.py        "something committed on this channel" nudges between processes
  cards.py      rendered job cards, kept per process

The routes that serve them (sockets, the wall and citywide pages) are in board.web.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from board.domain.places import PlaceRules
from board.live.bus import Bus
from board.live.hub import Hub
from board.live.render import Renderer


def make_hub(dispatch: Any, env: Environment, bus: Bus, tile_url: str | None = None,
             **kw: Any) -> Hub:
    return Hub(Renderer(dispatch.engine, dispatch.geo, env, tile_url,
                        places=getattr(dispatch, "places", PlaceRules())), bus, **kw)

