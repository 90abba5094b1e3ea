"""Batch inserts store exactly what single-row inserts store, byte for byte."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import shape

from board.domain.access import SYSTEM
from board.geo.routing import GeoIndex
from board.intake import file_import
from board.intake import files as intake_files
from board.intake.aside import aside
from board.intake.pipeline import Counts, Intake
from board.storage import bulk, db
from board.storage.schema import UTCDateTime, job_facts, jobs, metadata
from board.usecases import NewJob
from tests.conftest import HOUR_CSV, point_in

_TIMES = [datetime(2022, 5, 1, 4, 0, 9, tzinfo=UTC),
          datetime(2022, 11, 6, 1, 30, 0, 5, tzinfo=ZoneInfo("America/New_York")),
          datetime(2022, 11, 6, 1, 30, 0, 5, tzinfo=ZoneInfo("America/New_York"), fold=1),
          datetime(2026, 3, 8, 2, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
          datetime(9, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
          datetime(1000, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
          datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
          datetime.now().astimezone()]


def test_utc_datetime_on_sqlite_is_sqlites_own_datetime_text_both_ways() -> None:
    """UTCDateTime's SQLite processors (one call each way) store and read what the generic
    route does: the UTC moment, naive, through SQLite's DATETIME type; bulk binds with them."""
    dialect = sa.create_engine("sqlite://").dialect
    ours = UTCDateTime().dialect_impl(dialect)
    bind, result = ours.bind_processor(dialect), ours.result_processor(dialect, None)
    generic = sa.DateTime().dialect_impl(dialect)
    generic_bind = generic.bind_processor(dialect)
    generic_result = generic.result_processor(dialect, None)
    texts = [bind(v) for v in _TIMES]
    assert texts == [generic_bind(v.astimezone(UTC).replace(tzinfo=None)) for v in _TIMES]
    assert texts[0] == "2022-05-01 04:00:09.000000"
    assert texts[1:3] == ["2022-11-06 05:30:00.000005", "2022-11-06 06:30:00.000005"]
    back = [result(t) for t in texts]
    assert back == [v.astimezone(UTC) for v in _TIMES] and all(b.tzinfo is UTC for b in back)
    assert back == [generic_result(t).replace(tzinfo=UTC) for t in texts]
    assert bind(None) is None and result(None) is None
    with pytest.raises(ValueError):
        bind(datetime(2022, 5, 1))  # naive: refused
    assert bulk._processor(jobs.c.created_at, dialect) is bind


def test_a_batch_keeps_each_instant_of_the_repeated_hour(engine) -> None:
    """01:30 before and after the clocks go back are an hour apart, though they compare (and
    hash) equal: a batch stores each as its own instant, as single inserts do."""
    first, second = _TIMES[1], _TIMES[2]
    row = {"source": "test", "precinct": None, "route_method": "unrouted", "complaint_type": "X",
           "descriptor": "", "location_type": "", "address": "", "borough": "", "fields": {},
           "media": [], "received_at": first, "status": "new", "priority": 3,
           "ack_due": first, "arrive_due": first, "close_due": first, "version": 1,
           "updated_at": first, "administrative": False, "history": False}
    with db.write(engine) as conn:
        bulk.insert_many(conn, jobs, [{**row, "external_key": f"F-{i}", "created_at": at}
                                      for i, at in enumerate((first, second, first, second))])
    with db.read(engine) as conn:
        stored = conn.execute(sa.select(jobs.c.created_at).order_by(jobs.c.id)).scalars().all()
    assert [s - stored[0] for s in stored] == [timedelta(0), timedelta(hours=1)] * 2


def _stored(engine: sa.Engine, table: str, order: str) -> list[dict[str, Any]]:
    """A table's rows as the driver hands them back: no SQLAlchemy type in between."""
    with db.read(engine) as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")
        return [dict(zip(result.keys(), row, strict=True)) for row in result]


def _without_prefix(value: Any, prefix: str) -> Any:
    """An event payload (JSON text on SQLite, a dict on PostgreSQL) without the run's prefix."""
    if isinstance(value, str):
        return value.replace(f'"external_key": "{prefix}', '"external_key": "')
    return {**value, "external_key": value["external_key"].removeprefix(prefix)}


