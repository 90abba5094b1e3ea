"""Batch inserts for the write path: many rows of one table in one statement.

Intake writes thousands of jobs, events and job_facts rows a second. On PostgreSQL a batch is
SQLAlchemy's own multi-row INSERT … RETURNING. On SQLite, SQLAlchemy's per-row work (building
each row's parameters, running every value through its type) cost more than SQLite itself, so
a batch goes to the driver's executemany through one compiled statement per table and column
set, each value converted beforehand by the column type's own bind processor — the stored bytes
are the ones a single-row insert stores (tests/test_bulk.py compares them). A column NULL in
every row of a batch is left out of its statement rather than bound as NULL row after row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

__all__ = ["insert_many"]

Processor = Callable[[Any], Any]


def _serial_key(table: sa.Table) -> sa.Column | None:
    """The table's own integer key that the database numbers (jobs.id, events.seq), if any."""
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and keys[0].autoincrement in (True, "auto") and not keys[0].foreign_keys \
            and isinstance(keys[0].type, sa.Integer):
        return keys[0]
    return None


def _processor(column: sa.Column, dialect: sa.Dialect) -> Processor | None:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


@lru_cache(maxsize=64)
def _plan(table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect
          ) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]],
                     tuple[tuple[int, Processor], ...]]:
    """(SQL, a row's values in the statement's order, (position, processor) to apply)."""
    compiled = table.insert().compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    if set(order) != set(names):  # a column left to a Python-side default: not for this path
        raise ValueError(f"{table.name}: rows must name every column they insert ({order})")
    get = itemgetter(*order)
    procs = tuple((i, p) for i, name in enumerate(order)
                  if (p := _processor(table.c[name], dialect)) is not None)
    return compiled.string, (get if len(order) > 1 else lambda row: (get(row),)), procs


def _named(table: sa.Table, rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The columns the statement names: a column NULL in every row of the batch, without a
    default, is left out (it is NULL all the same); the driver binds each NULL at a cost."""
    first = rows[0]
    return tuple(name for name, value in first.items()
                 if value is not None or not _plain_null(table.c[name])
                 or any(row[name] is not None for row in rows))


@lru_cache(maxsize=256)
def _plain_null(column: sa.Column) -> bool:
    return column.default is None and column.server_default is None


def _sqlite_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    sql, get, procs = _plan(table, _named(table, rows), conn.dialect)
    params = []
    for row in rows:
        values = list(get(row))
        for i, process in procs:
            values[i] = process(values[i])
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


def insert_many(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows (each naming the same columns) in one statement. A table whose key the
    database numbers (jobs.id, events.seq): each row gets its key (`row["id"] = …`), and the
    keys are returned in the rows' order; [] for a table without one (job_facts).

    SQLite: the keys are counted on from the table's largest, as SQLite itself numbers them (no
    AUTOINCREMENT): the write transaction holds the database lock, so nobody numbers rows
    meanwhile (tests/test_bulk.py checks the schema this relies on). PostgreSQL: its sequence
    numbers them, returned in order (sentinel ordering).
    """
    if not rows:
        return []
    key = _serial_key(table)
    if key is None:
        if conn.dialect.name == "sqlite":
            _sqlite_rows(conn, table, rows)
        else:
            conn.execute(table.insert(), rows)
        return []
    if len(rows) == 1:  # one row (most writes): numbered by the database, as any insert is
        rows[0][key.name] = conn.execute(table.insert(), rows[0]).inserted_primary_key[0]
        return [rows[0][key.name]]
    if conn.dialect.name == "sqlite":
        last = conn.execute(sa.select(sa.func.max(key))).scalar() or 0
        keys = list(range(last + 1, last + 1 + len(rows)))
        for row, k in zip(rows, keys, strict=True):
            row[key.name] = k
        _sqlite_rows(conn, table, rows)
        return keys
    keys = list(conn.execute(table.insert().returning(key, sort_by_parameter_order=True),
                             rows).scalars())
    for row, k in zip(rows, keys, strict=True):
        row[key.name] = k
    return keys
