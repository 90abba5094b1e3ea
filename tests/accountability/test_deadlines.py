"""The deadline worker: one overdue event per job and stage, decided by the database."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from board.accountability.deadlines import DEADLINE_ACTOR, DeadlineWorker
from board.domain.priorities import Deadlines, late_stages
from board.storage import db
from board.storage.schema import events, jobs, overdue_marks
from board.usecases import Dispatch, Forbidden, Invalid
from board.usecases.queries import job as job_detail
from tests.conftest import Clock, World, make_job


def overdue_events(engine: sa.Engine) -> list[tuple[int, str]]:
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(events.c.job_id, events.c.payload)
                            .where(events.c.kind == "overdue").order_by(events.c.seq)).all()
    return [(r.job_id, r.payload["stage"]) for r in rows]


def test_late_stages_follow_the_job_past_each_deadline(clock: Clock) -> None:
    t = clock.now
    from datetime import timedelta
    due = Deadlines(t + timedelta(minutes=10), t + timedelta(minutes=45),
                    t + timedelta(minutes=120))
    assert late_stages("new", due, t + timedelta(minutes=5)) == []
    assert late_stages("new", due, t + timedelta(minutes=11)) == ["dispatch"]  # nobody has it
    assert late_stages("acknowledged", due, t + timedelta(minutes=11)) == []
    assert late_stages("assigned", due, t + timedelta(minutes=50)) == ["ack", "arrive"]
    assert late_stages("on_scene", due, t + timedelta(minutes=50)) == []
    assert late_stages("on_scene", due, t + timedelta(minutes=121)) == ["close"]
    assert late_stages("closed", due, t + timedelta(minutes=500)) == []


def test_one_event_per_stage_as_deadlines_pass_and_across_a_restart(
        world: World, clock: Clock) -> None:
    d = world.dispatch
    job = make_job(d)  # Noise - Residential: ack 10, arrive 45, close 120 minutes
    worker = DeadlineWorker(d)
    assert worker.run_once() == 0
    clock.advance(minutes=11)
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    assert DeadlineWorker(d).run_once() == 0  # a restarted worker remembers nothing, writes nothing
    clock.advance(minutes=35)
    assert DeadlineWorker(d).run_once() == 1
    clock.advance(minutes=80)
    assert DeadlineWorker(d).run_once() == 1
    assert DeadlineWorker(d).run_once() == 0
    assert overdue_events(d.engine) == [(job, "dispatch"), (job, "arrive"), (job, "close")]
    with db.read(d.engine) as conn:
        ev = conn.execute(sa.select(events).where(events.c.kind == "overdue")).first()
        version = conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job)).scalar()
    assert (ev.actor, ev.source, ev.precinct) == ("deadline worker", "worker", "75")
    assert version == 1  # overdue changes no state: nobody's screen goes stale because of it


def test_a_worked_job_goes_overdue_only_for_the_stages_it_missed(
        world: World, clock: Clock) -> None:
    d = world.dispatch
    job = make_job(d)
    d.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    d.acknowledge(world.actors["off75a"], job, 2)  # acknowledged in time
    clock.advance(minutes=50)
    DeadlineWorker(d).run_once()
    assert overdue_events(d.engine) == [(job, "arrive")]


def test_closed_and_history_jobs_never_go_overdue(world: World, clock: Clock) -> None:
    d = world.dispatch
    closed = make_job(d)
    d.admin_close(world.actors["sgt75"], closed, 1, "duplicate")
    history = make_job(d)
    with db.write(d.engine) as conn:  # as intake writes a row the city had already closed
        conn.execute(jobs.update().where(jobs.c.id == history).values(history=True))
    clock.advance(days=2)
    assert DeadlineWorker(d).run_once() == 0
    assert d.mark_overdue(DEADLINE_ACTOR, history, "ack") is None
    assert overdue_events(d.engine) == []


def test_only_the_worker_marks_overdue(world: World, clock: Clock) -> None:
    job = make_job(world.dispatch)
    clock.advance(minutes=11)
    with pytest.raises(Forbidden):
        world.dispatch.mark_overdue(world.actors["sgt75"], job, "ack")
    with pytest.raises(Invalid):
        world.dispatch.mark_overdue(DEADLINE_ACTOR, job, "lunch")
    assert world.dispatch.mark_overdue(DEADLINE_ACTOR, job, "close") is None  # not late for it


def test_went_overdue_is_a_flag_on_the_closed_job(world: World, clock: Clock) -> None:
    d = world.dispatch
    job = make_job(d)
    clock.advance(minutes=11)
    DeadlineWorker(d).run_once()
    d.admin_close(world.actors["sgt75"], job, 1, "duplicate")
    detail = job_detail(d.engine, world.actors["sgt75"], job, clock.now)
    assert detail.card.flags == {"overdue", "administrative"}


def test_two_workers_racing_write_each_job_and_stage_once(
        world: World, clock: Clock, database_url: str) -> None:
    """Two workers, each with its own engine (as two processes have), on the same late jobs."""
    ids = [make_job(world.dispatch) for _ in range(12)]
    clock.advance(minutes=50)  # every job is late for ack and arrive
    engines = [db.make_engine(database_url) for _ in range(2)]
    workers = [DeadlineWorker(Dispatch(e, None, clock=clock)) for e in engines]
    start = threading.Barrier(2)
    written: list[int] = []

    def run(w: DeadlineWorker) -> None:
        start.wait()
        written.append(w.run_once())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for e in engines:
        e.dispose()
    got = overdue_events(world.dispatch.engine)
    assert sorted(got) == sorted((j, s) for j in ids for s in ("dispatch", "arrive"))
    assert sum(written) == len(got) == 24


def test_acknowledge_is_late_only_for_a_job_a_unit_has(world: World, clock: Clock) -> None:
    """A queued job misses dispatch; once given to a unit, still unacknowledged, it misses the
    acknowledgement too; a job acknowledged in time never does."""
    d, sgt = world.dispatch, world.actors["sgt75"]
    queued, given, acked = make_job(d), make_job(d), make_job(d)
    d.assign(sgt, given, 1, world.unit("75-A"))
    d.assign(sgt, acked, 1, world.unit("75-B"))
    d.acknowledge(world.actors["off75b"], acked, 2)
    clock.advance(minutes=11)
    assert DeadlineWorker(d).run_once() == 2
    assert sorted(overdue_events(d.engine)) == [(queued, "dispatch"), (given, "ack")]
    assert d.mark_overdue(DEADLINE_ACTOR, queued, "ack") is None  # not assigned: not its stage
    d.assign(sgt, queued, 1, world.unit("75-C"))
    assert DeadlineWorker(d).run_once() == 1
    assert (queued, "ack") in overdue_events(d.engine)


def test_the_database_refuses_a_second_mark_for_the_same_stage(world: World,
                                                               clock: Clock) -> None:
    """Even a writer that skipped the check (a race lost between check and insert) is refused."""
    job = make_job(world.dispatch)
    clock.advance(minutes=11)
    first = world.dispatch.mark_overdue(DEADLINE_ACTOR, job, "dispatch")
    assert first is not None
    with db.write(world.dispatch.engine) as conn:
        assert not db.insert_new(conn, overdue_marks,
                                 {"job_id": job, "stage": "dispatch", "seq": first["seq"]})
        assert db.insert_new(conn, overdue_marks,
                             {"job_id": job, "stage": "close", "seq": first["seq"]})
        conn.rollback()


def test_wait_sleeps_until_the_next_deadline(world: World, clock: Clock) -> None:
    worker = DeadlineWorker(world.dispatch, interval=3600)
    assert worker.wait() == 3600  # nothing open
    make_job(world.dispatch)
    assert worker.wait() == pytest.approx(600, abs=1)  # the ack deadline, 10 minutes out
    clock.advance(minutes=11)
    worker.run_once()
    assert worker.wait() == pytest.approx(34 * 60, abs=1)  # then the arrive deadline


def test_board_serve_runs_the_worker_on_the_embedded_default(
        dispatch: Dispatch, clock: Clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    from starlette.testclient import TestClient

    from board.settings import Settings
    from board.web.app import create_app
    from tests.conftest import GEO_DIR

    job = make_job(dispatch)
    clock.advance(minutes=11)
    settings = Settings.from_env({"DATABASE_URL": str(dispatch.engine.url),
                                  "DEADLINE_WORKER": "1", "SECRET_KEY": "x",
                                  "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR)})
    assert Settings.from_env({"BOARD_VAR_DIR": str(tmp_path)}).embedded_deadlines
    assert not Settings.from_env({"DATABASE_URL": "postgresql://x/y", "SECRET_KEY": "x",
                                  "BOARD_VAR_DIR": str(tmp_path)}).embedded_deadlines
    with TestClient(create_app(settings, dispatch)):
        deadline = time.monotonic() + 10
        while not overdue_events(dispatch.engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert overdue_events(dispatch.engine) == [(job, "dispatch")]


def test_cli_one_pass(monkeypatch, world: World, clock: Clock, database_url: str,
                      tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from board.cli import main as cli
    from tests.conftest import GEO_DIR

    job = make_job(world.dispatch)
    with db.write(world.dispatch.engine) as conn:  # created long ago: late by the real clock
        conn.execute(jobs.update().where(jobs.c.id == job).values(
            ack_due=clock.now.replace(year=2020), arrive_due=clock.now.replace(year=2100),
            close_due=clock.now.replace(year=2100)))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.main(["deadlines", "--once"]) == 0
    assert cli.main(["deadlines", "--once"]) == 0
    out = capsys.readouterr().out
    assert "1 overdue event(s) written" in out and "0 overdue event(s) written" in out
    assert (job, "dispatch") in overdue_events(world.dispatch.engine)


def test_a_job_that_went_overdue_comes_back_from_the_api_as_documented(
        world: World, clock: Clock, client) -> None:  # type: ignore[no-untyped-def]
    """Its "overdue" flag is one the OpenAPI document lists."""
    from board.auth import accounts as auth
    from board.web.api import PREFIX
    from tests.web.test_api import check_schema

    d = world.dispatch
    job = make_job(d)
    d.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    clock.advance(minutes=11)
    DeadlineWorker(d).run_once()
    d.close(world.actors["off75a"], job, 2, "action_taken", note="done")
    token = auth.create_token(d.engine, "sgt75", "tests")
    r = client.get(f"{PREFIX}/jobs/{job}", headers={"Authorization": f"Bearer {token}"})
    assert "overdue" in r.json()["flags"]
    check_schema(r, "JobDetail")
