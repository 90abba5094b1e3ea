"""A city day: 311 jobs arriving across all 77 precincts, worked through the JSON API, with every
screen of the city connected — commit → each screen, against bare `websockets` in the same run.

    .venv/bin/python bench/cityday.py [--minutes 8] [--speed 10] [--start 20:00]
                                      [--peak-factor 3] [--scale 1] [--units 10]

The city (a throwaway PostgreSQL cluster and Redis of its own, as soak/run.py uses):
  - every precinct of the map (77), --units units on tour in each (default 10: 770), a
    supervisor, a wall; 20 commanders; an intake user entering 311 jobs
  - four `board serve` processes, the deadline worker (`board deadlines`) and the poller
    (`board poll-311`, pointed at a local feed that has nothing new)
  - sockets, spread over the four processes: one wall and two supervisor boards per precinct,
    one phone (/ws/my) per unit on tour, and 20 QSTAT viewers (commanders on /ws/city, the
    live citywide counters; each also loads /qstat once a minute)
The day: NYPD's 1.5 million 311 complaints a year (about 4,100 a day) in a day's shape with the
evening peak (SHAPE: an hour's share of the day), from --start, at --speed× (10: a minute
of the run is ten of the day). The last third of the run is the peak: arrivals at
--peak-factor × the day's mean rate (3: a summer evening). Each job is drawn from the real
311 hour (data/311/: its complaint types, descriptors, addresses and points, so the
precincts get the city's mix), entered through the API; its precinct's supervisor assigns
it to the unit with the shortest stack a few (simulated) minutes later; the unit's officer
acknowledges, goes en route, arrives and closes it, each step a few minutes after the last.
--minutes is the length of the load (8: about 20 minutes in all with the bare run);
--scale multiplies the arrivals (0.5: half the city).

Figures, from each event's commit (its `at`, the same clock as the clients'):
  p50/p99 to every screen that shows it, per kind: board (the precinct's supervisors), wall
  (the precinct's wall), phone (the unit's officer, for the driver's own writes); missed and
  out of order; every screen (one of each group of identical screens) equal to a fresh page at
  the end (the clients stop first and the fresh pages are read minutes later, while deadlines
  keep passing: a citywide counters screen whose only difference is overdue counts that the
  deadlines passed meanwhile explain, job by job, is reported apart and not counted missed);
  rows the database returned per event (each server's /metrics); the servers' CPU per event;
  RSS per process; the API writes' p50/p99. Then the bare server (bench/bare.py, one
  process) gets the same frames for the same sockets at the same commit times: its p50/p99 per
  kind, CPU per frame and KB per socket are the limit the board is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import difflib
import http.server
import json
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from faults import ThrowawayPostgres, ThrowawayRedis, free_port  # noqa: E402
from itsdangerous import TimestampSigner  # noqa: E402

from bench.fanout import PY, Procs, cpu_s, pctl, rss_kb, wait_http, wait_ws  # noqa: E402
from bench.results import record  # noqa: E402
from board.auth import accounts as auth  # noqa: E402
from board.auth import sessions  # noqa: E402
from board.geo import store as geostore  # noqa: E402
from board.geo.routing import load_geo  # noqa: E402
from board.live.render import WALL_QUIET  # noqa: E402
from board.live.replica import Replica, normal  # noqa: E402
from board.settings import DEMO_HOUR  # noqa: E402
from board.storage import db  # noqa: E402
from board.storage.schema import api_tokens as api_tokens_t  # noqa: E402
from board.storage.schema import events, jobs  # noqa: E402
from board.storage.schema import sessions as sessions_t  # noqa: E402
from board.storage.schema import units as units_t  # noqa: E402
from board.storage.schema import users as users_t  # noqa: E402

DATA = ROOT / "data"
YEAR = 1_500_000
PER_DAY = YEAR / 365
# An hour's share of a day's NYPD 311 complaints (midnight first): quiet mornings, the evening
# and late-night peak (noise, parking) — the shape of the city's own data, smoothed.
SHAPE = (5.6, 4.4, 3.2, 2.3, 1.6, 1.3, 1.5, 2.0, 2.6, 3.0, 3.2, 3.4,
         3.6, 3.8, 4.0, 4.3, 4.6, 5.0, 5.4, 5.9, 6.4, 7.0, 7.6, 7.3)
SECRET = "cityday-secret"
# `board`, by its module (the venv's console script may predate the refit's entry point).
BOARD = [PY, "-m", "board.cli.main"]
SEQS = re.compile(r'data-seq="(\d+)"')
STEPS = (("acknowledge", 0.5, 2.0), ("en_route", 1.0, 3.0), ("on_scene", 3.0, 10.0),
         ("close", 5.0, 20.0))  # (action, sim minutes after the last step: from, to)
CLOSES = ("action_taken", "no_evidence", "gone_on_arrival")


def log(msg: str) -> None:
    print(f"[cityday {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- the city ---------------------------------------------------------------------------------

@dataclass
class City:
    precincts: list[str]
    units: dict[str, list[int]]                     # precinct → unit ids
    tokens: dict[str, str]                          # username → API token
    cookies: dict[str, list[str]] = field(default_factory=dict)  # username → session cookies
    officer_of: dict[int, str] = field(default_factory=dict)     # unit → officer username


def cookie(secret: str) -> str:
    """The session cookie a browser gets at login (Starlette's signed session, SECRET_KEY)."""
    data = base64.b64encode(json.dumps({"sid": secret}).encode())
    return "board_session=" + TimestampSigner(SECRET).sign(data).decode()


def seed(url: str, n_units: int, viewers: int) -> City:
    """Map, units, people, API tokens and browser sessions: written in a few statements (no
    password hashing or event per person for 900 people; the hubs start after)."""
    engine = db.make_engine(url)
    db.migrate(engine)
    geo = load_geo(DATA / "nyc")
    geostore.store(engine, geo)
    precincts = sorted(geo.precincts(), key=lambda p: (len(p), p))
    now = datetime.now(UTC)
    city = City(precincts, {}, {})
    with db.write(engine) as conn:
        conn.execute(units_t.insert(), [
            {"callsign": f"{p}-{k:02d}", "precinct": p, "status": "available", "version": 1,
             "updated_at": now} for p in precincts for k in range(n_units)])
        by_sign = dict(conn.execute(sa.select(units_t.c.callsign, units_t.c.id)).all())
        people: list[dict[str, Any]] = []
        for p in precincts:
            city.units[p] = [by_sign[f"{p}-{k:02d}"] for k in range(n_units)]
            people += [{"username": f"sgt{p}", "role": "supervisor", "precincts": p},
                       {"username": f"wall{p}", "role": "wall", "precincts": p}]
            for k, unit in enumerate(city.units[p]):
                name = f"off{p}-{k:02d}"
                people.append({"username": name, "role": "officer", "precincts": p,
                               "unit_id": unit})
                city.officer_of[unit] = name
        people += [{"username": f"cmd{k}", "role": "commander", "precincts": "*"}
                   for k in range(viewers)]
        people.append({"username": "intake", "role": "supervisor", "precincts": "*"})
        conn.execute(users_t.insert(), [
            {"display_name": u["username"], "password_hash": None, "created_at": now,
             "unit_id": None, **u} for u in people])
        ids = dict(conn.execute(sa.select(users_t.c.username, users_t.c.id)).all())
        tokens, sessions_ = [], []
        for u in people:
            name = u["username"]
            if u["role"] in ("supervisor", "officer"):
                city.tokens[name] = "brd_" + secrets.token_urlsafe(32)
                tokens.append({"user_id": ids[name], "name": "cityday", "created_at": now,
                               "token_hash": auth._digest(city.tokens[name])})
            browsers = {"supervisor": 2, "intake": 0}.get(u["role"], 1)
            if name == "intake":
                browsers = 0
            city.cookies[name] = []
            for _ in range(browsers):
                secret = secrets.token_urlsafe(32)
                city.cookies[name].append(cookie(secret))
                sessions_.append({"secret_hash": sessions.digest(secret), "user_id": ids[name],
                                  "created_at": now, "last_seen_at": now})
        conn.execute(api_tokens_t.insert(), tokens)
        conn.execute(sessions_t.insert(), sessions_)
    engine.dispose()
    return city


def hour_rows() -> list[dict[str, Any]]:
    """The real hour's NYPD requests with a point: what each arriving job is drawn from."""
    with open(DEMO_HOUR, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Agency") == "NYPD"]
    out = []
    for r in rows:
        try:
            lat, lon = float(r["Latitude"]), float(r["Longitude"])
        except (KeyError, ValueError):
            continue
        out.append({"complaint_type": r["Complaint Type"], "descriptor": r["Descriptor"],
                    "address": r["Incident Address"] or "", "lat": lat, "lon": lon})
    return out


class EmptyFeed(http.server.BaseHTTPRequestHandler):
    """The poller's feed: answers every query with no new rows."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


# -- the screens ------------------------------------------------------------------------------

def screens(city: City, ports: list[int]) -> list[dict[str, Any]]:
    """Every socket of the day, round-robin over the servers. `group`: sockets that get the
    same bytes (one audience in one process); the first of each keeps its messages."""
    spec: list[dict[str, Any]] = []

    def add(path: str, who: str, browser: int, kind: str, name: str, mark: str) -> None:
        port = ports[len(spec) % len(ports)]
        group = f"{kind}:{name}:{port}"
        spec.append({"url": f"ws://127.0.0.1:{port}{path}", "cookie": city.cookies[who][browser],
                     "tag": f"{kind}:{name}", "group": group, "who": who, "port": port,
                     "path": path, "mark": mark, "kind": kind})

    for p in city.precincts:
        add(f"/ws/wall/{p}", f"wall{p}", 0, "wall", p, "max")
        add(f"/ws/board/{p}", f"sgt{p}", 0, "board", p, "last")
        add(f"/ws/board/{p}", f"sgt{p}", 1, "board", p, "last")
    for p in city.precincts:
        for unit in city.units[p]:
            add("/ws/my", city.officer_of[unit], 0, "phone", str(unit), "versions")
    for k in range(sum(1 for n in city.cookies if n.startswith("cmd"))):
        add("/ws/city", f"cmd{k}", 0, "city", "*", "last")
    seen: set[str] = set()
    for s in spec:
        s["keep"] = "all" if s["group"] not in seen else "none"
        seen.add(s["group"])
    return spec


def start_clients(procs: Procs, spec: list[dict[str, Any]], out: Path,
                  processes: int = 2) -> list[Path]:
    files = []
    for k in range(processes):
        part = spec[k::processes]
        f = out.with_name(f"{out.stem}-{k}.json")
        s = out.with_name(f"{out.stem}-{k}-spec.json")
        s.write_text(json.dumps(part))
        procs.start([PY, str(ROOT / "bench" / "clients.py"), str(s), "0", str(f),
                     "--seconds", "3600"], log=f.with_suffix(".log"))
        files.append(f)
    deadline = time.monotonic() + 300
    while not all(Path(str(f) + ".ready").exists() for f in files):
        if time.monotonic() > deadline:
            raise RuntimeError("clients did not connect")
        time.sleep(0.3)
    return files


def collect(procs: Procs, files: list[Path], final: int, wait: float = 40
            ) -> list[dict[str, Any]]:
    for f in files:
        Path(str(f) + ".final").write_text(str(final))
    deadline = time.monotonic() + wait
    while not all(f.exists() for f in files) and time.monotonic() < deadline:
        time.sleep(0.3)
    for p in procs.procs:
        if "clients.py" in " ".join(map(str, p.args)) and p.poll() is None:
            p.send_signal(15)
    deadline = time.monotonic() + 120
    while not all(f.exists() for f in files) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(0.5)
    out: list[dict[str, Any]] = []
    for f in files:
        out.extend(json.loads(f.read_text()))
    return out


# -- the day's work ---------------------------------------------------------------------------

@dataclass
class Tally:
    writes: list[tuple[float, float, str]] = field(default_factory=list)  # (t, s, action)
    status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    errors: int = 0
    versions: dict[int, tuple[int, int, int | None, str]] = field(default_factory=dict)
    # seq → (job, version after, unit, action): what a phone must show after it
    jobs: int = 0
    unrouted: int = 0
    qstat_ms: list[float] = field(default_factory=list)


class Day:
    """Arrivals in the day's shape, each job's life through the API."""

    def __init__(self, city: City, ports: list[int], args: argparse.Namespace,
                 rows: list[dict[str, Any]]) -> None:
        self.city, self.args, self.rows = city, args, rows
        self.ports = ports
        self.tally = Tally()
        self.stacks: dict[int, int] = {u: 0 for us in city.units.values() for u in us}
        self.rng = random.Random(311)
        self.stop = asyncio.Event()
        self.http: list[httpx.AsyncClient] = []

    def client(self) -> httpx.AsyncClient:
        return self.rng.choice(self.http)

    def rate_per_s(self, t_run: float, total: float) -> float:
        """Arrivals per second of the run at `t_run` seconds in."""
        a = self.args
        if t_run >= total * 2 / 3:  # the peak
            per_day = PER_DAY * a.peak_factor
        else:
            h, m = (int(x) for x in a.start.split(":"))
            hour = int((h + (m + t_run * a.speed / 60) / 60) % 24)
            per_day = PER_DAY * 24 * SHAPE[hour] / sum(SHAPE)
        return per_day / 86_400 * a.speed * a.scale

    async def write(self, who: str, method: str, path: str, body: dict[str, Any]
                    ) -> dict[str, Any] | None:
        t0 = time.monotonic()
        try:
            r = await self.client().request(method, "/api/v1" + path, json=body, headers={
                "Authorization": f"Bearer {self.city.tokens[who]}"})
        except httpx.HTTPError:
            self.tally.errors += 1
            return None
        self.tally.writes.append((time.time(), time.monotonic() - t0, path.rsplit("/", 1)[-1]))
        self.tally.status[r.status_code] += 1
        return r.json() if r.is_success else None

    async def sim_sleep(self, lo: float, hi: float) -> None:
        await asyncio.sleep(self.rng.uniform(lo, hi) * 60 / self.args.speed)

    async def life(self, row: dict[str, Any]) -> None:
        made = await self.write("intake", "POST", "/jobs", {**row, "description": "cityday"})
        if made is None:
            return
        self.tally.jobs += 1
        precinct = made.get("precinct")
        if precinct not in self.city.units:
            self.tally.unrouted += 1
            return
        job, version = made["id"], made["version"]
        await self.sim_sleep(1, 4)
        unit = min(self.city.units[precinct], key=lambda u: (self.stacks[u], self.rng.random()))
        self.stacks[unit] += 1
        try:
            got = await self.write(f"sgt{precinct}", "POST", f"/jobs/{job}/assign",
                                   {"version": version, "unit_id": unit})
            if got is None:
                return
            self.note(got, unit)
            officer = self.city.officer_of[unit]
            for action, lo, hi in STEPS:
                await self.sim_sleep(lo, hi)
                body: dict[str, Any] = {"version": got["job"]["version"]}
                if action == "close":
                    body["disposition"] = self.rng.choice(CLOSES)
                done = await self.write(officer, "POST", f"/jobs/{job}/{action}", body)
                if done is None:  # a conflict (the deadline worker's marks do not move it)
                    return
                got = done
                self.note(got, unit)
        finally:
            self.stacks[unit] -= 1

    def note(self, answer: dict[str, Any], unit: int) -> None:
        ev, card = answer["event"], answer.get("job") or {}
        self.tally.versions[ev["seq"]] = (ev["job_id"], card.get("version", 0), unit,
                                          ev["kind"])

    async def arrivals(self, seconds: float) -> None:
        lives: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        while (t := time.monotonic() - t0) < seconds:
            await asyncio.sleep(self.rng.expovariate(max(self.rate_per_s(t, seconds), 1e-6)))
            if time.monotonic() - t0 >= seconds:
                break
            task = asyncio.create_task(self.life(self.rng.choice(self.rows)))
            lives.add(task)
            task.add_done_callback(lives.discard)
        for task in list(lives):
            task.cancel()
        await asyncio.gather(*lives, return_exceptions=True)

    async def qstat(self, name: str, seconds: float, cookie_: str) -> None:
        """A commander on QSTAT: the page once a minute (the counters come by socket)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), self.rng.uniform(0, 60))
        while not self.stop.is_set():
            s = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                r = await self.client().get("/qstat", headers={"Cookie": cookie_})
                if r.status_code == 200:
                    self.tally.qstat_ms.append((time.monotonic() - s) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 60)

    async def run(self, seconds: float) -> None:
        self.http = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30,
                                       limits=httpx.Limits(max_connections=40))
                     for p in self.ports]
        try:
            viewers = [n for n in self.city.cookies if n.startswith("cmd")]
            async def day() -> None:
                await self.arrivals(seconds)
                self.stop.set()
            await asyncio.gather(day(), *(self.qstat(n, seconds, self.city.cookies[n][0])
                                          for n in viewers))
        finally:
            for c in self.http:
                await c.aclose()


