"""`make soak`: faults and load against two real `board serve` processes, with figures.

Everything runs against servers of its own: a throwaway PostgreSQL cluster (initdb in a
temporary folder, its own port) and a throwaway Redis, so stopping them disturbs nobody else.

    .venv/bin/python soak/run.py [--minutes 60] [--speed 10] [--boards 20] [--actors 4]
                                 [--load-only] [--preload 1750]

Phases (each prints its figures; all of them go to soak/results.json):

1. kill -9 of web process A in the middle of a burst of API writes against A and B; A is
   started again. Every write answered 2xx must be in the events table exactly once; writes
   that got no answer may or may not have committed, and are counted apart.
2. Redis down for 15 s, then up, under load: writes keep working, boards keep converging
   (anti-entropy), each process logs a bounded number of lines about it.
3. PostgreSQL down for 15 s (pg_ctl stop -m fast), then up, under load: requests get 503 with
   Retry-After, /readyz says not ready, and both processes recover without a restart.
4. Load for --minutes: the real 311 hour replayed at --speed× with simulated officers (looped
   with fresh keys), --actors supervisors assigning and unassigning through the API, --boards
   sockets connecting and disconnecting at random. Every 30 s: each process's memory (RSS),
   CPU per event committed (user + system: what the load's machine does not move), live
   asyncio tasks and sockets, the writes, p50/p99 of the API writes and the open jobs in
   that window, each against the first window. The run FAILS when the last fifth of the
   windows is more than 1.5x slower than the first fifth (writes per 30 s fell, or p50 or p99
   rose, by more than that: medians of each fifth), or when a process's RSS grew by more
   than 5% over the last half (the middle tenth of the windows against the last tenth).
5. After the load: every socket disconnected, tasks back where they started, and a board that
   stayed connected throughout (every message applied as htmx does, board/live/replica.py)
   shows exactly what a fresh snapshot shows (ages aside).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import websockets  # noqa: E402
from faults import ThrowawayPostgres, ThrowawayRedis, free_port  # noqa: E402

from board.auth import accounts as auth
from board.domain.access import SYSTEM  # noqa: E402
from board.geo import store as geostore  # noqa: E402
from board.geo.routing import load_geo  # noqa: E402
from board.live.replica import Replica, normal  # noqa: E402
from board.storage import db
from board.storage.schema import events  # noqa: E402
from board.usecases import Dispatch  # noqa: E402

DATA = ROOT / "data"
HOUR = DATA / "311" / "nyc311-2022-05-01-midnight-hour.csv"
PASSWORD = "soak-password-311"
# `board`, by its module (the Procfile's console script runs the same `main`; the venv's copy of
# the script may predate the refit's entry point).
BOARD = [sys.executable, "-m", "board.cli.main"]
PRECINCT = "75"
UNITS = ("75-A", "75-B", "75-C", "75-D")
_TAG = re.compile(r'<[^>]*\bid="job-(\d+)"[^>]*>')
_STATUS = re.compile(r'\bdata-status="(\w+)"')


def preload(d: Dispatch, n: int) -> None:
    """`n` open jobs first, the real hour's rows over and over (each in the precinct its point
    falls in): the state the hour-long soak reached, from its first window."""
    import csv

    from board.usecases import NewJob
    with open(HOUR, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Latitude") and r.get("Longitude")]
    batch = [NewJob(r["Complaint Type"], r["Descriptor"], address=r["Incident Address"] or "",
                    lat=float(r["Latitude"]), lon=float(r["Longitude"]))
             for r in (rows[i % len(rows)] for i in range(n))]
    for k in range(0, n, 500):
        d.create_jobs(SYSTEM, batch[k:k + 500], source="soak-preload")
    log(f"preloaded {n} open jobs")


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the servers ------------------------------------------------------------------------------


class Stack:
    """Throwaway PostgreSQL + Redis, and N `board serve` processes over them."""

    def __init__(self, out: Path, n_web: int = 2, preload: int = 0) -> None:
        self.out = out
        self.preload = preload
        self.pg = ThrowawayPostgres()
        self.redis = ThrowawayRedis()
        self.ports = {f"web{i}": free_port() for i in range(n_web)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "DATABASE_URL": "", "REDIS_URL": self.redis.url,
                    "SECRET_KEY": "soak-shared-secret", "BOARD_GEO_DIR": str(DATA / "nyc"),
                    "BOARD_VAR_DIR": str(out / "var")}

    def up(self) -> str:
        self.pg.init()
        self.pg.start()
        self.redis.start()
        self.env["DATABASE_URL"] = self.pg.url
        engine = db.make_engine(self.pg.url)
        db.migrate(engine)
        geo = load_geo(DATA / "nyc")
        geostore.store(engine, geo)
        d = Dispatch(engine, geo)
        for cs in UNITS:
            d.add_unit(SYSTEM, cs, PRECINCT)
        if self.preload:
            preload(d, self.preload)
        auth.add_user(engine, "sgt75", PASSWORD, "supervisor", PRECINCT, display_name="SGT75")
        token = auth.create_token(engine, "sgt75", "soak")
        engine.dispose()
        for name in self.ports:
            self.start_web(name)
        return token

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_web(self, name: str) -> None:
        logf = (self.out / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [*BOARD, "serve", "--port", str(self.ports[name])],
            env=self.env, cwd=ROOT, stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + 240  # a loaded machine starts slowly
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url(name) + "/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready; see {self.out / name}.log")

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def rss_mb(self, name: str) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.procs[name].pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self, name: str) -> float:
        """CPU seconds the process has used (user + system): what a window's events cost it,
        whatever else the machine runs (wall-clock latency is not)."""
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{self.procs[name].pid}/stat").read_text().rsplit(")", 1)[1]
            utime, stime = fields.split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
        return float("nan")

    def log_lines(self, name: str, needle: str) -> int:
        return sum(needle in line for line in (self.out / f"{name}.log").read_text(
            errors="replace").splitlines())

    def down(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)
                if proc.poll() is None:
                    proc.kill()
        self.redis.stop()
        self.pg.remove()


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw."""

    ok_seqs: list[int] = field(default_factory=list)       # events of writes answered 2xx
    no_answer: int = 0                                     # connection dropped mid-write
    status: dict[int, int] = field(default_factory=dict)   # HTTP status → count
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (t, seconds)
    retry_after: int = 0
    ws_connects: int = 0
    ws_failures: dict[str, int] = field(default_factory=dict)  # why a board socket failed
    ws_messages: int = 0
    client_errors: int = 0                                 # the soak client's own mistakes

    def count(self, status: int) -> None:
        self.status[status] = self.status.get(status, 0) + 1


