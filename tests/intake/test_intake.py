"""311 intake (board.intake): the real hour, idempotence, updates, quarantine, files, the CLI."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from board.cli import main as cli
from board.domain.access import SYSTEM
from board.domain.dispositions import DISPOSITIONS
from board.intake import file_import
from board.intake import pipeline as intake
from board.intake.file_import import import_file
from board.intake.pipeline import FileError
from board.intake.quarantine import quarantine_rows, retry, retry_all
from board.intake.rows import normalise_header
from board.storage import db
from board.storage.schema import events, jobs, quarantine
from board.usecases import Invalid, NotFound
from tests.conftest import GEO_DIR, HOUR_CSV, OLD_HEADER, make_job


def hour_rows() -> list[dict[str, str]]:
    with open(HOUR_CSV, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    header = header or list(rows[0].keys())
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def socrata_json(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The same rows as the Socrata API serves them: snake_case, ISO dates, nulls omitted."""
    out = []
    for row in rows:
        item: dict[str, object] = {}
        for key, value in row.items():
            if not value:
                continue
            name = normalise_header(key)
            if name.endswith("_date"):
                value = datetime.strptime(value, "%m/%d/%Y %I:%M:%S %p").strftime(
                    "%Y-%m-%dT%H:%M:%S.000")
            item[name] = value
        if "latitude" in item:
            item["location"] = {"latitude": item["latitude"], "longitude": item["longitude"],
                                "human_address": '{"address": "", "city": ""}'}
        out.append(item)
    return out


def counts_of(c: intake.Counts) -> dict[str, int]:
    return c.as_dict()