# -- figures ----------------------------------------------------------------------------------

def read_events(url: str, after: int) -> list[Any]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id,
                                      events.c.unit_id, events.c.precinct, events.c.payload)
                            .where(events.c.seq > after).order_by(events.c.seq)).all()
    engine.dispose()
    return rows


def at_of(e: Any) -> float:
    return e.at.replace(tzinfo=e.at.tzinfo or UTC).timestamp()


def first_at_or_after(recv: list[list[Any]], seq: int) -> float | None:
    for t, s in recv[1:]:
        if s >= seq:
            return t
    return None


@dataclass
class Figures:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    missed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    out_of_order: int = 0
    failed: list[str] = field(default_factory=list)


def board_figures(clients: list[dict[str, Any]], evs: list[Any], tally: Tally) -> Figures:
    """Commit → screen for every (event, screen that shows it)."""
    fig = Figures()
    by_precinct: dict[str, list[Any]] = defaultdict(list)
    for e in evs:
        if e.precinct:
            by_precinct[e.precinct].append(e)
    for c in clients:
        if c["closed"]:
            fig.failed.append(f"{c['tag']}: {c['closed']}")
            continue
        kind, name = c["tag"].split(":", 1)
        if kind in ("board", "wall"):
            seqs = [s for _, s in c["recv"][1:]]
            if seqs != sorted(seqs):
                fig.out_of_order += 1
            shown = by_precinct.get(name, [])
            if kind == "wall":  # the ticker leaves these out
                shown = [e for e in shown if e.kind not in WALL_QUIET]
            for e in shown:
                t = first_at_or_after(c["recv"], e.seq)
                if t is None:
                    fig.missed[kind] += 1
                else:
                    fig.latency[kind].append((t - at_of(e)) * 1000)
        elif kind == "phone":
            unit = int(name)
            at = {e.seq: at_of(e) for e in evs}
            for seq, (job, version, u, what) in tally.versions.items():
                if u != unit or seq not in at:
                    continue
                t = next((t for t, pairs in c["versions"] if t >= at[seq] and (
                    job not in dict(pairs) if what == "close"
                    else dict(pairs).get(job, -1) >= version)), None)
                if t is None:
                    fig.missed[kind] += 1
                else:
                    fig.latency[kind].append((t - at[seq]) * 1000)
    return fig


