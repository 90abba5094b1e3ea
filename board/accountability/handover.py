"""The tour handover report: what the outgoing sergeant hands the incoming one.

For one precinct and one tour (boundaries from board.domain.qstat.tour_window): the open jobs
carried over (as they stand now) and which of them are overdue, every unit's status, the
command log entries, the flagged closes and the callers' disputes of the tour. Read like the
review queue: the precinct's supervisors, commanders and admins; officers and walls never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from board.accountability import commandlog
from board.accountability.reviews import check_reader
from board.domain.access import Actor
from board.domain.qstat import TOUR_LABELS, previous_tour, tour_window
from board.storage import db
from board.storage.schema import events, jobs, review_queue, units
from board.usecases import queries
from board.usecases.queries import Card

WHICH = ("current", "previous")


@dataclass(frozen=True)
class UnitLine:
    callsign: str
    status: str
    reason: str | None
    jobs: list[Card]


@dataclass(frozen=True)
class Handover:
    precinct: str
    tour: str
    start: datetime
    end: datetime
    at: datetime  # when it was read: "carried over" is the open jobs as of now
    carried: list[Card]
    units: list[UnitLine]
    log: list[commandlog.Entry]
    flagged: list[Any]  # job, type, address, unit, flags, closed_at, reviewed
    disputes: list[Any]  # job, type, address, at, what the caller said

    @property
    def overdue(self) -> list[Card]:
        return [c for c in self.carried if c.overdue]

    @property
    def label(self) -> str:
        return TOUR_LABELS[self.tour]


def handover(engine: sa.Engine, actor: Actor, precinct: str, now: datetime,
             which: str = "current") -> Handover:
    """The report for the tour `now` falls in (or the one before it)."""
    check_reader(actor, precinct)
    if which not in WHICH:
        raise ValueError(f"tour is one of {', '.join(WHICH)}")
    name, start, end = (tour_window if which == "current" else previous_tour)(now)
    with db.read(engine) as conn:
        view = queries.board(conn, actor, precinct, now)
        unit_rows = conn.execute(sa.select(units).where(units.c.precinct == precinct)
                                 .order_by(units.c.callsign)).all()
        flagged = conn.execute(
            sa.select(review_queue.c.job_id, review_queue.c.flags, review_queue.c.closed_at,
                      review_queue.c.review_seq, jobs.c.complaint_type, jobs.c.address,
                      jobs.c.disposition, units.c.callsign)
            .join(jobs, jobs.c.id == review_queue.c.job_id)
            .outerjoin(units, units.c.id == jobs.c.unit_id)
            .where(review_queue.c.precinct == precinct, review_queue.c.closed_at >= start,
                   review_queue.c.closed_at < end)
            .order_by(review_queue.c.closed_at, review_queue.c.job_id)).all()
        disputes = conn.execute(
            sa.select(events.c.job_id, events.c.at, events.c.payload, jobs.c.complaint_type,
                      jobs.c.address)
            .join(jobs, jobs.c.id == events.c.job_id)
            .where(events.c.precinct == precinct, events.c.kind == "caller_disputed",
                   events.c.at >= start, events.c.at < end)
            .order_by(events.c.seq)).all()
    on_units = {lane.id: lane.jobs for lane in view.lanes}
    lines = [UnitLine(u.callsign, u.status, u.status_reason, on_units.get(u.id, []))
             for u in unit_rows]
    log = commandlog.entries(engine, actor, precinct, since=start, until=end)
    log.reverse()  # oldest first, as a tour is read
    carried = [*view.queue, *(c for lane in view.lanes for c in lane.jobs)]
    carried.sort(key=lambda c: (c.received_at, c.id))
    return Handover(precinct, name, start, end, now, carried, lines, log, flagged, disputes)


CSV_HEADER = ("section", "job", "when", "type", "address", "unit", "status", "detail")


def csv_rows(h: Handover) -> list[list[str]]:
    """The report as rows (one section column), for a spreadsheet; the caller quotes text."""
    rows: list[list[str]] = []
    for c in h.carried:
        rows.append(["carried_over", str(c.id), c.received_at.isoformat(), c.complaint_type,
                     c.place, c.unit or "", c.status, f"overdue: {c.overdue}" if c.overdue
                     else ""])
    for u in h.units:
        rows.append(["unit", "", "", "", "", u.callsign, u.status,
                     "; ".join(filter(None, [u.reason or "",
                                             f"{len(u.jobs)} job(s)" if u.jobs else ""]))])
    for e in h.log:
        rows.append(["command_log", "", e.at.isoformat(), "", "", "", "", f"{e.actor}: {e.text}"])
        for fix in e.corrections:
            rows.append(["command_log", "", fix.at.isoformat(), "", "", "", "",
                         f"{fix.actor} (correction): {fix.text}"])
    for f in h.flagged:
        rows.append(["flagged_close", str(f.job_id), f.closed_at.isoformat(), f.complaint_type,
                     f.address, f.callsign or "", "reviewed" if f.review_seq else "to review",
                     ", ".join(f.flags)])
    for d in h.disputes:
        rows.append(["caller_dispute", str(d.job_id), d.at.isoformat(), d.complaint_type,
                     d.address, "", "", "the caller says the problem is still there"])
    return rows
