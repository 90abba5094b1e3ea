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
OPEN_VALUES = frozenset(s.value for s in OPEN)
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
    stage: str | None = None  # an overdue alert's stage (its text says it)


def _alert(seq: int, at: datetime, kind: str, job_id: int, payload: dict[str, Any],
           job: Any) -> Alert:
    """One line: what the event says, with the job as it is now (`job`: its complaint type,
    address and priority)."""
    if kind == "create":
        return Alert(seq, at, "p1", job_id, job.complaint_type, job.address, "P1 job")
    stage = payload.get("stage")
    late = f"OVERDUE: {STAGE_WORDS.get(stage, 'late')}"
    return Alert(seq, at, "overdue", job_id, job.complaint_type, job.address,
                 f"P1 {late}" if job.priority == 1 else late, stage)


def _worthy() -> sa.ColumnElement[bool]:
    """The events that alert: an overdue stage, a P1 arrival (the priority it came in with)."""
    return sa.or_(events.c.kind == "overdue",
                  sa.and_(events.c.kind == "create",
                          events.c.payload["priority"].as_integer() == 1))


def recent(conn: sa.Connection, precinct: str, now: datetime) -> list[Alert]:
    """The precinct's alerts of the last WINDOW on jobs still open there, newest first: the
    newest alerting event of each of the LIMIT jobs alerted last (LIMIT rows, however many
    jobs are open)."""
    showing = sa.and_(
        events.c.precinct == precinct, _worthy(), events.c.at >= now - WINDOW,
        jobs.c.precinct == precinct, jobs.c.status.in_([s.value for s in OPEN]),
        jobs.c.history.is_(sa.false()))
    newest = (sa.select(sa.func.max(events.c.seq))
              .select_from(events.join(jobs, jobs.c.id == events.c.job_id))
              .where(showing).group_by(events.c.job_id)
              .order_by(sa.func.max(events.c.seq).desc()).limit(LIMIT))
    rows = conn.execute(
        sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id, events.c.payload,
                  jobs.c.complaint_type, jobs.c.address, jobs.c.priority)
        .join(jobs, jobs.c.id == events.c.job_id)
        .where(events.c.seq.in_(newest.scalar_subquery()))
        .order_by(events.c.seq.desc())).all()
    return [_alert(r.seq, r.at, r.kind, r.job_id, r.payload or {}, r) for r in rows]


# Events after which the list is read again (LIMIT rows): a job may come back with its alerts.
COME_BACK = frozenset({"reopen", "route"})


def after(conn: sa.Connection, precinct: str, now: datetime, old: list[Alert],
          evs: list[dict[str, Any]], touched: dict[int, Any]) -> list[Alert]:
    """The alerts after these events, from the list before them and the rows of the jobs the
    events touched (`touched`: job id → its row now, with status, precinct, history): reads
    nothing, unless an alert left a full list or a job came back (then `recent` again)."""
    if any(e["kind"] in COME_BACK for e in evs):
        return recent(conn, precinct, now)

    def shows(job: Any) -> bool:
        return (job is not None and job.precinct == precinct and not job.history
                and job.status in OPEN_VALUES)

    alerts = {a.job_id: a for a in old}
    left = False
    for job_id, job in touched.items():
        a = alerts.get(job_id)
        if a is None:
            continue
        if shows(job):
            alerts[job_id] = _alert(a.seq, a.at, "create" if a.kind == "p1" else "overdue",
                                    job_id, {"stage": a.stage}, job)
        else:
            del alerts[job_id]
            left = True
    for e in evs:
        job = touched.get(e["job_id"])
        if (e["precinct"] == precinct and shows(job) and e["at"] >= now - WINDOW
                and (e["kind"] == "overdue" or (e["kind"] == "create"
                                                and (e["payload"] or {}).get("priority") == 1))):
            alerts[e["job_id"]] = _alert(e["seq"], e["at"], e["kind"], e["job_id"],
                                         e["payload"] or {}, job)
    for a in list(alerts.values()):
        if a.at < now - WINDOW:
            del alerts[a.job_id]
            left = True
    if left and len(old) >= LIMIT:  # the next job's alert may now belong in the list
        return recent(conn, precinct, now)
    return sorted(alerts.values(), key=lambda a: a.seq, reverse=True)[:LIMIT]


def supervisor_panel(engine: db.Source, precinct: str, now: datetime) -> dict[str, Any]:
    """The parts of a supervisor's board beyond the jobs: alerts and the latest log entries.
    (The header's review count is the reader's own, pushed beside: board.live.audiences.)"""
    with db.read(engine) as conn:
        found = recent(conn, precinct, now)
    return {"alerts": found, "log_latest": commandlog.latest(engine, precinct)}
