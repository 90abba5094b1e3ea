"""QSTAT's chronic locations: places with the same condition reported again and again.

A place is chronic when one complaint type was reported at one street address at least
CHRONIC_COMPLAINTS times (5 by default) within 30 days (board.domain.places). The table is by
street address: the database groups the period's jobs by precinct, address and type and keeps
the groups with enough jobs; the domain finds each one's worst 30 days. Jobs without an
address (an intersection, a point) are flagged on their cards by distance, not listed here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from board.accountability.qstat import scope
from board.domain.access import Actor
from board.domain.places import PlaceRules, most_in_window
from board.domain.qstat import Period
from board.storage import db
from board.storage.schema import jobs

LIMIT = 200  # rows on a page: the worst places first


@dataclass(frozen=True)
class ChronicPlace:
    precinct: str
    address: str
    complaint_type: str
    most_in_window: int  # the most complaints within any 30 days of the period
    in_period: int
    latest_id: int
    latest_at: datetime


def chronic_locations(engine: sa.Engine, actor: Actor, p: Period, precinct: str | None,
                      rules: PlaceRules) -> list[ChronicPlace]:
    """The reader's chronic locations in a period, worst first within each precinct."""
    scope_ = scope(actor, precinct)
    where = [jobs.c.created_at >= p.since, jobs.c.created_at < p.until, jobs.c.address != "",
             jobs.c.precinct.is_not(None)]
    if scope_ is not None:
        where.append(jobs.c.precinct.in_(scope_))
    key = (jobs.c.precinct, jobs.c.address, jobs.c.complaint_type)
    with db.read(engine) as conn:
        groups = conn.execute(sa.select(*key).where(*where).group_by(*key)
                              .having(sa.func.count() >= rules.chronic_complaints)).all()
        if not groups:
            return []
        wanted = {tuple(g) for g in groups}
        rows = conn.execute(
            sa.select(*key, jobs.c.id, jobs.c.created_at)
            .where(*where, jobs.c.address.in_({g.address for g in groups}))).all()
    times: dict[tuple[str, str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for r in rows:
        k = (r.precinct, r.address, r.complaint_type)
        if k in wanted:
            times[k].append((r.created_at, r.id))
    out = []
    for (pct, address, kind), seen in times.items():
        most = most_in_window([t for t, _ in seen], rules.window)
        if most >= rules.chronic_complaints:
            at, job_id = max(seen)
            out.append(ChronicPlace(pct, address, kind, most, len(seen), job_id, at))
    out.sort(key=lambda c: ((len(c.precinct), c.precinct), -c.most_in_window, c.address))
    return out[:LIMIT]