class Load:
    def __init__(self, stack: Stack, token: str, tally: Tally) -> None:
        self.stack = stack
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = tally
        self.stop = asyncio.Event()
        self.unit_ids: list[int] = []
        self.cookie = ""

    async def prepare(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.url("web0"), timeout=10) as c:
            units = (await c.get(f"/api/v1/precincts/{PRECINCT}/units",
                                 headers=self.headers)).json()["units"]
            self.unit_ids = [u["id"] for u in units if u["callsign"] in UNITS]
            page = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            await c.post("/login", data={"username": "sgt75", "password": PASSWORD,
                                         "csrf": csrf, "next": ""})
            self.cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())

    async def write(self, c: httpx.AsyncClient, method: str, path: str,
                    body: dict[str, Any]) -> dict[str, Any] | None:
        t0 = time.monotonic()
        try:
            r = await c.request(method, path, json=body, headers=self.headers)
        except httpx.HTTPError:
            self.tally.no_answer += 1
            return None
        self.tally.latencies.append((t0, time.monotonic() - t0))
        self.tally.count(r.status_code)
        if r.status_code == 503 and "retry-after" in r.headers:
            self.tally.retry_after += 1
        if r.is_success:
            data = r.json()
            # An action answers with its event; a create with the job and its timeline.
            self.tally.ok_seqs.append(data["event"]["seq"] if "event" in data
                                      else max(e["seq"] for e in data["timeline"]))
            return data
        return None

    async def actor(self, names: list[str], pause: float) -> None:
        """A supervisor: assign queued jobs to units, send some back, make a job when idle."""
        clients = {n: httpx.AsyncClient(base_url=self.stack.url(n), timeout=10) for n in names}
        rng = random.Random()
        try:
            while not self.stop.is_set():
                name = rng.choice(names)
                c = clients[name]
                try:
                    if not await self._one_write(c, rng):
                        await asyncio.sleep(0.2)
                except Exception as e:  # noqa: BLE001 - counted and shown, the load goes on
                    self.tally.client_errors += 1
                    if self.tally.client_errors <= 3:
                        log(f"client error: {type(e).__name__}: {e}")
                    await asyncio.sleep(0.2)
                await asyncio.sleep(pause * rng.random())
        finally:
            for c in clients.values():
                await c.aclose()

    async def _one_write(self, c: httpx.AsyncClient, rng: random.Random) -> bool:
        """Read the board, then one write; False when the read failed (back off a little)."""
        try:
            r = await c.get(f"/api/v1/precincts/{PRECINCT}/board", headers=self.headers)
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            self.tally.count(r.status_code)
            return False
        board = r.json()
        mine = [j for lane in board["lanes"] for j in lane.get("jobs", [])
                if j["status"] == "assigned" and j["unit"] in UNITS]
        if board["queue"] and (not mine or rng.random() < 0.6):
            job = rng.choice(board["queue"])
            await self.write(c, "POST", f"/api/v1/jobs/{job['id']}/assign",
                             {"version": job["version"], "unit_id": rng.choice(self.unit_ids)})
        elif mine:
            job = rng.choice(mine)
            await self.write(c, "POST", f"/api/v1/jobs/{job['id']}/unassign",
                             {"version": job["version"], "reason": "soak: back"})
        else:
            await self.write(c, "POST", "/api/v1/jobs", {
                "complaint_type": "Noise - Residential", "descriptor": "Loud Music/Party",
                "address": "1 SOAK STREET", "lat": 40.6782, "lon": -73.8827,
                "description": "soak"})
        return True

    async def board(self, names: list[str], hold: tuple[float, float]) -> None:
        """A browser tab: open a board socket, read for a while, close, come back."""
        rng = random.Random()
        while not self.stop.is_set():
            name = rng.choice(names)
            url = self.stack.url(name)
            try:
                async with websockets.connect(
                        url.replace("http", "ws") + f"/ws/board/{PRECINCT}",
                        additional_headers={"Cookie": self.cookie, "Origin": url},
                        open_timeout=5, close_timeout=2, max_size=None) as ws:
                    self.tally.ws_connects += 1
                    until = time.monotonic() + rng.uniform(*hold)
                    while time.monotonic() < until and not self.stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ws.recv(), 1.0)
                            self.tally.ws_messages += 1
            except (OSError, websockets.WebSocketException, TimeoutError) as e:
                why = type(e).__name__
                if isinstance(e, websockets.ConnectionClosed) and e.rcvd is not None:
                    why = f"closed {e.rcvd.code}"
                self.tally.ws_failures[why] = self.tally.ws_failures.get(why, 0) + 1
            await asyncio.sleep(rng.uniform(0, 1.5))