def table_count(engine: sa.Engine, table: sa.Table, *where: object) -> int:
    with db.read(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


# --------------------------------------------------------------------------- the real hour


def ny_time(text: str) -> datetime:
    """An export timestamp (New York local time), read without the code under test."""
    return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(
        tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


@pytest.fixture(params=[False, True], ids=["one process", "parsed aside"])
def parse_aside(request) -> bool:
    """import_file in one process, and with the file read and parsed in a second one."""
    return request.param


def test_real_hour_imports_with_exact_counts(dispatch, parse_aside):
    rows = hour_rows()
    nypd = [r for r in rows if r["Agency"].strip().upper() == "NYPD"]
    no_point = [r for r in nypd if not r["Latitude"].strip() or not r["Longitude"].strip()]
    closed = [r for r in nypd if r["Status"] == "Closed" and r["Closed Date"].strip()]
    still_open = [r for r in nypd if r not in closed]
    # worked out from the file itself
    assert (len(rows), len(nypd), len(no_point), len(closed)) == (924, 885, 9, 480)
    assert sum(1 for r in still_open if r in no_point) == 6

    started = time.perf_counter()
    counts = import_file(dispatch, HOUR_CSV, parse_aside=parse_aside)
    elapsed = time.perf_counter() - started
    print(f"\nreal hour import on {dispatch.engine.dialect.name}: {elapsed:.2f}s")
    assert counts_of(counts) == {
        "rows": 924, "new": 405, "history": 480, "updated": 0, "unchanged": 0,
        "skipped_not_nypd": 924 - 885, "quarantined": 0, "unrouted": 6,
    }

    engine = dispatch.engine
    with db.read(engine) as conn:
        got = conn.execute(sa.select(jobs)).all()
        creates = conn.execute(sa.select(events).where(events.c.kind == "create")).all()
        history = conn.execute(sa.select(events).where(events.c.kind == "history")).all()
        n_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    assert len(got) == 885 and n_events == 885  # one event per job, nothing else
    assert {j.external_key for j in got} == {r["Unique Key"] for r in nypd}
    assert Counter(j.route_method for j in got) == {"inside": 876, "unrouted": 9}
    assert {j.external_key for j in got if j.precinct is None} == {
        r["Unique Key"] for r in no_point}
    live = [j for j in got if not j.history]
    assert {j.external_key for j in live} == {r["Unique Key"] for r in still_open}
    assert all(j.source == "nyc311" and j.status == "new" and j.version == 1 for j in live)
    assert len(creates) == 405 and len(history) == 480
    assert {(e.actor, e.source) for e in creates + history} == {("311 import", "intake")}
    assert Counter(j.complaint_type for j in got)["Blocked Driveway"] == 38

    # history: closed with the city's own times and words, on no unit, never overdue
    by_key = {j.external_key: j for j in got}
    for r in closed:
        j = by_key[r["Unique Key"]]
        assert (j.status, j.history, j.unit_id, j.version) == ("closed", True, None, 1)
        assert (j.created_at, j.closed_at) == (ny_time(r["Created Date"]),
                                               ny_time(r["Closed Date"]))
        assert j.resolution == r["Resolution Description"]
        public = {d.resolution: d.code for d in DISPOSITIONS}
        assert j.disposition == public[r["Resolution Description"]]
    assert Counter(by_key[r["Unique Key"]].disposition for r in closed) == {
        "action_taken": 216, "no_evidence": 141, "additional_info": 34,
        "unable_to_gain_entry": 23, "gone_on_arrival": 22, "action_not_necessary": 20,
        "summons_issued": 18, "not_police_jurisdiction": 4, "no_encampment": 2}
    assert {(e.before, e.after) for e in history} == {(None, "closed")}

    job = next(j for j in got if j.external_key == "54049402")
    assert job.created_at == datetime(2022, 5, 1, 4, 0, 3, tzinfo=UTC)  # 12:00:03 AM EDT
    assert (job.precinct, job.sector, job.address) == ("44", "44C", "1006 GERARD AVENUE")
    assert job.external_status == "In Progress"
    assert job.fields["created_date"] == "2022-05-01T00:00:03-04:00"
    assert "location" not in job.fields and job.fields["community_board"] == "04 BRONX"


def test_second_import_changes_nothing(dispatch, parse_aside):
    import_file(dispatch, HOUR_CSV, parse_aside=parse_aside)
    engine = dispatch.engine
    before = table_count(engine, events)
    with db.read(engine) as conn:
        snapshot = conn.execute(sa.select(jobs).order_by(jobs.c.id)).all()
    counts = import_file(dispatch, HOUR_CSV, parse_aside=parse_aside)
    assert counts_of(counts) == {"rows": 924, "new": 0, "history": 0, "updated": 0,
                                 "unchanged": 885, "skipped_not_nypd": 39, "quarantined": 0,
                                 "unrouted": 0}
    assert table_count(engine, events) == before
    with db.read(engine) as conn:
        assert conn.execute(sa.select(jobs).order_by(jobs.c.id)).all() == snapshot


def test_socrata_json_of_the_same_rows_is_the_same_jobs(dispatch, tmp_path, parse_aside):
    rows = hour_rows()
    import_file(dispatch, HOUR_CSV, parse_aside=parse_aside)
    path = tmp_path / "hour.json"
    path.write_text(json.dumps(socrata_json(rows)))
    counts = import_file(dispatch, path, parse_aside=parse_aside)
    # different date formats and a location object, same 311 content: nothing changes
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 885)
    lines = tmp_path / "hour.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in socrata_json(rows)))
    assert import_file(dispatch, lines, parse_aside=parse_aside).unchanged == 885


def test_changed_row_updates_311_fields_never_the_dispatch_history(world, tmp_path):
    dispatch = world.dispatch
    rows = [r for r in hour_rows() if r["Agency"] == "NYPD"][:20]
    key = "54049402"
    assert any(r["Unique Key"] == key for r in rows)
    import_file(dispatch, write_csv(tmp_path / "a.csv", rows))
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.external_key == key)).one()
    # the board works the job: it is in the 44th, so add a unit there
    unit = dispatch.add_unit(SYSTEM, "44-A", "44")["unit_id"]
    dispatch.assign(SYSTEM, job.id, 1, unit)
    dispatch.set_priority(SYSTEM, job.id, 2, 1)

    changed = [dict(r) for r in rows]
    for r in changed:
        if r["Unique Key"] == key:
            r.update({"Status": "Closed", "Closed Date": "05/01/2022 12:40:00 AM",
                      "Resolution Description": "The Police Department responded to the "
                      "complaint and took action to fix the condition.",
                      "Descriptor": "Banging/Pounding", "Latitude": "40.7", "Longitude": "-74.0"})
    counts = import_file(dispatch, write_csv(tmp_path / "b.csv", changed))
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 19)

    with db.read(dispatch.engine) as conn:
        after = conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).one()
        evs = conn.execute(sa.select(events).where(events.c.job_id == job.id)
                           .order_by(events.c.seq)).all()
    assert after.external_status == "Closed"
    assert after.descriptor == "Banging/Pounding"
    assert after.fields["resolution_description"].startswith("The Police Department responded")
    # dispatch state untouched: still assigned to the same unit, same priority, same version,
    # same place (a 311 update never re-routes a job somebody is working)
    assert (after.status, after.unit_id, after.priority, after.version) == (
        "assigned", unit, 1, 3)
    assert (after.precinct, after.lat) == (job.precinct, job.lat)
    assert [e.kind for e in evs] == ["create", "assign", "set_priority", "update_311"]
    assert evs[-1].payload["changed"] == ["descriptor", "external_status", "fields"]
    assert evs[-1].source == "intake"
    # and the changed file again: a no-op
    again = import_file(dispatch, write_csv(tmp_path / "c.csv", changed))
    assert (again.updated, again.unchanged) == (0, 20)


