"""A job's lifecycle: the supervisor's moves and the officer's steps."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from board.domain import presence
from board.domain.access import Actor, Forbidden
from board.domain.dispositions import DispositionError, check_close
from board.domain.evidence import MAX_PHOTOS, EvidenceError, Photo, clean, summons_numbers
from board.domain.lifecycle import OPEN, WORKING, Status
from board.domain.policies import arrival_refusal, refusals, within_m
from board.domain.privacy import contact_of
from board.storage import db
from board.storage.schema import evidence_photos, jobs
from board.storage.schema import summons_numbers as summons_table
from board.usecases.core import (
    Apply,
    ChangeCore,
    Invalid,
    _text,
    active_policies,
)

log = logging.getLogger(__name__)

class JobCases(ChangeCore):
    # -- supervisor moves ---------------------------------------------------------------------

    def assign(self, actor: Actor, job_id: int, version: int, unit_id: int,
               position: int | None = None) -> dict[str, Any]:
        return self._change(actor, "assign", job_id, version, self._onto(unit_id, position),
                            to_unit=unit_id)

    def reassign(self, actor: Actor, job_id: int, version: int, unit_id: int,
                 position: int | None = None) -> dict[str, Any]:
        return self._change(actor, "reassign", job_id, version,
                            self._onto(unit_id, position, moving=True), to_unit=unit_id)

    def _onto(self, unit_id: int, position: int | None, moving: bool = False) -> Apply:
        """An assign's (or, moving, a reassign's) own part: the unit's stack makes room."""
        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            if moving and unit_id == job.unit_id:
                raise Invalid({"unit_id": "the job is already on that unit; reorder it instead"})
            unit = self._usable_unit(conn, unit_id, job.precinct)
            slot = self._slot(conn, unit.id, position, job.id)
            payload: dict[str, Any] = {"unit": unit.callsign, "position": slot}
            if moving:
                old = self._unit(conn, job.unit_id)
                payload = {"unit": unit.callsign, "from_unit": old.callsign,
                           "from_unit_id": old.id, "position": slot}
            return {"unit_id": unit.id, "stack_pos": slot}, payload
        return apply

    def unassign(self, actor: Actor, job_id: int, version: int, reason: str) -> dict[str, Any]:
        reason = _text(reason, "reason", required=True, limit=300)

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            old = self._unit(conn, job.unit_id)
            return ({"unit_id": None, "stack_pos": None},
                    {"reason": reason, "from_unit": old.callsign, "from_unit_id": old.id})
        return self._change(actor, "unassign", job_id, version, apply)

    def reorder(self, actor: Actor, job_id: int, version: int, position: int) -> dict[str, Any]:
        """Move a job within its unit's stack: the unit works its stack top down."""
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check("reorder", job.precinct, job.unit_id)
            job = self._lock(conn, job_id, (job.unit_id,))
            if job.version != version:
                raise self._conflict(job, version)
            if job.unit_id is None or Status(job.status) not in WORKING:
                raise Invalid({"job_id": "only a job on a unit's stack can be reordered"})
            slot = self._slot(conn, job.unit_id, position, job.id)
            conn.execute(jobs.update().where(jobs.c.id == job.id)
                         .values(stack_pos=slot, version=version + 1, updated_at=self.clock()))
            # before/after as for set_priority: a versioned change, so a Conflict can name it
            ev = self._event(conn, actor, "reorder", job=job, before=job.status,
                             after=job.status, payload={"position": slot})
        self._committed([ev])
        return ev

    def hold(self, actor: Actor, job_id: int, version: int, reason: str) -> dict[str, Any]:
        reason = _text(reason, "reason", required=True, limit=300)
        return self._change(actor, "hold", job_id, version, lambda c, j: ({}, {"reason": reason}))

    def release(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "release", job_id, version)

    def admin_close(self, actor: Actor, job_id: int, version: int, disposition: str,
                    note: str = "") -> dict[str, Any]:
        note = _text(note, "note")
        try:
            d = check_close(disposition, None, administrative=True)
        except DispositionError as e:
            raise Invalid({"disposition": str(e)}) from e

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            return ({"disposition": d.code, "resolution": d.resolution, "administrative": True,
                     "summons_count": None, "closed_at": self.clock()},
                    {"disposition": d.code, "resolution": d.resolution, "note": note,
                     "administrative": True, "arrival_expected": False})
        return self._change(actor, "admin_close", job_id, version, apply)

    def reopen(self, actor: Actor, job_id: int, version: int, reason: str) -> dict[str, Any]:
        reason = _text(reason, "reason", required=True, limit=300)

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            if job.history:  # never the board's job: reopening it would dispatch the past
                raise Invalid({"job_id": "the city closed this request before the board had "
                                         "it (history); file a new job instead"})
            return ({"unit_id": None, "stack_pos": None, "disposition": None,
                     "resolution": None, "summons_count": None, "administrative": False,
                     "closed_at": None},
                    {"reason": reason, "previous_disposition": job.disposition})
        return self._change(actor, "reopen", job_id, version, apply)

    def set_priority(self, actor: Actor, job_id: int, version: int,
                     priority: int) -> dict[str, Any]:
        if priority not in (1, 2, 3, 4):
            raise Invalid({"priority": "must be 1 (urgent) to 4 (low)"})
        return self._change(actor, "set_priority", job_id, version, lambda c, j: (
            {"priority": priority}, {"from": j.priority, "to": priority}))

    def route(self, actor: Actor, job_id: int, version: int, precinct: str,
              sector: str | None = None) -> dict[str, Any]:
        """Route an unrouted job by hand (citywide supervisors work that queue)."""
        self._check_place(precinct, sector)
        if not actor.sees(precinct):
            raise Forbidden("you cannot route a job into a precinct outside your scope")

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            changes = {"precinct": precinct, "sector": sector or None, "route_method": "manual"}
            payload: dict[str, Any] = {"from": job.precinct, "precinct": precinct,
                                       "sector": sector}
            if precinct != job.precinct:
                if job.unit_id is not None:
                    # it would sit on a unit of one precinct while on another's board: on neither
                    raise Invalid({"precinct": "a unit is working this job; return it to the "
                                               "queue before routing it to another precinct"})
                unlinked = self._leave_incident(conn, actor, job)
                if unlinked:
                    changes["incident_id"] = None
                    payload["_written"] = unlinked
            return changes, payload
        return self._change(actor, "route", job_id, version, apply)

    def _leave_incident(self, conn: sa.Connection, actor: Actor, job: Any) -> list[dict]:
        """A job leaving its precinct leaves its incident (an incident is one precinct's):
        an `unlink` event on the board it leaves. A job that leads open jobs of an incident
        stays until they are unlinked or closed."""
        leads = conn.execute(sa.select(jobs.c.id).where(
            jobs.c.incident_id == job.id, jobs.c.status.in_([st.value for st in OPEN]))
            .limit(1)).first()
        if leads:
            raise Invalid({"precinct": f"job {job.id} leads an incident of its precinct: unlink "
                                       "its jobs before routing it elsewhere"})
        if job.incident_id is None:
            return []
        return [self._event(conn, actor, "unlink", job=job, unit_id=job.unit_id,
                            payload={"incident": job.incident_id})]

    # -- the officer's steps ------------------------------------------------------------------

    def acknowledge(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "acknowledge", job_id, version)

    def en_route(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "en_route", job_id, version)

    def on_scene(self, actor: Actor, job_id: int, version: int,
                 position: presence.Fix | None = None) -> dict[str, Any]:
        """Arrived. With a position from the phone, the event records how far from the job
        it was (board.domain.presence); a "position within N m" policy may refuse it."""
        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            active = active_policies(conn, job.precinct)
            where = self._where(actor, position, job, active)
            why = arrival_refusal(active, where)
            if why:
                raise Invalid({"position": why})
            return {}, where
        return self._change(actor, "on_scene", job_id, version, apply)

    def _where(self, actor: Actor | None, position: presence.Fix | None, job: Any,
               active: list) -> dict[str, Any]:
        """What the event records of the phone's position. Simulated officers (the replay)
        have no phone to ask: their steps record nothing unless they send a position."""
        simulated = actor is not None and actor.source == "replay"
        asked = self.arrival_position == presence.ASK and not simulated
        return presence.record(position, job.lat, job.lon, within_m(active), asked=asked)

    def close(self, actor: Actor, job_id: int, version: int, disposition: str,
              summons_count: int | None = None, note: str = "", *,
              position: presence.Fix | None = None,
              summons: str | Sequence[str] = (), photos: Sequence[bytes] = ()) -> dict[str, Any]:
        """Close with a disposition; optionally the phone's position, the summons numbers and
        the officer's photos (checked by their bytes, location metadata taken out)."""
        return self._change(actor, "close", job_id, version,
                            self._closing(disposition, summons_count, note, actor=actor,
                                          position=position, summons=summons, photos=photos))

    def _closing(self, disposition: str, summons_count: int | None, note: str, *,
                 actor: Actor | None = None, position: presence.Fix | None = None,
                 summons: str | Sequence[str] = (), photos: Sequence[bytes] = ()) -> Apply:
        """A close's own part, its input checked before any job is touched (photos cleaned,
        summons numbers in the department's format)."""
        note = _text(note, "note")
        try:
            numbers = summons_numbers(summons, self.summons_pattern)
        except EvidenceError as e:
            raise Invalid({"summons_numbers": str(e)}) from e
        if numbers and summons_count is None:
            summons_count = len(numbers)
        try:
            d = check_close(disposition, summons_count, administrative=False)
        except DispositionError as e:
            field_name = "summons_count" if "summons" in str(e) else "disposition"
            raise Invalid({field_name: str(e)}) from e
        if numbers and not d.summons:
            raise Invalid({"summons_numbers": f"{d.label!r} records no summonses"})
        if summons_count is not None and len(numbers) > summons_count:
            raise Invalid({"summons_numbers": f"{len(numbers)} numbers for {summons_count} "
                                              "summonses"})
        kept = self._photos(photos)

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            active = active_policies(conn, job.precinct)
            where = self._where(actor, position, job, active)
            refused = refusals(active, self._progress(conn, job.id), self.clock(),
                               arrival_expected=d.arrival_expected,
                               has_photos=bool(job.media), note=note, position=where,
                               disposition=d.code, evidence=len(kept))
            if refused:
                raise Invalid({"policy": "; ".join(refused)})
            self._claim_summonses(conn, job.id, numbers)
            attached = self._attach(conn, actor, job.id, kept)
            return ({"disposition": d.code, "resolution": d.resolution,
                     "summons_count": summons_count if d.summons else None,
                     "administrative": False, "closed_at": self.clock()},
                    {"disposition": d.code, "resolution": d.resolution, "note": note,
                     "summons_count": summons_count if d.summons else None,
                     "arrival_expected": d.arrival_expected, **where,
                     **({"summons_numbers": numbers} if d.summons else {}),
                     **({"evidence": attached} if attached else {})})
        return apply

    @staticmethod
    def _photos(photos: Sequence[bytes]) -> list[Photo]:
        if len(photos) > MAX_PHOTOS:
            raise Invalid({"photos": f"at most {MAX_PHOTOS} photos on one close"})
        try:
            return [clean(data) for data in photos]
        except EvidenceError as e:
            raise Invalid({"photos": str(e)}) from e

    def _claim_summonses(self, conn: sa.Connection, job_id: int, numbers: list[str]) -> None:
        """Each number belongs to one job: the primary key decides, in this transaction (on
        PostgreSQL a concurrent claim waits for ours, then finds it)."""
        for number in numbers:
            if db.insert_new(conn, summons_table,
                             {"number": number, "job_id": job_id, "at": self.clock()}):
                continue
            owner = conn.execute(sa.select(summons_table.c.job_id).where(
                summons_table.c.number == number)).scalar()
            if owner != job_id:
                raise Invalid({"summons_numbers": f"summons {number} is already recorded on "
                                                  f"job #{owner}"})

    def _attach(self, conn: sa.Connection, actor: Actor | None, job_id: int,
                photos: list[Photo]) -> list[int]:
        """Keep the officer's photos with the job; their numbers on the job (0, 1, …)."""
        if not photos:
            return []
        first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(evidence_photos.c.n), -1))
                             .where(evidence_photos.c.job_id == job_id)).scalar() + 1
        rows = [{"id": secrets.token_urlsafe(32), "job_id": job_id, "n": first + k,
                 "content_type": p.content_type, "size": len(p.data), "data": p.data,
                 "at": self.clock(), "actor_id": actor.id if actor else None}
                for k, p in enumerate(photos)]
        conn.execute(evidence_photos.insert(), rows)
        return [r["n"] for r in rows]

    def view_evidence(self, actor: Actor, job_id: int, n: int) -> tuple[dict[str, Any], Photo]:
        """Open an officer's photo of a close: recorded like a caller's photo (the event says
        which photo, never anything that reaches it), by those who may open those."""
        with db.read(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check("view_evidence", job.precinct, job.unit_id)
            row = conn.execute(sa.select(evidence_photos.c.content_type,
                                         evidence_photos.c.data).where(
                evidence_photos.c.job_id == job_id, evidence_photos.c.n == n)).first()
        if row is None:
            raise Invalid({"n": "no such photo on this job"})
        with db.write(self.engine) as conn:  # any status: a record, not a lifecycle step
            ev = self._event(conn, actor, "view_evidence", job=job, payload={"n": n})
        self._committed([ev])
        return ev, Photo(row.content_type, bytes(row.data))


    def note(self, actor: Actor, job_id: int, text: str) -> dict[str, Any]:
        """A note changes no state, so it needs no version and never conflicts."""
        text = _text(text, "text", required=True)
        return self._record(actor, "note", job_id, {"text": text})

    def view_photo(self, actor: Actor, job_id: int, index: int) -> tuple[dict[str, Any], str]:
        """Open a caller's photo: the event and the photo's address. The event says which
        photo was seen, never where it is, so reading a timeline shows no photo."""
        with db.read(self.engine) as conn:
            job = self._job(conn, job_id)
        # Scope first: how many photos a job has is not for eyes outside its precinct.
        actor.check("view_photo", job.precinct, job.unit_id)
        media = job.media or []
        if not 0 <= index < len(media):
            raise Invalid({"index": "no such photo on this job"})
        return self._record(actor, "view_photo", job_id, {"index": index}), media[index]

    def view_contact(self, actor: Actor, job_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reveal the caller's contact details to a supervisor or the job's own officer: the
        event records who saw which details (never the details themselves)."""
        with db.read(self.engine) as conn:
            job = self._job(conn, job_id)
        actor.check("view_contact", job.precinct, job.unit_id)
        contact = contact_of(job.fields)
        if not contact:
            raise Invalid({"contact": "the caller left no contact details"})
        return self._record(actor, "view_contact", job_id, {"fields": sorted(contact)}), contact

