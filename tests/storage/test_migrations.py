"""Upgrading a database that already holds jobs: a migration that folds job_facts from the
events (0004, 0010) writes only the columns the table has at its step, not the newest
schema's (SQLite scratch file, in both suites)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from board.storage import db
from board.storage.schema import job_facts

T = "2026-11-28 22:00:00.000000"


def test_a_database_from_before_job_facts_upgrades_with_its_facts(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "acc70003c10e")  # 0003: jobs and events, no job_facts yet
            conn.execute(sa.text(
                "INSERT INTO jobs (id, source, route_method, complaint_type, descriptor, "
                "location_type, address, borough, fields, media, created_at, received_at, "
                "status, priority, administrative, history, ack_due, arrive_due, close_due, "
                "version, updated_at, precinct) VALUES (1, 'manual', 'polygon', "
                "'Noise - Residential', '', '', '', '', '{}', '[]', :t, :t, 'new', 3, 0, 0, "
                ":t, :t, :t, 1, :t, '75')"), {"t": T})
            conn.execute(sa.text(
                "INSERT INTO events (job_id, precinct, actor, source, at, kind, payload) "
                "VALUES (1, '75', 'system', 'system', :t, 'create', '{}')"), {"t": T})
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "c5a7f0000003")  # 0004 adds job_facts and folds it
            row = conn.execute(sa.select(*(job_facts.c[c] for c in (
                "job_id", "precinct", "created_at", "tour")))).one()
        assert row.job_id == 1 and row.precinct == "75" and row.tour == "evening"
        assert row.created_at.isoformat().startswith("2026-11-28T22:00")
    finally:
        engine.dispose()


def test_the_migrations_make_every_index_the_schema_names(engine) -> None:
    """What board/storage/schema.py says is indexed, the migrated database has (on the suite's
    engine: SQLite, or PostgreSQL)."""
    from board.storage.schema import metadata

    found = sa.inspect(engine)
    for table in metadata.sorted_tables:
        have = {i["name"] for i in found.get_indexes(table.name)}
        want = {i.name for i in table.indexes}
        assert want <= have, (table.name, sorted(want - have))