def test_older_column_layout_imports_by_header_name(dispatch, tmp_path):
    rows = [r for r in hour_rows() if r["Agency"] == "NYPD"][:50]
    import_file(dispatch, write_csv(tmp_path / "new.csv", rows))
    with db.read(dispatch.engine) as conn:
        modern = {j.external_key: j for j in conn.execute(sa.select(jobs))}

    old_rows = [{**r, "School Name": "Unspecified", "School Not Found": "N"} for r in rows]
    for r in old_rows:
        r["Unique Key"] = "OLD" + r["Unique Key"]
    counts = import_file(dispatch, write_csv(tmp_path / "old.csv", old_rows, OLD_HEADER))
    assert (counts.new + counts.history, counts.quarantined, counts.skipped_not_nypd) == (
        50, 0, 0)
    with db.read(dispatch.engine) as conn:
        old = {j.external_key: j for j in conn.execute(
            sa.select(jobs).where(jobs.c.external_key.like("OLD%")))}
    assert len(old) == 50
    for key, job in modern.items():
        o = old["OLD" + key]
        assert (o.created_at, o.complaint_type, o.descriptor, o.address, o.lat, o.lon,
                o.precinct, o.sector, o.priority) == (
            job.created_at, job.complaint_type, job.descriptor, job.address, job.lat, job.lon,
            job.precinct, job.sector, job.priority)
        assert o.fields["school_name"] == "Unspecified"
        assert "resolution_description" not in o.fields


# --------------------------------------------------------------------------- bad rows


def good(key: str, **changes: str) -> dict[str, str]:
    row = next(r for r in hour_rows() if r["Unique Key"] == "54049402")
    return {**row, "Unique Key": key, **changes}


def bad_rows_file(tmp_path: Path) -> Path:
    """One of each kind of bad row, with good ones around them."""
    header = list(hour_rows()[0].keys())
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)

    def put(row: dict[str, str]) -> None:
        w.writerow([row.get(h, "") for h in header])

    put(good("90000001"))
    put(good(""))                                                        # blank key
    put(good("90000002", **{"Created Date": "31/31/2022 99:00:00 XM"}))  # bad date
    put(good("90000003", **{"Created Date": ""}))                        # no created date
    put(good("90000004", **{"Latitude": "140.5"}))                       # off the world
    put(good("90000005", **{"Longitude": "-273.9"}))                     # off the world
    put(good("90000006", **{"Longitude": "west-ish"}))                   # not a number
    put(good("90000007", **{"Closed Date": "yesterday"}))                # bad closed date
    put(good("9" * 41))                                                  # key too long
    put(good("90000008", **{"Complaint Type": "  "}))                    # no complaint type
    put(good("90000009", Agency="DSNY", **{"Created Date": "garbage"}))  # not ours: skipped
    put(good("90000010", **{"Latitude": "", "Longitude": "", "Location": ""}))  # unrouted
    w.writerow([*[good("90000011").get(h, "") for h in header], "stray", "cells"])  # misaligned
    put(good("90000012"))
    path = tmp_path / "bad.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


EXPECTED_REASONS = {
    "blank unique key",
    "unparseable created date: '31/31/2022 99:00:00 XM'",
    "missing created date",
    "latitude out of range: 140.5",
    "longitude out of range: -273.9",
    "non-numeric longitude: 'west-ish'",
    "unparseable closed date: 'yesterday'",
    "unique key longer than 40 characters",
    "missing complaint type",
    "row has more cells than the header",
}


