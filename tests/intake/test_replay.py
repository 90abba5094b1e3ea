"""Replay (workers.replay): the real hour at 60×, worked by simulated officers, on a fake clock."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa

from board.cli import main as cli
from board.domain.dispositions import BY_RESOLUTION
from board.intake.file_import import import_file
from board.intake.files import read_csv
from board.intake.rows import is_nypd, parse_row
from board.storage import db
from board.storage.schema import events, jobs, units
from tests.conftest import GEO_DIR, HOUR_CSV
from workers.replay import Replay, replay_file

SPEED = 60.0


class FakeTime:
    """monotonic + sleep over the test clock: sleeping moves the board's clock too."""

    def __init__(self, clock) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.slept = 0.0
        self.hooks: list = []

    def monotonic(self) -> float:
        return self.clock.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.clock.advance(seconds=seconds)
        for hook in list(self.hooks):
            hook()


@pytest.fixture
def fake(clock) -> FakeTime:
    return FakeTime(clock)


def job_events(engine: sa.Engine) -> dict[int, list]:
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(events).where(events.c.job_id.is_not(None))
                            .order_by(events.c.seq)).all()
    out: dict[int, list] = defaultdict(list)
    for e in rows:
        out[e.job_id].append(e)
    return out


def test_the_real_hour_replayed_with_simulated_officers(dispatch, fake, clock):
    rows = list(read_csv(HOUR_CSV))
    nypd = [parse_row(r) for r in rows if is_nypd(r)]
    t0 = min(r.created_at for r in nypd)
    start = clock.now

    report = replay_file(dispatch, HOUR_CSV, speed=SPEED, simulate_officers=True,
                         sleep=fake.sleep, monotonic=fake.monotonic)

    routed = [r for r in nypd if r.lat is not None]
    closed = [r for r in routed if r.closed_at and r.resolution in BY_RESOLUTION]
    still_open = [r for r in routed if not r.closed_at]
    assert (len(nypd), len(routed), len(closed), len(still_open)) == (885, 876, 477, 399)
    # replay makes every row a job to dispatch, closed by the city or not: its simulated
    # officers close them (never history)
    assert report.counts.as_dict() == {"rows": 924, "new": 885, "history": 0, "updated": 0,
                                       "unchanged": 0,
                                       "skipped_not_nypd": 39, "quarantined": 0,
                                       "unrouted": 9}
    assert (report.closed, report.left_open, report.unrouted, report.taken_over,
            report.no_unit) == (477, 399, 9, 0, 0)
    # the whole history, scaled: it ends with the last close or the last open job's
    # acknowledgement (two minutes after it came in), whichever is later
    last = max(max(r.closed_at for r in closed),
               max(r.created_at for r in still_open) + timedelta(minutes=2))
    assert report.virtual_span == last - t0
    assert fake.slept == pytest.approx((last - t0).total_seconds() / SPEED, abs=1e-3)

    with db.read(dispatch.engine) as conn:
        by_key = {j.external_key: j for j in conn.execute(sa.select(jobs))}
        sims = conn.execute(sa.select(units.c.callsign, units.c.precinct)).all()
    evs = job_events(dispatch.engine)

    def at(dt):  # a historical moment on the replay's timeline
        return start + (dt - t0) / SPEED

    for r in closed:
        job = by_key[r.unique_key]
        d = BY_RESOLUTION[r.resolution]
        # the exact public text the 311 system published, and the matching disposition
        assert (job.status, job.resolution, job.disposition) == ("closed", r.resolution, d.code)
        kinds = [e.kind for e in evs[job.id]]
        if d.administrative:
            assert kinds == ["create", "admin_close"] and job.unit_id is None
        elif d.arrival_expected:
            assert kinds == ["create", "assign", "acknowledge", "en_route", "on_scene", "close"]
        else:
            assert kinds == ["create", "assign", "acknowledge", "close"]
        assert job.summons_count == (1 if d.summons else None)
        # each job enters at its scaled creation time and closes at its scaled close time
        assert abs(evs[job.id][0].at - at(r.created_at)) < timedelta(milliseconds=5)
        assert abs(evs[job.id][-1].at - at(r.closed_at)) < timedelta(milliseconds=5)
        assert job.created_at == evs[job.id][0].at  # today's timeline, not 2022
        times = [e.at for e in evs[job.id]]
        assert times == sorted(times)
    for r in still_open:
        job = by_key[r.unique_key]
        assert (job.status, job.resolution) == ("acknowledged", None) and job.unit_id
        assert [e.kind for e in evs[job.id]] == ["create", "assign", "acknowledge"]
    for r in nypd:
        if r.lat is None:
            job = by_key[r.unique_key]
            assert (job.status, job.precinct, job.unit_id) == ("new", None, None)

    # dispositions as in history, by resolution text
    assert report.dispositions == Counter(BY_RESOLUTION[r.resolution].code for r in closed)
    # simulated units: three in every precinct that had a job, made through the write path
    precincts = {j.precinct for j in by_key.values() if j.precinct}
    assert {(c, p) for c, p in sims} == {
        (f"SIM-{p}-{i}", p) for p in precincts for i in (1, 2, 3)}
    assert report.units_added == 3 * len(precincts)
    with db.read(dispatch.engine) as conn:
        sources = Counter(conn.execute(sa.select(events.c.source)).scalars())
        actors = set(conn.execute(sa.select(events.c.actor).where(
            events.c.kind == "close")).scalars())
    assert set(sources) == {"replay"}
    assert actors <= {c for c, _ in sims}
    assert {j.source for j in by_key.values()} == {"replay"}


