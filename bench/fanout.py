"""Benchmark: render once, send many — against rendering per socket, measured in the same run.

Loads the real 311 hour into a scratch SQLite board, puts N fake sockets on the 75th's board
through the live hub, makes K assignments and times how long each takes to reach every socket.
The baseline renders the same fragment once per socket, as a naive hub would.

    .venv/bin/python bench/fanout.py [--sockets 200] [--events 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from board import db, geostore  # noqa: E402
from board.access import SYSTEM, Role  # noqa: E402
from board.app import templates  # noqa: E402
from board.auth import add_user, user_actor  # noqa: E402
from board.bus import InProcessBus  # noqa: E402
from board.intake import import_file  # noqa: E402
from board.live.hub import Hub, Subscriber  # noqa: E402
from board.live.render import Renderer  # noqa: E402
from board.settings import SHARED_GEO  # noqa: E402
from board.usecases import Dispatch  # noqa: E402

HOUR = ROOT.parent / "shared" / "data" / "311" / "nyc311-2022-05-01-midnight-hour.csv"
BOARD75 = ("board", "75", "supervisor", False)


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.arrived = asyncio.Event()
        self.want = 0

    async def send_text(self, data: str) -> None:
        self.count += 1
        if self.count >= self.want:
            self.arrived.set()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


def board_with_data(folder: Path) -> tuple[Dispatch, list[int], list[int]]:
    engine = db.make_engine(f"sqlite:///{folder / 'bench.db'}")
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, SHARED_GEO, 300))
    units = [d.add_unit(SYSTEM, f"75-{x}", "75")["unit_id"] for x in "ABCD"]
    import_file(d, HOUR, history=False)  # the hour as live jobs, as the demo has it
    with db.read(engine) as conn:
        from board.schema import jobs

        ids = [r.id for r in conn.execute(jobs.select().where(jobs.c.precinct == "75"))]
    return d, units, ids


async def run(d: Dispatch, units: list[int], job_ids: list[int], sockets: int,
              events: int) -> dict[str, float]:
    renderer = Renderer(d.engine, d.geo, templates().env, clock=lambda: datetime.now(UTC))
    hub = Hub(renderer, InProcessBus(), queue_size=64)
    d.listeners[:] = [hub.committed]
    uid = add_user(d.engine, "bench", "benchmark-pass", "supervisor", "75")
    sgt = user_actor(d.engine, uid)
    assert sgt is not None and sgt.role is Role.SUPERVISOR
    await hub.start()
    sinks = [Sink() for _ in range(sockets)]
    for s in sinks:
        await hub.join(Subscriber(s, BOARD75, hub.queue_size))
    await asyncio.sleep(0.5)
    latencies = []
    renders_before = hub.renders["board"]
    tracemalloc.start()
    for i in range(events):
        for s in sinks:
            s.want = s.count + 1
            s.arrived.clear()
        t0 = time.perf_counter()
        await asyncio.to_thread(d.assign, sgt, job_ids[i], 1, units[i % len(units)])
        await asyncio.wait_for(asyncio.gather(*(s.arrived.wait() for s in sinks)), 30)
        latencies.append(time.perf_counter() - t0)
    _, peak_hub = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    renders = hub.renders["board"] - renders_before
    await hub.stop()

    # Baseline: what a per-socket renderer would do for one event.
    tracemalloc.start()
    t0 = time.perf_counter()
    copies = [renderer.render(BOARD75) for _ in range(sockets)]
    per_socket = time.perf_counter() - t0
    _, peak_base = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copies
    return {"median_ms": statistics.median(latencies) * 1000,
            "p95_ms": sorted(latencies)[int(0.95 * (len(latencies) - 1))] * 1000,
            "renders": renders, "baseline_ms": per_socket * 1000,
            "peak_hub_kb": peak_hub / 1024, "peak_base_kb": peak_base / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sockets", type=int, default=200)
    p.add_argument("--events", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d, units, job_ids = board_with_data(Path(tmp))
        r = asyncio.run(run(d, units, job_ids, args.sockets, args.events))
    print(f"board of the 75th ({len(job_ids)} jobs), {args.sockets} sockets, "
          f"{args.events} assignments")
    print(f"hub, render once: {r['renders']} renders for {args.events} events; "
          f"commit → all sockets median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms; "
          f"peak traced memory {r['peak_hub_kb']:.0f} KiB")
    print(f"baseline, render per socket: {r['baseline_ms']:.1f} ms of rendering per event; "
          f"peak traced memory {r['peak_base_kb']:.0f} KiB")
    print(f"ratio baseline / hub (per event): {r['baseline_ms'] / r['median_ms']:.1f}×")


if __name__ == "__main__":
    main()