_OVERDUE = re.compile(r'data-precinct="([^"]+)"[^>]*>.*?data-k="overdue"[^>]*>(\d+)<', re.S)
_TOTALS = re.compile(r'(<tr id="city-total">\s*<th>All</th>\s*<td>\d+</td>\s*<td>)(\d+)<')
_DEADLINE_MARGIN_S = 5.0  # a deadline this long before the clients stopped may not be shown yet


def _blank(html: str) -> str:
    """The counters without their overdue counts (a precinct's cell, its class, the total's)."""
    html = re.sub(r'<td[^>]*data-k="overdue"[^>]*>\d+<', '<td data-k="overdue"><', html)
    return _TOTALS.sub(r'\1<', html)


def behind_the_clock(engine: sa.Engine, got: str, want: str, since: datetime,
                     until: datetime) -> bool:
    """Whether a citywide counters screen differs from its fresh page only as the clock
    explains: the clients stopped (`since`) minutes before the fresh page was read (`until`),
    and deadlines kept passing. True when only overdue counts differ, each lower on the screen
    by no more than the open jobs of that precinct with a deadline in between."""
    shown, fresh = dict(_OVERDUE.findall(got)), dict(_OVERDUE.findall(want))
    short = {p: int(fresh[p]) - int(shown.get(p, 0)) for p in fresh
             if fresh[p] != shown.get(p)}
    if not short or any(n < 0 for n in short.values()):
        return False
    # the rest equal, the total line's overdue count (its second cell) short by the same
    if _blank(got) != _blank(want):
        return False
    total_got, total_want = _TOTALS.search(got), _TOTALS.search(want)
    if total_got is None or total_want is None or (
            int(total_want.group(2)) - int(total_got.group(2)) != sum(short.values())):
        return False
    start = since.timestamp() - _DEADLINE_MARGIN_S
    with engine.connect() as conn:
        dues = conn.execute(sa.select(jobs.c.precinct, jobs.c.ack_due, jobs.c.arrive_due,
                                      jobs.c.close_due)
                            .where(jobs.c.precinct.in_(sorted(short)),
                                   jobs.c.status != "closed")).all()
    passed: dict[str, int] = defaultdict(int)
    for p, *times in dues:
        if any(t is not None and start < t.timestamp() <= until.timestamp() for t in times):
            passed[p] += 1
    return all(passed[p] >= n for p, n in short.items())