def test_replay_without_officers_feeds_jobs_at_scaled_times(dispatch, fake, clock):
    rows = [r for r in read_csv(HOUR_CSV)][:120]
    start = clock.now
    report = Replay(dispatch, rows, speed=600, sleep=fake.sleep, monotonic=fake.monotonic).run()
    parsed = [parse_row(r) for r in rows]
    t0 = min(p.created_at for p in parsed)
    assert report.counts.new == sum(1 for r in rows if is_nypd(r))
    assert report.closed == 0 and report.units_added == 0
    evs = job_events(dispatch.engine)
    with db.read(dispatch.engine) as conn:
        found = {j.external_key: j for j in conn.execute(sa.select(jobs))}
    for p in parsed:
        if p.agency != "NYPD":
            continue
        job = found[p.unique_key]
        assert job.status == "new" and [e.kind for e in evs[job.id]] == ["create"]
        assert abs(job.created_at - (start + (p.created_at - t0) / 600)) < timedelta(
            milliseconds=5)
    # a second replay of the same rows is a no-op (idempotent on the 311 key) …
    again = Replay(dispatch, rows, speed=600, sleep=fake.sleep, monotonic=fake.monotonic).run()
    assert again.counts.new == 0 and again.counts.unchanged == report.counts.new
    # … unless the keys are prefixed, for a fresh run of the demo
    fresh = Replay(dispatch, rows, speed=600, key_prefix="R2-", sleep=fake.sleep,
                   monotonic=fake.monotonic).run()
    assert fresh.counts.new == report.counts.new


