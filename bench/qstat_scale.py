"""Benchmark: QSTAT pages over a city-year of NYPD 311 on PostgreSQL.

Generates --jobs jobs (default 1,000,000) over the 365 New York days before --end, shaped on
the real rows in data/311 (complaint types and their resolutions, precincts and
sectors as the map routes them, times to close of the closed rows; the file holds one hour,
so the hour of day follows HOUR_WEIGHTS),
with the board live for the last 180 days: older jobs are history rows (one `history` event),
newer ones are dispatched (create, assign, acknowledge, en route, on scene, close; some closed
without arrival, some photos, some overdue). The rows are generated inside PostgreSQL
(INSERT … SELECT over generate_series, seeded random()) so a city-year loads in minutes on a
busy machine; the job_facts rows are made there too, and a sample of jobs is folded again with
board.domain.jobfacts.fold (what the write path runs on each event) to check they are the same.

Then times the precinct page (GET /qstat for a supervisor of the 75th, last 28 days, by tour)
and the citywide page (a citywide commander, by precinct) through the real app (routing, scope,
queries, rendering), and the sheet queries alone; median of --runs, against a baseline measured
in the same run: the same figures from a scan of the events table (no job_facts), per job
aggregated in SQL and counted in Python.

    .venv/bin/python bench/qstat_scale.py [--jobs 1000000] [--runs 5] [--fresh]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
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
from board.accountability import qstat  # noqa: E402
from board.domain.access import Actor, Role  # noqa: E402
from board.domain.dispositions import BY_RESOLUTION  # noqa: E402
from board.domain.qstat import Period, percentile  # noqa: E402
from board.geo.routing import load_geo  # noqa: E402
from board.settings import DEMO_HOUR, GEO_DIR  # noqa: E402
from board.storage import db

HOUR = DEMO_HOUR
NY = ZoneInfo("America/New_York")
STAMP = "%m/%d/%Y %I:%M:%S %p"
SCHEMA = "bench_qstat"
LIVE_DAYS = 180
# The file holds one hour (midnight), so the hour-of-day shape is this table: NYPD 311
# (mostly noise) peaks late evening and overnight, lowest mid-morning.
HOUR_WEIGHTS = (9, 8, 6, 4, 3, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10)


def shape() -> dict[str, list[Any]]:
    """What the generator draws from, read off the real hour: the routed places of its rows,
    and its closed rows as (complaint type, minutes to close, disposition) drawn together."""
    geo = load_geo(GEO_DIR)
    precincts = sorted(geo.precincts(), key=lambda p: (len(p), p))
    rows = [r for r in csv.DictReader(HOUR.open(newline="")) if r["Agency"] == "NYPD"]
    out: dict[str, list[Any]] = {"place_precinct": [], "place_sector": [], "place_index": [],
                                 "row_type": [], "row_close": [], "row_disp": [],
                                 "precincts": precincts}
    for r in rows:
        lat = float(r["Latitude"]) if r["Latitude"] else None
        lon = float(r["Longitude"]) if r["Longitude"] else None
        route = geo.route(lat, lon)
        if route.precinct:
            out["place_precinct"].append(route.precinct)
            out["place_sector"].append(route.sector)
            out["place_index"].append(precincts.index(route.precinct))
        if r["Status"] == "Closed" and r["Closed Date"]:
            created = datetime.strptime(r["Created Date"], STAMP)
            closed = datetime.strptime(r["Closed Date"], STAMP)
            d = BY_RESOLUTION.get(r["Resolution Description"])
            out["row_type"].append(r["Complaint Type"])
            out["row_close"].append((closed - created).total_seconds() / 60)
            out["row_disp"].append(d.code if d else None)
    out["hours"] = [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)]
    return out


# One row per job, every random draw made once (PostgreSQL's random(), seeded). Job ids then
# follow the created time, as they do when jobs arrive (and history files come in date order).
GEN = """
CREATE UNLOGGED TABLE gen AS
SELECT g AS gid, r.*,
       (CAST(:places AS text[]))[r.pi] AS precinct, (CAST(:sectors AS text[]))[r.pi] AS sector,
       (CAST(:pindex AS int[]))[r.pi] AS pidx, (CAST(:types AS text[]))[r.ri] AS ctype,
       greatest(0.5, (CAST(:closes AS float8[]))[r.ri] * (0.8 + 0.45 * r.u1)) AS close_min,
       (CAST(:disps AS text[]))[r.ri] AS disp