def screens_equal(clients: list[dict[str, Any]], spec: list[dict[str, Any]],
                  engine: sa.Engine, stopped: datetime) -> tuple[int, int, int, list[str]]:
    """Each kept screen (one per group of identical sockets) against a fresh page: how many
    were checked, how many differ, how many of those only as deadlines that passed after the
    clients stopped explain (`behind_the_clock`), and what differs."""
    kept = {(s["url"], s["tag"]): s for s in spec if s["keep"] == "all"}
    region = {"board": "board-body", "wall": "wall-body", "phone": "my-queue",
              "city": "city-counters"}
    page = {"board": lambda s: f"/board/{s['tag'].split(':')[1]}",
            "wall": lambda s: f"/wall/{s['tag'].split(':')[1]}",
            "phone": lambda s: "/my", "city": lambda s: "/city"}
    def one(c: dict[str, Any]) -> str | None:
        """None when the screen equals a fresh page; else what differs."""
        s = kept[(c["url"], c["tag"])]
        kind, rid = s["kind"], region[s["kind"]]
        screen = Replica(f'<div id="{rid}"></div><span id="live-beat"></span>')
        for text in c["texts"]:
            screen.apply(text)
        fresh = httpx.get(f"http://127.0.0.1:{s['port']}{page[kind](s)}",
                          headers={"Cookie": s["cookie"]}, timeout=120)
        read_at = datetime.now(UTC)
        try:
            got, want = screen.html(rid), normal(fresh.text, rid)
        except AssertionError as e:
            return f"{s['tag']}: {e}"
        if got == want:
            return None
        if kind == "city" and behind_the_clock(engine, got, want, stopped, read_at):
            return CLOCK
        lines = difflib.unified_diff(want.replace("><", ">\n<").splitlines(),
                                     got.replace("><", ">\n<").splitlines(), n=0)
        return (f"{s['tag']} on :{s['port']} differs from a fresh page: "
                + " | ".join(x for x in list(lines)[2:8]))

    todo = [c for c in clients
            if (c["url"], c["tag"]) in kept and c["texts"] and not c["closed"]]
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(one, todo))
    bad = [f for f in found if f and f != CLOCK]
    return len(todo), len(bad), found.count(CLOCK), bad[:5]


