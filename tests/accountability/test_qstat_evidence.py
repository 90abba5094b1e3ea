"""QSTAT's evidence figures (issue 16) against hand-computed expectations, each with the jobs
behind it, on the page, in the CSV and the API; history rows are "no data", never zero."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

from starlette.testclient import TestClient

from board.accountability import qstat
from board.auth import accounts as auth
from board.domain.presence import Fix
from board.domain.qstat import Period, percentile
from board.storage import db, factstore
from board.storage.schema import job_facts
from tests import photos
from tests.conftest import World, make_job
from tests.qstat_helpers import add_history, spreadsheet_median, utc
from tests.web.test_pages import login

DAY = Period(date(2026, 11, 28), date(2026, 11, 29))
PARAMS = {"from": "2026-11-28", "to": "2026-11-29"}
LATER = utc("2026-12-01T12:00:00")


def _worked(world: World, clock, metres: float | None, **close: object) -> int:
    """A 75th job assigned, on scene (`metres` from the job, or no position), closed 20 min on."""
    d, sgt, off = world.dispatch, world.actors["sgt75"], world.actors["off75a"]
    job = make_job(d, "75", "Illegal Parking", "Blocked Hydrant")
    d.assign(sgt, job, 1, world.unit("75-A"))
    d.acknowledge(off, job, 2)
    lat, lon = d.geo and _where(d, job)
    fix = None if metres is None else Fix(lat + metres / 111_195, lon, 10)
    d.on_scene(off, job, 3, fix)
    clock.advance(minutes=20)
    d.close(off, job, 4, close.pop("disposition", "action_taken"), **close)  # type: ignore[arg-type]
    return job


def _where(d, job: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from board.storage.schema import jobs

    with d.engine.connect() as conn:
        row = conn.execute(jobs.select().where(jobs.c.id == job)).one()
    return row.lat, row.lon


def _data(world: World, clock) -> dict[str, int]:
    world.dispatch.arrival_position = "ask"
    clock.now = utc("2026-11-28T15:00:00")
    ids = {
        "near": _worked(world, clock, 30, photos=[photos.jpeg()]),
        "close": _worked(world, clock, 10, disposition="summons_issued",
                         summons="1234567890"),
        "far": _worked(world, clock, 2400, disposition="summons_issued", summons_count=1),
        "edge": _worked(world, clock, 50),
        "blind": _worked(world, clock, None),
        "history": add_history(world.dispatch, "75", utc("2026-11-28T16:00:00"),
                               utc("2026-11-28T17:00:00"), "Illegal Parking",
                               "The Police Department issued a summons in response to the "
                               "complaint."),
    }
    return ids


def test_the_evidence_figures(world: World, clock) -> None:
    ids = _data(world, clock)
    s = qstat.sheet(world.dispatch.engine, world.actors["sgt75"], DAY, "precinct", "75", LATER)
    row = s.total.now
    # five arrivals, three within 200 m (10, 30, 50), the far one and the blind one not
    assert row["arrivals_confirmed_share"] == 3 / 5
    # distances given: 10, 30, 50, 2400 → the mean of the two middle values
    assert row["median_arrival_distance_m"] == spreadsheet_median([10, 30, 50, 2400]) == 40.0
    assert row["closes_with_evidence_share"] == 1 / 5
    assert row["summons_without_number"] == 1  # "far": a summons, no number; history excluded

    def behind(figure: str) -> set[int]:
        rows, total = qstat.jobs_behind(world.dispatch.engine, world.actors["sgt75"], DAY,
                                        "all", "", figure, "75", LATER)
        assert total == len(rows)
        return {r.job_id for r in rows}

    assert behind("arrivals_confirmed_share") == {ids["far"], ids["blind"]}
    assert behind("median_arrival_distance_m") == {ids["near"], ids["close"], ids["far"],
                                                   ids["edge"]}
    assert behind("closes_with_evidence_share") == {ids["close"], ids["far"], ids["edge"],
                                                    ids["blind"]}
    assert behind("summons_without_number") == {ids["far"]}
    # the facts the write path kept are what a rebuild from the events gives
    with db.read(world.dispatch.engine) as conn:
        kept = sorted(map(tuple, conn.execute(job_facts.select()).all()))
    with db.write(world.dispatch.engine) as conn:
        factstore.rebuild(conn)
    with db.read(world.dispatch.engine) as conn:
        assert sorted(map(tuple, conn.execute(job_facts.select()).all())) == kept


def test_history_alone_is_no_data_not_zero(world: World) -> None:
    add_history(world.dispatch, "75", utc("2026-11-28T16:00:00"), utc("2026-11-28T17:00:00"),
                "Illegal Parking",
                "The Police Department issued a summons in response to the complaint.")
    s = qstat.sheet(world.dispatch.engine, world.actors["sgt75"], DAY, "precinct", "75", LATER)
    for name in ("arrivals_confirmed_share", "median_arrival_distance_m",
                 "closes_with_evidence_share", "summons_without_number"):
        assert s.total.now[name] is None, name


def test_the_median_is_the_conventional_one() -> None:
    def median(vs: list[float]) -> float | None:
        return percentile(vs, 0.5)
    assert median([]) is None
    assert median([7.0]) == 7.0
    assert median([1.0, 2.0, 10.0]) == 2.0
    assert median([1.0, 2.0, 10.0, 20.0]) == 6.0


def test_page_csv_and_api_carry_them(world: World, clock, app) -> None:
    ids = _data(world, clock)
    token = auth.create_token(world.dispatch.engine, "sgt75", "tests")
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/qstat", params={**PARAMS, "precinct": "75"}).text
        found = re.search(r'data-figure="summons_without_number">.*?<a href="([^"]+)">([^<]+)'
                          r'</a>', page, re.S)
        assert found and found.group(2) == "1"
        listed = c.get(found.group(1).replace("&amp;", "&")).text
        assert f'href="/jobs/{ids["far"]}"' in listed
        assert f'href="/jobs/{ids["close"]}"' not in listed
        assert re.search(r'data-figure="arrivals_confirmed_share">.*?>60\.0%<', page, re.S)
        sheet = {r["figure"]: r for r in csv.DictReader(io.StringIO(
            c.get("/qstat.csv", params={**PARAMS, "precinct": "75", "table": "sheet"}).text))}
        assert sheet["median_arrival_distance_m"]["this_period"] == "40.0"
        assert sheet["closes_with_evidence_share"]["this_period"] == "0.2000"
        groups = list(csv.DictReader(io.StringIO(c.get("/qstat.csv", params={
            **PARAMS, "precinct": "75", "by": "precinct", "table": "groups"}).text)))
        assert groups[0]["arrivals_confirmed_share"] == "0.6000"
        assert groups[0]["summons_without_number"] == "1"
        body = c.get("/api/v1/qstat", params={**PARAMS, "precinct": "75"},
                     headers={"Authorization": f"Bearer {token}"}).json()
    now = body["total"]["this_period"]
    assert (now["arrivals_confirmed_share"], now["median_arrival_distance_m"],
            now["closes_with_evidence_share"], now["summons_without_number"]) == (
        0.6, 40.0, 0.2, 1)
