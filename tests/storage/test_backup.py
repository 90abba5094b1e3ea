"""Backup and restore on PostgreSQL (docs/backup.md): pg_dump of a board's database, pg_restore
into a new database, and the restored board serves the same jobs, keeps its event log intact
and append-only, and goes on numbering where the old one stopped.

It runs against the local PostgreSQL in every run of the suite (as tests/storage/
test_event_log.py does), with databases of its own."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board import bootstrap
from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.settings import Settings
from board.storage import db
from board.storage.schema import events, jobs
from board.web.app import create_app
from tests.conftest import GEO_DIR, PASSWORD, make_job
from tests.web.test_pages import login

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two empty databases of this test's own: the board's, and the one restored into."""
    names = [f"board_backup_{os.getpid()}", f"board_restored_{os.getpid()}"]
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test",
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {names[0]}")
        yield f"{LOCAL_PG}/{names[0]}", f"{LOCAL_PG}/{names[1]}"
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": "test-secret",
                              "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR)})


def event_log(url: str) -> list[tuple]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(events).order_by(events.c.seq))]
    finally:
        engine.dispose()


def run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command[0]}: {done.stderr}"


def test_a_dump_restored_into_a_new_database_serves_the_same_board(databases, tmp_path):
    source, restored = databases
    # a board with people, units and jobs in several states
    d = bootstrap.worker_dispatch(settings_for(source, tmp_path))
    try:
        auth.add_user(d.engine, "sgt75", PASSWORD, "supervisor", "75")
        unit = d.add_unit(SYSTEM, "75-A", "75")["unit_id"]
        sgt = auth.user_actor(d.engine, 1)
        made = [make_job(d, "75") for _ in range(3)]
        d.assign(sgt, made[0], 1, unit, 0)
        d.note(sgt, made[1], "gate code 4411, ask for the super")
        with d.engine.connect() as conn:
            job_count = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
    finally:
        db.close(d.engine)
    before = event_log(source)

    dump = tmp_path / "board.dump"
    run("pg_dump", "--format=custom", f"--file={dump}", f"--dbname={source}")
    run("createdb", "-h", "127.0.0.1", "-U", "postgres", restored.rsplit("/", 1)[1])
    run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored}", str(dump))

    # the event log came back whole: every row, every column
    assert event_log(restored) == before
    # the restored board serves the same jobs to the same people
    app = create_app(settings_for(restored, tmp_path))
    with TestClient(app) as client:
        login(client, "sgt75")
        board = client.get("/board/75").text
        assert {int(j) for j in re.findall(r'id="job-(\d+)"', board)} == set(made)
        page = client.get(f"/jobs/{made[1]}")
        assert page.status_code == 200 and "gate code 4411, ask for the super" in page.text
        assert "75-A" in client.get(f"/jobs/{made[0]}").text
        engine = app.state.dispatch.engine
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == \
                job_count
        # it goes on where the old one stopped: the next event follows the last one restored
        ev = app.state.dispatch.note(auth.user_actor(engine, 1), made[2], "after the restore")
        assert ev["seq"] == before[-1][0] + 1
    # and the log is still append-only
    with psycopg.connect(restored) as raw, pytest.raises(psycopg.Error, match="append-only"):
        raw.execute("UPDATE events SET actor = 'someone else'")