CLOCK = "behind the clock"


def scrape_rows(ports: list[int]) -> float:
    """Rows read so far by the servers' hubs and requests (board_db_rows_read)."""
    total = 0.0
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        for line in text.splitlines():
            if line.startswith("board_db_rows_read_total{") and (
                    'path="catch_up"' in line or 'path="request"' in line):
                total += float(line.rsplit(" ", 1)[1])
    return total


# -- the bare baseline ------------------------------------------------------------------------

def bare_plan(clients: list[dict[str, Any]], spec: list[dict[str, Any]], evs: list[Any],
              tally: Tally) -> tuple[dict[str, str], list[tuple[float, str, str]]]:
    """Per channel (a group of identical sockets) its snapshot, and every later message with
    the time the board had it to send: the commit of the newest event it shows."""
    at = {e.seq: at_of(e) for e in evs}
    group_of = {(s["url"], s["tag"]): s["group"] for s in spec}
    snapshots: dict[str, str] = {}
    sends: list[tuple[float, str, str]] = []
    for c in clients:
        group = group_of[(c["url"], c["tag"])]
        if group in snapshots or not c["texts"]:
            continue
        texts = c["texts"]
        snapshots[group] = texts[0]
        kind = group.split(":", 1)[0]
        times = [t for t, _ in c["versions"]] if kind == "phone" else None
        updates = [t for t in texts[1:] if not t.startswith('<span id="live-beat"')]
        for k, text in enumerate(updates):
            if kind == "phone":
                t = times[k + 1] if times and k + 1 < len(times) else None
                seqs = [s for s, (_, _, u, _) in tally.versions.items()
                        if str(u) == group.split(":")[1] and s in at and t and at[s] <= t]
                when = at[max(seqs)] if seqs else t
            else:
                found = [int(x) for x in SEQS.findall(text)]
                seq = max(found) if found else None
                when = at.get(seq) if seq else None
            if when is not None:
                sends.append((when, group, text))
    sends.sort(key=lambda x: x[0])
    return snapshots, sends


