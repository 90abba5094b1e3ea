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

    def incident_jobs(self, incident: int) -> list[Any]:
        """The open jobs of an incident, first job first."""
        with db.read(self.engine) as conn:
            return conn.execute(sa.select(jobs).where(
                sa.or_(jobs.c.id == incident, jobs.c.incident_id == incident),
                jobs.c.status.in_([st.value for st in OPEN])).order_by(jobs.c.id)).all()

    def assign_incident(self, actor: Actor, incident: int, unit_id: int) -> list[dict[str, Any]]:
        """Put every open job of an incident on one unit: each job its own assign event."""
        done = []
        for row in self.incident_jobs(incident):
            if row.unit_id == unit_id:
                continue
            step = self.assign if row.status in ("new", "held") else self.reassign
            done.append(step(actor, row.id, row.version, unit_id))
        return done

    def close_incident(self, actor: Actor, incident: int, disposition: str,
                       summons_count: int | None = None, note: str = "") -> list[dict[str, Any]]:
        """Close every job of an incident a unit is working, with one outcome: each 311
        request still gets its own close event and resolution text."""
        working = [r for r in self.incident_jobs(incident) if Status(r.status) in WORKING]
        if not working:
            raise Invalid({"incident": "no job of this incident is being worked"})
        return [self.close(actor, r.id, r.version, disposition, summons_count, note)
                for r in working]

