"""Append-only tables, enforced by the database: triggers refuse UPDATE and DELETE.

The application never changes a written command-log entry (a correction is a new entry); the
triggers make that true for any code or person with the application's connection, on both
engines. Only `board demo --reset` lifts them, to start over.
"""

from __future__ import annotations

import sqlalchemy as sa

GUARDED = ("command_log", "events")


def install(conn: sa.Connection, table: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION board_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END; $$ "
            "LANGUAGE plpgsql")
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION board_append_only()")
        return
    for op in ("UPDATE", "DELETE"):
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def drop(conn: sa.Connection, table: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        return
    for op in ("update", "delete"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


def wipe(conn: sa.Connection, table: sa.Table) -> None:
    """Empty a table for a fresh start, guarded or not."""
    if table.name not in GUARDED:
        conn.execute(table.delete())
        return
    drop(conn, table.name)
    conn.execute(table.delete())
    install(conn, table.name)
