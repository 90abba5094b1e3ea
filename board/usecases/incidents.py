"""Related complaints: several 311 requests linked into one incident, assigned and
closed together; each keeps its own job, events and resolution."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor
from board.domain.lifecycle import OPEN, WORKING, Status
from board.storage import db
from board.storage.schema import (
    jobs,
    units,
)
from board.usecases.core import (
    ChangeCore,
    Invalid,
)

log = logging.getLogger(__name__)

class IncidentCases(ChangeCore):
    # -- related complaints: one incident, many 311 requests -----------------------------------

    def link(self, actor: Actor, job_id: int, version: int, lead_id: int | None) -> dict[str, Any]:
        """Link a job into another's incident (`lead_id`), or out of its incident (None).

        An incident is named by its first job; the others point at it. Linking changes only
        the linked job (its version moves, one `link` / `unlink` event); each job keeps its
        own lifecycle, events and resolution for 311."""
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check("link", job.precinct)
            lead = None
            if lead_id is not None:
                if lead_id == job_id:
                    raise Invalid({"lead_id": "a job cannot be linked to itself"})
                lead = self._job(conn, lead_id)
                actor.check("link", lead.precinct)
                if lead.precinct != job.precinct:
                    raise Invalid({"lead_id": "an incident's jobs are on one precinct's board"})
            job = self._lock(conn, job_id, (job.unit_id,))
            if job.version != version:
                raise self._conflict(job, version)
            if Status(job.status) not in OPEN or (lead and Status(lead.status) not in OPEN):
                raise Invalid({"lead_id": "only open jobs are linked"})
            incident = (lead.incident_id or lead.id) if lead else None
            if incident == job.incident_id:
                raise Invalid({"lead_id": "already so" if incident else "not in an incident"})
            if incident is not None and conn.execute(
                    sa.select(jobs.c.id).where(jobs.c.incident_id == job.id).limit(1)).first():
                raise Invalid({"lead_id": f"job {job.id} leads an incident of its own: link "
                                          f"#{incident} into it instead"})
            conn.execute(jobs.update().where(jobs.c.id == job.id).values(
                incident_id=incident, version=version + 1, updated_at=self.clock()))
            kind = "link" if incident else "unlink"
            ev = self._event(conn, actor, kind, job=job, unit_id=job.unit_id,
                             payload={"incident": incident or job.incident_id})
        self._committed([ev])
        return ev

    def incident_jobs(self, incident: int, conn: sa.Connection | None = None) -> list[Any]:
        """The open jobs of an incident, first job first."""
        with db.read(conn or self.engine) as c:
            return c.execute(sa.select(jobs).where(
                sa.or_(jobs.c.id == incident, jobs.c.incident_id == incident),
                jobs.c.status.in_([st.value for st in OPEN])).order_by(jobs.c.id)).all()

    def _together(self, conn: sa.Connection, actor: Actor, action: str, rows: list[Any],
                  unit_id: int | None = None) -> None:
        """Before any job of a multi-job action is written: the actor may do it to every one,
        and the units whose stacks it touches are locked in the one order (_lock's)."""
        for row in rows:
            actor.check(action, row.precinct, row.unit_id)
        ids = sorted({u for u in (unit_id, *(r.unit_id for r in rows)) if u is not None})
        if ids:
            conn.execute(sa.select(units.c.id).where(units.c.id.in_(ids))
                         .order_by(units.c.id).with_for_update()).all()

    def assign_incident(self, actor: Actor, incident: int, unit_id: int) -> list[dict[str, Any]]:
        """Put every open job of an incident on one unit: each job its own assign event, all
        in one transaction (every job checked first: all are assigned, or none)."""
        with db.write(self.engine) as conn:
            rows = [r for r in self.incident_jobs(incident, conn) if r.unit_id != unit_id]
            self._together(conn, actor, "assign", rows, unit_id)
            done: list[dict[str, Any]] = []
            for row in rows:
                moving = row.status not in ("new", "held")
                done += self._change_in(conn, actor, "reassign" if moving else "assign",
                                        row.id, row.version,
                                        self._onto(unit_id, None, moving=moving),
                                        to_unit=unit_id)
        self._committed(done)
        return done

    def close_incident(self, actor: Actor, incident: int, disposition: str,
                       summons_count: int | None = None, note: str = "") -> list[dict[str, Any]]:
        """Close every job of an incident a unit is working, with one outcome: each 311
        request still gets its own close event and resolution text; all close, or none."""
        apply = self._closing(disposition, summons_count, note)
        with db.write(self.engine) as conn:
            working = [r for r in self.incident_jobs(incident, conn)
                       if Status(r.status) in WORKING]
            if not working:
                raise Invalid({"incident": "no job of this incident is being worked"})
            self._together(conn, actor, "close", working)
            done: list[dict[str, Any]] = []
            for row in working:
                done += self._change_in(conn, actor, "close", row.id, row.version, apply)
        self._committed(done)
        return done
