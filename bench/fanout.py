"""Fan-out: commit → every board socket, against the limit (bare `websockets`) and a peer
(Django Channels + channels-redis), same clients, same payload bytes, same run.

    .venv/bin/python bench/fanout.py [--sizes 100,1000] [--rate 2] [--seconds 10] [--burst 20]
                                     [--scale-out 5000] [--deflate]
    .venv/bin/python bench/fanout.py --idle 250,1000 [--idle-seconds 60] [--idle-pg]

For each N: a real `board serve` (one process, SQLite) with the real 311 hour and four units in
the 75th; N WebSocket clients in another process (bench/clients.py) logged in as a supervisor;
assignments, reassignments and returns to the queue through the JSON API at a steady rate, then
a burst. Latency is from each event's commit time (its `at` in the events table) to each
client's receipt of the first message whose `data-seq` covers it; every client must get every
update in order, the same bytes as every other client, and end with a board equal to a fresh
page. Then the bare server and the Channels peer get the board's own messages (snapshot first)
at the same times, to the same N clients. `--scale-out N` runs N sockets over 4 `board serve`
processes on PostgreSQL + Redis, then the bare server (one process) pushes the same messages to
the same N clients: the limit for that work on this machine. Figures go to bench/results.json
(bench/results.py).

`--idle N` measures what screens cost while nothing happens: one `board serve` (SQLite; with
`--idle-pg` PostgreSQL + Redis) with the city day's map, people and the real hour's jobs, and N
of the city day's sockets (bench/cityday.py `screens`, taken evenly: walls, supervisor boards,
phones and citywide counters in the city's proportions), no events: the server's CPU per second
over `--idle-seconds` (60: two of the hub's 30 s refreshes). Then the bare server with the same
N sockets and uvicorn's ping interval (20 s): the ratio to its CPU per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import websockets  # noqa: E402

from bench.results import record  # noqa: E402
from board.auth import accounts as auth
from board.domain.access import SYSTEM  # noqa: E402
from board.geo import store as geostore  # noqa: E402
from board.intake.file_import import import_file  # noqa: E402
from board.live.replica import Replica, normal  # noqa: E402
from board.settings import DEMO_HOUR, GEO_DIR  # noqa: E402
from board.storage import db
from board.storage.schema import events, jobs  # noqa: E402
from board.usecases import Dispatch  # noqa: E402

HOUR = DEMO_HOUR
PY = str(ROOT / ".venv" / "bin" / "python")
# `board`, by its module: the venv's console script may predate the refit's entry point.
BOARD = [PY, "-m", "board.cli.main"]
PASSWORD = "bench-password-75"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
SEQ = re.compile(r'data-seq="(\d+)"')


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) these processes have used so far: what a shared machine's
    load does not inflate, unlike wall-clock time."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def frames(clients: list[dict[str, Any]]) -> int:
    """Updates delivered (after the snapshot), over all sockets."""
    return sum(len(c["recv"]) - 1 for c in clients)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pctl(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def fanout_rate(clients: list[dict[str, Any]], upto: int) -> float:
    """Frames a server delivers per second while it fans one message out: for each message,
    sockets reached ÷ (last receipt − first receipt); the median over the steady messages."""
    by_seq: dict[int, list[float]] = {}
    for c in clients:
        for t, s in c["recv"][1:]:
            if 0 < s <= upto:
                by_seq.setdefault(s, []).append(t)
    rates = [len(ts) / max(max(ts) - min(ts), 1e-4) for ts in by_seq.values() if len(ts) > 1]
    return pctl(rates, 50) if rates else 0.0


# -- the board's data -------------------------------------------------------------------------

def seed(url: str) -> None:
    """The demo 75th: the real 311 hour, four units, a supervisor with a password and a token."""
    engine = db.make_engine(url)
    db.migrate(engine)
    d = Dispatch(engine, geostore.load(engine, GEO_DIR, 300))
    for x in "ABCD":
        d.add_unit(SYSTEM, f"75-{x}", "75")
    import_file(d, HOUR, history=False)  # the hour as live jobs, as the demo has it
    auth.add_user(engine, "bench", PASSWORD, "supervisor", "75")
    engine.dispose()


def fresh_pg(name: str) -> str:
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG}/{name}"


# -- processes --------------------------------------------------------------------------------

# --pin: servers on the first core, the clients and the driver on the others (as if the
# clients ran on other machines: they no longer take the server's core, nor it theirs).
SERVER_CORES: set[int] | None = None
CLIENT_CORES: set[int] | None = None


def pin(cores: int) -> None:
    global SERVER_CORES, CLIENT_CORES
    if cores < 2:
        raise SystemExit("--pin needs two cores or more")
    SERVER_CORES, CLIENT_CORES = {0}, set(range(1, cores))
    os.sched_setaffinity(0, CLIENT_CORES)


def unpin(cores: set[int]) -> None:
    global SERVER_CORES, CLIENT_CORES
    SERVER_CORES = CLIENT_CORES = None
    os.sched_setaffinity(0, cores)


@dataclass
class Procs:
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, cmd: list[str], env: dict[str, str] | None = None,
              log: Path | None = None, cores: set[int] | None = None) -> subprocess.Popen:
        out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
        p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        if cores:  # before the process has started any thread: they all inherit it
            os.sched_setaffinity(p.pid, cores)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.procs.clear()


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def wait_ws(url: str, timeout: float = 60) -> None:
    async def probe() -> None:
        async with websockets.connect(url, open_timeout=2):
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            asyncio.run(probe())
            return
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


DEFLATE = [False]  # --deflate: the clients offer permessage-deflate too


def start_clients(procs: Procs, urls: list[str], n: int, out: Path, cookie: str = "",
                  origin: str = "", processes: int = 1) -> list[Path]:
    files = []
    for k in range(processes):
        count = n // processes + (1 if k < n % processes else 0)
        f = out.with_name(f"{out.stem}-{k}.json")
        procs.start([PY, str(ROOT / "bench" / "clients.py"), ",".join(urls), str(count),
                     str(f), "--cookie", cookie, "--origin", origin, "--keep",
                     "2" if k == 0 else "0", "--seconds", "600",
                     *(["--deflate"] if DEFLATE[0] else [])], cores=CLIENT_CORES,
                    log=f.with_suffix(".log"))
        files.append(f)
    deadline = time.monotonic() + 180
    while not all(Path(str(f) + ".ready").exists() for f in files):
        if time.monotonic() > deadline:
            raise RuntimeError("clients did not connect")
        time.sleep(0.2)
    return files


def client_processes(n: int, args: argparse.Namespace) -> int:
    """How many processes the N clients are spread over: the same for every server of a run."""
    return args.client_processes or max(1, n // 2500)


def collect(procs: Procs, files: list[Path], final: int | None = None,
            wait: float = 60) -> list[dict[str, Any]]:
    """Tell the clients the last seq to expect; they stop once they have it (or at `wait`)."""
    if final is not None:
        for f in files:
            Path(str(f) + ".final").write_text(str(final))
        deadline = time.monotonic() + wait
        while not all(f.exists() for f in files) and time.monotonic() < deadline:
            time.sleep(0.2)
    for p in procs.procs:
        if "clients.py" in " ".join(p.args) and p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in files) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    out: list[dict[str, Any]] = []
    for f in files:
        out.extend(json.loads(f.read_text()))
    return out


# -- idle: what open screens cost while nothing happens ----------------------------------------

PING_S = 20.0  # uvicorn's ws_ping_interval, which `board serve` keeps


def idle_cpu(pid: int, seconds: float) -> float:
    """The process's CPU per second of wall-clock time over `seconds`, in ms."""
    cpu0, t0 = cpu_s([pid]), time.monotonic()
    time.sleep(seconds)
    return (cpu_s([pid]) - cpu0) * 1000 / (time.monotonic() - t0)


