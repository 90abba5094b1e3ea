"""The event log's guards past UPDATE/DELETE triggers, and its hash chain (audit defects 5, 6).

* SQLite's INSERT OR REPLACE over an existing event (no DELETE trigger fires) is refused.
* PostgreSQL's TRUNCATE is refused for the table's owner too.
* Every event carries a link: SHA-256 of the one before and its own content. `board check`
  walks the chain, so a rewrite made around the triggers (dropping them, or as a superuser) is
  found; the migration links the events written before it; concurrent writers keep one chain.

The fresh-database tests run on a SQLite file and on the local PostgreSQL (a schema of their
own), whichever engine the suite runs on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from board.cli import check as check_cli
from board.settings import Settings
from board.storage import chain, db, dbroles
from board.storage.schema import events
from board.usecases import NewJob
from tests.conftest import GEO_DIR, World, make_job, point_in
from tests.storage.test_event_log import LOCAL_PG

BEFORE_CHAIN = "91ace0000013"


def _log(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(events).order_by(events.c.seq))]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request, tmp_path: Path) -> Iterator[sa.Engine]:  # type: ignore[no-untyped-def]
    """An empty database (not migrated) on each engine."""
    if request.param == "sqlite":
        engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"chain_{os.getpid()}"
    admin = db.make_engine(LOCAL_PG)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = db.make_engine(f"{LOCAL_PG}?options=-csearch_path%3D{schema}")
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.dispose()


def _migrate_to(engine: sa.Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_an_insert_over_an_existing_event_is_refused(world: World) -> None:
    """Audit defect 5: `INSERT OR REPLACE INTO events` with seq 1 replaced event 1."""
    make_job(world.dispatch, "75")
    engine = world.dispatch.engine
    before = _log(engine)
    values = "(1, 'someone else', 'manual', '2026-01-01 00:00:00.000000', 'note', '{}')"
    columns = "(seq, actor, source, at, kind, payload)"
    statements = ([f"INSERT OR REPLACE INTO events {columns} VALUES {values}",
                   f"REPLACE INTO events {columns} VALUES {values}"]
                  if engine.dialect.name == "sqlite" else
                  [f"INSERT INTO events {columns} VALUES {values} "
                   "ON CONFLICT (seq) DO UPDATE SET actor = 'someone else'"])
    for sql in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    assert _log(engine) == before


def test_truncate_is_refused_for_the_tables_owner_too(fresh: sa.Engine) -> None:
    """Audit defect 6: as the owner (or a superuser) TRUNCATE events succeeded."""
    db.migrate(fresh)
    with fresh.begin() as conn:
        conn.execute(events.insert().values(actor="A", source="manual", kind="note",
                                            at=datetime.now(UTC), payload={}))
    if fresh.dialect.name == "sqlite":  # no TRUNCATE: its DELETE is the trigger's
        statements = ["DELETE FROM events"]
    else:
        statements = ["TRUNCATE events", "TRUNCATE command_log", "TRUNCATE events CASCADE"]
        with fresh.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == "postgres"
    for sql in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), fresh.begin() as conn:
            conn.exec_driver_sql(sql)


def _rewrite(engine: sa.Engine, sql: str) -> None:
    """What an owner or a superuser can do: the triggers switched off around a change."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER events_no_update")
            conn.exec_driver_sql("DROP TRIGGER events_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
        conn.exec_driver_sql(sql)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER USER")


def _findings(engine: sa.Engine, tmp_path: Path) -> list[check_cli.Finding]:
    settings = Settings.from_env({"DATABASE_URL": str(engine.url.render_as_string(False)),
                                  "SECRET_KEY": "x" * 40, "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR)})
    return check_cli.run(settings, {}, [check_cli.database, check_cli.event_chain])


@pytest.mark.parametrize("rewrite", [
    "UPDATE events SET actor = 'someone else' WHERE seq = 3",
    "DELETE FROM events WHERE seq = 3",
    "UPDATE events SET payload = '{\"text\": \"never said\"}' WHERE seq = 3",
])
def test_every_event_is_linked_and_check_finds_a_rewrite(world: World, tmp_path: Path,
                                                         rewrite: str) -> None:
    d = world.dispatch
    first = make_job(d, "75")
    d.note(world.actors["sgt75"], first, "one")
    d.note(world.actors["sgt75"], first, "two")
    lat, lon = point_in(d.geo, "75")
    d.create_jobs(world.actors["admin"], [NewJob("Noise - Residential", "Loud Music/Party",
                                                 address=f"{n} TEST STREET", lat=lat, lon=lon)
                                          for n in range(5)], source="manual")  # a batch
    verdict = chain.verify(d.engine)
    assert verdict.ok and verdict.checked == len(_log(d.engine))
    [found] = [f for f in _findings(d.engine, tmp_path) if f.name == "event chain"]
    assert found.status == "ok"

    _rewrite(d.engine, rewrite)
    verdict = chain.verify(d.engine)
    assert not verdict.ok and verdict.broken_at in (3, 4) and verdict.checked == 2
    [found] = [f for f in _findings(d.engine, tmp_path) if f.name == "event chain"]
    assert found.status == "FAIL" and f"event {verdict.broken_at}" in found.text


def test_concurrent_writers_keep_one_chain(world: World) -> None:
    """On PostgreSQL writers of events queue for the chain's lock; on SQLite they are serial."""
    d = world.dispatch
    jobs = [make_job(d, "75") for _ in range(4)]
    errors: list[BaseException] = []

    def write(job: int) -> None:
        try:
            for n in range(8):
                d.note(world.actors["sgt75"], job, f"note {n}")
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verdict = chain.verify(d.engine)
    assert verdict.ok and verdict.checked == len(_log(d.engine))
    with d.engine.connect() as conn:
        notes = conn.execute(sa.select(sa.func.count()).where(events.c.kind == "note")).scalar()
    assert notes == 4 * 8


def test_the_migration_links_the_events_written_before_it(fresh: sa.Engine) -> None:
    _migrate_to(fresh, BEFORE_CHAIN)
    old = sa.table("events", *(sa.column(n) for n in ("actor", "source", "at", "kind",
                                                        "precinct")), sa.column("payload", sa.JSON))
    with fresh.begin() as conn:
        for n in range(7):
            conn.execute(old.insert().values(
                actor=f"OLD{n}", source="manual", kind="note", precinct="75",
                at=sa.text("CURRENT_TIMESTAMP"), payload={"text": "x", "n": n}))
    db.migrate(fresh)
    verdict = chain.verify(fresh)
    assert verdict.ok and verdict.checked == 7
    with fresh.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(events.c.chain.is_(None))
                            ).scalar() == 0


def test_the_server_warns_when_its_role_owns_the_events(fresh: sa.Engine, caplog,
                                                        monkeypatch, tmp_path) -> None:
    """Audit defect 6: `board serve` connected as the owner says so at start."""
    import uvicorn

    from board.cli import main as cli
    from board.web import app as web_app

    db.migrate(fresh)
    with fresh.connect() as conn:
        warning = dbroles.owner_warning(conn)
    if fresh.dialect.name == "sqlite":
        assert warning is None
        return
    assert warning and "MIGRATE_DATABASE_URL" in warning
    class Server:  # started, not served
        def __init__(self, config: object) -> None:
            pass

        def run(self) -> None:
            pass

    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(cli, "server_config", lambda *a, **k: None)
    monkeypatch.setattr(web_app, "create_app", lambda settings: None)
    monkeypatch.setattr("gc.freeze", lambda: None)
    settings = Settings.from_env({"DATABASE_URL": fresh.url.render_as_string(False),
                                  "SECRET_KEY": "x" * 40, "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR)})
    with caplog.at_level(logging.WARNING, logger="board.serve"):
        assert cli.cmd_serve(cli.parser().parse_args(["serve"]), settings) == 0
    assert any("append-only" in r.getMessage() for r in caplog.records)