def _hour_rows(geo: GeoIndex) -> list[dict[str, Any]]:
    """The real hour, with photos, text cut to fit and points just offshore here and there."""
    rows = list(intake_files.read_rows(HOUR_CSV))
    south = min(shapely.get_coordinates(shape(geo.precinct_feature("123")["geometry"])),
                key=lambda c: c[1])
    for i, row in enumerate(rows[::25]):
        row["Media URL"] = f"https://example.org/photo/{i}.jpg"
        row["Descriptor"] += " and more" * 30 * (i % 2)
        row["Latitude"], row["Longitude"] = (str(south[1] - 0.001), str(south[0])) if i % 3 == 0 \
            else (row["Latitude"], row["Longitude"])
    return rows


def _assert_stored_alike(engine: sa.Engine, counts: Counts) -> None:
    """Every job keyed A-… is stored, with its event and facts row, exactly as its B-… twin."""
    assert counts.new > 300 and counts.history > 300 and counts.unrouted > 0
    assert counts.cut["descriptor"] > 10
    by_key = {r["external_key"]: r for r in _stored(engine, "jobs", "id")}
    key_of = {r["id"]: k for k, r in by_key.items()}
    pairs = [(by_key[k], by_key["B-" + k.removeprefix("A-")]) for k in by_key
             if k.startswith("A-")]
    assert len(pairs) == counts.new + counts.history
    names = [c.name for c in jobs.columns if c.name not in ("id", "external_key")]
    for a, b in pairs:
        assert {n: a[n] for n in names} == {n: b[n] for n in names}, a["external_key"]

    evs = {key_of[e["job_id"]]: e for e in _stored(engine, "events", "seq")}
    assert len(evs) == 2 * len(pairs)
    for a, b in pairs:
        ea, eb = evs[a["external_key"]], evs[b["external_key"]]
        assert _without_prefix(ea.pop("payload"), "A-") == _without_prefix(eb.pop("payload"),
                                                                            "B-")
        for e in (ea, eb):  # (a link covers the event before: the two logs differ there)
            del e["seq"], e["job_id"], e["chain"]
        assert ea == eb

    facts = {key_of[f.pop("job_id")]: f for f in _stored(engine, "job_facts", "job_id")}
    assert len(facts) == 2 * len(pairs)
    assert sum(bool(f["has_photos"]) for f in facts.values()) > 40
    assert sum(a["route_method"] == "nearest" for a, _ in pairs) > 5
    for a, b in pairs:
        assert facts[a["external_key"]] == facts[b["external_key"]]
    assert len(facts[pairs[0][0]["external_key"]]) == len(job_facts.columns) - 1


def test_a_batch_stores_what_one_job_at_a_time_stores(dispatch, clock, geo) -> None:
    """The real hour imported in batches (bulk inserts, facts folded from the rows) and one
    job per transaction (single-row inserts, facts read back): every stored value is equal."""
    clock.now = datetime(2022, 6, 1, 3, 30, 0, 250000, tzinfo=ZoneInfo("America/New_York"))
    rows = _hour_rows(geo)
    batched = Intake(dispatch, key_prefix="A-", batch_size=500).feed(rows)
    single = Intake(dispatch, key_prefix="B-", batch_size=1).feed(rows)
    assert batched.as_dict() == single.as_dict()
    _assert_stored_alike(dispatch.engine, batched)


def test_jobs_routed_aside_are_stored_as_jobs_routed_by_the_writer(dispatch, clock, geo,
                                                                   tmp_path, monkeypatch
                                                                   ) -> None:
    """import_file's second process routes the new jobs of each batch; the writer takes those
    routes and stores exactly what it stores for jobs it routes itself."""
    clock.now = datetime(2022, 6, 1, 3, 30, 0, 250000, tzinfo=ZoneInfo("America/New_York"))
    rows = _hour_rows(geo)
    path = tmp_path / "hour.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    here = Intake(dispatch, key_prefix="A-").feed(intake_files.read_rows(path))
    there = Intake(dispatch, key_prefix="B-")
    with aside(file_import._parsed, path, there, clock()) as batches:
        def refuse(*args: Any) -> None:
            raise AssertionError("the writer routed a job that was routed aside")
        monkeypatch.setattr(dispatch, "routes", refuse)  # here, not in the forked process
        for batch in batches:
            there.write(*file_import._unpacked(batch))
    assert there.counts.as_dict() == here.as_dict()
    _assert_stored_alike(dispatch.engine, here)


