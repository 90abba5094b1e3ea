"""Engines and transactions: SQLite by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> sa.Engine:
    """An engine whose write transactions on SQLite take the lock up front (BEGIN IMMEDIATE).

    A deferred SQLite transaction that reads, then writes, fails at once with "database is
    locked" when another writer got in between; an immediate one waits its turn instead.
    Either engine's errors leave out the bound values (hide_parameters): they are what users
    typed (names, search text), and an error's text ends up in the log.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        # connect_timeout: an unreachable server fails a request (503) in seconds, not minutes.
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                connect_args={"connect_timeout": 5}, hide_parameters=True)
    path = sa.make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # a fresh var/ on first start
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                              hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # the WAL default that keeps commits cheap
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: commits on success, rolls back on any error."""
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        yield conn


# Where a read runs: an engine (a transaction of its own) or a connection already in one.
Source = sa.Engine | sa.Connection


@contextmanager
def read(source: Source) -> Iterator[sa.Connection]:
    """One read transaction that sees one snapshot in all its statements: a screen read in
    several queries never shows a job both open and closed. SQLite's read transactions do
    already; PostgreSQL's READ COMMITTED takes a snapshot per statement, REPEATABLE READ once
    (a read-only transaction never fails a serialization check, so this costs nothing). Given
    a connection, the reads join its transaction: several reads, one snapshot."""
    if isinstance(source, sa.Connection):
        yield source
        return
    with source.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def close(engine: sa.Engine) -> None:
    """At shutdown: fold SQLite's write-ahead log into the database file and close every pooled
    connection (the last close removes board.storage.db-wal), so a stopped board leaves one file."""
    if engine.dialect.name == "sqlite":
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except sa.exc.SQLAlchemyError:
            pass
    engine.dispose()


def migrate(engine: sa.Engine) -> None:
    """Bring the schema up to the newest migration."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def autogenerate(engine: sa.Engine, message: str) -> None:
    """Write a new migration for what board/schema.py has and the database lacks."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    """The engine's own INSERT of `table`, the one with ON CONFLICT (DO NOTHING / DO UPDATE)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_new(conn: sa.Connection, table: sa.Table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either engine; True when the row was written.

    On PostgreSQL a concurrent insert of the same key waits for the first transaction and then
    writes nothing, so the database (not the callers) decides who was first.
    """
    key = list(table.primary_key.columns)[0]
    stmt = insert_for(conn, table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(stmt).first() is not None


# The errors that mean "the database is not there" (connection refused, dropped, pool empty),
# as opposed to a bug: those stay 500s.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
               sa.exc.TimeoutError)


def database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE)