class Watcher:
    """One socket per process that stays on for the whole run (reconnecting if it must)."""

    def __init__(self, stack: Stack, name: str, cookie: str) -> None:
        self.stack, self.name, self.cookie = stack, name, cookie
        self.stop = asyncio.Event()
        self.page = Replica()   # what a browser on this socket shows: every message applied
        self.reconnects = 0

    async def run(self) -> None:
        url = self.stack.url(self.name)
        while not self.stop.is_set():
            try:
                async with websockets.connect(
                        url.replace("http", "ws") + f"/ws/board/{PRECINCT}",
                        additional_headers={"Cookie": self.cookie, "Origin": url},
                        open_timeout=5, max_size=None) as ws:
                    self.page = Replica()  # a (re)connect starts from the snapshot
                    while not self.stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            self.page.apply(str(await asyncio.wait_for(ws.recv(), 1.0)))
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(0.5)


async def snapshot(stack: Stack, name: str, cookie: str) -> str:
    url = stack.url(name)
    async with websockets.connect(url.replace("http", "ws") + f"/ws/board/{PRECINCT}",
                                  additional_headers={"Cookie": cookie, "Origin": url},
                                  max_size=None) as ws:
        while True:
            msg = str(await asyncio.wait_for(ws.recv(), 10))
            if 'id="board-body"' in msg:
                return msg


