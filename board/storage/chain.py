"""The event log's hash chain: each event carries a hash of the one before it and of itself.

The append-only triggers (board/storage/appendonly.py) refuse changes, but whoever holds the
table's owner (or SQLite's file) can drop them. The chain makes such a rewrite detectable: an
event's `chain` is SHA-256 over the previous event's `chain` and this event's content, in seq
order, so changing, removing or inserting an event breaks every link after it. `verify` walks
the log (`board check` runs it).

Links are computed where events are written (board/usecases/core.py `_insert_events`), before
the INSERT (the log refuses UPDATE), in the order the rows are numbered. Writers must not
interleave between reading the last link and inserting: SQLite's write transactions are
serial already; on PostgreSQL a transaction-scoped advisory lock serialises the writers of
events from that point to their commit, so seq order is link order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from board.storage.schema import events

schema_events = events  # for the migration that links the events written before the chain

GENESIS = "0" * 64
#: the advisory lock of the events' writers on PostgreSQL (any constant no one else uses)
LOCK_KEY = 0x311E7E
#: what a link covers: everything an event says (not seq: the order is the chain itself)
FIELDS = ("job_id", "unit_id", "precinct", "actor_id", "actor", "source", "at", "kind",
          "before", "after", "payload", "address", "user_agent")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def content(row: Any) -> bytes:
    """An event's content as canonical JSON (a written row or a row read back alike)."""
    get = row.get if isinstance(row, dict) else row._mapping.get
    values = [_plain(get(name)) for name in FIELDS]
    values[FIELDS.index("payload")] = values[FIELDS.index("payload")] or {}
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def link(previous: str, row: Any) -> str:
    return hashlib.sha256(previous.encode() + b"\n" + content(row)).hexdigest()


def last(conn: sa.Connection) -> str:
    """The newest event's link, once this transaction may append (PostgreSQL: the lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    newest = conn.execute(sa.select(events.c.chain).order_by(events.c.seq.desc())
                          .limit(1)).scalar()
    return newest or GENESIS


def extend(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Give each row (in the order they will be numbered) its link, before the INSERT."""
    previous = last(conn)
    for row in rows:
        previous = row["chain"] = link(previous, row)


@dataclass(frozen=True)
class Verdict:
    checked: int
    broken_at: int | None = None  # the seq of the first event whose link does not hold
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def walk(rows: Iterable[Any]) -> Verdict:
    """Check links in seq order: each must be the hash of the one before and its content."""
    previous, checked = GENESIS, 0
    for row in rows:
        if row.chain is None:
            return Verdict(checked, row.seq, "has no link (written around the application)")
        if row.chain != link(previous, row):
            return Verdict(checked, row.seq, "does not follow from the event before it "
                                             "(this event or an earlier one was changed, "
                                             "removed or inserted)")
        previous, checked = row.chain, checked + 1
    return Verdict(checked)


def verify(source: sa.Engine | sa.Connection, batch: int = 5000) -> Verdict:
    """The whole log, read in seq order a batch at a time."""
    if isinstance(source, sa.Engine):
        with source.connect() as conn:
            return verify(conn, batch)
    query = sa.select(events).order_by(events.c.seq)
    result = source.execution_options(yield_per=batch).execute(query)
    try:
        return walk(result)
    finally:  # a walk that stops early leaves PostgreSQL's server-side cursor open otherwise
        result.close()
