"""Where commit → first socket goes, in process: the hub's fixed cost before the fan-out.

    .venv/bin/python bench/first_socket.py [--sockets 1000] [--events 40]

The demo 75th (the real 311 hour, four units) on a scratch SQLite database, one hub, N
subscribers whose direct writer notes when the first one is written to; assignments and returns
to the queue from a worker thread, each timed step by step (medians, the first five left out):
the use case (call → its listener, after commit), the listener → the hub's worker thread, the
thread's read (events, the followed view, the delta; the view and the delta also alone), the
thread → the loop → the fan-out, the fan-out's first write, and the whole fan-out. No network:
what the hub adds to what any server pays to write the frame (bench/fanout.py measures that).
"""

from __future__ import annotations

import argparse
import asyncio
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

from board.domain.access import SYSTEM  # noqa: E402
from board.geo import store as geostore  # noqa: E402
from board.intake.file_import import import_file  # noqa: E402
from board.live.bus import InProcessBus  # noqa: E402
from board.live.hub import Hub  # noqa: E402
from board.live.render import Renderer  # noqa: E402
from board.live.subscriber import Subscriber  # noqa: E402
from board.settings import DEMO_HOUR, GEO_DIR  # noqa: E402
from board.storage import db  # noqa: E402
from board.storage.schema import jobs  # noqa: E402
from board.usecases import Dispatch  # noqa: E402
from board.web.app import templates  # noqa: E402

STEPS = ("the use case (call → listener, committed)", "listener → the hub's worker thread",
         "the thread: events, view, delta", "thread → loop → fan-out",
         "fan-out start → first socket", "the fan-out to every socket",
         "  of the thread: the followed view", "  of the thread: the delta")


class Quiet:
    async def send_text(self, data: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


class Direct:
    """What uvicorn's connection writer is to a subscriber: notes the first socket's write."""

    def __init__(self, marks: dict[str, float], first: bool) -> None:
        self.marks, self.first = marks, first

    def write(self, frame: bytes) -> bool:
        if self.first:
            self.marks.setdefault("first", time.perf_counter())
        return True


def timed(marks: dict[str, float], name: str, fn: Callable[..., Any], add: bool = False
          ) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        took = time.perf_counter() - t
        marks[name] = marks.get(name, 0.0) + took if add else took
        marks[name + "_end"] = time.perf_counter()
        return out
    return wrapper


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--events", type=int, default=40)
    args = ap.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"commit → first socket, in process · load average {load}")
    engine = db.make_engine(f"sqlite:///{tempfile.mkdtemp(prefix='bench-first-')}/d.db")
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, GEO_DIR, 300))
    units = [d.add_unit(SYSTEM, f"75-{x}", "75")["unit_id"] for x in "ABCD"]
    import_file(d, DEMO_HOUR, history=False)
    renderer = Renderer(engine, d.geo, templates().env, clock=lambda: datetime.now(UTC))
    hub = Hub(renderer, InProcessBus(), queue_size=64)
    marks: dict[str, float] = {}

    def committed(evs: list[dict[str, Any]]) -> None:
        marks["commit"] = time.perf_counter()
        hub.committed(evs)
    d.listeners[:] = [committed]
    await hub.start()
    audience = ("board", "75", "supervisor", False)
    for i in range(args.sockets):
        await hub.join(Subscriber(Quiet(), audience, 64, direct=Direct(marks, i == 0)))
    read = hub._read_new_views

    def thread(shown: Any) -> Any:
        marks["thread"] = time.perf_counter()
        return read(shown)
    hub._read_new_views = thread  # type: ignore[method-assign]
    hub._read_view = timed(marks, "read", hub._read_view)  # type: ignore[method-assign]
    renderer.view = timed(marks, "view", renderer.view, add=True)  # type: ignore[method-assign]
    renderer.delta = timed(marks, "delta", renderer.delta, add=True)  # type: ignore[method-assign]
    hub._fan_out = timed(marks, "fan", hub._fan_out)  # type: ignore[method-assign]
    with engine.connect() as conn:
        ids = conn.execute(sa.select(jobs.c.id).where(jobs.c.precinct == "75",
                                                      jobs.c.status == "new")).scalars().all()
    rows: list[list[float]] = []
    for k in range(args.events):
        job = ids[k % min(len(ids), 10)]
        with engine.connect() as conn:
            version, unit = conn.execute(sa.select(jobs.c.version, jobs.c.unit_id)
                                         .where(jobs.c.id == job)).one()
        marks.clear()
        t0 = time.perf_counter()
        if unit is None:
            await asyncio.to_thread(d.assign, SYSTEM, job, version, units[k % 4])
        else:
            await asyncio.to_thread(d.unassign, SYSTEM, job, version, "bench")
        for _ in range(500):
            if "first" in marks and "fan_end" in marks:
                break
            await asyncio.sleep(0.001)
        m = marks
        fan0 = m["fan_end"] - m["fan"]
        rows.append([m["commit"] - t0, m["thread"] - m["commit"], m["read_end"] - m["thread"],
                     fan0 - m["read_end"], m["first"] - fan0, m["fan"], m["view"], m["delta"]])
        await asyncio.sleep(0.05)
    await hub.stop()
    for i, name in enumerate(STEPS):
        print(f"  {name:<44} p50 {statistics.median(r[i] for r in rows[5:]) * 1000:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
