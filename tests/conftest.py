"""Fixtures shared by the whole suite.

The suite runs on the embedded default (a fresh SQLite file per test) unless DATABASE_URL
points at PostgreSQL, in which case every test starts from emptied tables there. `make test`
runs it both ways.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from board.auth import accounts as auth
from board.domain.access import SYSTEM, Actor
from board.geo.routing import GeoIndex, load_geo
from board.settings import DEMO_HOUR, GEO_DIR
from board.storage import db
from board.storage.schema import metadata
from board.usecases import Dispatch

HOUR_CSV = DEMO_HOUR
PASSWORD = "correct horse 311"

OLD_HEADER = [
    # A pre-2015 NYC Open Data export: other columns, other order, no Resolution Description
    "Created Date", "Unique Key", "Closed Date", "Agency", "Agency Name", "Complaint Type",
    "Descriptor", "Location Type", "Incident Zip", "Incident Address", "Street Name",
    "Cross Street 1", "Cross Street 2", "Intersection Street 1", "Intersection Street 2",
    "Address Type", "City", "Landmark", "Facility Type", "Status", "Due Date",
    "Resolution Action Updated Date", "Community Board", "Borough",
    "X Coordinate (State Plane)", "Y Coordinate (State Plane)", "Park Facility Name",
    "Park Borough", "School Name", "School Number", "School Region", "School Code",
    "School Phone Number", "School Address", "School City", "School State", "School Zip",
    "School Not Found", "School or Citywide Complaint", "Vehicle Type", "Taxi Company Borough",
    "Taxi Pick Up Location", "Bridge Highway Name", "Bridge Highway Direction", "Road Ramp",
    "Bridge Highway Segment", "Garage Lot Name", "Ferry Direction", "Ferry Terminal Name",
    "Location", "Longitude", "Latitude",
]  # fmt: skip

# On PostgreSQL each test session works in a schema of its own, so runs can share a server.
PG_SCHEMA = f"test_{os.getpid()}"
_PG_BASE = os.environ.get("DATABASE_URL", "")
PG_URL = (f"{_PG_BASE}{'&' if '?' in _PG_BASE else '?'}options=-csearch_path%3D{PG_SCHEMA}"
          if _PG_BASE else "")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Count the leaks (unclosed sockets, files, connections, processes) the run left."""
    leaks = [w for w in terminalreporter.stats.get("warnings", [])
             if "ResourceWarning" in str(getattr(w, "message", ""))]
    terminalreporter.write_line(f"resource leaks found by the GC: {len(leaks)}",
                                red=bool(leaks), green=not leaks)


_OPEN: list[Any] = []


def closed_after_test(thing: Any) -> Any:
    """Close this (a client, a file) when the running test ends: no socket left to the GC."""
    _OPEN.append(thing)
    return thing


@pytest.fixture(autouse=True)
def _close_after_test() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture(autouse=True, scope="session")
def _fast_passwords() -> Iterator[None]:
    """Real argon2, cheap parameters: the suite creates many users."""
    saved = auth._hasher
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    auth._hasher = saved


@pytest.fixture(scope="session")
def geo() -> GeoIndex:
    return load_geo(GEO_DIR)


