"""Benchmark: QSTAT pages over a city-year of NYPD 311 on PostgreSQL.

Generates --jobs jobs (default 1,000,000) over the 365 New York days before --end, shaped on
the real rows in ../shared/data/311 (complaint types and their resolutions, precincts and
sectors as the map routes them, times to close of the closed rows, minutes within the hour),
with the board live for the last 180 days: older jobs are history rows (one `history` event),
newer ones are dispatched (create, assign, acknowledge, en route, on scene, close; some closed
without arrival, some photos, some overdue). Jobs, events and job_facts go in with COPY; the
facts rows come from board.jobfacts.fold, the fold the write path applies to each event.

Then times the precinct page (GET /qstat for a supervisor of the 75th, last 28 days, by tour)
and the citywide page (a citywide commander, by precinct) through the real app (routing, scope,
queries, rendering), and the sheet queries alone; median of --runs, against a baseline measured
in the same run:
the same figures from a scan of the events table (no job_facts), per job aggregated in SQL and
counted in Python.

    .venv/bin/python bench/qstat_scale.py [--jobs 1000000] [--runs 5] [--fresh]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.results import record  # noqa: E402
from board import db, qstat  # noqa: E402
from board.access import Actor, Role  # noqa: E402
from board.dispositions import BY_RESOLUTION  # noqa: E402
from board.flags import Fact, flags  # noqa: E402
from board.geo import load_geo  # noqa: E402
from board.jobfacts import COLUMNS, fold  # noqa: E402
from board.qstat_rules import Period, percentile  # noqa: E402
from board.settings import SHARED_GEO  # noqa: E402

HOUR = ROOT.parent / "shared" / "data" / "311" / "nyc311-2022-05-01-midnight-hour.csv"
NY = ZoneInfo("America/New_York")
STAMP = "%m/%d/%Y %I:%M:%S %p"
SCHEMA = "bench_qstat"
LIVE_DAYS = 180
# The file holds one hour (midnight), so the hour-of-day shape is this table: NYPD 311
# (mostly noise) peaks late evening and overnight, lowest mid-morning.
HOUR_WEIGHTS = (9, 8, 6, 4, 3, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10)


def shape() -> dict[str, Any]:
    """What the generator draws from, read off the real hour."""
    geo = load_geo(SHARED_GEO)
    rows = [r for r in csv.DictReader(HOUR.open(newline="")) if r["Agency"] == "NYPD"]
    places, types, minutes_in_hour = [], [], []
    close_by_type: dict[str, list[float]] = defaultdict(list)
    resolutions: dict[str, list[str | None]] = defaultdict(list)
    for r in rows:
        lat = float(r["Latitude"]) if r["Latitude"] else None
        lon = float(r["Longitude"]) if r["Longitude"] else None
        route = geo.route(lat, lon)
        if route.precinct:
            places.append((route.precinct, route.sector))
        types.append(r["Complaint Type"])
        created = datetime.strptime(r["Created Date"], STAMP)
        minutes_in_hour.append(created.minute * 60 + created.second)
        if r["Status"] == "Closed" and r["Closed Date"]:
            closed = datetime.strptime(r["Closed Date"], STAMP)
            close_by_type[r["Complaint Type"]].append((closed - created).total_seconds() / 60)
            d = BY_RESOLUTION.get(r["Resolution Description"])
            resolutions[r["Complaint Type"]].append(d.code if d else None)
    everything = [m for ms in close_by_type.values() for m in ms]
    all_res = [c for cs in resolutions.values() for c in cs]
    return {"places": places, "types": types, "seconds": minutes_in_hour,
            "close": {t: close_by_type.get(t) or everything for t in set(types)},
            "res": {t: resolutions.get(t) or all_res for t in set(types)}}


def generate(n: int, end: date, seed: int = 311) -> tuple[list, list, list, list]:
    """Units, jobs, events and facts rows for n jobs over the 365 days before `end`."""
    rnd = random.Random(seed)
    s = shape()
    precincts = sorted({p for p, _ in s["places"]}, key=lambda p: (len(p), p))
    units, unit_of = [], defaultdict(list)
    for p in precincts:
        for letter in "ABCD":
            uid = len(units) + 1
            units.append((uid, f"{p}-{letter}", p, "available", 1, datetime.now(UTC)))
            unit_of[p].append(uid)
    first_day = end - timedelta(days=365)
    live_from = end - timedelta(days=LIVE_DAYS)
    hours = rnd.choices(range(24), HOUR_WEIGHTS, k=n)
    jobs, events, facts = [], [], []
    for i in range(n):
        job_id = i + 1
        day = first_day + timedelta(days=rnd.randrange(365))
        sec = s["seconds"][rnd.randrange(len(s["seconds"]))]
        local = datetime(day.year, day.month, day.day, hours[i], sec // 60, sec % 60,
                         tzinfo=NY)
        created = local.astimezone(UTC)
        precinct, sector = s["places"][rnd.randrange(len(s["places"]))]
        ctype = s["types"][rnd.randrange(len(s["types"]))]
        close_min = max(0.5, rnd.choice(s["close"][ctype]) * rnd.uniform(0.8, 1.25))
        disp = rnd.choice(s["res"][ctype])
        history = day < live_from
        photos = [] if history or rnd.random() > 0.1 else ["https://example.test/p.jpg"]
        job = {"id": job_id, "precinct": precinct, "sector": sector, "complaint_type": ctype,
               "created_at": created, "history": history, "media": photos,
               "closed_at": None, "disposition": None, "summons_count": None,
               "administrative": False}
        timeline: list[tuple[str, datetime, int | None, dict[str, Any], str | None,
                             str | None]] = []
        unit = None
        if history:
            job.update(closed_at=created + timedelta(minutes=close_min), disposition=disp)
            timeline.append(("history", job["closed_at"], None, {}, None, "closed"))
        else:
            unit = rnd.choice(unit_of[precinct])
            t = created
            timeline.append(("create", t, None, {}, None, "new"))
            still_open = (end - day).days <= 2 and rnd.random() < 0.3
            t += timedelta(minutes=rnd.expovariate(1 / 8))
            timeline.append(("assign", t, unit, {"unit": unit}, "new", "assigned"))
            if photos and rnd.random() < 0.7:
                timeline.append(("view_photo", t, unit, {"index": 0}, None, None))
            t += timedelta(minutes=rnd.uniform(0.5, 3))
            timeline.append(("acknowledge", t, unit, {}, "assigned", "acknowledged"))
            if rnd.random() < 0.05:
                timeline.append(("overdue", t, unit, {"stage": "arrive"}, None, None))
            if not still_open:
                arrives = rnd.random() > 0.12
                before = "acknowledged"
                if arrives:
                    t += timedelta(minutes=rnd.uniform(1, 4))
                    timeline.append(("en_route", t, unit, {}, before, "en_route"))
                    t += timedelta(minutes=rnd.expovariate(1 / 12))
                    timeline.append(("on_scene", t, unit, {}, "en_route", "on_scene"))
                    before = "on_scene"
                closed = max(t + timedelta(minutes=1), created + timedelta(minutes=close_min))
                code = disp or "action_taken"
                job.update(closed_at=closed, disposition=code,
                           summons_count=1 if code == "summons_issued" else None)
                timeline.append(("close", closed, unit, {"disposition": code}, before, "closed"))
        jobs.append(job)
        seen: list[Fact] = []
        f: dict[str, Any] | None = None
        for kind, at, u, payload, before, after in timeline:
            events.append((job_id, u, precinct, "bench", "bench", at, kind, before, after,
                           payload))
            seen.append(Fact(kind, at, payload))
            close_flags = flags(seen, bool(photos)) if kind == "close" else None
            f = fold(f, job, kind, at, payload, close_flags, u)
        facts.append(tuple(f[c] for c in COLUMNS))  # type: ignore[index]
    return units, jobs, events, facts


def load(url: str, n: int, end: date) -> None:
    import json

    import psycopg

    t0 = time.perf_counter()
    units, jobs, events, facts = generate(n, end)
    print(f"generated {len(jobs):,} jobs, {len(events):,} events in "
          f"{time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        with cur.copy("COPY units (id, callsign, precinct, status, version, updated_at) "
                      "FROM STDIN") as cp:
            for u in units:
                cp.write_row(u)
        with cur.copy("COPY jobs (id, source, precinct, sector, route_method, complaint_type, "
                      "descriptor, location_type, address, borough, fields, media, created_at, "
                      "received_at, status, priority, disposition, summons_count, "
                      "administrative, history, closed_at, ack_due, arrive_due, close_due, "
                      "version, updated_at) FROM STDIN") as cp:
            for j in jobs:
                c = j["created_at"]
                cp.write_row((j["id"], "bench", j["precinct"], j["sector"], "inside",
                              j["complaint_type"], "", "", "", "", "{}",
                              json.dumps(j["media"]), c, c,
                              "closed" if j["closed_at"] else "acknowledged", 3,
                              j["disposition"], j["summons_count"], False, j["history"],
                              j["closed_at"], c + timedelta(minutes=15),
                              c + timedelta(minutes=60), c + timedelta(hours=8), 1,
                              j["closed_at"] or c))
        with cur.copy('COPY events (job_id, unit_id, precinct, actor, source, at, kind, '
                      '"before", "after", payload) FROM STDIN') as cp:
            for e in events:
                cp.write_row((*e[:9], json.dumps(e[9])))
        cols = ", ".join(COLUMNS)
        with cur.copy(f"COPY job_facts ({cols}) FROM STDIN") as cp:
            for f in facts:
                cp.write_row(f)
        cur.execute("SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))")
        cur.execute("SELECT setval('units_id_seq', (SELECT max(id) FROM units))")
        conn.commit()
    with psycopg.connect(plain, autocommit=True) as conn:
        for table in ("units", "jobs", "events", "job_facts"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"loaded with COPY in {time.perf_counter() - t0:.0f} s")


# -- the baseline: the same figures from a scan of the events ---------------------------------

NAIVE = """
SELECT j.id, j.precinct, j.created_at, j.closed_at, j.history, j.disposition, j.media,
       j.complaint_type,
       min(e.at) FILTER (WHERE e.kind IN ('assign', 'reassign')) AS assigned_at,
       min(e.at) FILTER (WHERE e.kind = 'acknowledge') AS acked_at,
       min(e.at) FILTER (WHERE e.kind = 'on_scene') AS arrived_at,
       bool_or(e.kind = 'view_photo') AS viewed,
       bool_or(e.kind = 'reopen') AS reopened,
       bool_or(e.kind = 'overdue') AS overdue