FROM generate_series(1, :n) g,
LATERAL (SELECT 1 + floor(random() * :nplaces)::int AS pi,
                1 + floor(random() * :nrows)::int AS ri,
                floor(random() * 365)::int AS dayoff,
                (CAST(:hours AS int[]))[1 + floor(random() * :nhours)::int] AS hr,
                floor(random() * 3600)::int AS sec,
                random() AS u1, random() AS u2, random() AS u3, random() AS u4,
                random() AS u5, random() AS u6, random() AS u7, random() AS u8,
                random() AS u9, random() AS u10, g AS _g) r
"""

TIMES = """
CREATE UNLOGGED TABLE gen2 AS
WITH a AS (
  SELECT gen.*,
    ((CAST(:first_day AS date) + dayoff) + make_interval(hours => hr, secs => sec))
      AT TIME ZONE 'America/New_York' AS created_at,
    dayoff < :live_from AS history,
    dayoff >= 363 AND dayoff >= :live_from AND u4 < 0.3 AS still_open,
    dayoff >= :live_from AND u2 < 0.1 AS photo,
    dayoff >= :live_from AND u2 < 0.1 AND u3 < 0.7 AS viewed,
    dayoff >= :live_from AND u6 < 0.05 AS overdue,
    pidx * 4 + 1 + floor(u3 * 4)::int AS unit_id
  FROM gen),
b AS (SELECT a.*, CASE WHEN NOT history
        THEN created_at - 8 * ln(1 - u7) * interval '1 minute' END AS assign_at FROM a),
c AS (SELECT b.*, assign_at + (0.5 + 2.5 * u8) * interval '1 minute' AS ack_at FROM b),
d AS (SELECT c.*, CASE WHEN NOT history AND NOT still_open AND u5 > 0.12
        THEN ack_at + (1 + 3 * u9) * interval '1 minute' END AS enroute_at FROM c),
e AS (SELECT d.*, enroute_at - 12 * ln(1 - u10) * interval '1 minute' AS onscene_at FROM d)
SELECT row_number() OVER (ORDER BY created_at)::int AS id, e.*,
  CASE WHEN history THEN created_at + close_min * interval '1 minute'
       WHEN still_open THEN NULL
       ELSE greatest(coalesce(onscene_at, ack_at) + interval '1 minute',
                     created_at + close_min * interval '1 minute') END AS closed_at
FROM e
"""

JOBS = """
INSERT INTO jobs (id, source, precinct, sector, route_method, complaint_type, descriptor,
  location_type, address, borough, fields, media, created_at, received_at, status, priority,
  unit_id, disposition, summons_count, administrative, history, closed_at, ack_due,
  arrive_due, close_due, version, updated_at)
SELECT id, 'bench', precinct, sector, 'inside', ctype, '', '', '', '', '{}',
  CASE WHEN photo THEN '["https://example.test/p.jpg"]' ELSE '[]' END::json,
  created_at, created_at,
  CASE WHEN closed_at IS NOT NULL THEN 'closed' ELSE 'acknowledged' END, 3,
  CASE WHEN history THEN NULL ELSE unit_id END,
  CASE WHEN history THEN disp WHEN closed_at IS NULL THEN NULL
       ELSE coalesce(disp, 'action_taken') END,
  CASE WHEN NOT history AND closed_at IS NOT NULL AND disp = 'summons_issued' THEN 1 END,
  false, history, closed_at, created_at + interval '15 minutes',
  created_at + interval '1 hour', created_at + interval '8 hours', 1,
  coalesce(closed_at, created_at)
FROM gen2 ORDER BY id
"""

# The events each job's story has, in the order they happened.
EVENTS = """
INSERT INTO events (job_id, unit_id, precinct, actor, source, at, kind, "before", "after",
                    payload)