def test_every_kind_of_bad_row_is_quarantined_and_the_rest_imported(dispatch, tmp_path,
                                                                    parse_aside):
    path = bad_rows_file(tmp_path)
    counts = import_file(dispatch, path, parse_aside=parse_aside)
    assert counts_of(counts) == {"rows": 14, "new": 3, "history": 0, "updated": 0,
                                 "unchanged": 0, "skipped_not_nypd": 1, "quarantined": 10,
                                 "unrouted": 1}
    assert set(counts.reasons) == EXPECTED_REASONS
    with db.read(dispatch.engine) as conn:
        keys = set(conn.execute(sa.select(jobs.c.external_key)).scalars())
    assert keys == {"90000001", "90000010", "90000012"}

    rows = quarantine_rows(dispatch.engine)
    assert {r.reason for r in rows} == EXPECTED_REASONS
    assert all(r.source == "file:bad.csv" and r.resolved_at is None for r in rows)
    by_reason = {r.reason: r for r in rows}
    assert by_reason["missing created date"].external_key == "90000003"
    assert by_reason["blank unique key"].external_key is None
    assert by_reason["latitude out of range: 140.5"].raw["Latitude"] == "140.5"
    assert by_reason["row has more cells than the header"].raw["__extra_cells__"] == [
        "stray", "cells"]

    # the same file again: nothing new, and the quarantine does not fill up with copies
    again = import_file(dispatch, path, parse_aside=parse_aside)
    assert (again.new, again.unchanged, again.quarantined) == (0, 3, 10)
    assert table_count(dispatch.engine, quarantine) == 10


def test_quarantine_retry_after_an_edit_and_after_an_upstream_fix(dispatch, tmp_path):
    import_file(dispatch, bad_rows_file(tmp_path))
    rows = {r.reason: r for r in quarantine_rows(dispatch.engine)}

    # still bad as stored: stays, same reason
    date_row = rows["missing created date"]
    assert retry(dispatch, date_row.id).kind == "quarantined"
    # an admin's edit that is still wrong: the edit is kept with the new reason
    edited = {**date_row.raw, "Created Date": "not a date"}
    outcome = retry(dispatch, date_row.id, edited)
    assert (outcome.kind, outcome.reason) == ("quarantined", "unparseable created date: "
                                                             "'not a date'")
    row = next(r for r in quarantine_rows(dispatch.engine) if r.id == date_row.id)
    assert row.raw["Created Date"] == "not a date" and row.resolved_at is None
    # the right fix: a job, and the row is resolved
    fixed = {**date_row.raw, "Created Date": "05/01/2022 12:30:00 AM"}
    outcome = retry(dispatch, date_row.id, fixed)
    assert outcome.kind == "new" and outcome.job_id
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.id == outcome.job_id)).one()
    assert (job.external_key, job.created_at) == (
        "90000003", datetime(2022, 5, 1, 4, 30, tzinfo=UTC))
    resolved = {r.id: r for r in quarantine_rows(dispatch.engine, include_resolved=True)}
    assert resolved[date_row.id].resolved_at == dispatch.clock()
    assert date_row.id not in {r.id for r in quarantine_rows(dispatch.engine)}
    with pytest.raises(Invalid):
        retry(dispatch, date_row.id)
    with pytest.raises(NotFound):
        retry(dispatch, 999_999)

    # the city fixes a row upstream: the next import resolves its quarantine entry by itself
    lat_row = rows["latitude out of range: 140.5"]
    path = write_csv(tmp_path / "fixed.csv", [good("90000004")])
    assert import_file(dispatch, path).new == 1
    assert lat_row.id not in {r.id for r in quarantine_rows(dispatch.engine)}

    # retry --all: rows still bad stay, the count says so
    left = len(quarantine_rows(dispatch.engine))
    done = retry_all(dispatch)
    assert done == {"quarantined": left}
    assert len(quarantine_rows(dispatch.engine)) == left


def test_json_rows_media_urls_and_a_non_object_row(dispatch, tmp_path):
    row = socrata_json([good("90000100")])[0]
    row["media_url"] = "https://311.example/photos/1.jpg"
    row[":updated_at"] = "2022-05-01T04:10:00.000Z"
    row[":id"] = "row-abc"
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "unique_key": "90000101",
                                                         "media_url": "javascript:alert(1)"}))
    counts = import_file(dispatch, path)
    assert counts.new == 2
    with db.read(dispatch.engine) as conn:
        media = dict(conn.execute(sa.select(jobs.c.external_key, jobs.c.media)).all())
        fields = conn.execute(sa.select(jobs.c.fields)
                              .where(jobs.c.external_key == "90000100")).scalar()
    assert media == {"90000100": ["https://311.example/photos/1.jpg"], "90000101": []}
    assert "updated_at" not in fields and "id" not in fields  # Socrata system fields

    # a row that is not an object (only possible through the batch API: files refuse it)
    outcomes = intake.Intake(dispatch).batch([["not", "a", "row"]])
    assert outcomes[0].kind == "quarantined" and outcomes[0].reason == "row is not a JSON object"


