"""The precinct board's own costs: page, snapshot, one update's fragments — against a baseline
measured in the same run.

    .venv/bin/python bench/board_page.py [--jobs 500] [--units 30] [--repeat 20]

A busy precinct (the 75th with 500 open jobs — 90 of them on 30 units' stacks — in a scratch
SQLite database):
  board_page_ms_500_jobs  GET /board/75 as its supervisor (in process, median); baseline: the
                          read alone (queries.board), so the ratio is what rendering adds
  snapshot_ms_500_jobs    what a (re)connecting socket costs the hub: the whole board rendered
                          from the view the hub holds (no read; the text is then reused until
                          the view changes); baseline: the read alone
  …_cold_ms_500_jobs      the same two with the card cache (board/cards.py) emptied before each:
                          what they cost when no card was rendered before (a restart), where the
                          figures above reuse the cards of the previous page or snapshot as a
                          running board does (a card is rendered again only when it changes)
  fragment_ms_500_jobs    one assignment's update (read the new view, diff, render fragments);
                          baseline: the snapshot
  fragment_bytes_500_jobs its bytes; baseline: the whole board (what every event used to push)
The demo 75th (the real 311 hour, four units):
  fragment_bytes_assign   bytes pushed for one assignment, before compression; baseline: the
                          whole board
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from shapely.geometry import Point, shape  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from bench.results import record  # noqa: E402
from board.auth import accounts as auth
from board.domain.access import SYSTEM  # noqa: E402
from board.geo import store as geostore
from board.intake.file_import import import_file  # noqa: E402
from board.live import cards
from board.live.render import Renderer  # noqa: E402
from board.settings import DEMO_HOUR, GEO_DIR, Settings  # noqa: E402
from board.storage import db
from board.storage.schema import jobs  # noqa: E402
from board.usecases import (  # noqa: E402
    Dispatch,
    NewJob,
    queries,  # noqa: E402
)
from board.web.app import create_app, templates  # noqa: E402

HOUR = DEMO_HOUR
PASSWORD = "bench-password-75"
TYPES = [("Noise - Residential", "Loud Music/Party"), ("Blocked Driveway", "No Access"),
         ("Illegal Parking", "Double Parked Blocking Traffic"),
         ("Noise - Street/Sidewalk", "Loud Talking"), ("Noise - Vehicle", "Car/Truck Music")]


def ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def points_in(geo: Any, precinct: str, n: int) -> list[tuple[float, float]]:
    poly = shape(geo.precinct_feature(precinct)["geometry"])
    minx, miny, maxx, maxy = poly.bounds
    out: list[tuple[float, float]] = []
    k = 0
    while len(out) < n:
        k += 1
        x = minx + (maxx - minx) * ((k * 0.618034) % 1)
        y = miny + (maxy - miny) * ((k * 0.414214) % 1)
        if poly.contains(Point(x, y)):
            out.append((y, x))
    return out


def busy(folder: Path, n_jobs: int, n_units: int) -> tuple[Settings, Dispatch, list[int]]:
    url = f"sqlite:///{folder / 'busy.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, GEO_DIR, 300))
    units = [d.add_unit(SYSTEM, f"75-{i:02d}", "75")["unit_id"] for i in range(n_units)]
    batch = [NewJob(*TYPES[i % len(TYPES)], address=f"{100 + i} BENCH AVENUE", lat=lat, lon=lon)
             for i, (lat, lon) in enumerate(points_in(d.geo, "75", n_jobs))]
    made = d.create_jobs(SYSTEM, batch, source="bench")
    ids = [e["job_id"] for e in made]
    for i, job in enumerate(ids[:90]):  # three jobs on each unit's stack
        d.assign(SYSTEM, job, 1, units[i % n_units])
    auth.add_user(engine, "bench", PASSWORD, "supervisor", "75")
    settings = Settings(url, None, "bench-secret", GEO_DIR, None, 300, False)
    return settings, d, [i for i in ids[90:]]


def demo(folder: Path) -> tuple[Dispatch, list[int]]:
    engine = db.make_engine(f"sqlite:///{folder / 'demo.db'}")
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, GEO_DIR, 300))
    units = [d.add_unit(SYSTEM, f"75-{x}", "75")["unit_id"] for x in "ABCD"]
    import_file(d, HOUR, history=False)  # the hour as live jobs, as the demo has it
    return d, units


def assignment(d: Dispatch, renderer: Renderer, job: int, unit: int) -> tuple[str, str, float]:
    """(whole board, the update one assignment pushes, ms to make that update)."""
    before = renderer.board_view("75", "supervisor", False)
    whole = renderer.board_body(before, "supervisor")
    with d.engine.connect() as conn:
        version = conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job)).scalar_one()
    d.assign(SYSTEM, job, version, unit)
    t0 = time.perf_counter()
    after = renderer.board_view("75", "supervisor", False)
    delta = renderer.board_delta(before, after, "supervisor") or ""
    took = (time.perf_counter() - t0) * 1000
    return whole, delta, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"board page benchmark · load average {load}", flush=True)
    env = templates().env
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        folder = Path(tmp)
        settings, d, queued = busy(folder, args.jobs, args.units)
        renderer = Renderer(d.engine, d.geo, env, clock=lambda: datetime.now(UTC))
        sgt = auth.login(d.engine, "bench", PASSWORD).actor
        assert sgt is not None
        read = ms(lambda: queries.board(d.engine, sgt, "75", datetime.now(UTC)), args.repeat)
        screen = renderer.board_view("75", "supervisor", False)
        snap = ms(lambda: renderer.board_body(screen, "supervisor"), args.repeat)
        snap_cold = ms(lambda: (cards.of(env).clear(), renderer.board_body(screen, "supervisor")),
                       args.repeat)
        with TestClient(create_app(settings)) as client:
            page = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            client.post("/login", data={"username": "bench", "password": PASSWORD,
                                        "csrf": csrf, "next": ""}, follow_redirects=False)
            assert client.get("/board/75").status_code == 200
            page_ms = ms(lambda: client.get("/board/75"), args.repeat)
            app_cards = cards.of(client.app.state.templates.env)
            page_cold = ms(lambda: (app_cards.clear(), client.get("/board/75")), args.repeat)
            size = len(client.get("/board/75").content)
        units = [lane.id for lane in renderer.board_view("75", "supervisor", False).view.lanes]
        deltas = [assignment(d, renderer, queued[i], units[i % len(units)])
                  for i in range(args.repeat)]
        whole = deltas[0][0]
        delta_ms = statistics.median(t for _, _, t in deltas)
        delta_bytes = statistics.median(len(x.encode()) for _, x, _ in deltas)
        print(f"  {args.jobs} open jobs, {args.units} units: page {size} B, "
              f"board {len(whole.encode())} B", flush=True)
        record(f"board_page_ms_{args.jobs}_jobs", page_ms, "ms", baseline=read)
        record(f"snapshot_ms_{args.jobs}_jobs", snap, "ms", baseline=read)
        record(f"board_page_cold_ms_{args.jobs}_jobs", page_cold, "ms", baseline=read)
        record(f"snapshot_cold_ms_{args.jobs}_jobs", snap_cold, "ms", baseline=read)
        record(f"fragment_ms_{args.jobs}_jobs", delta_ms, "ms", baseline=snap)
        record(f"fragment_bytes_{args.jobs}_jobs", delta_bytes, "B",
               baseline=len(whole.encode()))
        d.engine.dispose()

        d, units = demo(folder)
        renderer = Renderer(d.engine, d.geo, env, clock=lambda: datetime.now(UTC))
        with d.engine.connect() as conn:
            job = conn.execute(sa.select(jobs.c.id).where(
                jobs.c.precinct == "75", jobs.c.status == "new").order_by(jobs.c.id)).scalar()
        whole, delta, _ = assignment(d, renderer, job, units[0])
        record("fragment_bytes_assign", len(delta.encode()), "B", baseline=len(whole.encode()))
        d.engine.dispose()


if __name__ == "__main__":
    main()