FROM events e JOIN jobs j ON j.id = e.job_id
WHERE j.created_at >= :since AND j.created_at < :until {scope}
GROUP BY j.id
"""


def _naive_rows(conn: sa.Connection, scope: tuple[str, ...] | None, p: Period) -> list[Any]:
    where = "AND j.precinct IN :scope" if scope else ""
    q = sa.text(NAIVE.format(scope=where))
    if scope:
        q = q.bindparams(sa.bindparam("scope", expanding=True))
    params: dict[str, Any] = {"since": p.since, "until": p.until}
    if scope:
        params["scope"] = list(scope)
    return conn.execute(q, params).all()


def _naive_figures(rows: list[Any]) -> dict[str, Any]:
    def mins(a: datetime | None, b: datetime | None) -> float | None:
        return (a - b).total_seconds() / 60 if a and b else None

    close = sorted(m for r in rows if (m := mins(r.closed_at, r.created_at)) is not None)
    assign = sorted(m for r in rows if (m := mins(r.assigned_at, r.created_at)) is not None)
    arrive = sorted(m for r in rows if (m := mins(r.arrived_at, r.assigned_at)) is not None)
    return {"jobs": len(rows), "closed": len(close),
            "median_close_min": percentile(close, 0.5), "p90_close_min": percentile(close, 0.9),
            "median_assign_min": percentile(assign, 0.5),
            "median_arrive_min": percentile(arrive, 0.5),
            "within5": sum(1 for m in close if m <= 5)}


def naive_sheet(engine: sa.Engine, scope: tuple[str, ...] | None, p: Period) -> None:
    """This period and the previous for the scope, and every precinct for the ranks."""
    with db.read(engine) as conn:
        now_rows = _naive_rows(conn, None, p)
        prev_rows = _naive_rows(conn, scope, p.previous())
    by_precinct: dict[str, list[Any]] = defaultdict(list)
    for r in now_rows:
        by_precinct[r.precinct].append(r)
    city = {k: _naive_figures(v) for k, v in by_precinct.items()}
    mine = [r for r in now_rows if scope is None or r.precinct in scope]
    _naive_figures(mine), _naive_figures(prev_rows), sorted(city)


def page_client(url: str, folder: Path) -> tuple[Any, Any]:
    """The real app on the bench database, a precinct supervisor and a citywide commander
    logged in: the page timings include routing, scope checks and rendering."""
    import re

    from starlette.testclient import TestClient

    from board import auth
    from board.app import create_app
    from board.settings import Settings

    settings = Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": "bench",
                                  "BOARD_VAR_DIR": str(folder),
                                  "BOARD_GEO_DIR": str(SHARED_GEO)})
    app = create_app(settings)
    clients = []
    for name, role, precincts in (("bench-sgt75", "supervisor", "75"),
                                  ("bench-city", "commander", "*")):
        with contextlib.suppress(Exception):  # a run on kept data has them already
            auth.add_user(app.state.dispatch.engine, name, "benchmark-pass", role, precincts)
        c = TestClient(app)
        c.__enter__()
        form = c.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"username": name, "password": "benchmark-pass",
                                   "csrf": csrf, "next": "/qstat"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        clients.append(c)
    return clients[0], clients[1]


def timed(fn: Any, runs: int) -> float:
    fn()  # warm the cache once, as a page that is read all day is
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int,
                    default=int(os.environ.get("QSTAT_BENCH_JOBS", 1_000_000)))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--end", default="2026-11-28", help="New York day after the year")
    ap.add_argument("--fresh", action="store_true",
                    help="generate again even when the last run's data has the same size")
    ap.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    end = date.fromisoformat(args.end)
    base = args.database_url
    admin = db.make_engine(base)
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{SCHEMA}"
    engine = db.make_engine(url)
    started = time.perf_counter()
    # One run at a time: a second one would drop the schema under the first one's COPY.
    guard = admin.connect()
    guard.exec_driver_sql(f"SELECT pg_advisory_lock(hashtext('{SCHEMA}'))")
    have = 0
    if not args.fresh:
        with admin.connect() as conn:
            have = conn.exec_driver_sql(
                f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{SCHEMA}'"
                " AND table_name = 'job_facts'").scalar() or 0
        if have:
            with engine.connect() as conn:
                have = conn.exec_driver_sql("SELECT count(*) FROM job_facts").scalar() or 0
    if have != args.jobs:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
        db.migrate(engine)
        load(url, args.jobs, end)
    with engine.connect() as conn:
        n_events = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
    p = Period(end - timedelta(days=28), end)
    now = datetime.combine(end, datetime.min.time(), tzinfo=NY).astimezone(UTC)
    sgt = Actor(1, "bench", Role.SUPERVISOR, frozenset({"75"}))
    city = Actor(2, "bench-city", Role.COMMANDER, frozenset({"*"}))
    sheet_precinct_ms = timed(lambda: qstat.sheet(engine, sgt, p, "tour", "75", now), args.runs)
    sheet_city_ms = timed(lambda: qstat.sheet(engine, city, p, "precinct", None, now),
                          args.runs)
    period_q = f"from={p.start}&to={p.end}"
    with tempfile.TemporaryDirectory() as folder:
        sgt_web, city_web = page_client(url, Path(folder))

        def get(client: Any, path: str) -> None:
            r = client.get(path)
            assert r.status_code == 200 and "QSTAT" in r.text, r.status_code

        precinct_ms = timed(lambda: get(sgt_web, f"/qstat?{period_q}&precinct=75&by=tour"),
                            args.runs)
        city_ms = timed(lambda: get(city_web, f"/qstat?{period_q}&by=precinct"), args.runs)
        for c in (sgt_web, city_web):
            c.__exit__(None, None, None)
    naive_precinct_ms = timed(lambda: naive_sheet(engine, ("75",), p), max(1, args.runs // 2))
    naive_city_ms = timed(lambda: naive_sheet(engine, None, p), max(1, args.runs // 2))
    label = f"{args.jobs // 1000}k" if args.jobs < 1_000_000 else f"{args.jobs // 1_000_000}m"
    print(f"{args.jobs:,} jobs, {n_events:,} events on PostgreSQL; period {p.label()}; "
          f"median of {args.runs} runs")
    record(f"qstat_precinct_page_ms_{label}_jobs", precinct_ms, "ms", naive_precinct_ms)
    record(f"qstat_city_page_ms_{label}_jobs", city_ms, "ms", naive_city_ms)
    record(f"qstat_precinct_sheet_ms_{label}_jobs", sheet_precinct_ms, "ms", naive_precinct_ms)
    record(f"qstat_city_sheet_ms_{label}_jobs", sheet_city_ms, "ms", naive_city_ms)
    print(f"precinct page {precinct_ms:.0f} ms (target < 1000), citywide {city_ms:.0f} ms "
          f"(target < 3000); events-scan baseline {naive_precinct_ms:.0f} / "
          f"{naive_city_ms:.0f} ms; whole run {time.perf_counter() - started:.0f} s")
    engine.dispose()
    guard.close()
    admin.dispose()


if __name__ == "__main__":
    main()