def joined(port: int, n: int, timeout: float = 300) -> None:
    """Wait until the server's hub has all N sockets (each has had its snapshot): the joins are
    no part of the idle cost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        got = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("board_live_sockets{") and "review_count" not in line)
        if got >= n:
            return
        time.sleep(1)
    raise RuntimeError(f"the hub did not get {n} sockets")


def idle_run(n: int, args: argparse.Namespace, work: Path, procs: Procs) -> tuple[float, float]:
    """(board, bare) idle CPU in ms per second with the same N sockets open."""
    from bench import cityday

    url = fresh_pg("bench_idle") if args.idle_pg else f"sqlite:///{work / f'idle{n}.db'}"
    city = cityday.seed(url, 10, 20)
    engine = db.make_engine(url)
    import_file(Dispatch(engine, geostore.load(engine, GEO_DIR, 300)), HOUR, history=False)
    engine.dispose()
    env = {"DATABASE_URL": url, "SECRET_KEY": cityday.SECRET, "DEADLINE_WORKER": "0",
           "BOARD_VAR_DIR": str(work), "BOARD_GEO_DIR": str(GEO_DIR),
           **({"REDIS_URL": REDIS} if args.idle_pg else {})}
    server = procs.start([*BOARD, "serve", "--port", str(args.port)], env,
                         log=work / f"idle{n}.log", cores=SERVER_CORES)
    wait_http(f"http://127.0.0.1:{args.port}/login")
    spec = cityday.screens(city, [args.port])
    spec = [{**spec[int(i * len(spec) / n)], "keep": "none"} for i in range(min(n, len(spec)))]
    files = cityday.start_clients(procs, spec, work / f"idle{n}.json", processes=1)
    joined(args.port, len(spec))
    time.sleep(5)
    board = idle_cpu(server.pid, args.idle_seconds)
    failed = [c["closed"] for c in cityday.collect(procs, files, final=0, wait=0) if c["closed"]]
    procs.stop()
    bare = procs.start([PY, str(ROOT / "bench" / "bare.py"), str(args.port + 10), "--ping",
                        str(PING_S)], log=work / "bare-idle.log", cores=SERVER_CORES)
    wait_ws(f"ws://127.0.0.1:{args.port + 10}/control")
    bare_spec = [{**s, "url": f"ws://127.0.0.1:{args.port + 10}/ws/{s['group']}",
                  "cookie": ""} for s in spec]
    files = cityday.start_clients(procs, bare_spec, work / f"bare-idle{n}.json", processes=1)
    time.sleep(5)
    base = idle_cpu(bare.pid, args.idle_seconds)
    cityday.collect(procs, files, final=0, wait=0)
    procs.stop()
    kinds: dict[str, int] = {}
    for s in spec:
        kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
    print(f"  idle N={len(spec)} {kinds}: board {board:6.1f} ms of CPU a second "
          f"({board * 1000 / len(spec):5.1f} µs per socket), bare {base:5.1f} ms "
          f"(pings every {PING_S:.0f} s), ratio {board / max(base, 0.1):5.1f}; "
          f"load {load()}; sockets failed: {len(failed)} {failed[:1]}", flush=True)
    return board, base


# -- one board run ----------------------------------------------------------------------------

@dataclass
class Run:
    name: str
    n: int
    latencies: list[float]
    frames_per_s: float
    kb_per_conn: float
    problems: list[str]
    messages: list[str] = field(default_factory=list)   # what client 0 got, snapshot first
    sent_at: dict[int, float] = field(default_factory=dict)
    burst_from: int = 0
    first: list[float] = field(default_factory=list)  # per event: to the first socket, ms
    cpu_us_per_frame: float = 0.0  # the server's CPU for the updates ÷ frames delivered

    def p(self, q: float) -> float:
        return pctl(self.latencies, q)

    def show(self) -> None:
        bad = "; ".join(self.problems) if self.problems else "ok"
        print(f"  {self.name:<8} N={self.n:<5} p50 {self.p(50):7.1f} ms  p99 {self.p(99):7.1f} ms"
              f"  first socket p50 {pctl(self.first, 50):6.1f} ms"
              f"  fan-out {self.frames_per_s:8.0f} frames/s  {self.kb_per_conn:6.1f} KB/socket"
              f"  server CPU {self.cpu_us_per_frame:5.1f} µs/frame  checks: {bad}", flush=True)


def login(base: str) -> str:
    with httpx.Client(base_url=base, timeout=20) as c:
        page = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = c.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": csrf,
                                   "next": ""})
        assert r.status_code == 303, r.text
        return "; ".join(f"{k}={v}" for k, v in c.cookies.items())


class Actions:
    """Steady work on the 75th's queue through the JSON API: assign, reassign, back to queue."""

    def __init__(self, base: str, token: str, engine: sa.Engine, units: list[int]) -> None:
        self.http = httpx.Client(base_url=base + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        with engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.id, jobs.c.version, jobs.c.unit_id).where(
                jobs.c.precinct == "75", jobs.c.status == "new").order_by(jobs.c.id)).all()
        self.jobs = [[r.id, r.version, r.unit_id] for r in rows][:12]
        self.units = units
        self.i = 0

    def one(self) -> None:
        job = self.jobs[self.i % len(self.jobs)]
        unit = self.units[(self.i // len(self.jobs) + self.i) % len(self.units)]
        self.i += 1
        if job[2] is None:
            r = self.http.post(f"/jobs/{job[0]}/assign", json={"version": job[1], "unit_id": unit})
            job[2] = unit
        elif self.i % 3:
            other = next(u for u in self.units if u != job[2])
            r = self.http.post(f"/jobs/{job[0]}/reassign",
                               json={"version": job[1], "unit_id": other})
            job[2] = other
        else:
            r = self.http.post(f"/jobs/{job[0]}/unassign",
                               json={"version": job[1], "reason": "benchmark"})
            job[2] = None
        assert r.status_code < 300, r.text
        job[1] += 1


def check(clients: list[dict[str, Any]], first_seq: int, last_seq: int) -> list[str]:
    problems = []
    closed = [c["closed"] for c in clients if c["closed"]]
    if closed:
        problems.append(f"{len(closed)} sockets failed: {closed[0]}")
    # Every socket of one server gets the same bytes (sockets of different servers may not:
    # each process's hub coalesces what it read in its own rounds).
    streams: dict[str, set[str]] = {}
    for c in clients:
        if not c["closed"]:
            streams.setdefault(c["url"], set()).add(c["digest"])
    for url, digests in streams.items():
        if len(digests) > 1:
            problems.append(f"{len(digests)} different message streams from {url}")
    for c in clients:
        seqs = [s for _, s in c["recv"][1:]]
        # A message says the last event it shows; two may say the same (a time-driven
        # re-read between two catch-ups), never a smaller one.
        if seqs != sorted(seqs):
            problems.append("a socket got updates out of order")
            break
        if not seqs or seqs[-1] < last_seq:
            problems.append(f"a socket missed updates (last seq {seqs[-1] if seqs else None}"
                            f" < {last_seq}; its last receipts {c['recv'][-3:]})")
            break
    return problems


def board_run(n: int, args: argparse.Namespace, work: Path, procs: Procs,
              servers: int = 1, url: str | None = None) -> Run:
    tag = f"board{n}x{servers}"
    db_url = url or f"sqlite:///{work / (tag + '.db')}"
    seed(db_url)
    engine = db.make_engine(db_url)
    token = auth.create_token(engine, "bench", "benchmark")
    with engine.connect() as conn:
        from board.storage.schema import units
        unit_ids = [r.id for r in conn.execute(sa.select(units.c.id).where(
            units.c.precinct == "75").order_by(units.c.callsign))]
    env = {"DATABASE_URL": db_url, "SECRET_KEY": "bench-secret", "DEADLINE_WORKER": "0",
           "BOARD_VAR_DIR": str(work)}
    if servers > 1 or url:
        env["REDIS_URL"] = REDIS
    ports = [args.port + k for k in range(servers)]
    pids = []
    for port in ports:
        cmd = [*BOARD, "serve", "--port", str(port)] + (["--ws-deflate"] if args.deflate else [])
        pids.append(procs.start(cmd, env, log=work / f"{tag}-{port}.log",
                                cores=SERVER_CORES).pid)
    for port in ports:
        wait_http(f"http://127.0.0.1:{port}/login")
    base = f"http://127.0.0.1:{ports[0]}"
    cookie = login(base)
    for port in ports:  # warm each process: its templates, its hub's audience code
        httpx.get(f"http://127.0.0.1:{port}/board/75", headers={"Cookie": cookie}, timeout=30)
    before = sum(rss_kb(p) for p in pids)
    files = start_clients(procs, [f"ws://127.0.0.1:{p}/ws/board/75" for p in ports], n,
                          work / f"{tag}.json", cookie, "auto",
                          processes=client_processes(n, args))
    time.sleep(2)
    after = sum(rss_kb(p) for p in pids)
    with engine.connect() as conn:
        seq0 = conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0
    acts = Actions(base, token, engine, unit_ids)
    cpu0 = cpu_s(pids)
    t0 = time.time()
    for k in range(int(args.rate * args.seconds)):
        time.sleep(max(0.0, t0 + k / args.rate - time.time()))
        acts.one()
    time.sleep(2)
    with engine.connect() as conn:
        burst_seq = conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0
    for _ in range(args.burst):
        acts.one()
    with engine.connect() as conn:
        evs = conn.execute(sa.select(events.c.seq, events.c.at).where(events.c.seq > seq0)
                           .order_by(events.c.seq)).all()
    clients = collect(procs, files, final=evs[-1].seq)
    clients_cpu = sum(float(Path(str(f) + ".cpu").read_text()) for f in files)
    cpu = cpu_s(pids) - cpu0
    at = {e.seq: e.at.replace(tzinfo=e.at.tzinfo or UTC).timestamp() for e in evs}
    last = max(at)
    problems = check(clients, seq0 + 1, last)
    latencies: list[float] = []
    first: dict[int, float] = {}
    for c in clients:
        recv = c["recv"][1:]
        j = 0
        for seq in sorted(s for s in at if s <= burst_seq):
            while j < len(recv) and recv[j][1] < seq:
                j += 1
            if j < len(recv):
                ms = (recv[j][0] - at[seq]) * 1000
                latencies.append(ms)
                first[seq] = min(ms, first.get(seq, ms))
    fps = fanout_rate(clients, burst_seq)
    burst_frames = len([s for _, s in clients[0]["recv"][1:] if s > burst_seq])
    print(f"  board    burst: {args.burst} actions back to back reached each socket in "
          f"{burst_frames} messages; CPU for the updates: {servers} server(s) {cpu:.1f} s, "
          f"clients {clients_cpu:.1f} s, over {time.time() - t0:.1f} s", flush=True)
    page = Replica()
    for text in clients[0]["texts"]:
        page.apply(text)
    truth = normal(httpx.get(f"{base}/board/75", headers={"Cookie": cookie}, timeout=30).text,
                   "board-body")
    if page.html("board-body") != truth:
        problems.append("client 0's board differs from a fresh page")
    texts = clients[0]["texts"]
    sent_at = {}
    for text in texts[1:]:
        m = SEQ.findall(text)
        if m and int(m[-1]) in at and not text.startswith('<span id="live-beat"'):
            sent_at[int(m[-1])] = at[int(m[-1])]
    procs.stop()
    engine.dispose()
    run = Run("board", n, latencies, fps, (after - before) / n, problems, texts, sent_at,
              burst_seq, list(first.values()), cpu * 1e6 / max(1, frames(clients)))
    run.show()
    return run


def replay_run(name: str, n: int, board: Run, args: argparse.Namespace, work: Path,
               procs: Procs) -> Run:
    """The board's own messages, at the board's commit times, through another server."""
    port = args.port + 10
    if name == "bare":
        p = procs.start([PY, str(ROOT / "bench" / "bare.py"), str(port),
                         *(["--deflate"] if args.deflate else [])], log=work / "bare.log",
                        cores=SERVER_CORES)
    else:
        p = procs.start([PY, str(ROOT / "bench" / "peer_channels.py"), str(port), REDIS],
                        log=work / "peer.log", cores=SERVER_CORES)
    wait_ws(f"ws://127.0.0.1:{port}/control")
    sent: dict[int, float] = {}

    async def drive() -> tuple[list[dict[str, Any]], float, float]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/control", max_size=None,
                                      compression=None) as ctl:
            await ctl.send("S" + board.messages[0])
            await asyncio.sleep(0.5)
            before = rss_kb(p.pid)
            files = await asyncio.to_thread(start_clients, procs,
                                            [f"ws://127.0.0.1:{port}/ws"], n,
                                            work / f"{name}{n}.json",
                                            processes=client_processes(n, args))
            await asyncio.sleep(2)
            after = rss_kb(p.pid)
            steady = [(SEQ.findall(t), t) for t in board.messages[1:]
                      if not t.startswith('<span id="live-beat"')]  # not the heartbeat
            steady = [(int(m[-1]), t) for m, t in steady if m and int(m[-1]) in board.sent_at]
            start = min(board.sent_at.values())
            cpu0 = cpu_s([p.pid])
            t0 = time.time()
            for seq, text in steady:
                if seq > board.burst_from:
                    break
                await asyncio.sleep(max(0.0, t0 + board.sent_at[seq] - start - time.time()))
                sent[seq] = time.time()
                await ctl.send("B" + text)
            clients = await asyncio.to_thread(collect, procs, files, max(sent))
            return clients, (after - before) / n, cpu_s([p.pid]) - cpu0

    clients, kb, cpu = asyncio.run(drive())
    pairs = [(s, (t - sent[s]) * 1000) for c in clients for t, s in c["recv"][1:]
             if s in sent and s <= board.burst_from]
    first: dict[int, float] = {}
    for s, ms in pairs:
        first[s] = min(ms, first.get(s, ms))
    problems = check(clients, 0, max(sent))
    procs.stop()
    run = Run(name, n, [ms for _, ms in pairs], fanout_rate(clients, board.burst_from), kb,
              problems, first=list(first.values()),
              cpu_us_per_frame=cpu * 1e6 / max(1, frames(clients)))
    run.show()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--rate", type=float, default=2.0, help="actions per second, steady")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=20, help="actions back to back")
    ap.add_argument("--port", type=int, default=18700)
    ap.add_argument("--peers", default="bare,peer")
    ap.add_argument("--scale-out", type=int, default=0, help="sockets over 4 processes, PG+Redis")
    ap.add_argument("--deflate", action="store_true", help="board with permessage-deflate on")
    ap.add_argument("--client-processes", type=int, default=0,
                    help="spread the clients over this many processes (default: one per 2,500)")
    ap.add_argument("--pin", action="store_true",
                    help="servers on core 0, clients on the others (not the scale-out)")
    ap.add_argument("--idle", default="", help="sockets, idle: the servers' CPU per second")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--idle-pg", action="store_true", help="--idle on PostgreSQL + Redis")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    DEFLATE[0] = args.deflate
    cores = os.sched_getaffinity(0)
    if args.pin:
        pin(len(cores))
    print(f"fan-out benchmark · load average {load()} · {os.cpu_count()} cores", flush=True)
    procs = Procs()
    rec = (lambda *a, **k: None) if args.no_record else record
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            work = Path(tmp)
            for n in [int(x) for x in args.idle.split(",") if x]:
                board_ms, bare_ms = idle_run(n, args, work, procs)
                rec(f"idle_cpu_ms_per_s_{n}" + ("_pg" if args.idle_pg else ""), board_ms,
                    "ms/s", baseline=bare_ms)
            for n in [int(x) for x in args.sizes.split(",") if x and not args.idle]:
                board = board_run(n, args, work, procs)
                runs = {"board": board}
                for name in [x for x in args.peers.split(",") if x]:
                    runs[name] = replay_run(name, n, board, args, work, procs)
                bare, peer = runs.get("bare"), runs.get("peer")
                suffix = ("_deflate" if args.deflate else "") + ("_pinned" if args.pin else "")
                rec(f"fanout_p99_ms_{n}{suffix}", board.p(99), "ms",
                    baseline=bare.p(99) if bare else None)
                if bare:
                    rec(f"fanout_bare_p99_ms_{n}{suffix}", bare.p(99), "ms")
                    rec(f"fanout_frames_per_s_ratio_vs_bare{suffix}" + ("" if n == 1000 else
                                                                         f"_{n}"),
                        board.frames_per_s / bare.frames_per_s, "ratio")
                if peer:
                    rec(f"fanout_peer_p99_ms_{n}{suffix}", peer.p(99), "ms",
                        baseline=board.p(99))
                    rec(f"fanout_peer_frames_per_s_{n}{suffix}", peer.frames_per_s,
                        "frames/s", baseline=board.frames_per_s)
                rec(f"kb_per_conn_{n}{suffix}", board.kb_per_conn, "KB",
                    baseline=bare.kb_per_conn if bare else None)
                rec(f"fanout_first_socket_p50_ms_{n}{suffix}", pctl(board.first, 50), "ms",
                    baseline=pctl(bare.first, 50) if bare else None)
                rec(f"fanout_server_cpu_us_per_frame_{n}{suffix}", board.cpu_us_per_frame, "µs",
                    baseline=bare.cpu_us_per_frame if bare else None)
                for r in runs.values():
                    if r.problems:
                        print(f"  !! {r.name} N={n}: {'; '.join(r.problems)}", flush=True)
            if args.scale_out:
                n = args.scale_out
                unpin(cores)  # four servers on one core would measure that core, not the hub
                url = fresh_pg("bench_fanout")
                board = board_run(n, args, work, procs, servers=4, url=url)
                # The limit for the same work here: the bare server, one process, pushing the
                # same messages to the same N clients (the clients' cost is the same for both).
                bare = (replay_run("bare", n, board, args, work, procs)
                        if "bare" in args.peers.split(",") else None)
                rec(f"fanout_p99_ms_{n}_4proc", board.p(99), "ms",
                    baseline=bare.p(99) if bare else None)
                if bare:
                    rec(f"fanout_bare_p99_ms_{n}", bare.p(99), "ms")
                rec(f"kb_per_conn_{n}_4proc", board.kb_per_conn, "KB")
                rec(f"fanout_server_cpu_us_per_frame_{n}_4proc", board.cpu_us_per_frame, "µs",
                    baseline=bare.cpu_us_per_frame if bare else None)
                for r in (board, bare):
                    if r and r.problems:
                        print(f"  !! {r.name} N={n}: {'; '.join(r.problems)}", flush=True)
    finally:
        procs.stop()


if __name__ == "__main__":
    main()
