"""The composition root: the one place that wires settings, engine, map, bus and use cases.

The web app factory, the `board` command and every worker start here, so a process is built
the same way whichever door it came in by. Nothing below this layer reads the environment or
chooses an adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from jinja2 import Environment

from board.domain.places import PlaceRules
from board.geo import store as geostore
from board.live import make_hub
from board.live.audiences import announcements
from board.live.bus import Bus, SyncPublisher, make_bus
from board.live.hub import Hub
from board.settings import Settings
from board.storage import db
from board.usecases import Dispatch


def open_dispatch(settings: Settings) -> Dispatch:
    """The use cases on a migrated database and its stored map: what every process starts."""
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, settings.geo_dir, settings.route_max_distance_m))
    d.places = PlaceRules(chronic_complaints=settings.chronic_complaints)
    d.arrival_position = settings.arrival_position  # the department's evidence settings
    d.summons_pattern = settings.summons_pattern
    return d


def worker_dispatch(settings: Settings) -> Dispatch:
    """The use cases for a process without sockets that runs until it is stopped (a worker):
    with Redis, boards hear its events at once; without, they catch up from the events table
    by anti-entropy."""
    d = open_dispatch(settings)
    _announce(d, settings)
    return d


@contextmanager
def worker(settings: Settings) -> Iterator[Dispatch]:
    """`worker_dispatch` for one command: its database and Redis connections closed after it,
    whatever happened, so none is left to the garbage collector."""
    d = open_dispatch(settings)
    publisher = _announce(d, settings)
    try:
        yield d
    finally:
        if publisher is not None:
            publisher.close()
        db.close(d.engine)


def _announce(d: Dispatch, settings: Settings) -> SyncPublisher | None:
    if not settings.redis_url:
        return None
    publisher = SyncPublisher(settings.redis_url)
    d.listeners.append(lambda evs: publisher.publish(announcements(evs)))
    return publisher


def bus(settings: Settings) -> Bus:
    return make_bus(settings.redis_url)


def hub(settings: Settings, dispatch: Dispatch, env: Environment, **kw: object) -> Hub:
    """The live hub of one web process, listening to its use cases' commits."""
    return make_hub(dispatch, env, bus(settings), settings.tile_url, **kw)


@contextmanager
def migrated(settings: Settings) -> Iterator[sa.Engine]:
    """A migrated engine for one command, closed after it (no connection left to the GC)."""
    engine = db.make_engine(settings.database_url)
    try:
        db.migrate(engine)
        yield engine
    finally:
        db.close(engine)