async def set_snapshots(port: int, snapshots: dict[str, str]) -> None:
    import websockets
    async with websockets.connect(f"ws://127.0.0.1:{port}/control", max_size=None,
                                  compression=None) as ctl:
        for group, text in snapshots.items():
            await ctl.send("S" + group + "\0" + text)
        await asyncio.sleep(0.5)


async def replay(port: int, sends: list[tuple[float, str, str]]) -> dict[str, list[float]]:
    import websockets
    sent: dict[str, list[float]] = defaultdict(list)
    async with websockets.connect(f"ws://127.0.0.1:{port}/control", max_size=None,
                                  compression=None) as ctl:
        start, t0 = sends[0][0], time.time()
        for when, group, text in sends:
            await asyncio.sleep(max(0.0, t0 + when - start - time.time()))
            sent[group].append(time.time())
            await ctl.send("B" + group + "\0" + text)
    return sent


def bare_run(args: argparse.Namespace, work: Path, procs: Procs, spec: list[dict[str, Any]],
             snapshots: dict[str, str], sends: list[tuple[float, str, str]]
             ) -> dict[str, Any]:
    port = free_port()
    p = procs.start([PY, str(ROOT / "bench" / "bare.py"), str(port)], log=work / "bare.log")
    wait_ws(f"ws://127.0.0.1:{port}/control")
    asyncio.run(set_snapshots(port, snapshots))
    time.sleep(0.5)
    before = rss_kb(p.pid)
    bare_spec = [{**s, "url": f"ws://127.0.0.1:{port}/ws/{s['group']}", "cookie": "",
                  "keep": "none", "mark": "versions"} for s in spec]
    files = start_clients(procs, bare_spec, work / "bare-clients.json")
    time.sleep(2)
    after = rss_kb(p.pid)
    cpu0 = cpu_s([p.pid])
    sent = asyncio.run(replay(port, sends))
    cpu = cpu_s([p.pid]) - cpu0
    time.sleep(3)
    clients = collect(procs, files, final=0, wait=0)
    lat: dict[str, list[float]] = defaultdict(list)
    frames = 0
    group_of = {(s["url"], s["tag"]): s["group"] for s in bare_spec}
    for c in clients:
        group = group_of[(c["url"], c["tag"])]
        kind = group.split(":", 1)[0]
        times = [t for t, _ in c["versions"]][1:]  # every message after the snapshot
        frames += len(times)
        for t, s in zip(times, sent.get(group, []), strict=False):
            lat[kind].append((t - s) * 1000)
    procs.stop()
    return {"latency": lat, "kb_per_socket": (after - before) / len(spec),
            "cpu_us_per_frame": cpu * 1e6 / max(frames, 1), "frames": frames}


