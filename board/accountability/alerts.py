"""What a precinct's supervisors are alerted to: a P1 job arriving, a job going overdue.

Read from the events (`create` with priority 1, `overdue`) of the last hours, for jobs still open
in the precinct: a job closed (or routed elsewhere) since needs nobody's attention, so a device
opening the board for the first time sees what is still to act on, not a tour's history. An
alert is answered once its job has got past the stage it was about (a P1 arrival once the job
is dispatched, "not acknowledged" once acknowledged): it leaves the banner. One line per job,
its newest alert, in the card's words (board.domain.priorities.overdue), so banner and card
never disagree; every job's, the banner scrolls. The board shows them as a banner each device
acknowledges
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
from board.domain.priorities import STAGE_WORDS, Deadlines, event_stage, overdue, passed
from board.storage import db
from board.storage.schema import events, jobs

WINDOW = timedelta(hours=8)  # one tour
LIMIT = 500  # jobs: the banner scrolls; beyond this a precinct has bigger problems than a list
OPEN_VALUES = frozenset(s.value for s in OPEN)


@dataclass(frozen=True)
class Alert:
    seq: int
    at: datetime
    kind: str  # p1 | overdue
    job_id: int
    complaint_type: str
    address: str
    text: str
    stage: str | None = None  # what the job has not got past: dispatch | ack | arrive | close


def stage_of(kind: str, payload: dict[str, Any], unit_id: int | None) -> str | None:
    """The stage an alerting event is about, in today's names (a P1 arrival: dispatch)."""
    if kind == "create":
        return "dispatch"
    return event_stage(payload.get("stage"), unit_id, payload.get("status"))


def _alert(seq: int, at: datetime, kind: str, job_id: int, stage: str | None, job: Any,
           now: datetime) -> Alert | None:
    """One line: what the event says, with the job as it is now (`job`: its complaint type,
    address, priority, status and deadlines); None once the job has got past the stage."""
    if passed(stage, job.status):
        return None
    if kind == "create":
        return Alert(seq, at, "p1", job_id, job.complaint_type, job.address, "P1 job", stage)
    words = overdue(job.status, Deadlines(job.ack_due, job.arrive_due, job.close_due), now) \
        or STAGE_WORDS.get(stage or "", "late")
    late = f"OVERDUE: {words}"
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
        sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id, events.c.unit_id,
                  events.c.payload, jobs.c.complaint_type, jobs.c.address, jobs.c.priority,
                  jobs.c.status, jobs.c.ack_due, jobs.c.arrive_due, jobs.c.close_due)
        .join(jobs, jobs.c.id == events.c.job_id)
        .where(events.c.seq.in_(newest.scalar_subquery()))
        .order_by(events.c.seq.desc())).all()
    found = (_alert(r.seq, r.at, r.kind, r.job_id, stage_of(r.kind, r.payload or {}, r.unit_id),
                    r, now) for r in rows)
    return [a for a in found if a is not None]


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
        again = _alert(a.seq, a.at, "create" if a.kind == "p1" else "overdue", job_id, a.stage,
                       job, now) if shows(job) else None
        if again is not None:
            alerts[job_id] = again
        else:
            del alerts[job_id]
            left = True
    for e in evs:
        job = touched.get(e["job_id"])
        if (e["precinct"] == precinct and shows(job) and e["at"] >= now - WINDOW
                and (e["kind"] == "overdue" or (e["kind"] == "create"
                                                and (e["payload"] or {}).get("priority") == 1))):
            new = _alert(e["seq"], e["at"], e["kind"], e["job_id"],
                         stage_of(e["kind"], e["payload"] or {}, e.get("unit_id")), job, now)
            if new is not None:
                alerts[e["job_id"]] = new
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