def test_a_job_a_person_takes_over_is_left_to_them(world, fake):
    dispatch = world.dispatch
    rows = [r for r in read_csv(HOUR_CSV) if is_nypd(r)
            and dispatch.geo.route(*_point(r)).precinct == "75"]
    parsed = {r["Unique Key"]: parse_row(r) for r in rows}
    closing = [k for k, p in parsed.items() if p.closed_at and p.resolution in BY_RESOLUTION]
    # a job that closed in the field: a sergeant steps in while it is assigned
    key = next(k for k in closing
               if not BY_RESOLUTION[parsed[k].resolution].administrative)
    done: list[int] = []

    def sergeant_steps_in() -> None:
        with db.read(dispatch.engine) as conn:
            job = conn.execute(sa.select(jobs).where(jobs.c.external_key == key)).first()
        if job is None or done or job.status != "assigned":
            return
        dispatch.unassign(world.actors["sgt75"], job.id, job.version, "I'll take this one")
        done.append(job.id)

    fake.hooks.append(sergeant_steps_in)
    report = Replay(dispatch, rows, speed=SPEED, simulate_officers=True, sleep=fake.sleep,
                    monotonic=fake.monotonic).run()
    assert done and report.taken_over == 1
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.id == done[0])).one()
        kinds = conn.execute(sa.select(events.c.kind).where(events.c.job_id == job.id)
                             .order_by(events.c.seq)).scalars().all()
    assert (job.status, job.unit_id) == ("new", None)  # nobody simulated touched it again
    assert kinds == ["create", "assign", "unassign"]
    assert report.closed == len(closing) - 1 > 0


def test_out_of_service_units_leave_jobs_in_the_queue(world, fake):
    dispatch = world.dispatch
    rows = [r for r in read_csv(HOUR_CSV) if is_nypd(r)]
    in_75 = [r for r in rows if dispatch.geo.route(*_point(r)).precinct == "75"]
    assert in_75
    for i in (1, 2):
        uid = dispatch.add_unit(world.actors["admin"], f"SIM-75-{i}", "75")["unit_id"]
        dispatch.unit_status(world.actors["sgt75"], uid, 1, "out_of_service", "car in the shop")
    report = Replay(dispatch, in_75, speed=SPEED, simulate_officers=True,
                    units_per_precinct=2, sleep=fake.sleep, monotonic=fake.monotonic).run()
    assert report.units_added == 0 and report.closed == 0 and report.taken_over == 0
    assert report.no_unit == len(in_75)
    with db.read(dispatch.engine) as conn:
        statuses = set(conn.execute(sa.select(jobs.c.status)).scalars())
    assert statuses == {"new"}


def _point(row: dict[str, str]) -> tuple[float | None, float | None]:
    p = parse_row(row)
    return p.lat, p.lon


def test_replay_rejects_a_bad_speed(dispatch):
    with pytest.raises(ValueError, match="speed"):
        Replay(dispatch, [], speed=0)


def test_cli_replay(monkeypatch, database_url, tmp_path, engine, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    with open(HOUR_CSV, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["Agency"] == "NYPD"][:30]
    path = tmp_path / "few.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # 1e6×: two hours of history in well under a second of real waiting
    assert cli.main(["replay", str(path), "--speed", "1000000", "--simulate-officers"]) == 0
    out = capsys.readouterr().out
    assert "new 30" in out and "simulated: closed" in out
    with pytest.raises(SystemExit) as refused:  # argparse refuses it before anything runs
        cli.main(["replay", str(path), "--speed", "0"])
    assert refused.value.code == 2 and "greater than 0" in capsys.readouterr().err
    assert cli.main(["replay", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    with db.read(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 30


def test_imported_then_replayed_jobs_are_not_simulated_twice(dispatch, fake, tmp_path):
    path = tmp_path / "part.csv"
    with open(HOUR_CSV, encoding="utf-8-sig", newline="") as src, open(
            path, "w", encoding="utf-8", newline="") as dst:
        dst.writelines(line for _, line in zip(range(201), src, strict=False))
    imported = import_file(dispatch, path)
    report = replay_file(dispatch, path, speed=SPEED, simulate_officers=True,
                         sleep=fake.sleep, monotonic=fake.monotonic)
    # the import made the closed rows history: replay neither re-creates nor simulates them
    assert report.counts.unchanged == imported.new + imported.history > 150
    assert imported.history > 0
    assert report.counts.new == report.closed == report.units_added == 0
