"""The review queue's read side: flagged closes waiting for a supervisor's finding.

The write path keeps `review_queue` (close, admin close, reopen, review), so the queue and its
count are index reads, not a scan of every closed job's events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden, Role
from board.storage import db
from board.storage.schema import events, jobs, review_queue, units
from board.usecases.queries import CARD_COLUMNS, Card, card, check_precinct

READERS = (Role.SUPERVISOR, Role.COMMANDER, Role.ADMIN)
PAGE = 200


def check_reader(actor: Actor, precinct: str) -> None:
    """Supervisors, commanders and admins of the precinct; officers and walls never."""
    check_precinct(actor, precinct)
    if actor.role not in READERS:
        raise Forbidden("the review queue is for supervisors and commanders")


@dataclass(frozen=True)
class Pending:
    card: Card
    row: Any
    flags: list[str]
    closed_at: datetime
    timeline: list[Any]

    @property
    def id(self) -> int:
        return self.card.id


def _waiting(precincts: Iterable[str] | None) -> sa.Select:
    q = (sa.select(review_queue.c.precinct, sa.func.count())
         .join(jobs, jobs.c.id == review_queue.c.job_id)
         .where(review_queue.c.review_seq.is_(None), jobs.c.status == "closed",
                review_queue.c.precinct.is_not(None))
         .group_by(review_queue.c.precinct))
    return q if precincts is None else q.where(review_queue.c.precinct.in_(list(precincts)))


def pending(engine: db.Source, actor: Actor, precinct: str, now: datetime) -> list[Pending]:
    """The precinct's flagged closes still to review: those the caller disputes first, then
    the oldest close first."""
    check_reader(actor, precinct)
    with db.read(engine) as conn:
        rows = conn.execute(
            sa.select(*CARD_COLUMNS, jobs, review_queue.c.flags,
                      review_queue.c.closed_at.label("queued_at"), units.c.callsign)
            .select_from(review_queue.join(jobs, jobs.c.id == review_queue.c.job_id)
                         .outerjoin(units, units.c.id == jobs.c.unit_id))
            .where(review_queue.c.precinct == precinct, review_queue.c.review_seq.is_(None),
                   jobs.c.status == "closed")
            # a caller's "still there" first, then the oldest close
            .order_by(review_queue.c.caller_disputed.desc(), review_queue.c.closed_at,
                      jobs.c.id).limit(PAGE)).all()
        timelines: dict[int, list[Any]] = defaultdict(list)
        if rows:
            for e in conn.execute(sa.select(events).where(
                    events.c.job_id.in_([r.id for r in rows])).order_by(events.c.seq)):
                timelines[e.job_id].append(e)
    return [Pending(card(r, now, r.callsign, frozenset(r.flags)), r, list(r.flags),
                    r.queued_at, timelines[r.id]) for r in rows]


def counts(engine: db.Source, actor: Actor) -> dict[str, int]:
    """How many flagged closes wait in each of the actor's precincts (those with none left
    out); empty for non-readers."""
    if actor.role not in READERS:
        return {}
    scope = None if actor.citywide else sorted(actor.precincts)
    with db.read(engine) as conn:
        return dict(conn.execute(_waiting(scope)).all())


@dataclass(frozen=True)
class Queue:
    """A precinct's review queue as its page shows it: the oldest PAGE rows, and how many
    wait in all."""

    rows: list[Pending]
    total: int


def queue(engine: db.Source, actor: Actor, precinct: str, now: datetime) -> Queue:
    rows = pending(engine, actor, precinct, now)
    total = len(rows) if len(rows) < PAGE else counts(engine, actor).get(precinct, 0)
    return Queue(rows, total)


def count(engine: db.Source, actor: Actor) -> int:
    """The header's count: flagged closes waiting in all the actor's precincts together."""
    return sum(counts(engine, actor).values())