# -- the run ----------------------------------------------------------------------------------

def main() -> None:  # noqa: PLR0915 - one run, step by step
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=8.0, help="length of the load")
    ap.add_argument("--speed", type=float, default=10.0, help="10: a minute is ten of the day")
    ap.add_argument("--start", default="20:00", help="the time of day the run starts at")
    ap.add_argument("--peak-factor", type=float, default=3.0,
                    help="the last third's arrivals, × the day's mean rate")
    ap.add_argument("--scale", type=float, default=1.0, help="× the city's arrivals")
    ap.add_argument("--units", type=int, default=10, help="units on tour per precinct")
    ap.add_argument("--viewers", type=int, default=20, help="commanders on QSTAT")
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--no-bare", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what it started, then go
    log(f"city day · {args.minutes} min at {args.speed}× from {args.start}, peak "
        f"{args.peak_factor}× the mean, scale {args.scale} · load average {loadavg()}")
    procs = Procs()
    pg, redis = ThrowawayPostgres(), ThrowawayRedis()
    feed = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EmptyFeed)
    threading.Thread(target=feed.serve_forever, daemon=True).start()
    rec = (lambda *a, **k: None) if args.no_record else record
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cityday-") as tmp:
            work = Path(tmp)
            pg.init()
            pg.start()
            redis.start()
            t0 = time.monotonic()
            city = seed(pg.url, args.units, args.viewers)
            log(f"seeded {len(city.precincts)} precincts, "
                f"{sum(len(u) for u in city.units.values())} units, {len(city.tokens)} tokens "
                f"in {time.monotonic() - t0:.0f} s")
            env = {"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "SECRET_KEY": SECRET,
                   "DEADLINE_WORKER": "0", "BOARD_VAR_DIR": str(work),
                   "BOARD_GEO_DIR": str(DATA / "nyc"),
                   "SOCRATA_URL": f"http://127.0.0.1:{feed.server_address[1]}/resource.json",
                   "SOCRATA_POLL_SECONDS": "10"}
            ports = [free_port() for _ in range(args.servers)]
            servers = [procs.start([*BOARD, "serve", "--port", str(p)], env,
                                   log=work / f"serve-{p}.log") for p in ports]
            workers = [procs.start([*BOARD, "deadlines"], env, log=work / "deadlines.log"),
                       procs.start([*BOARD, "poll-311"], env, log=work / "poller.log")]
            for p in ports:
                wait_http(f"http://127.0.0.1:{p}/login", timeout=240)
            spec = screens(city, ports)
            counts = defaultdict(int)
            for s in spec:
                counts[s["kind"]] += 1
            log(f"{len(spec)} sockets: {dict(counts)}")
            pids = [s.pid for s in servers]
            rss0 = {p.pid: rss_kb(p.pid) for p in servers}
            files = start_clients(procs, spec, work / "clients.json")
            time.sleep(3)
            rss1 = {p.pid: rss_kb(p.pid) for p in servers}
            engine = sa.create_engine(pg.url, poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                seq0 = conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0
            idle0 = cpu_s(pids)
            time.sleep(30)  # every screen connected, nothing happening: the servers' idle CPU
            idle = (cpu_s(pids) - idle0) / 30  # (one whole cycle of the 30 s refreshes)
            rows0 = scrape_rows(ports)
            cpu0, wcpu0 = cpu_s(pids), cpu_s([w.pid for w in workers])
            day = Day(city, ports, args, hour_rows())
            log(f"load for {args.minutes} min · load average {loadavg()}")
            t_load = time.monotonic()
            asyncio.run(day.run(args.minutes * 60))
            took = time.monotonic() - t_load
            time.sleep(5)  # the last pushes
            cpu, wcpu = cpu_s(pids) - cpu0, cpu_s([w.pid for w in workers]) - wcpu0
            rows = scrape_rows(ports) - rows0
            evs = read_events(pg.url, seq0)
            with engine.connect() as conn:
                open_jobs = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                    jobs.c.status != "closed")).scalar()
            rss = {f"serve:{p}": rss_kb(s.pid) / 1024 for p, s in zip(ports, servers,
                                                                        strict=True)}
            rss.update({"deadlines": rss_kb(workers[0].pid) / 1024,
                        "poller": rss_kb(workers[1].pid) / 1024})
            stopped = datetime.now(UTC)  # the clients stop now: their screens as they are
            clients = collect(procs, files, final=evs[-1].seq if evs else seq0)
            log(f"load done in {took:.0f} s: {len(evs)} events, {day.tally.jobs} jobs "
                f"({day.tally.unrouted} unrouted), {open_jobs} open at the end · load "
                f"average {loadavg()}")
            fig = board_figures(clients, evs, day.tally)
            checked, differ, clocked, notes = screens_equal(clients, spec, engine, stopped)
            writes = [s * 1000 for _, s, _ in day.tally.writes]
            n_ev = max(len(evs), 1)
            kb = sum(rss1[p] - rss0[p] for p in rss0) / len(spec)
            print(f"  events {len(evs)} ({len(evs) / took:.1f}/s); API writes {len(writes)}: "
                  f"p50 {pctl(writes, 50):.1f} ms p99 {pctl(writes, 99):.1f} ms; status "
                  f"{dict(day.tally.status)}; errors {day.tally.errors}")
            for kind in ("board", "wall", "phone"):
                lat = fig.latency.get(kind, [])
                print(f"  {kind:<6} commit → screen p50 {pctl(lat, 50):7.1f} ms  p99 "
                      f"{pctl(lat, 99):7.1f} ms  ({len(lat)} deliveries, "
                      f"{fig.missed.get(kind, 0)} missed)")
            print(f"  out of order {fig.out_of_order}; sockets failed {len(fig.failed)} "
                  f"{fig.failed[:3]}; screens equal to a fresh page "
                  f"{checked - differ - clocked}/{checked}, {clocked} more behind only by "
                  f"deadlines that passed after the clients stopped; {notes[:3]}")
            print(f"  rows read per event {rows / n_ev:.1f}; servers' CPU per event "
                  f"{cpu * 1000 / n_ev:.2f} ms, {(cpu - idle * took) * 1000 / n_ev:.2f} ms "
                  f"above idle ({idle * 1000:.0f} ms/s idle: heartbeats, anti-entropy, 30 s "
                  f"refreshes) (workers {wcpu * 1000 / n_ev:.2f} ms); "
                  f"KB per socket {kb:.1f}; RSS MB {({k: round(v) for k, v in rss.items()})}"
                  f"; QSTAT page p50 {pctl(day.tally.qstat_ms, 50):.0f} ms "
                  f"({len(day.tally.qstat_ms)} loads)")
            frames = sum(c.get("messages", 0) for c in clients)
            board_cpu_us = cpu * 1e6 / max(frames, 1)
            print(f"  servers' CPU per frame delivered {board_cpu_us:.1f} µs ({frames} frames)")
            rec("cityday_p99_ms_wall", pctl(fig.latency["wall"], 99), "ms")
            rec("cityday_p99_ms_board", pctl(fig.latency["board"], 99), "ms")
            rec("cityday_p99_ms_phone", pctl(fig.latency["phone"], 99), "ms")
            rec("cityday_missed", sum(fig.missed.values()) + fig.out_of_order + differ, "count")
            rec("cityday_rows_read_per_event_4proc", rows / n_ev, "rows")
            rec("cityday_server_cpu_ms_per_event", cpu * 1000 / n_ev, "ms")
            rec("cityday_server_cpu_ms_per_event_above_idle", (cpu - idle * took) * 1000 / n_ev,
                "ms")
            rec("cityday_api_write_p50_ms", pctl(writes, 50), "ms")
            rec("cityday_rss_mb_max_server", max(v for k, v in rss.items()
                                                 if k.startswith("serve")), "MB")
            snapshots, sends = (bare_plan(clients, spec, evs, day.tally) if evs
                                else ({}, []))
            if not args.no_bare and sends:
                log(f"bare: {len(snapshots)} channels, {len(sends)} messages")
                bare = bare_run(args, work, procs, spec, snapshots, sends)
                for kind in ("board", "wall", "phone"):
                    lat = bare["latency"].get(kind, [])
                    print(f"  bare {kind:<6} send → screen p50 {pctl(lat, 50):7.1f} ms  p99 "
                          f"{pctl(lat, 99):7.1f} ms  ({len(lat)} deliveries)")
                    rec(f"cityday_bare_p99_ms_{kind}", pctl(lat, 99), "ms")
                    rec(f"cityday_p99_ms_{kind}", pctl(fig.latency[kind], 99), "ms",
                        baseline=pctl(lat, 99))  # the board's, against bare's of this run
                print(f"  bare CPU per frame {bare['cpu_us_per_frame']:.1f} µs; KB per socket "
                      f"{bare['kb_per_socket']:.1f}")
                rec("cityday_kb_per_socket", kb, "KB", baseline=bare["kb_per_socket"])
                rec("cityday_server_cpu_us_per_frame", board_cpu_us, "µs",
                    baseline=bare["cpu_us_per_frame"])
            engine.dispose()
    finally:
        procs.stop()
        feed.shutdown()
        with contextlib.suppress(Exception):
            redis.stop()
        with contextlib.suppress(Exception):
            pg.stop()
            pg.remove()


if __name__ == "__main__":
    main()