SELECT id, u, precinct, 'bench', 'bench', at, kind, b, a, p::json FROM (
  SELECT id, NULL::int AS u, precinct, closed_at AS at, 'history' AS kind, NULL AS b,
         'closed' AS a, '{}' AS p, 0 AS step FROM gen2 WHERE history
  UNION ALL SELECT id, NULL, precinct, created_at, 'create', NULL, 'new', '{}', 1
    FROM gen2 WHERE NOT history
  UNION ALL SELECT id, unit_id, precinct, assign_at, 'assign', 'new', 'assigned', '{}', 2
    FROM gen2 WHERE NOT history
  UNION ALL SELECT id, unit_id, precinct, assign_at, 'view_photo', NULL, NULL,
    '{"index": 0}', 3 FROM gen2 WHERE viewed
  UNION ALL SELECT id, unit_id, precinct, ack_at, 'acknowledge', 'assigned', 'acknowledged',
    '{}', 4 FROM gen2 WHERE NOT history
  UNION ALL SELECT id, unit_id, precinct, ack_at, 'overdue', NULL, NULL,
    '{"stage": "arrive"}', 5 FROM gen2 WHERE overdue
  UNION ALL SELECT id, unit_id, precinct, enroute_at, 'en_route', 'acknowledged', 'en_route',
    '{}', 6 FROM gen2 WHERE enroute_at IS NOT NULL
  UNION ALL SELECT id, unit_id, precinct, onscene_at, 'on_scene', 'en_route', 'on_scene',
    '{}', 7 FROM gen2 WHERE onscene_at IS NOT NULL
  UNION ALL SELECT id, unit_id, precinct, closed_at, 'close',
    CASE WHEN onscene_at IS NULL THEN 'acknowledged' ELSE 'on_scene' END, 'closed',
    json_build_object('disposition', coalesce(disp, 'action_taken'))::text, 8
    FROM gen2 WHERE NOT history AND closed_at IS NOT NULL
) e ORDER BY id, step
"""

# The rows board.domain.jobfacts.fold gives for these stories (checked on a sample after loading).
FACTS = """
INSERT INTO job_facts (job_id, precinct, sector, unit_id, complaint_type, created_at, day, tour,
  history, has_photos, closed_at, disposition, summons_count, administrative, assigned_at,
  acked_at, arrived_at, assign_min, ack_min, arrive_min, close_min, receipt_close_min,
  photo_viewed, reopens, quick_close, no_arrival, overdue_ack, overdue_arrive, overdue_close,
  flags, round_assigned_at, round_arrived, round_viewed, round_presence)
SELECT j.id, j.precinct, j.sector, j.unit_id, j.complaint_type, j.created_at,
  (j.created_at AT TIME ZONE 'America/New_York')::date,
  CASE WHEN extract(hour FROM j.created_at AT TIME ZONE 'America/New_York') BETWEEN 7 AND 14
       THEN 'day'
       WHEN extract(hour FROM j.created_at AT TIME ZONE 'America/New_York') BETWEEN 15 AND 22
       THEN 'evening' ELSE 'midnight' END,
  j.history, g.photo, j.closed_at, j.disposition, j.summons_count, false,
  g.assign_at, g.ack_at, g.onscene_at,
  round((extract(epoch FROM g.assign_at - j.created_at) / 60)::numeric, 4),
  round((extract(epoch FROM g.ack_at - g.assign_at) / 60)::numeric, 4),
  round((extract(epoch FROM g.onscene_at - g.assign_at) / 60)::numeric, 4),
  round((extract(epoch FROM j.closed_at - g.assign_at) / 60)::numeric, 4),
  round((extract(epoch FROM j.closed_at - j.created_at) / 60)::numeric, 4),
  g.viewed, 0,
  CASE WHEN NOT j.history AND j.closed_at IS NOT NULL
       THEN j.closed_at - g.assign_at <= interval '5 minutes' END,
  CASE WHEN NOT j.history AND j.closed_at IS NOT NULL THEN g.onscene_at IS NULL END,
  false, g.overdue, false,
  -- the card's flags (board.domain.flags.step), in sorted order
  to_json(array_remove(ARRAY[
    CASE WHEN NOT j.history AND j.closed_at IS NOT NULL AND g.onscene_at IS NULL
         THEN 'no_arrival' END,
    CASE WHEN g.overdue THEN 'overdue' END,
    CASE WHEN NOT j.history AND j.closed_at IS NOT NULL AND g.photo AND NOT g.viewed
         THEN 'photos_unviewed' END,
    CASE WHEN NOT j.history AND j.closed_at IS NOT NULL
              AND j.closed_at - g.assign_at <= interval '5 minutes' THEN 'quick_close' END
  ], NULL)),
  g.assign_at, g.onscene_at IS NOT NULL, g.viewed, NULL