def cards(fragment: str) -> dict[str, str]:
    """Job card id → status, whatever order the attributes come in."""
    out = {}
    for m in _TAG.finditer(fragment):
        status = _STATUS.search(m.group(0))
        out[m.group(1)] = status.group(1) if status else ""
    return out


def same_board(w: Watcher, fresh: str) -> dict[str, Any]:
    """The long-lived socket's page against a fresh snapshot, as htmx would have them."""
    mine, theirs = w.page.html("board-body"), normal(fresh, "board-body")
    return {"equal": mine == theirs, "cards": len(cards(theirs)),
            "cards_differing": len(set(cards(mine).items()) ^ set(cards(theirs).items())),
            "reconnects": w.reconnects}


async def metric(stack: Stack, name: str, metric_name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as c:
        text = (await c.get(stack.url(name) + "/metrics")).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(metric_name) and not line.startswith("#")]
    return sum(values)


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


CHECK_PART = 10_000  # sequence numbers looked up per statement


def check_events(stack: Stack, tally: Tally) -> dict[str, Any]:
    """Every write answered 2xx is in the events table exactly once, by its sequence number;
    writes that got no answer committed at most once each."""
    engine = db.make_engine(stack.pg.url)
    with engine.connect() as conn:
        asked = sorted(set(tally.ok_seqs))
        # in parts: an hour's answers outgrow a statement's 65,535 parameters
        seqs = [r[0] for part in range(0, len(asked), CHECK_PART)
                for r in conn.execute(sa.select(events.c.seq).where(
                    events.c.seq.in_(asked[part:part + CHECK_PART])))]
        api_events = conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.source == "api")).scalar() or 0
        total = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() or 0
    engine.dispose()
    ok = len(tally.ok_seqs)
    return {"writes_answered_2xx": ok, "found_in_events": len(seqs),
            "duplicated_seqs_in_answers": ok - len(set(tally.ok_seqs)),
            "writes_without_answer": tally.no_answer, "api_events_in_table": api_events,
            "events_total": total,
            "nothing_lost": len(seqs) == ok == len(set(tally.ok_seqs))
            and ok <= api_events <= ok + tally.no_answer}


# -- the phases ---------------------------------------------------------------------------------


async def with_load(load: Load, names: list[str], actors: int, boards: int, pause: float,
                    body: Any) -> Any:
    load.stop.clear()
    tasks = [asyncio.create_task(load.actor(names, pause)) for _ in range(actors)]
    tasks += [asyncio.create_task(load.board(names, (2, 12))) for _ in range(boards)]
    try:
        return await body()
    finally:
        load.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def phase_kill(stack: Stack, load: Load) -> dict[str, Any]:
    names = list(stack.ports)
    before = len(load.tally.ok_seqs)

    async def body() -> dict[str, Any]:
        await asyncio.sleep(4)
        log("kill -9 web0 mid-burst")
        t0 = time.monotonic()
        stack.kill9("web0")
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.start_web, "web0")
        back = time.monotonic() - t0
        await asyncio.sleep(4)
        return {"web0_back_after_s": round(back, 1)}

    out = await with_load(load, names, actors=8, boards=6, pause=0.02, body=body)
    out["writes_2xx_in_burst"] = len(load.tally.ok_seqs) - before
    return out


