"""The event log cannot be altered through the application (issue 10, "make trust checkable").

* No application code updates or deletes events (only `board demo --reset` wipes them).
* On both engines the database refuses UPDATE and DELETE on events (append-only triggers).
* On PostgreSQL, `board migrate` with MIGRATE_DATABASE_URL migrates as the owner and grants the
  application's role no UPDATE or DELETE on events: connected as that role, the database says
  "permission denied" before any trigger runs. This test always uses the local PostgreSQL, in a
  schema and a role of its own, whichever engine the suite runs on.
* Every event records where the action came from: channel, address and user agent.
"""

from __future__ import annotations

import os
import re

import pytest
import sqlalchemy as sa

from board import bootstrap
from board.auth import accounts as auth
from board.cli import main as cli
from board.settings import ROOT, Settings
from board.storage import db
from board.storage.schema import events
from tests.conftest import GEO_DIR, PASSWORD, World, make_job

BOARD = ROOT / "board"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
CHANGES_EVENTS = re.compile(
    r"events\.(update|delete)\(|(update|delete)\(\s*events\b|UPDATE\s+events\b|"
    r"DELETE\s+FROM\s+events\b|TRUNCATE[^\n]*\bevents\b", re.IGNORECASE)


def test_no_application_code_changes_events() -> None:
    found = {str(p.relative_to(BOARD)) for p in BOARD.rglob("*.py")
             if CHANGES_EVENTS.search(p.read_text())}
    # the one exception: the migration that links the events written before the hash chain
    assert found == {"storage/migrations/versions/0014_event_chain.py"}, found
    # the one wipe (a fresh demo) goes through appendonly.wipe, called by `demo --reset` only
    callers = {str(p.relative_to(BOARD)) for p in BOARD.rglob("*.py")
               if "appendonly.wipe(" in p.read_text()}
    assert callers == {"cli/demo.py"}


@pytest.mark.parametrize("change", ["UPDATE events SET actor = 'someone else'",
                                    "DELETE FROM events"])
def test_the_database_refuses_changes_to_events(world: World, change: str) -> None:
    make_job(world.dispatch, "75")

    def log() -> list[tuple]:
        with world.dispatch.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(events).order_by(events.c.seq))]

    before = log()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
            world.dispatch.engine.begin() as conn:
        conn.exec_driver_sql(change)
    assert log() == before


@pytest.fixture
def pg_schema_and_role():  # type: ignore[no-untyped-def]
    suffix = f"{os.getpid()}"
    schema, role = f"trust_{suffix}", f"board_app_{suffix}"
    admin = db.make_engine(LOCAL_PG)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        if not conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first():
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    yield schema, role
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    admin.dispose()


def test_the_applications_postgres_role_cannot_update_or_delete_events(
        pg_schema_and_role, monkeypatch, tmp_path, capsys) -> None:
    schema, role = pg_schema_and_role
    options = f"?options=-csearch_path%3D{schema}"
    owner_url = LOCAL_PG + options
    app_url = LOCAL_PG.replace("postgres@", f"{role}@") + options
    monkeypatch.setenv("MIGRATE_DATABASE_URL", owner_url)
    monkeypatch.setenv("DATABASE_URL", app_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.main(["migrate"]) == 0
    assert f"role {role} may read and write in {schema}" in capsys.readouterr().out

    # the application, as its role, works: a user, a unit, a job and its events
    assert cli.main(["geo", "load", str(GEO_DIR)]) == 0
    assert cli.main(["units", "add", "75-A", "--precinct", "75"]) == 0
    app = db.make_engine(app_url)
    try:
        auth.add_user(app, "sgt75", PASSWORD, "supervisor", "75")
        d = bootstrap.worker_dispatch(Settings.from_env())
        job = make_job(d, "75")
        sgt = auth.user_actor(app, 1)
        d.note(sgt, job, "written by the application's role")
        d.engine.dispose()
        with app.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == role
            assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 3
        for change in ("UPDATE events SET actor = 'someone else'", "DELETE FROM events",
                       "TRUNCATE events", "UPDATE command_log SET text = ''"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), \
                    app.begin() as conn:
                conn.exec_driver_sql(change)
        with app.begin() as conn:  # the rest of the application's work is allowed
            conn.exec_driver_sql("UPDATE jobs SET priority = priority")
    finally:
        app.dispose()


def test_events_record_where_each_action_came_from(client, world: World) -> None:
    """Channel, address and user agent, for the web and the API alike."""
    from tests.web.test_pages import login

    job = make_job(world.dispatch, "75")
    csrf = login(client, "sgt75")
    client.post(f"/jobs/{job}/act/note", data={"csrf": csrf, "text": "from the web"},
                headers={"User-Agent": "desk-browser/1.0"})
    token = auth.create_token(world.dispatch.engine, "sgt75", "script")
    client.post(f"/api/v1/jobs/{job}/note", json={"text": "from a script"},
                headers={"Authorization": f"Bearer {token}", "User-Agent": "cad-bridge/2"})
    with world.dispatch.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.source, events.c.address, events.c.user_agent)
                            .where(events.c.kind == "note").order_by(events.c.seq)).all()
    assert [tuple(r) for r in rows] == [("web", "testclient", "desk-browser/1.0"),
                                        ("api", "testclient", "cad-bridge/2")]
