"""Rows read per event: the work of a live update and of a write, in a unit the machine's load
does not move — against the same figure on a precinct with fewer open jobs.

    .venv/bin/python bench/rows.py [--sizes 50,2000] [--lives 20] [--database-url URL]

For each size, a scratch database (SQLite, or a fresh database on the PostgreSQL server of
--database-url) gets the 75th precinct with that many open jobs (the real hour's complaint
mix, each at its own address and point, one on each of 30 units' stacks, the rest queued),
and a hub with the screens a city day has on it: the supervisors' board, a commander's, the
wall, the citywide counters, the precinct's counters, each unit's phone and the review count.
Then `--lives` jobs each arrive and are assigned, acknowledged, en route, on scene and closed
(six events), each event followed by the hub's catch-up; the API's read-back of the job after
each write is counted with the write.
Figures (rows the database returned, counted where SQLAlchemy fetches them):
  cityday_rows_read_per_event            catch-up + write rows per event at the largest size;
                                         baseline: the same at the smallest (the ratio: ≤ 1.2)
  cityday_rows_read_catch_up_per_event   the hub's share, at the largest size
  cityday_rows_read_write_per_event      the write path's share (use case + read-back)
  cityday_cpu_ms_per_event_by_open_jobs  the process's CPU per event (write, read-back and
                                         every screen's catch-up) at the largest size;
                                         baseline: the same at the smallest. CPU moves with the
                                         machine; the ratio, from one run, is the figure.
Run it with PYTHONPATH pointing at another checkout to measure that code (it brings its own
counter when that checkout's metrics has none).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: the checkout measured comes first

import sqlalchemy as sa  # noqa: E402

from bench.board_page import points_in  # noqa: E402
from bench.results import record  # noqa: E402
from board.domain.access import SYSTEM, Actor, Role  # noqa: E402
from board.geo import store as geostore  # noqa: E402
from board.live.bus import InProcessBus  # noqa: E402
from board.live.hub import Hub  # noqa: E402
from board.live.render import Renderer  # noqa: E402
from board.live.subscriber import Subscriber  # noqa: E402
from board.observability import metrics  # noqa: E402
from board.settings import DEMO_HOUR, GEO_DIR  # noqa: E402
from board.storage import db  # noqa: E402
from board.storage.schema import jobs  # noqa: E402
from board.usecases import Dispatch, NewJob, queries  # noqa: E402
from board.web.app import templates  # noqa: E402

UNITS = 30
STACK = 1  # the same stacks at every size: the sizes differ in open jobs alone


class _Local:
    """A row counter for a checkout whose metrics module has none (the code before)."""

    rows = 0

    def install(self) -> None:
        from sqlalchemy.engine import cursor as sa_cursor
        inside = threading.local()

        def counted(fn: Any, many: bool) -> Any:
            def fetch(this: Any, *args: Any, **kw: Any) -> Any:
                if getattr(inside, "on", False):
                    return fn(this, *args, **kw)
                inside.on = True
                try:
                    got = fn(this, *args, **kw)
                finally:
                    inside.on = False
                self.rows += len(got) if many else (got is not None)
                return got
            return fetch

        for cls in (sa_cursor.CursorFetchStrategy, sa_cursor.BufferedRowCursorFetchStrategy,
                    sa_cursor.FullyBufferedCursorFetchStrategy):
            for name, many in (("fetchone", False), ("fetchmany", True), ("fetchall", True)):
                if name in vars(cls):
                    setattr(cls, name, counted(vars(cls)[name], many))


_LOCAL = _Local()


def install_counter() -> None:
    if hasattr(metrics, "count_rows"):
        metrics.count_rows()
    else:
        _LOCAL.install()


def rows_so_far() -> float:
    """Every row fetched in this process so far (all paths)."""
    if not hasattr(metrics, "count_rows"):
        return _LOCAL.rows
    return sum(s.value for m in metrics.ROWS_READ.collect() for s in m.samples
               if s.name.endswith("_total"))


@contextmanager
def counting(into: list[float], cpu: list[float]) -> Iterator[None]:
    """Rows fetched into `into`, and the process's CPU seconds (every thread's: the hub reads
    in worker threads) into `cpu`."""
    before, spent = rows_so_far(), time.process_time()
    yield
    into.append(rows_so_far() - before)
    cpu.append(time.process_time() - spent)


def hour_mix() -> list[tuple[str, str, str]]:
    """(complaint type, descriptor, address) of the real hour's NYPD requests."""
    with open(DEMO_HOUR, newline="") as f:
        return [(r["Complaint Type"], r["Descriptor"], r["Incident Address"])
                for r in csv.DictReader(f) if r.get("Agency") == "NYPD"]


