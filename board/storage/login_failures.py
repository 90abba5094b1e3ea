"""The log-in throttle's failure counts in the database (board.auth.throttle's Backoff), so
every process of one database counts the same failures: a second `board serve` behind the same
balancer doubles neither an attacker's attempts nor the wait it sees.

A count is (failures, time of the last one); a failure adds one in a single upsert (no lost
increment between processes), starting afresh when the last one is `forget` seconds old, and
rows that old are deleted as new failures come in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from board.storage import db
from board.storage.schema import login_failures as table


@dataclass(frozen=True)
class DatabaseCounts:
    """Failure counts of one kind (user, address, device) in the login_failures table."""

    engine: sa.Engine
    kind: str

    def _key(self, key: str) -> str:
        return hashlib.sha256(f"{self.kind}\x00{key}".encode()).hexdigest()

    def get(self, key: str) -> tuple[int, float]:
        """(failures, time of the last); (0, 0.0) when there are none."""
        with db.read(self.engine) as conn:
            row = conn.execute(sa.select(table.c.failures, table.c.last_at)
                               .where(table.c.key == self._key(key))).first()
        return (row.failures, row.last_at) if row is not None else (0, 0.0)

    def add(self, key: str, now: float, forget: float) -> None:
        """One more failure at `now`; the first of a fresh count when the last is `forget` old."""
        with db.write(self.engine) as conn:
            conn.execute(sa.delete(table).where(table.c.last_at <= now - forget))
            fresh = db.insert_for(conn, table).values(key=self._key(key), failures=1,
                                                      last_at=now)
            conn.execute(fresh.on_conflict_do_update(index_elements=[table.c.key], set_={
                "failures": sa.case((table.c.last_at <= now - forget, 1),
                                    else_=table.c.failures + 1),
                "last_at": now}))

    def clear(self, key: str) -> None:
        with db.write(self.engine) as conn:
            conn.execute(sa.delete(table).where(table.c.key == self._key(key)))