def test_a_key_created_meanwhile_by_another_writer_is_not_duplicated(dispatch, monkeypatch):
    job_id = make_job(dispatch, "75", key="90000200")
    feed = intake.Intake(dispatch)
    real = feed._existing
    calls: list[list[str | None]] = []

    def blind_first(keys: list[str | None]) -> dict:
        # the batch's look-up misses the job, as if it were created a moment later
        calls.append(list(keys))
        return {} if len(calls) == 1 else real(keys)

    monkeypatch.setattr(feed, "_existing", blind_first)
    outcome = feed.batch([good("90000200")])[0]
    assert outcome.kind == "updated" and outcome.job_id == job_id
    assert table_count(dispatch.engine, jobs) == 1


def test_progress_is_reported_every_n_rows(dispatch, tmp_path, parse_aside):
    # the hour's rows as another agency's: read and counted, but nothing to write
    rows = [{**r, "Agency": "DOT"} for r in hour_rows()]
    seen: list[int] = []
    counts = import_file(dispatch, write_csv(tmp_path / "dot.csv", rows), batch_size=100,
                         progress=lambda c: seen.append(c.rows), progress_every=300,
                         parse_aside=parse_aside)
    assert seen == [300, 600, 900]
    assert (counts.rows, counts.skipped_not_nypd, counts.new) == (924, 924, 0)


# --------------------------------------------------------------------------- broken files


def assert_nothing_written(engine: sa.Engine) -> None:
    assert table_count(engine, jobs) == 0
    assert table_count(engine, quarantine) == 0


@pytest.mark.parametrize("name,content,message", [
    ("trunc.json", '[{"unique_key": "1", "agency": "NYPD"}, {"unique_', "malformed JSON"),
    ("bad.jsonl", '{"unique_key": "1", "agency": "NYPD", "created_date": "2022-05-01"}\n'
                  '{"unique_key": "2", "agency": "NYPD", "created_date": "2022-05-01"}\n'
                  "{oops\n", "line 3: invalid JSON"),
    ("items.json", '[{"unique_key": "1", "agency": "NYPD"}, 42]', "item 1 is not a JSON object"),
    ("noagency.csv", "Name,Value\nfoo,1\n", "no Agency column"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
])
def test_broken_files_stop_with_a_clear_error_and_write_nothing(dispatch, tmp_path, name,
                                                                content, message, parse_aside):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileError, match=message):
        import_file(dispatch, path, parse_aside=parse_aside)
    assert_nothing_written(dispatch.engine)


def test_runaway_csv_cell_and_binary_and_missing_files(dispatch, tmp_path, parse_aside):
    rows = [r for r in hour_rows() if r["Agency"] == "NYPD"][:5]
    path = write_csv(tmp_path / "runaway.csv", rows)
    text = path.read_text()
    # an unbalanced quote swallows the rest of the file into one giant cell: named by its line
    path.write_text(text + 'x,"' + "y" * 200_000 + "\n")
    with pytest.raises(FileError, match=r"broken CSV after 5 rows: line 7: a quoted cell starts "
                                        r"on this line and never ends \(an unbalanced quote\)"):
        import_file(dispatch, path, parse_aside=parse_aside)
    # … or up to the next quote, which then closes it in the wrong place
    path.write_text(text + 'x,"' + "y" * 200_000 + "\n" + text.split("\n", 1)[1])
    with pytest.raises(FileError, match=r"broken CSV after 5 rows: line 7: ',' expected after "
                                        r"'\"': a quote opened on this line closes in the wrong "
                                        r"place \(an unbalanced quote"):
        import_file(dispatch, path, parse_aside=parse_aside)
    binary = tmp_path / "latin1.csv"
    binary.write_bytes("Unique Key,Agency\n1,NYPD caf\xe9\n".encode("latin-1"))
    with pytest.raises(FileError, match="not UTF-8"):
        import_file(dispatch, binary, parse_aside=parse_aside)
    with pytest.raises(FileError, match="no such file"):
        import_file(dispatch, tmp_path / "nope.csv", parse_aside=parse_aside)
    with pytest.raises(FileError, match="is a directory"):
        import_file(dispatch, tmp_path, parse_aside=parse_aside)
    assert_nothing_written(dispatch.engine)