class Sink:
    """A socket that takes everything at once."""

    async def send_text(self, data: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


@contextmanager
def scratch(url: str | None, folder: Path, name: str) -> Iterator[str]:
    """A database of its own: a SQLite file, or a fresh database on a PostgreSQL server."""
    if not url:
        yield f"sqlite:///{folder / (name + '.db')}"
        return
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    dbname = f"bench_rows_{name}_{int(time.time())}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {dbname}")
    try:
        yield str(sa.engine.make_url(url).set(database=dbname))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        admin.dispose()


def setup(url: str, n_open: int, mix: list[tuple[str, str, str]]) -> tuple[Dispatch, list[int]]:
    engine = db.make_engine(url)
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, GEO_DIR, 300))
    units = [d.add_unit(SYSTEM, f"75-{i:02d}", "75")["unit_id"] for i in range(UNITS)]
    points = points_in(d.geo, "75", n_open)
    # Each job its own address (the desk's memory reads earlier jobs at the same one): the
    # sizes differ in open jobs, not in how often one address repeats.
    batch = [NewJob(*mix[i % len(mix)][:2], address=f"{100 + i} BENCH AVENUE", lat=lat, lon=lon)
             for i, (lat, lon) in enumerate(points)]
    ids = [e["job_id"] for k in range(0, len(batch), 500)
           for e in d.create_jobs(SYSTEM, batch[k:k + 500], source="bench")]
    for i, job in enumerate(ids[:UNITS * STACK]):
        d.assign(SYSTEM, job, 1, units[i % UNITS])
    return d, units


def version(d: Dispatch, job: int) -> int:
    with d.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job)).scalar_one()


async def one_life(d: Dispatch, hub: Hub, sgt: Actor, new: NewJob, unit: int
                   ) -> tuple[list[float], list[float], list[float], list[float]]:
    """One job from arrival to close, each event caught up: (write rows, catch-up rows, write
    CPU seconds, catch-up CPU seconds)."""
    steps = [lambda j, v: d.assign(sgt, j, v, unit),
             lambda j, v: d.acknowledge(sgt, j, v),
             lambda j, v: d.en_route(sgt, j, v),
             lambda j, v: d.on_scene(sgt, j, v),
             lambda j, v: d.close(sgt, j, v, "action_taken")]
    w: list[float] = []
    c: list[float] = []
    wcpu: list[float] = []
    ccpu: list[float] = []
    with counting(w, wcpu):
        job = d.create_job(SYSTEM, new, source="bench")["job_id"]
        queries.job(d.engine, SYSTEM, job, datetime.now(UTC))  # the API's read-back
    with counting(c, ccpu):
        await hub.catch_up()
    for step in steps:
        v = version(d, job)  # the client knows it: not counted
        with counting(w, wcpu):
            step(job, v)
            queries.job(d.engine, SYSTEM, job, datetime.now(UTC))
        with counting(c, ccpu):
            await hub.catch_up()
    return w, c, wcpu, ccpu


