"""PostgreSQL roles: the owner migrates, the application only reads and writes, and can never
UPDATE or DELETE the append-only tables (the events, the command log).

`board migrate` with `MIGRATE_DATABASE_URL` set connects as the owner (who creates and alters
tables), brings the schema up to date, then grants the application's role (the user of
`DATABASE_URL`) what it needs and nothing on those tables beyond SELECT and INSERT. The
triggers of board/appendonly.py refuse the same changes for any role; the grants make the
database itself say no to the application's connection before a trigger is even reached.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Tables whose rows the application adds and reads, never changes or removes.
APPEND_ONLY = ("events", "command_log")


def grant_app(conn: sa.Connection, role: str) -> str:
    """Grant `role` the application's rights in the owner's current schema; returns it."""
    if conn.dialect.name != "postgresql":
        raise ValueError("database roles are a PostgreSQL feature")
    quote = conn.dialect.identifier_preparer.quote
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    r, s = quote(role), quote(schema)
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} "
                         f"TO {r}")
    conn.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    for table in APPEND_ONLY:
        conn.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{quote(table)} FROM {r}")
    return schema


def role_of(url: str) -> str:
    """The user name a database URL logs in as."""
    name = sa.engine.make_url(url).username
    if not name:
        raise ValueError("DATABASE_URL names no user: give the application's role in it")
    return name


def owner_warning(conn: sa.Connection) -> str | None:
    """A warning when this connection's role owns the events table (PostgreSQL): an owner can
    switch off the append-only triggers, so the application should run as a role of its own
    (MIGRATE_DATABASE_URL for the owner; docs/deploying.md). None when all is well."""
    if conn.dialect.name != "postgresql":
        return None
    owner = conn.exec_driver_sql(
        "SELECT tableowner FROM pg_tables WHERE tablename = 'events' "
        "AND schemaname = current_schema()").scalar()
    user = conn.exec_driver_sql("SELECT current_user").scalar()
    superuser = conn.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                                     ).scalar()
    if owner != user and not superuser:
        return None
    what = "a superuser" if superuser else "the owner of the events table"
    return (f"the application connects as {user}, {what}: it could switch off the events' "
            f"append-only triggers. Run the app as a role of its own: set MIGRATE_DATABASE_URL "
            f"to the owner, DATABASE_URL to the app's role, and run `board migrate`")