async def phase_redis(stack: Stack, load: Load) -> dict[str, Any]:
    names = list(stack.ports)
    before = len(load.tally.ok_seqs)
    lines0 = {n: stack.log_lines(n, "board.bus") for n in names}

    async def body() -> dict[str, Any]:
        await asyncio.sleep(3)
        log("Redis down for 15 s")
        stack.redis.stop()
        await asyncio.sleep(15)
        stack.redis.start()
        log("Redis up")
        await asyncio.sleep(8)
        return {}

    out = await with_load(load, names, actors=4, boards=6, pause=0.1, body=body)
    out["writes_2xx_during"] = len(load.tally.ok_seqs) - before
    out["bus_log_lines_per_process"] = {n: stack.log_lines(n, "board.bus") - lines0[n]
                                        for n in names}
    out["reconnected_logged"] = {n: stack.log_lines(n, "redis bus reconnected") > 0
                                 for n in names}
    return out


async def phase_postgres(stack: Stack, load: Load) -> dict[str, Any]:
    names = list(stack.ports)
    s503 = load.tally.status.get(503, 0)

    async def body() -> dict[str, Any]:
        await asyncio.sleep(3)
        log("PostgreSQL down (pg_ctl stop -m fast) for 15 s")
        await asyncio.to_thread(stack.pg.stop, "fast")
        await asyncio.sleep(2)
        ready = {}
        async with httpx.AsyncClient(timeout=5) as c:
            for n in names:
                ready[n] = (await c.get(stack.url(n) + "/readyz")).status_code
        await asyncio.sleep(13)
        await asyncio.to_thread(stack.pg.start)
        t0 = time.monotonic()
        log("PostgreSQL up")
        back: dict[str, float] = {}
        async with httpx.AsyncClient(timeout=5) as c:
            while len(back) < len(names) and time.monotonic() - t0 < 60:
                for n in names:
                    if n not in back:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await c.get(stack.url(n) + "/readyz")).status_code == 200:
                                back[n] = round(time.monotonic() - t0, 2)
                await asyncio.sleep(0.2)
        await asyncio.sleep(5)
        return {"readyz_while_down": ready, "ready_again_after_s": back}

    out = await with_load(load, names, actors=4, boards=6, pause=0.1, body=body)
    out["answered_503_during"] = load.tally.status.get(503, 0) - s503
    out["processes_restarted"] = 0
    return out


