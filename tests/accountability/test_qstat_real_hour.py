"""The real hour of 311 (2022-05-01, midnight) as history, and `board qstat` on it.

Imported by intake (`import_file`, history mode): rows NYPD had closed (Status Closed with a
closed date) become history jobs, the others jobs to dispatch. The expected figures are worked
out here from the CSV with the csv module and plain arithmetic, not by the QSTAT code; each
row's precinct is the map's routing of its coordinates.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from board.cli import main as cli
from board.intake.file_import import import_file
from board.storage import db, factstore
from board.storage.schema import job_facts
from tests.conftest import HOUR_CSV
from tests.qstat_helpers import spreadsheet_median, spreadsheet_p90

NY = ZoneInfo("America/New_York")
STAMP = "%m/%d/%Y %I:%M:%S %p"
SUMMONS = "The Police Department issued a summons in response to the complaint."


def _when(text: str) -> datetime:
    return datetime.strptime(text, STAMP).replace(tzinfo=NY).astimezone(UTC)


def _nypd_rows() -> list[dict[str, str]]:
    with HOUR_CSV.open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["Agency"] == "NYPD"]


def test_real_hour_as_history_through_the_cli(world, monkeypatch, database_url, tmp_path,
                                              capsys) -> None:
    d = world.dispatch
    counts = import_file(d, HOUR_CSV)
    assert counts.history == 480
    jobs: dict[str, int] = defaultdict(int)
    expected: dict[str, list[float]] = defaultdict(list)
    summons: dict[str, list[bool]] = defaultdict(list)
    for r in _nypd_rows():
        lat = float(r["Latitude"]) if r["Latitude"] else None
        lon = float(r["Longitude"]) if r["Longitude"] else None
        group = d.geo.route(lat, lon).precinct or "unrouted"
        jobs[group] += 1
        if r["Status"] != "Closed" or not r["Closed Date"]:
            continue
        created, closed = _when(r["Created Date"]), _when(r["Closed Date"])
        expected[group].append((closed - created).total_seconds() / 60)
        if r["Complaint Type"] in ("Illegal Parking", "Blocked Driveway"):
            summons[group].append(r["Resolution Description"] == SUMMONS)
    assert sum(len(v) for v in expected.values()) == 480 and sum(jobs.values()) == 885

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.main(["qstat", "--from", "2022-05-01", "--to", "2022-05-02",
                     "--by", "precinct"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("group,jobs,closed,median_close_min,p90_close_min,"
                               "closed_within_5_min,closed_within_5_min_share,")
    got = {row["group"]: row for row in csv.DictReader(lines)}
    assert set(got) == set(jobs)
    for group in jobs:
        row = got[group]
        mins = expected.get(group, [])
        assert (int(row["jobs"]), int(row["closed"])) == (jobs[group], len(mins)), group
        if not mins:
            assert row["median_close_min"] == row["closed_within_5_min_share"] == ""
            continue
        quick = sum(1 for m in mins if m <= 5)
        # the CSV has minutes to 0.1: a spreadsheet's MEDIAN and PERCENTILE.INC on the rows
        assert math.isclose(float(row["median_close_min"]), spreadsheet_median(mins),
                            abs_tol=0.051)
        assert math.isclose(float(row["p90_close_min"]), spreadsheet_p90(mins), abs_tol=0.051)
        assert int(row["closed_within_5_min"]) == quick
        assert math.isclose(float(row["closed_within_5_min_share"]), quick / len(mins),
                            abs_tol=0.00005)
        # figures that need dispatch events: no data, not zero
        assert row["median_assign_min"] == row["closed_without_arrival_share"] == ""
        if summons.get(group):
            assert math.isclose(float(row["summons_share"]),
                                sum(summons[group]) / len(summons[group]), abs_tol=0.00005)

    # the day before holds none of it; the table format says "no data" in words
    assert cli.main(["qstat", "--from", "2022-04-30", "--to", "2022-05-01", "--by", "tour",
                     "--format", "table"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert cli.main(["qstat", "--from", "2022-05-01", "--to", "2022-05-02", "--by", "tour",
                     "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["midnight", "885", "480"] and "no data" in table[1]
    assert cli.main(["qstat", "--from", "2022-05-02", "--to", "2022-05-01"]) == 2
    with pytest.raises(SystemExit) as refused:
        cli.main(["qstat", "--from", "May 1", "--to", "2022-05-01"])
    assert refused.value.code == 2 and "YYYY-MM-DD" in capsys.readouterr().err


def test_batch_import_facts_match_a_rebuild_from_the_events(world, engine) -> None:
    """Intake writes 500 jobs a statement; their facts rows equal folding the events again."""
    import_file(world.dispatch, HOUR_CSV)
    with db.read(engine) as conn:
        kept = {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))}
    with db.write(engine) as conn:
        assert factstore.rebuild(conn) == len(kept) == 885
    with db.read(engine) as conn:
        assert {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))} == kept