async def measure(d: Dispatch, units: list[int], lives: int,
                  mix: list[tuple[str, str, str]]) -> tuple[float, float, int, float, float]:
    """(catch-up rows per event, write rows per event, events, catch-up CPU ms per event,
    write CPU ms per event)."""
    renderer = Renderer(d.engine, d.geo, templates().env, clock=lambda: datetime.now(UTC))
    hub = Hub(renderer, InProcessBus(), anti_entropy_s=3600, refresh_s=3600, queue_size=1 << 16)
    d.listeners[:] = []  # the bench calls each catch-up itself
    await hub.start()
    sgt = Actor(None, "bench-sgt", Role.SUPERVISOR, frozenset({"75"}))
    audiences = [("board", "75", "supervisor", False), ("board", "75", "view", False),
                 ("wall", "75"), ("city", frozenset({"*"})), ("city", frozenset({"75"})),
                 *(("my", u) for u in units)]
    for a in audiences:
        also = (("review_count", frozenset({"75"})),) if a[0] == "board" else ()
        await hub.join(Subscriber(Sink(), a, hub.queue_size, also=also))  # type: ignore[arg-type]
    caught: list[float] = []
    wrote: list[float] = []
    caught_cpu: list[float] = []
    wrote_cpu: list[float] = []
    spots = points_in(d.geo, "75", 4000)[-(lives + 1):]  # beyond the largest size's points
    try:
        for life in range(lives + 1):
            ctype, desc, _ = mix[(life * 7) % len(mix)]
            lat, lon = spots[life]
            new = NewJob(ctype, desc, address=f"{life} LIFE STREET", lat=lat, lon=lon)
            w, c, wcpu, ccpu = await one_life(d, hub, sgt, new, units[life % len(units)])
            if life:  # the first life reads every view whole once: not counted
                wrote += w
                caught += c
                wrote_cpu += wcpu
                caught_cpu += ccpu
    finally:
        await hub.stop()
    n = len(caught)
    return (sum(caught) / n, sum(wrote) / n, n, sum(caught_cpu) * 1000 / n,
            sum(wrote_cpu) * 1000 / n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="50,2000", help="open jobs in the precinct, by size")
    ap.add_argument("--lives", type=int, default=20, help="jobs worked through, per size")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server to make scratch databases on (default SQLite)")
    ap.add_argument("--no-record", action="store_true", help="print only")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    engine = "postgresql" if args.database_url else "sqlite"
    print(f"rows read per event · {engine} · load average {load}", flush=True)
    install_counter()
    mix = hour_mix()
    got: dict[int, tuple[float, float, int, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rows-") as tmp:
        for size in sizes:
            with scratch(args.database_url, Path(tmp), str(size)) as url:
                d, units = setup(url, size, mix)
                got[size] = asyncio.run(measure(d, units, args.lives, mix))
                db.close(d.engine)
            c, w, n, ccpu, wcpu = got[size]
            print(f"  {size:>5} open jobs: catch-up {c:.1f} + write {w:.1f} = {c + w:.1f} rows "
                  f"per event; CPU catch-up {ccpu:.2f} + write {wcpu:.2f} = {ccpu + wcpu:.2f} "
                  f"ms per event ({n} events)", flush=True)
    small, large = got[min(sizes)], got[max(sizes)]
    if args.no_record:
        return
    suffix = "" if engine == "postgresql" else "_sqlite"
    record(f"cityday_rows_read_per_event{suffix}", large[0] + large[1], "rows",
           small[0] + small[1])
    record(f"cityday_rows_read_catch_up_per_event{suffix}", large[0], "rows", small[0])
    record(f"cityday_rows_read_write_per_event{suffix}", large[1], "rows", small[1])
    # The soak's slowdown is this figure growing with a precinct's open jobs (RELIABILITY.md,
    # the hour a fourth time): the CPU of one event, its write and every screen's catch-up.
    record(f"cityday_cpu_ms_per_event_by_open_jobs{suffix}", large[3] + large[4], "ms",
           small[3] + small[4])


if __name__ == "__main__":
    main()
