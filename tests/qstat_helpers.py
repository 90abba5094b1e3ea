"""Building QSTAT test data through the write path: live jobs by use case, history rows.

History rows follow the jobs.history contract (a closed job with the 311 times and one
`history` event); until intake's history import lands they are written here the way it writes
them, through Dispatch._event so the facts hook runs in the same transaction.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.domain.dispositions import BY_RESOLUTION
from board.domain.priorities import DEFAULT_RULES, deadlines, rule_for
from board.storage import db
from board.storage.schema import jobs
from board.usecases import Dispatch


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_history(d: Dispatch, precinct: str | None, created: datetime, closed: datetime,
                complaint: str = "Noise - Residential", resolution: str = "",
                key: str | None = None, sector: str | None = None) -> int:
    """A row the city had already closed when it was imported (see the brief's contract)."""
    disp = BY_RESOLUTION.get(resolution)
    due = deadlines(rule_for(DEFAULT_RULES, complaint, ""), created)
    with db.write(d.engine) as conn:
        job_id = conn.execute(jobs.insert().values(
            source="311", external_key=key, precinct=precinct, sector=sector,
            route_method="polygon" if precinct else "unrouted", complaint_type=complaint,
            descriptor="", location_type="", address="", borough="", fields={}, media=[],
            created_at=created, received_at=created, status="closed", priority=3,
            disposition=disp.code if disp else None, resolution=resolution or None,
            administrative=False, history=True, closed_at=closed, ack_due=due.acknowledge,
            arrive_due=due.arrive, close_due=due.close, version=1, updated_at=closed,
        )).inserted_primary_key[0]
        job = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        d._event(conn, SYSTEM, "history", job=job, after="closed",
                 payload={"external_key": key})
    return job_id


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def spreadsheet_median(values: Sequence[float]) -> float:
    """What a spreadsheet's MEDIAN() gives: the mean of the two middle values for an even
    count (statistics.median, not the QSTAT code)."""
    return statistics.median(values)


def spreadsheet_p90(values: Sequence[float]) -> float:
    """What PERCENTILE.INC(range, 0.9) gives: statistics' inclusive method, the 9th of the 10
    cut points (one value is its own percentile; statistics wants two)."""
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=10, method="inclusive")[8]