def test_a_file_broken_after_the_check_keeps_what_was_imported(dispatch, tmp_path, monkeypatch,
                                                              parse_aside):
    """A file changed between the check and the import: the batches before the break are
    written, then a FileError says where it broke and what was imported."""
    rows = [r for r in hour_rows() if r["Agency"] == "NYPD"]
    path = write_csv(tmp_path / "changing.csv", rows)
    path.write_text(path.read_text() + 'x,"' + "y" * 2_000 + "\n")
    monkeypatch.setattr(file_import, "check_file", lambda _path: len(rows) + 1)  # it was fine then
    closed = sum(1 for r in rows[:800] if r["Status"] == "Closed" and r["Closed Date"].strip())
    with pytest.raises(FileError, match=r"broken CSV after 800 rows: line 887: a quoted cell .* "
                                        f"— imported so far: rows 800, new {800 - closed}, "
                                        f"history {closed},") as e:
        import_file(dispatch, path, batch_size=400, parse_aside=parse_aside)
    assert e.value.counts is not None and e.value.counts.rows == 800
    assert table_count(dispatch.engine, jobs) == 800


def test_an_empty_file_is_an_error_not_a_quiet_success(dispatch, tmp_path, parse_aside):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("Unique Key,Created Date,Agency\n\n")
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(FileError, match="empty.csv: the file is empty; nothing to import"):
        import_file(dispatch, tmp_path / "empty.csv", parse_aside=parse_aside)
    for name in ("header.csv", "empty.json", "blank.jsonl"):
        with pytest.raises(FileError, match=f"{name}: no rows in the file"):
            import_file(dispatch, tmp_path / name, parse_aside=parse_aside)
    assert_nothing_written(dispatch.engine)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def board_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.setenv("SECRET_KEY", "test-secret")


