"""What a precinct's supervisors are alerted to: a P1 job arriving, a job going overdue.

Read from the events (`create` with priority 1, `overdue`) of the last hours, for jobs still open
in the precinct: a job closed (or routed elsewhere) since needs nobody's attention, so a device
opening the board for the first time sees what is still to act on, not a tour's history. One
line per job, its newest alert. The board shows them as a banner each device acknowledges
(static/alerts.js remembers the last acknowledged sequence number per precinct on the device).
History rows never alert: intake writes them as `history` events, not `create`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from board.accountability import commandlog
from board.domain.lifecycle import OPEN
from board.storage import db
from board.storage.schema import events, jobs

WINDOW = timedelta(hours=8)  # one tour
LIMIT = 20
STAGE_WORDS = {"ack": "not acknowledged", "arrive": "not on scene", "close": "not closed"}


@dataclass(frozen=True)
class Alert:
    seq: int
    at: datetime
    kind: str  # p1 | overdue
    job_id: int
    complaint_type: str
    address: str
    text: str


def recent(conn: sa.Connection, precinct: str, now: datetime) -> list[Alert]:
    """The precinct's alerts of the last WINDOW on jobs still open there, newest first."""
    rows = conn.execute(
        sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id, events.c.payload,
                  jobs.c.complaint_type, jobs.c.address, jobs.c.priority)
        .join(jobs, jobs.c.id == events.c.job_id)
        .where(events.c.precinct == precinct, events.c.kind.in_(("create", "overdue")),
               events.c.at >= now - WINDOW, jobs.c.precinct == precinct,
               jobs.c.status.in_([s.value for s in OPEN]), jobs.c.history.is_(sa.false()))
        .order_by(events.c.seq.desc()).limit(LIMIT * 10)).all()
    out: list[Alert] = []
    jobs_seen: set[int] = set()
    for r in rows:
        p = r.payload or {}
        if r.job_id in jobs_seen or (r.kind == "create" and p.get("priority") != 1):
            continue
        jobs_seen.add(r.job_id)
        if r.kind == "create":
            text = "P1 job"
        else:
            late = f"OVERDUE: {STAGE_WORDS.get(p.get('stage'), 'late')}"
            text = f"P1 {late}" if r.priority == 1 else late
        out.append(Alert(r.seq, r.at, "p1" if r.kind == "create" else "overdue", r.job_id,
                         r.complaint_type, r.address, text))
    return out[:LIMIT]


def supervisor_panel(engine: db.Source, precinct: str, now: datetime) -> dict[str, Any]:
    """The parts of a supervisor's board beyond the jobs: alerts and the latest log entries.
    (The header's review count is the reader's own, pushed beside: board.live.audiences.)"""
    with db.read(engine) as conn:
        found = recent(conn, precinct, now)
    return {"alerts": found, "log_latest": commandlog.latest(engine, precinct)}
