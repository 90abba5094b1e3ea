"""The deadline worker: writes an `overdue` event the moment a job misses a stage deadline.

Each pass asks the database which open, non-history jobs are past a stage deadline (dispatch
for a job no unit has, ack for an assigned one, arrive, close) without an overdue mark for that
stage, and records each through
`Dispatch.mark_overdue`. Between passes it sleeps until the next deadline falls due (at most
`interval` seconds, so deadlines a supervisor changes or jobs another process creates are seen).
Nothing is remembered in memory: the overdue_marks key decides, so a restarted worker or several
workers at once write each (job, stage) exactly once.

Runs as its own process (`board deadlines`, the Procfile's `deadlines:` line) or, on the
embedded default, inside `board serve` (see board/app.py).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import datetime

import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.domain.priorities import STAGE_STATUSES, STAGES
from board.storage import db
from board.storage.schema import jobs, overdue_marks
from board.usecases import Dispatch

__all__ = ["DEADLINE_ACTOR", "DeadlineWorker"]

log = logging.getLogger("board.deadlines")

DEADLINE_ACTOR = dataclasses.replace(SYSTEM, name="deadline worker", source="worker")
_DUE = {"dispatch": jobs.c.ack_due, "ack": jobs.c.ack_due, "arrive": jobs.c.arrive_due,
        "close": jobs.c.close_due}


def _unmarked(stage: str) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(overdue_marks.c.job_id == jobs.c.id,
                              overdue_marks.c.stage == stage)


def _aware(value: datetime | str, now: datetime) -> datetime:
    """min() over a column hands SQLite's stored text back, not the column's type."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=now.tzinfo) if value.tzinfo is None else value


class DeadlineWorker:
    def __init__(self, dispatch: Dispatch, *, interval: float = 5.0, batch: int = 500) -> None:
        self.dispatch = dispatch
        self.interval = interval
        self.batch = batch

    def late(self, now: datetime) -> list[tuple[int, str]]:
        """(job, stage) pairs past their deadline and not yet marked, oldest deadline first."""
        found: list[tuple[datetime, int, str]] = []
        with db.read(self.dispatch.engine) as conn:
            for stage in STAGES:
                rows = conn.execute(
                    sa.select(jobs.c.id, _DUE[stage]).where(
                        jobs.c.status.in_(STAGE_STATUSES[stage]), jobs.c.history.is_(sa.false()),
                        _DUE[stage] < now, _unmarked(stage))
                    .order_by(_DUE[stage]).limit(self.batch)).all()
                found += [(due, job_id, stage) for job_id, due in rows]
        return [(job_id, stage) for _, job_id, stage in sorted(found)]

    def run_once(self) -> int:
        """One pass: mark every job now late; returns how many overdue events were written."""
        written = 0
        for job_id, stage in self.late(self.dispatch.clock()):
            if self.dispatch.mark_overdue(DEADLINE_ACTOR, job_id, stage) is not None:
                written += 1
        if written:
            log.info("deadline worker: %d overdue event(s)", written)
        return written

    def wait(self) -> float:
        """Seconds until the next stage deadline of an open job falls due (at most `interval`)."""
        now = self.dispatch.clock()
        with db.read(self.dispatch.engine) as conn:
            upcoming = [conn.execute(sa.select(sa.func.min(_DUE[stage])).where(
                jobs.c.status.in_(STAGE_STATUSES[stage]), jobs.c.history.is_(sa.false()),
                _DUE[stage] >= now)).scalar() for stage in STAGES]
        soonest = min((_aware(t, now) for t in upcoming if t is not None), default=None)
        if soonest is None:
            return self.interval
        return max(0.05, min(self.interval, (soonest - now).total_seconds() + 0.05))

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("deadline worker running (checks at least every %.0fs)", self.interval)
        while not stop.is_set():
            try:
                self.run_once()
                pause = self.wait()
            except Exception:  # a database outage: keep going, it decides again next pass
                log.exception("deadline pass failed; retrying")
                pause = self.interval
            stop.wait(pause)