def test_cli_import_quarantine_and_retry(board_env, engine, tmp_path, capsys):
    assert cli.main(["import-311", str(HOUR_CSV), "--progress-every", "400"]) == 0
    out, err = capsys.readouterr()
    assert ("new 405, history 480, updated 0, unchanged 0, skipped not nypd 39, quarantined 0, "
            "unrouted 6") in out
    assert err.count("import-311: rows ") == 2  # 400 and 800

    assert cli.main(["import-311", str(bad_rows_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "quarantined 10" in out and "quarantined 1: missing created date" in out
    assert cli.main(["quarantine", "list"]) == 0
    listing = capsys.readouterr().out
    assert "reason: missing created date" in listing and "file:bad.csv" in listing
    assert cli.main(["quarantine", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10
    qid = next(r["id"] for r in rows if r["reason"] == "missing created date")
    assert cli.main(["quarantine", "retry", str(qid)]) == 1
    assert "still bad: missing created date" in capsys.readouterr().out
    assert cli.main(["quarantine", "retry", str(qid), "--set",
                     "Created Date=05/01/2022 12:31:00 AM"]) == 0
    assert "new (job " in capsys.readouterr().out
    assert cli.main(["quarantine", "retry", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "quarantined 9"
    assert cli.main(["quarantine", "retry", str(qid), "--set", "oops"]) == 2
    assert cli.main(["quarantine", "retry"]) == 2
    assert cli.main(["quarantine", "list", "--all", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 10


def test_cli_broken_file_is_exit_2_with_a_message(board_env, engine, tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text('[{"unique_key": "1"')
    assert cli.main(["import-311", str(path)]) == 2
    err = capsys.readouterr().err
    assert "malformed JSON" in err and "nothing was imported" in err
    assert "Traceback" not in err
    assert cli.main(["import-311", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert table_count(engine, jobs) == 0


def test_cli_writes_are_announced_to_the_boards_when_redis_is_set(board_env, engine, tmp_path,
                                                                  monkeypatch, capsys):
    published: list[list[tuple[str, str]]] = []

    class FakePublisher:
        def __init__(self, url: str, prefix: str | None = None) -> None:
            assert url == "redis://127.0.0.1:6379/5"

        def publish(self, messages) -> None:  # type: ignore[no-untyped-def]
            published.append(list(messages))

        def close(self) -> None:
            closed.append(True)

    closed: list[bool] = []
    monkeypatch.setattr("board.bootstrap.SyncPublisher", FakePublisher)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    rows = [r for r in hour_rows() if r["Unique Key"] in ("54049402", "54046813")]
    assert cli.main(["import-311", str(write_csv(tmp_path / "two.csv", rows))]) == 0
    # one nudge per committed transaction (both rows are one batch), on the channels the live
    # hub listens to
    assert len(published) == 1
    channels = {channel for batch in published for channel, _ in batch}
    assert {"precinct:44", "precinct:26", "city"} <= channels
    seqs = sorted(json.loads(data)["seq"] for batch in published for _, data in batch)
    assert set(seqs) == {2}
    assert closed == [True]  # the command's Redis connection is not left to the GC


def test_odd_text_is_cut_to_fit_and_stays_idempotent(dispatch, tmp_path):
    rows = [
        {"unique_key": "1", "agency": "NYPD", "created_date": "2022-05-01T00:00:00",
         "complaint_type": "T" * 500, "descriptor": "\u00a0loud\u200d music\x00",
         "incident_address": "A" * 5000, "latitude": 40.7, "longitude": -73.9,
         "status": "S" * 80, "odd": {"nested": [1, None, "\u0000"]}},
        {"unique_key": "2\x00", "agency": "NYPD", "created_date": "bad\x00date",
         "complaint_type": "Traffic"},
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(rows))
    first = import_file(dispatch, path)
    assert (first.new, first.quarantined) == (1, 1)
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.external_key == "1")).one()
    # cut to the columns (PostgreSQL enforces them), control characters gone
    assert (len(job.complaint_type), len(job.address), len(job.external_status)) == (
        120, 300, 40)
    assert job.descriptor == "loud music"
    # … and what was cut is said, on the job and in the import's counts
    assert job.fields["cut_to_fit"] == (
        "address: 5,000 characters, kept 300; complaint_type: 500 characters, kept 120; "
        "external_status: 80 characters, kept 40")
    assert first.cut == {"address": 1, "complaint_type": 1, "external_status": 1}
    # … and what was stored is what the next import compares against: a no-op
    again = import_file(dispatch, path)
    assert (again.new, again.updated, again.unchanged, again.quarantined) == (0, 0, 1, 1)
    assert table_count(dispatch.engine, quarantine) == 1
    assert table_count(dispatch.engine, events) == 1


# --------------------------------------------------------------------------- import gaps (#10.8)


def test_a_file_cut_short_quarantines_its_last_row_not_skips_it(dispatch, tmp_path, parse_aside):
    rows = [r for r in hour_rows() if r["Agency"] == "NYPD"][:3]
    text = write_csv(tmp_path / "whole.csv", rows).read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    # the download stopped in the middle of the last line, before its Agency cell
    cut_at = text.index(last) + len(",".join(last.split(",")[:2]))
    path = tmp_path / "cut.csv"
    path.write_text(text[:cut_at])
    counts = import_file(dispatch, path, parse_aside=parse_aside)
    assert (counts.rows, counts.skipped_not_nypd, counts.quarantined) == (3, 0, 1)
    assert counts.new + counts.history == 2
    [q] = quarantine_rows(dispatch.engine)
    assert q.reason == "row ends before the Agency column (2 cells; was the file cut short?)"
    assert q.external_key == rows[2]["Unique Key"] and "__short_row__" not in q.raw
    # a retry as stored stays bad (the row has no agency); with the cells it lacks, it imports
    assert retry(dispatch, q.id).reason == "row has no Agency column"
    whole = dict(zip(rows[2].keys(), last.split(","), strict=False))
    assert retry(dispatch, q.id, {**q.raw, **rows[2]}).kind in ("new", "history")
    assert whole["Unique Key"] == rows[2]["Unique Key"]


def test_a_row_ending_after_the_agency_column_is_quarantined_too(dispatch, tmp_path):
    path = tmp_path / "short.csv"
    row = good("90000300")
    header = list(row)
    cells = [row[h] for h in header]
    n = header.index("Complaint Type") + 1
    path.write_text(",".join(header) + "\n" + ",".join(f'"{c}"' for c in cells[:n]) + "\n")
    counts = import_file(dispatch, path)
    assert counts.quarantined == 1 and counts.reasons == {
        f"row ends before the Descriptor column ({n} cells; was the file cut short?)": 1}


def test_a_huge_cell_is_one_bad_row_and_the_rest_of_the_file_imports(dispatch, tmp_path):
    rows = [good("90000400"), good("90000401", **{"Resolution Description": "R" * 200_000}),
            good("90000402")]
    counts = import_file(dispatch, write_csv(tmp_path / "huge.csv", rows))
    assert (counts.new, counts.quarantined) == (2, 1)
    assert dict(counts.reasons) == {"cell 'resolution_description' is 200,000 characters long "
                                    "(over the 131,072 a 311 field can be)": 1}
    [q] = quarantine_rows(dispatch.engine)
    assert q.external_key == "90000401"
    # the same in JSON
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(socrata_json([good("90000403", Descriptor="D" * 140_000)])))
    assert import_file(dispatch, path).quarantined == 1


@pytest.mark.parametrize(("changes", "reason"), [
    ({"Created Date": "01/01/2099 12:00:00 AM"}, "created date 2099-01-01 00:00:00 is in the "
                                                 "future"),
    ({"Created Date": "11/30/2026 12:00:00 AM"}, "created date 2026-11-30 00:00:00 is in the "
                                                 "future"),
    ({"Created Date": "01/01/0001 12:00:00 AM"}, "created date 0001-01-01 00:00:00 is before "
                                                 "NYC 311 began (2003)"),
    ({"Created Date": "12/31/2002 11:59:59 PM"}, "created date 2002-12-31 23:59:59 is before "
                                                 "NYC 311 began (2003)"),
    ({"Status": "Closed", "Closed Date": "01/01/2099 12:00:00 AM"},
     "closed date 2099-01-01 00:00:00 is in the future"),
    ({"Status": "Closed", "Closed Date": "04/30/2022 11:00:00 PM"},
     "closed date 2022-04-30 23:00:00 is before the created date 2022-05-01 00:00:03"),
])
def test_impossible_dates_are_quarantined(dispatch, tmp_path, changes, reason):
    # the test clock says 2026-11-28 22:00 UTC: a day ahead is still fine, two days is not
    counts = import_file(dispatch, write_csv(tmp_path / "dates.csv", [
        good("90000500", **changes), good("90000501", **{
            "Created Date": "11/29/2026 04:00:00 PM"})]))
    assert (counts.new, counts.quarantined, dict(counts.reasons)) == (1, 1, {reason: 1})


def test_a_json_key_that_is_a_list_or_object_is_quarantined(dispatch, tmp_path):
    base = socrata_json([good("x")])[0]
    rows = [{**base, "unique_key": ["AUD-J3"]}, {**base, "unique_key": {"k": "AUD-J4"}},
            {**base, "unique_key": True}, {**base, "unique_key": 90000600}]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(rows))
    counts = import_file(dispatch, path)
    assert (counts.new, counts.quarantined) == (1, 3)
    assert dict(counts.reasons) == {"unique key is a JSON list, not a string": 1,
                                    "unique key is a JSON object, not a string": 1,
                                    "unique key is a JSON boolean, not a string": 1}
    with db.read(dispatch.engine) as conn:
        assert list(conn.execute(sa.select(jobs.c.external_key)).scalars()) == ["90000600"]
    assert {q.external_key for q in quarantine_rows(dispatch.engine)} == {None}


def test_the_cli_reports_cuts_and_refuses_an_empty_file(board_env, engine, tmp_path, capsys):
    path = write_csv(tmp_path / "long.csv", [good("90000700", **{
        "Complaint Type": "Noise " + "x" * 200, "Incident Address": "1 " + "LONG " * 100})])
    assert cli.main(["import-311", str(path)]) == 0
    out = capsys.readouterr().out
    assert "new 1," in out
    assert "cut to fit 1: address" in out and "cut to fit 1: complaint_type" in out
    (tmp_path / "empty.csv").write_text("")
    assert cli.main(["import-311", str(tmp_path / "empty.csv")]) == 2
    err = capsys.readouterr().err
    assert "the file is empty" in err and "nothing was imported" in err


# --------------------------------------------------------------------------- batches


def test_a_batch_meeting_a_key_created_meanwhile_falls_back_row_by_row(dispatch, monkeypatch):
    job_id = make_job(dispatch, "75", key="90000800")
    feed = intake.Intake(dispatch)
    real = feed._existing
    calls: list[list[str | None]] = []

    def blind_first(keys: list[str | None]) -> dict:
        calls.append(list(keys))
        return {} if len(calls) == 1 else real(keys)

    monkeypatch.setattr(feed, "_existing", blind_first)
    outcomes = feed.batch([good("90000801"), good("90000800"), good("90000802")])
    # the batch's insert hit the unique key; each row was then written on its own
    assert [o.kind for o in outcomes] == ["new", "updated", "new"]
    assert outcomes[1].job_id == job_id
    with db.read(dispatch.engine) as conn:
        keys = sorted(conn.execute(sa.select(jobs.c.external_key)).scalars())
        kinds = Counter(conn.execute(sa.select(events.c.kind)).scalars())
    assert keys == ["90000800", "90000801", "90000802"]
    assert kinds == {"create": 3, "update_311": 1}


def test_the_same_key_twice_in_one_batch_is_one_job(dispatch):
    first = good("90000900")
    later = good("90000900", Descriptor="Banging/Pounding")
    outcomes = intake.Intake(dispatch).batch([first, good("90000901"), later, first])
    assert [o.kind for o in outcomes] == ["new", "new", "updated", "updated"]
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.external_key == "90000900")).one()
    assert job.descriptor == "Loud Music/Party"
    assert table_count(dispatch.engine, jobs) == 2
