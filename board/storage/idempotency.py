"""The JSON API's Idempotency-Key store: (user, key) → (fingerprint, event, status, answer).

A write is claimed first: the row is inserted (ON CONFLICT DO NOTHING on the primary key) in a
transaction of its own, so of two racing requests with one key exactly one runs, on SQLite and
on PostgreSQL alike. The write's own transaction marks the claim with the event it wrote
(`written`, called by board.usecases.core as each event is inserted), so the claim says whether
the write committed whatever happens next. The answer is stored after the write; a retry then
reads it instead of writing again. A claim marked but never answered (the process died, or the
database went, between the commit and the answer) is answered from its event, never run again.
A write that fails releases its claim (nothing was written: every use case is one transaction).
Keys are kept KEEP; an unmarked claim left unanswered for STALE (its process died before its
write committed) may be taken again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from board.storage import db
from board.storage.schema import events
from board.storage.schema import idempotency_keys as keys

KEEP = timedelta(hours=24)
STALE = timedelta(minutes=2)


@dataclass(frozen=True)
class Claim:
    """What a key already holds: its request's fingerprint and, once answered, the answer;
    `written`: the event of a write that committed but was never answered."""

    fingerprint: str
    status: int | None
    response: Any
    written: dict[str, Any] | None = None


class ClaimLost(Exception):
    """The write's claim was taken by a retry meanwhile (the write ran longer than STALE): the
    write rolls back rather than run twice."""


def _mine(actor_id: int, key: str) -> Any:
    return (keys.c.actor_id == actor_id) & (keys.c.key == key)


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: the same key with another request is refused, not replayed."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{method.upper()} {path}\n{digest}".encode()).hexdigest()


def claim(engine: sa.Engine, actor_id: int, key: str, print_: str, now: datetime
          ) -> Claim | None:
    """None when this request now holds the key (go ahead and write); otherwise what the key
    holds (an earlier request's fingerprint, and its answer when it has one)."""
    mine = _mine(actor_id, key)
    with db.write(engine) as conn:
        conn.execute(sa.delete(keys).where(
            (keys.c.created_at < now - KEEP)
            | (mine & keys.c.status.is_(None) & keys.c.seq.is_(None)
               & (keys.c.created_at < now - STALE))))
        if db.insert_new(conn, keys, {"actor_id": actor_id, "key": key,
                                      "fingerprint": print_, "created_at": now}):
            return None
        row = conn.execute(sa.select(keys).where(mine)).one()
        written = None
        if row.status is None and row.seq is not None:
            written = dict(conn.execute(sa.select(events).where(events.c.seq == row.seq))
                           .mappings().one())
    answer = json.loads(row.response) if row.response is not None else None
    return Claim(row.fingerprint, row.status, answer, written)


def written(conn: sa.Connection, actor_id: int, key: str, seq: int) -> None:
    """Inside the write's transaction: mark its claim with the (last) event it wrote, so the
    mark commits exactly when the write does. A claim gone meanwhile is ClaimLost."""
    done = conn.execute(sa.update(keys).where(_mine(actor_id, key), keys.c.status.is_(None))
                        .values(seq=seq))
    if done.rowcount != 1:
        raise ClaimLost(key)


def answer(engine: sa.Engine, actor_id: int, key: str, status: int, response: Any) -> None:
    """Store the answer a retry with this key gets (the first one stored stays)."""
    with db.write(engine) as conn:
        conn.execute(sa.update(keys).where(_mine(actor_id, key), keys.c.status.is_(None))
                     .values(status=status, response=json.dumps(response)))


def release(engine: sa.Engine, actor_id: int, key: str) -> None:
    """Give the key back after a write that did not happen, so a retry runs it."""
    with db.write(engine) as conn:
        conn.execute(sa.delete(keys).where(_mine(actor_id, key), keys.c.status.is_(None),
                                           keys.c.seq.is_(None)))