FROM jobs j JOIN gen2 g ON g.id = j.id
"""


def load(engine: sa.Engine, n: int, end: date) -> None:
    """Generate in the database (PostgreSQL's own random(), seeded), shaped by the real hour."""
    s = shape()
    first_day = end - timedelta(days=365)
    params: dict[str, Any] = {
        "n": n, "places": s["place_precinct"], "sectors": s["place_sector"],
        "pindex": s["place_index"], "nplaces": len(s["place_precinct"]),
        "types": s["row_type"], "closes": s["row_close"], "disps": s["row_disp"],
        "nrows": len(s["row_type"]), "hours": s["hours"], "nhours": len(s["hours"]),
        "first_day": first_day, "live_from": 365 - LIVE_DAYS,
    }
    steps = (("units", None), ("gen", GEN), ("gen2", TIMES), ("jobs", JOBS),
             ("events", EVENTS), ("job_facts", FACTS))
    with db.write(engine) as conn:
        conn.exec_driver_sql("SELECT setseed(0.311)")
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        conn.execute(sa.text(
            "INSERT INTO units (id, callsign, precinct, status, version, updated_at) "
            "SELECT i * 4 + k, p || '-' || chr(64 + k), p, 'available', 1, :now "
            "FROM unnest(CAST(:ps AS text[])) WITH ORDINALITY AS t(p, i0), "
            "LATERAL (SELECT i0 - 1 AS i) ii, generate_series(1, 4) k"),
            {"ps": s["precincts"], "now": now})
        for name, sql in steps[1:]:
            conn.execute(sa.text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        conn.exec_driver_sql("SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))")
        conn.exec_driver_sql("SELECT setval('units_id_seq', (SELECT max(id) FROM units))")
        conn.exec_driver_sql("DROP TABLE gen2")
        conn.exec_driver_sql("DROP TABLE gen")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("units", "jobs", "events", "job_facts"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    print(f"loaded in {time.perf_counter() - t0:.0f} s", flush=True)


def check_sample(engine: sa.Engine, size: int = 300) -> None:
    """The facts rows made in SQL are the ones the write path's fold gives for the same
    events: fold a sample of jobs again and compare."""
    from board.domain.jobfacts import JOB_COLUMNS
    from board.storage.factstore import fold_job
    from board.storage.schema import events, job_facts, jobs

    with db.read(engine) as conn:
        ids = [r[0] for r in conn.exec_driver_sql(
            f"SELECT id FROM jobs TABLESAMPLE SYSTEM (1) LIMIT {size}")]
        job_rows = {j.id: j for j in conn.execute(
            sa.select(*(jobs.c[c] for c in JOB_COLUMNS)).where(jobs.c.id.in_(ids)))}
        stories = defaultdict(list)
        for e in conn.execute(sa.select(events.c.job_id, events.c.unit_id, events.c.kind,
                                        events.c.at, events.c.payload)
                              .where(events.c.job_id.in_(ids)).order_by(events.c.seq)):
            stories[e.job_id].append(e)
        made = {r.job_id: dict(r._mapping) for r in conn.execute(
            sa.select(job_facts).where(job_facts.c.job_id.in_(ids)))}
    for job_id in ids:
        folded = fold_job(job_rows[job_id], stories[job_id])
        assert folded is not None
        for k, v in folded.items():
            m = made[job_id][k]
            same = math.isclose(v, m, abs_tol=2e-4) if isinstance(v, float) else v == m
            assert same, (job_id, k, v, m)
    print(f"facts made in SQL match board.domain.jobfacts.fold on {len(ids)} sampled jobs")


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

    from board.auth import accounts as auth
    from board.settings import Settings
    from board.web.app import create_app

    settings = Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": "bench",
                                  "BOARD_VAR_DIR": str(folder),
                                  "BOARD_GEO_DIR": str(GEO_DIR)})
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
        load(engine, args.jobs, end)
        check_sample(engine)
    db.migrate(engine)  # kept data: bring its schema up to this checkout
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
    print(f"precinct page {precinct_ms:.0f} ms (target < 100), citywide {city_ms:.0f} ms "
          f"(target < 300); events-scan baseline {naive_precinct_ms:.0f} / "
          f"{naive_city_ms:.0f} ms; whole run {time.perf_counter() - started:.0f} s")
    engine.dispose()
    guard.close()
    admin.dispose()


if __name__ == "__main__":
    main()