@pytest.fixture(scope="session")
def _pg_engine() -> Iterator[sa.Engine | None]:
    if not PG_URL:
        yield None
        return
    admin = db.make_engine(_PG_BASE)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {PG_SCHEMA}")
    engine = db.make_engine(PG_URL)
    db.migrate(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
    admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test starts from a copy (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "board.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def database_url(tmp_path: Path, _pg_engine: sa.Engine | None, _sqlite_template: Path) -> str:
    if _pg_engine is not None:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        with _pg_engine.begin() as conn:
            # the events' TRUNCATE trigger refuses every role: the suite's superuser empties
            # the tables with triggers off for this transaction only
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        return PG_URL
    shutil.copyfile(_sqlite_template, tmp_path / "board.db")
    return f"sqlite:///{tmp_path / 'board.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = db.make_engine(database_url)  # already migrated: the template, or the session's
    yield engine
    engine.dispose()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatch(engine: sa.Engine, geo: GeoIndex, clock: Clock) -> Dispatch:
    return Dispatch(engine, geo, clock=clock)


@dataclass
class World:
    """Two precincts, their units and people: what scope tests need."""

    dispatch: Dispatch
    units: dict[str, int]
    actors: dict[str, Actor]

    def unit(self, callsign: str) -> int:
        return self.units[callsign]


PEOPLE = {
    # username: (role, precincts, unit callsign)
    "sgt75": ("supervisor", "75", None),
    "sgt120": ("supervisor", "120", None),
    "off75a": ("officer", "75", "75-A"),
    "off75b": ("officer", "75", "75-B"),
    "off120": ("officer", "120", "120-A"),
    "cmd": ("commander", "75,120", None),
    "city": ("supervisor", "*", None),
    "admin": ("admin", "*", None),
    "wall75": ("wall", "75", None),
}


@pytest.fixture
def world(dispatch: Dispatch) -> World:
    engine = dispatch.engine
    unit_ids = {cs: dispatch.add_unit(SYSTEM, cs, cs.split("-")[0])["unit_id"]
                for cs in ("75-A", "75-B", "75-C", "120-A")}
    actors = {}
    for name, (role, precincts, unit) in PEOPLE.items():
        uid = auth.add_user(engine, name, None if role == "wall" else PASSWORD, role, precincts,
                            display_name=name.upper(), unit_callsign=unit)
        actors[name] = auth.user_actor(engine, uid)
    return World(dispatch, unit_ids, actors)


def point_in(geo: GeoIndex, precinct: str) -> tuple[float, float]:
    """A (lat, lon) well inside a precinct."""
    from shapely.geometry import shape

    p = shape(geo.precinct_feature(precinct)["geometry"]).representative_point()
    return p.y, p.x


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API keeps a loop on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=120)


def make_job(dispatch: Dispatch, precinct: str = "75", complaint: str = "Noise - Residential",
             descriptor: str = "Loud Music/Party", media: tuple[str, ...] = (),
             key: str | None = None) -> int:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob

    lat, lon = point_in(dispatch.geo, precinct)
    ev = dispatch.create_job(SYSTEM, NewJob(complaint, descriptor, address="1 TEST STREET",
                                            lat=lat, lon=lon, media=media, external_key=key),
                             source="manual")
    return ev["job_id"]


@pytest.fixture
def app(dispatch: Dispatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    from board.settings import Settings
    from board.web.app import create_app

    settings = Settings.from_env({"DATABASE_URL": str(dispatch.engine.url),
                                  "SECRET_KEY": "test-secret", "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR)})
    return create_app(settings, dispatch)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    server: object
    thread: object


def bound_socket(port: int = 0) -> socket.socket:
    """A socket bound on 127.0.0.1 (port 0: a free one), for start_server; binding first lets
    a test know the server's address before it builds the app (single sign-on needs it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def start_server(app, port: int = 0,  # type: ignore[no-untyped-def]
                 sock: socket.socket | None = None) -> LiveServer:
    """Serve the app with uvicorn on a real socket, in a thread of this process."""
    import threading
    import time

    import uvicorn

    sock = sock or bound_socket(port)
    from board.web.socket_protocol import LeanSocketProtocol

    config = uvicorn.Config(app, log_level="warning", ws=LeanSocketProtocol, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=10)


@pytest.fixture
def live_server(app):  # type: ignore[no-untyped-def]
    live = start_server(app)
    yield live
    stop_server(live)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # The pages' CSP forbids eval, which Playwright's string predicates (wait_for_function)
        # need: contexts bypass it unless a test asks otherwise (test_browser_policy.py does).
        new_context = b.new_context
        b.new_context = lambda **kw: new_context(**{"bypass_csp": True, **kw})
        yield b
        b.close()


def browser_login(browser, base_url: str, username: str, **context_args):  # type: ignore[no-untyped-def]
    """A fresh browser context (its own cookies), logged in as `username`."""
    ctx = browser.new_context(**context_args)
    page = ctx.new_page()
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page