async def phase_soak(stack: Stack, load: Load, minutes: float, speed: float, boards: int,
                     actors: int) -> dict[str, Any]:
    names = list(stack.ports)
    replays: list[subprocess.Popen[bytes]] = []
    samples: list[dict[str, Any]] = []
    tasks0 = {n: await metric(stack, n, "board_asyncio_tasks") for n in names}

    def replay(i: int) -> subprocess.Popen[bytes]:
        logf = (stack.out / "replay.log").open("ab")
        proc = subprocess.Popen(
            [*BOARD, "replay", str(HOUR), "--speed", str(speed),
             "--simulate-officers", "--key-prefix", f"SOAK{i}-", "--progress-every", "500"],
            env=stack.env, cwd=ROOT, stdout=logf, stderr=logf)
        logf.close()
        return proc

    async def body() -> None:
        started = time.monotonic()
        end = started + minutes * 60
        n = 0
        replays.append(replay(n))
        last = window_start = started
        cpu = {name: stack.cpu_s(name) for name in names}
        own = time.process_time()
        seq = last_seq(stack)
        while time.monotonic() < end:
            await asyncio.sleep(min(30, max(end - time.monotonic(), 0.1)))
            if replays[-1].poll() is not None:  # the file is done: again, with fresh keys
                n += 1
                replays.append(replay(n))
            now = time.monotonic()
            lat = [s for t, s in load.tally.latencies if last <= t < now]
            last = now
            sample = {"t_min": round((now - started) / 60, 2), "writes": len(lat),
                      "writes_per_30s": round(len(lat) * 30 / max(now - window_start, 1e-3),
                                              1),
                      "p50_ms": round(p(lat, 0.5) * 1000, 1),
                      "p99_ms": round(p(lat, 0.99) * 1000, 1),
                      "open_jobs": open_jobs(stack),
                      # the machine's, not the board's: what else ran beside it this window
                      "load_1min": round(os.getloadavg()[0], 2),
                      # this client's own share of a core: near 100% it, not the board, sets
                      # the pace (its loop holds the writes it times)
                      "client_cpu_pct": round((time.process_time() - own) * 100
                                              / max(now - window_start, 1e-3), 1)}
            own = time.process_time()
            window_start = now
            now_seq = last_seq(stack)
            events_in, seq = now_seq - seq, now_seq
            sample["events"] = events_in
            for name in names:
                spent = stack.cpu_s(name)
                used, cpu[name] = spent - cpu[name], spent
                sample[f"{name}_cpu_ms_per_event"] = round(used * 1000 / max(events_in, 1), 2)
                sample[f"{name}_rss_mb"] = round(stack.rss_mb(name), 1)
                sample[f"{name}_tasks"] = await metric(stack, name, "board_asyncio_tasks")
                sample[f"{name}_sockets"] = await metric(stack, name, "board_live_sockets")
            sample["cpu_ms_per_event"] = round(sum(
                sample[f"{name}_cpu_ms_per_event"] for name in names), 2)
            samples.append(sample)
            log(json.dumps(sample))
            log(window_line(samples))

    ev0 = check_events(stack, load.tally)["events_total"]
    t0 = time.monotonic()
    await with_load(load, names, actors=actors, boards=boards, pause=0.3, body=body)
    took = time.monotonic() - t0
    for proc in replays:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    await asyncio.sleep(3)
    ev1 = check_events(stack, load.tally)["events_total"]
    tasks1 = {n: await metric(stack, n, "board_asyncio_tasks") for n in names}
    sockets1 = {n: await metric(stack, n, "board_live_sockets") for n in names}
    fifth = max(1, len(samples) // 5)
    first, last = samples[:fifth], samples[-fifth:]
    rss = {n: (round(statistics.median(s[f"{n}_rss_mb"] for s in first), 1),
               round(statistics.median(s[f"{n}_rss_mb"] for s in last), 1)) for n in names}
    return {"minutes": round(took / 60, 2), "replays_started": len(replays),
            "events_per_s": round((ev1 - ev0) / took, 1),
            "rss_mb_first_fifth_vs_last_fifth": rss,
            "p99_ms_first_fifth_vs_last_fifth": (
                round(statistics.median(s["p99_ms"] for s in first), 1),
                round(statistics.median(s["p99_ms"] for s in last), 1)),
            "cpu_ms_per_event_first_fifth_vs_last_fifth": (
                round(statistics.median(s["cpu_ms_per_event"] for s in first), 2),
                round(statistics.median(s["cpu_ms_per_event"] for s in last), 2)),
            "tasks_before_vs_after": {n: (tasks0[n], tasks1[n]) for n in names},
            "sockets_after": sockets1, "slowdown": slowdown(samples), "samples": samples}


def _scalar(stack: Stack, stmt: Any) -> int:
    """One number from the soak's database, on a connection of its own (-1 while it is down)."""
    engine = sa.create_engine(stack.pg.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).scalar() or 0
    except sa.exc.SQLAlchemyError:
        return -1
    finally:
        engine.dispose()


def last_seq(stack: Stack) -> int:
    """The newest event's sequence number: events committed by a window's end."""
    return max(0, _scalar(stack, sa.select(sa.func.max(events.c.seq))))


def open_jobs(stack: Stack) -> int:
    """Open jobs citywide now: what the cost of a board read grew with."""
    return _scalar(stack, sa.text("SELECT count(*) FROM jobs WHERE status NOT IN ('closed')"))


def window_line(samples: list[dict[str, Any]]) -> str:
    """The newest window against the first: throughput and latency, as ratios."""
    first, s = samples[0], samples[-1]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"
    return (f"window {len(samples)} at {s['t_min']} min: {s['writes_per_30s']} writes/30 s "
            f"({ratio(s['writes_per_30s'], first['writes_per_30s'])} of the first), p50 "
            f"{s['p50_ms']} ms ({ratio(s['p50_ms'], first['p50_ms'])}), p99 {s['p99_ms']} ms "
            f"({ratio(s['p99_ms'], first['p99_ms'])}), {s['open_jobs']} open jobs, "
            f"web CPU {s['cpu_ms_per_event']} ms an event "
            f"({ratio(s['cpu_ms_per_event'], first['cpu_ms_per_event'])}), load {s['load_1min']}, "
            f"this client {s.get('client_cpu_pct', '-')}% of a core")


# The last fifth of the load may be at most this much slower than the first (issue 19).
SLOWER_AT_MOST = 1.5


def slowdown(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The last fifth of the windows against the first fifth (medians): writes per 30 s
    (first / last: how much throughput fell), p50 and p99 (last / first). `ok` is False when
    any is over SLOWER_AT_MOST."""
    if len(samples) < 2:
        return {"ok": False, "why": "fewer than two windows: nothing to compare"}
    fifth = max(1, len(samples) // 5)
    first, last = samples[:fifth], samples[-fifth:]

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    out: dict[str, Any] = {"windows": len(samples), "per_fifth": fifth}
    worst = 0.0
    for key, higher_is_slower in (("writes_per_30s", False), ("p50_ms", True),
                                  ("p99_ms", True)):
        a, b = med(first, key), med(last, key)
        slower = (b / a if a else 0.0) if higher_is_slower else (a / b if b else float("inf"))
        out[key] = {"first_fifth": a, "last_fifth": b, "slower": round(slower, 2)}
        worst = max(worst, slower)
    for key in ("open_jobs", "cpu_ms_per_event", "load_1min"):  # beside them, no verdict
        if all(key in r for r in samples):
            out[key] = {"first_fifth": med(first, key), "last_fifth": med(last, key)}
    out["ok"] = worst <= SLOWER_AT_MOST
    if not out["ok"]:
        out["why"] = f"the last fifth is {worst:.2f}x slower than the first (at most " \
                     f"{SLOWER_AT_MOST}x)"
    out["rss_last_half"] = rss_last_half(samples)
    grown = [n for n, r in out["rss_last_half"].items() if not r["flat"]]
    if grown:
        out["ok"] = False
        out["why"] = (out.get("why", "") + "; " if "why" in out else "") + \
            f"RSS grew over the last half on {', '.join(grown)} (more than {RSS_FLAT:.0%})"
    return out


# Over the last half of the load a process's memory may grow by at most this share.
RSS_FLAT = 0.05


def rss_last_half(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each process's RSS at the middle of the load and at its end (medians of a tenth of the
    windows each): flat when it grew by at most RSS_FLAT."""
    tenth = max(1, len(samples) // 10)
    half = len(samples) // 2
    middle, end = samples[half:half + tenth], samples[-tenth:]
    out = {}
    for key in sorted(k for k in samples[0] if k.endswith("_rss_mb")):
        a = float(statistics.median(r[key] for r in middle))
        b = float(statistics.median(r[key] for r in end))
        out[key.removesuffix("_rss_mb")] = {"middle": a, "end": b,
                                            "flat": b <= a * (1 + RSS_FLAT)}
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out = ROOT / "soak" / "out"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.log"):
        old.unlink()
    stack = Stack(out, preload=args.preload)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "args": vars(args)}
    try:
        token = await asyncio.to_thread(stack.up)
        tally = Tally()
        load = Load(stack, token, tally)
        await load.prepare()
        watchers = [Watcher(stack, n, load.cookie) for n in stack.ports]
        watch_tasks = [asyncio.create_task(w.run()) for w in watchers]

        if not args.load_only:
            log("phase 1: kill -9 mid-burst")
            results["kill9"] = await phase_kill(stack, load)
            results["kill9"]["events"] = check_events(stack, tally)
            log(json.dumps(results["kill9"]))
            log("phase 2: Redis down/up")
            results["redis"] = await phase_redis(stack, load)
            log(json.dumps(results["redis"]))
            log("phase 3: PostgreSQL down/up")
            results["postgres"] = await phase_postgres(stack, load)
            results["postgres"]["events"] = check_events(stack, tally)
            log(json.dumps(results["postgres"]))
        log(f"phase 4: {args.minutes} min of load")
        results["soak"] = await phase_soak(stack, load, args.minutes, args.speed, args.boards,
                                           args.actors)
        await asyncio.sleep(4)  # let the last pushes land
        converged = {}
        for w in watchers:
            fresh = await snapshot(stack, w.name, load.cookie)
            converged[w.name] = same_board(w, fresh)
        for w in watchers:
            w.stop.set()
        await asyncio.gather(*watch_tasks, return_exceptions=True)
        results["converged"] = converged
        results["events"] = check_events(stack, tally)
        results["http_status"] = dict(sorted(tally.status.items()))
        results["client_errors"] = tally.client_errors
        results["ws"] = {"connects": tally.ws_connects, "failures": tally.ws_failures,
                         "messages": tally.ws_messages}
        lat = [s for _, s in tally.latencies]
        results["writes_latency_ms"] = {"p50": round(p(lat, 0.5) * 1000, 1),
                                        "p99": round(p(lat, 0.99) * 1000, 1), "n": len(lat)}
    finally:
        await asyncio.to_thread(stack.down)
    return results


def print_windows(samples: list[dict[str, Any]]) -> None:
    """Each 30 s window against the first: writes, p50, p99 and open jobs."""
    if not samples:
        return
    first = samples[0]
    print(f"{'min':>6} {'writes/30s':>10} {'vs 1st':>7} {'p50 ms':>8} {'vs 1st':>7} "
          f"{'p99 ms':>8} {'vs 1st':>7} {'open jobs':>9}")
    for s in samples:
        def r(key: str, s: dict[str, Any] = s) -> str:
            return f"{s[key] / first[key]:.2f}" if first[key] else "-"
        print(f"{s['t_min']:>6} {s['writes_per_30s']:>10} {r('writes_per_30s'):>7} "
              f"{s['p50_ms']:>8} {r('p50_ms'):>7} {s['p99_ms']:>8} {r('p99_ms'):>7} "
              f"{s['open_jobs']:>9}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the load phase")
    ap.add_argument("--speed", type=float, default=10.0, help="replay speed (10 = 10x)")
    ap.add_argument("--boards", type=int, default=20, help="sockets coming and going")
    ap.add_argument("--actors", type=int, default=4, help="supervisors writing through the API")
    ap.add_argument("--preload", type=int, default=0,
                    help="open jobs to start with (1750: where the hour-long soak ended)")
    ap.add_argument("--load-only", action="store_true",
                    help="skip the fault phases (1-3): the load and its windows alone")
    args = ap.parse_args()
    results = asyncio.run(main_async(args))
    path = ROOT / "soak" / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    summary = {k: v for k, v in results.items() if k != "soak"}
    summary["soak"] = {k: v for k, v in results.get("soak", {}).items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    ok = results.get("events", {}).get("nothing_lost") and all(
        c["equal"] for c in results.get("converged", {}).values())
    slow = results.get("soak", {}).get("slowdown", {})
    print_windows(results.get("soak", {}).get("samples", []))
    if not slow.get("ok"):
        print(f"soak: slowed down: {slow.get('why')}")
    ok = ok and slow.get("ok")
    print("soak: " + ("PASS" if ok else "FAIL") + f" (figures in {path})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
