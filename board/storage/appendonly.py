"""Append-only tables, enforced by the database: triggers refuse UPDATE and DELETE.

The application never changes a written command-log entry (a correction is a new entry); the
triggers make that true for any code or person with the application's connection, on both
engines. Only `board demo --reset` lifts them, to start over.

Two ways around UPDATE/DELETE triggers are shut too: SQLite's `INSERT OR REPLACE` with an
existing key deletes the old row without firing a DELETE trigger, so an INSERT whose key exists
is refused; PostgreSQL's TRUNCATE fires no row trigger, so a statement trigger refuses it (for
the owner too; only a superuser can still switch triggers off, and the events' hash chain,
board/storage/chain.py, shows what such a rewrite did).
"""

from __future__ import annotations

import sqlalchemy as sa

GUARDED = ("command_log", "events")
KEYS = {"command_log": "id", "events": "seq"}


def install(conn: sa.Connection, table: str) -> None:
    """Every guard of the table (those already there are kept)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION board_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END; $$ "
            "LANGUAGE plpgsql")
        conn.exec_driver_sql(
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION board_append_only()")
        conn.exec_driver_sql(
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION board_append_only()")
        return
    for op in ("UPDATE", "DELETE"):
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    key = KEYS[table]
    conn.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
        f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key}) "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def drop(conn: sa.Connection, table: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        return
    for op in ("update", "delete", "replace"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


def wipe(conn: sa.Connection, table: sa.Table) -> None:
    """Empty a table for a fresh start, guarded or not."""
    if table.name not in GUARDED:
        conn.execute(table.delete())
        return
    drop(conn, table.name)
    conn.execute(table.delete())
    install(conn, table.name)
