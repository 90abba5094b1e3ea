"""The JSON API's Idempotency-Key store: (user, key) → (fingerprint, status, answer).

A write is claimed first: the row is inserted (ON CONFLICT DO NOTHING on the primary key) in a
transaction of its own, so of two racing requests with one key exactly one runs, on SQLite and
on PostgreSQL alike. The answer is stored after the write; a retry then reads it instead of
writing again. A write that fails releases its claim (nothing was written: every use case is
one transaction). Keys are kept KEEP; a claim left unanswered for STALE (its process died
between commit and answer) may be taken again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from board.storage import db
from board.storage.schema import idempotency_keys as keys

KEEP = timedelta(hours=24)
STALE = timedelta(minutes=2)


@dataclass(frozen=True)
class Claim:
    """What a key already holds: its request's fingerprint and, once answered, the answer."""

    fingerprint: str
    status: int | None
    response: Any


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: the same key with another request is refused, not replayed."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{method.upper()} {path}\n{digest}".encode()).hexdigest()


def _insert(conn: sa.Connection) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(keys)


def claim(engine: sa.Engine, actor_id: int, key: str, print_: str, now: datetime
          ) -> Claim | None:
    """None when this request now holds the key (go ahead and write); otherwise what the key
    holds (an earlier request's fingerprint, and its answer when it has one)."""
    mine = (keys.c.actor_id == actor_id) & (keys.c.key == key)
    with db.write(engine) as conn:
        conn.execute(sa.delete(keys).where(
            (keys.c.created_at < now - KEEP)
            | (mine & keys.c.status.is_(None) & (keys.c.created_at < now - STALE))))
        mine_now = conn.execute(_insert(conn).values(
            actor_id=actor_id, key=key, fingerprint=print_, created_at=now
        ).on_conflict_do_nothing().returning(keys.c.key)).first()
        if mine_now is not None:
            return None
        row = conn.execute(sa.select(keys).where(mine)).one()
    answer = json.loads(row.response) if row.response is not None else None
    return Claim(row.fingerprint, row.status, answer)


def answer(engine: sa.Engine, actor_id: int, key: str, status: int, response: Any) -> None:
    """Store the answer a retry with this key gets."""
    with db.write(engine) as conn:
        conn.execute(sa.update(keys).where(keys.c.actor_id == actor_id, keys.c.key == key)
                     .values(status=status, response=json.dumps(response)))


def release(engine: sa.Engine, actor_id: int, key: str) -> None:
    """Give the key back after a write that did not happen, so a retry runs it."""
    with db.write(engine) as conn:
        conn.execute(sa.delete(keys).where(keys.c.actor_id == actor_id, keys.c.key == key,
                                           keys.c.status.is_(None)))