def test_only_a_machine_hands_the_write_path_its_routes(dispatch, world, geo) -> None:
    """A person's jobs are routed by the write path, whatever route comes with them."""
    lat, lon = point_in(geo, "75")
    new = NewJob("Noise - Residential", lat=lat, lon=lon, external_key="M-1")
    route = geo.route_many([(lat, lon)])[0]
    with pytest.raises(ValueError, match="routed by the write path"):
        dispatch.create_jobs(world.actors["sgt75"], [new], routes=[route])
    [ev] = dispatch.create_jobs(SYSTEM, [new], routes=[route])
    assert ev["precinct"] == route.precinct and ev["payload"]["route"] == route.method


def test_batch_keys_follow_on_as_single_inserts_number_them(engine) -> None:
    """A batch's keys follow the table's largest (SQLite: counted on, as SQLite numbers rows;
    PostgreSQL: its sequence), in the rows' order, each row told its own."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    row = {"source": "test", "precinct": None, "route_method": "unrouted", "complaint_type": "X",
           "descriptor": "", "location_type": "", "address": "", "borough": "", "fields": {},
           "media": [], "created_at": now, "received_at": now, "status": "new",
           "priority": 3, "ack_due": now, "arrive_due": now, "close_due": now, "version": 1,
           "updated_at": now, "administrative": False, "history": False}
    with db.write(engine) as conn:
        first = conn.execute(jobs.insert(), {**row, "external_key": "K-0"}).inserted_primary_key[0]
        made = [{**row, "external_key": f"K-{i}"} for i in (1, 2, 3)]
        keys = bulk.insert_many(conn, jobs, made)
        after = conn.execute(jobs.insert(), {**row, "external_key": "K-4"}).inserted_primary_key[0]
    assert keys == [first + 1, first + 2, first + 3] == [r["id"] for r in made]
    assert after == first + 4
    stored = _stored(engine, "jobs", "id")
    assert [r["external_key"] for r in stored] == [f"K-{i}" for i in range(5)]
    assert stored[1]["created_at"] == stored[0]["created_at"]
    assert stored[1]["fields"] == stored[0]["fields"]


def _why_not_counted_on(conn: sa.Connection, table: str, key: str) -> list[str]:
    """Why counting keys on from max(key) would not be how SQLite numbers this table's rows:
    the key must be the rowid (one INTEGER PRIMARY KEY column), with no AUTOINCREMENT (which
    never reuses a number, so max + 1 could hand out one that was deleted)."""
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).scalar_one()
    keys = [(r[1], r[2].upper()) for r in conn.exec_driver_sql(f"PRAGMA table_info({table})")
            if r[5]]
    problems = []
    if keys != [(key, "INTEGER")]:
        problems.append(f"{table}: key {keys}, not the rowid ({key} INTEGER PRIMARY KEY)")
    if "AUTOINCREMENT" in sql.upper():
        problems.append(f"{table}: AUTOINCREMENT")
    return problems


def test_the_keys_insert_many_counts_on_are_sqlites_plain_rowids(tmp_path) -> None:
    """insert_many numbers a batch max(key) + 1 onwards on SQLite: right only while the write
    lock is held and each such table's key is a plain rowid. A migration that adds
    AUTOINCREMENT (or makes the key anything but INTEGER PRIMARY KEY) fails here. (The schema
    the migrations make on SQLite, whichever engine this run is on: PostgreSQL numbers a batch
    with the table's own sequence.)"""
    counted = {t.name: key.name for t in metadata.sorted_tables
               if (key := bulk._serial_key(t)) is not None}
    assert {"jobs": "id", "events": "seq"}.items() <= counted.items()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        db.migrate(engine)
        with engine.connect() as conn:
            assert [p for t, k in counted.items() for p in _why_not_counted_on(conn, t, k)] == []
    finally:
        engine.dispose()
    with sa.create_engine("sqlite://").connect() as conn:  # and the check bites
        conn.exec_driver_sql("CREATE TABLE t1 (id INTEGER PRIMARY KEY AUTOINCREMENT)")
        conn.exec_driver_sql("CREATE TABLE t2 (id BIGINT PRIMARY KEY)")
        assert _why_not_counted_on(conn, "t1", "id") == ["t1: AUTOINCREMENT"]
        assert _why_not_counted_on(conn, "t2", "id") == [
            "t2: key [('id', 'BIGINT')], not the rowid (id INTEGER PRIMARY KEY)"]
