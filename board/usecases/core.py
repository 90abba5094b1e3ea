"""The one write path. Every change to a job or a unit is a use case here.

Each use case checks the actor's role and scope, validates the transition against the
lifecycle, and writes the new state plus one append-only event in the same transaction. A job
write names the version it was made against; a stale one is refused as a Conflict. Listeners
hear about events only after their transaction has committed.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from board import bulk, db, factstore
from board.access import Actor, Forbidden, Role
from board.dispositions import BY_RESOLUTION, DispositionError, check_close
from board.flags import Fact, flags, progress
from board.geo import NO_POSITION, GeoIndex, Route
from board.lifecycle import OPEN, WORKING, Status, TransitionError, transition
from board.policies import CITYWIDE, Policy, PolicyError, in_effect, refusals
from board.policies import check as check_policy
from board.priorities import (
    DEFAULT_RULES,
    STAGES,
    Deadlines,
    Rule,
    deadlines,
    late_stages,
    rule_for,
)
from board.privacy import contact_of
from board.schema import (
    command_log,
    events,
    jobs,
    overdue_marks,
    policies,
    priority_rules,
    review_queue,
    units,
)

__all__ = ["Conflict", "Dispatch", "Forbidden", "Invalid", "NewJob", "NotFound", "TransitionError",
           "UnitConflict"]

log = logging.getLogger(__name__)

UNIT_STATUSES = ("available", "out_of_service", "off_duty")
POLICY_READERS = (Role.SUPERVISOR, Role.COMMANDER, Role.ADMIN)
FINDINGS = {"no_issue": "No issue", "spoken_to": "Officer spoken to", "reopened": "Reopened"}
MAX_TEXT = 2000
MAX_MINUTES = 525_600  # a year: a deadline further out is a typo


class NotFound(Exception):
    pass


class _AlreadyMarked(Exception):
    """Rolls back an overdue event whose (job, stage) another worker has just written."""


class Invalid(Exception):
    """Bad input, with a message per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Conflict(Exception):
    """A write made against a version that is no longer current."""

    job_id: int
    expected: int
    current: int
    by: str
    kind: str
    at: datetime | None

    def __str__(self) -> str:
        what = self.kind.replace("_", " ")
        return (f"job {self.job_id} was changed by {self.by} ({what}) since you loaded it "
                f"(version {self.expected}, now {self.current})")


@dataclass
class UnitConflict(Exception):
    """A unit status change made against a unit version that is no longer current."""

    unit_id: int
    callsign: str
    expected: int
    current: int
    by: str
    kind: str
    at: datetime | None

    def __str__(self) -> str:
        return (f"unit {self.callsign} was changed by {self.by} since you loaded it "
                f"(version {self.expected}, now {self.current})")


@dataclass(frozen=True)
class NewJob:
    complaint_type: str
    descriptor: str = ""
    location_type: str = ""
    address: str = ""
    borough: str = ""
    lat: float | None = None
    lon: float | None = None
    external_key: str | None = None
    created_at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    media: tuple[str, ...] = ()
    external_status: str | None = None
    description: str = ""
    #: Set for a request the city had already closed: the job is history (see create_jobs).
    closed_at: datetime | None = None
    resolution: str = ""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, name: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    text = value or ""
    if not text.isprintable():  # the common case skips the per-character filter
        text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    text = text.strip()
    if required and not text:
        raise Invalid({name: "is required"})
    if len(text) > limit:
        raise Invalid({name: f"is longer than {limit} characters"})
    return text


def _fields_311(new: NewJob) -> dict[str, Any]:
    """A job's 311 side, cleaned the same way when it is created and when 311 updates it."""
    fields = new.fields
    if new.description:
        fields = {**fields, "description": _text(new.description, "description")}
    return {
        "complaint_type": _text(new.complaint_type, "complaint_type", required=True, limit=120),
        "descriptor": _text(new.descriptor, "descriptor", limit=200),
        "location_type": _text(new.location_type, "location_type", limit=200),
        "address": _text(new.address, "address", limit=300),
        "borough": _text(new.borough, "borough", limit=40),
        "fields": fields, "media": list(new.media), "external_status": new.external_status,
    }


def _policy_rows(conn: sa.Connection) -> list[Policy]:
    rows = conn.execute(sa.select(policies).order_by(policies.c.scope, policies.c.kind)).all()
    return [Policy(r.kind, r.enabled, r.minutes, r.scope) for r in rows]


def active_policies(conn: sa.Connection, precinct: str | None) -> list[Policy]:
    """The close policies in effect for a precinct (a handful of rows: read whole)."""
    return in_effect(_policy_rows(conn), precinct)


class Dispatch:
    """The use cases, bound to one database and one map."""

    def __init__(self, engine: sa.Engine, geo: GeoIndex | None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self.geo = geo
        self.clock = clock
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []

    # -- plumbing -----------------------------------------------------------------------------

    def _committed(self, evs: list[dict[str, Any]]) -> None:
        """Tell listeners; the write is committed, so a failing listener must not undo the
        caller's success (live boards repair themselves from the events table)."""
        for listener in self.listeners:
            try:
                listener(evs)
            except Exception:
                log.exception("event listener failed after commit of seq %s",
                              [e["seq"] for e in evs])

    def _event(self, conn: sa.Connection, actor: Actor, kind: str, *, job: Any = None,
               unit_id: int | None = None, precinct: str | None = None,
               before: str | None = None, after: str | None = None,
               payload: dict[str, Any] | None = None) -> dict[str, Any]:
        row = self._event_row(actor, kind, job=job, unit_id=unit_id, precinct=precinct,
                              before=before, after=after, payload=payload)
        return self._insert_events(conn, [row])[0]

    def _event_row(self, actor: Actor, kind: str, *, job: Any = None, job_id: int | None = None,
                   unit_id: int | None = None, precinct: str | None = None,
                   before: str | None = None, after: str | None = None,
                   payload: dict[str, Any] | None = None,
                   at: datetime | None = None) -> dict[str, Any]:
        """An event as it will be written (no seq yet); at the clock's time unless given."""
        return {
            "job_id": job.id if job is not None else job_id,
            "unit_id": unit_id if unit_id is not None else (job.unit_id if job else None),
            "precinct": precinct if precinct is not None else (job.precinct if job else None),
            "actor_id": actor.id, "actor": actor.name, "source": actor.source,
            "at": at or self.clock(), "kind": kind, "before": before, "after": after,
            "payload": payload or {},
            "address": (actor.address or None) and actor.address[:64],
            "user_agent": (actor.user_agent or None) and actor.user_agent[:300],
        }

    def _insert_events(self, conn: sa.Connection, rows: list[dict[str, Any]],
                       new_jobs: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Append events (one statement for a batch); each row gets its seq, in order.
        `new_jobs`: the rows of the jobs these events create, as written (for job_facts)."""
        bulk.insert_many(conn, events, rows)
        factstore.record_all(conn, rows, new_jobs)  # QSTAT's rows commit with their events
        return rows

    def _job(self, conn: sa.Connection, job_id: int, *, lock: bool = False) -> Any:
        query = sa.select(jobs).where(jobs.c.id == job_id)
        job = conn.execute(query.with_for_update() if lock else query).first()
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def _lock(self, conn: sa.Connection, job_id: int, unit_ids: Sequence[int | None]) -> Any:
        """Lock the units whose stacks this write may renumber, then the job; return the job.

        Always units first (by id), then the job: concurrent writers to the same job or the same
        stack queue up in one order, so a stale write sees the new version and is a Conflict,
        two jobs dropped on one unit at once get distinct stack positions, and crossing moves
        cannot deadlock. (SQLite write transactions are serial already: FOR UPDATE is a no-op.)
        """
        ids = sorted({u for u in unit_ids if u is not None})
        if ids:
            conn.execute(sa.select(units.c.id).where(units.c.id.in_(ids))
                         .order_by(units.c.id).with_for_update()).all()
        return self._job(conn, job_id, lock=True)

    def _unit(self, conn: sa.Connection, unit_id: int) -> Any:
        unit = conn.execute(sa.select(units).where(units.c.id == unit_id)).first()
        if unit is None:
            raise NotFound(f"no unit {unit_id}")
        return unit

    def _conflict(self, job: Any, expected: int) -> Conflict:
        with db.read(self.engine) as conn:
            last = conn.execute(
                sa.select(events.c.actor, events.c.kind, events.c.at, jobs.c.version)
                .join(jobs, jobs.c.id == events.c.job_id)
                .where(events.c.job_id == job.id, events.c.after.is_not(None))
                .order_by(events.c.seq.desc()).limit(1)
            ).first()
        if last is None:
            return Conflict(job.id, expected, job.version, "someone", "change", None)
        return Conflict(job.id, expected, last.version, last.actor, last.kind, last.at)

    def _change(self, actor: Actor, action: str, job_id: int, version: int,
                apply: Callable[[sa.Connection, Any], tuple[dict[str, Any], dict[str, Any]]]
                | None = None, to_unit: int | None = None) -> dict[str, Any]:
        """Run one lifecycle action on a job: check, transition, write state and event."""
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            try:
                actor.check(action, job.precinct, job.unit_id)
            except Forbidden:
                # Acting on a stale screen (an officer tapping a job just reassigned away):
                # say who changed it, as long as the job is one the actor may read.
                if actor.sees(job.precinct) and job.version != version:
                    raise self._conflict(job, version) from None
                raise
            job = self._lock(conn, job_id, (job.unit_id, to_unit))
            if job.version != version:
                raise self._conflict(job, version)
            after = transition(action, job.status)
            changes, payload = apply(conn, job) if apply else ({}, {})
            changes = {"status": after.value, **changes}
            done = conn.execute(
                jobs.update().where(jobs.c.id == job.id, jobs.c.version == version)
                .values(**changes, version=version + 1, updated_at=self.clock())
            )
            if done.rowcount != 1:
                raise self._conflict(job, version)
            unit_id = changes.get("unit_id", job.unit_id)
            ev = self._event(conn, actor, action, job=job, unit_id=unit_id,
                             before=job.status, after=after.value, payload=payload)
            self._review_queue(conn, job, ev)
            if job.unit_id is not None:
                self._restack(conn, job.unit_id)
            if unit_id is not None and unit_id != job.unit_id:
                self._restack(conn, unit_id)
        self._committed([ev])
        return ev

    def _review_queue(self, conn: sa.Connection, job: Any, ev: dict[str, Any]) -> None:
        """A close with flags puts the job in its precinct's review queue; a reopen takes it
        out (its next close comes back flagged "reopened")."""
        if ev["kind"] == "reopen":
            conn.execute(review_queue.delete().where(review_queue.c.job_id == job.id))
            return
        if ev["kind"] not in ("close", "admin_close"):
            return
        found = flags(self._facts(conn, job.id), bool(job.media))
        conn.execute(review_queue.delete().where(review_queue.c.job_id == job.id))
        if found:
            conn.execute(review_queue.insert().values(
                job_id=job.id, precinct=job.precinct, close_seq=ev["seq"], closed_at=ev["at"],
                flags=sorted(found), review_seq=None))

    def _facts(self, conn: sa.Connection, job_id: int) -> list[Fact]:
        rows = conn.execute(sa.select(events.c.kind, events.c.at, events.c.payload)
                            .where(events.c.job_id == job_id).order_by(events.c.seq)).all()
        return [Fact(r.kind, r.at, r.payload or {}) for r in rows]

    def _restack(self, conn: sa.Connection, unit_id: int) -> None:
        """Number a unit's working jobs 0..n-1, keeping their order."""
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.stack_pos).where(
                jobs.c.unit_id == unit_id, jobs.c.status.in_([s.value for s in WORKING]))
            .order_by(jobs.c.stack_pos, jobs.c.id)
        ).all()
        for pos, row in enumerate(rows):
            if row.stack_pos != pos:
                conn.execute(jobs.update().where(jobs.c.id == row.id).values(stack_pos=pos))

    def _slot(self, conn: sa.Connection, unit_id: int, position: int | None, job_id: int) -> int:
        """Make room at `position` in a unit's stack (the end when None); returns the slot."""
        stack = conn.execute(
            sa.select(jobs.c.id).where(
                jobs.c.unit_id == unit_id, jobs.c.id != job_id,
                jobs.c.status.in_([s.value for s in WORKING]))
            .order_by(jobs.c.stack_pos, jobs.c.id)
        ).scalars().all()
        slot = len(stack) if position is None else max(0, min(position, len(stack)))
        for pos, other in enumerate(stack):
            want = pos if pos < slot else pos + 1
            conn.execute(jobs.update().where(jobs.c.id == other).values(stack_pos=want))
        return slot

    def _check_place(self, precinct: str, sector: str | None) -> None:
        """A precinct (and sector of it) that the map knows."""
        if self.geo is not None and precinct not in self.geo.precincts():
            raise Invalid({"precinct": f"no precinct {precinct!r}"})
        if sector and self.geo is not None and sector not in self.geo.sectors_of(precinct):
            raise Invalid({"sector": f"{sector!r} is not a sector of the {precinct}"})

    def _usable_unit(self, conn: sa.Connection, unit_id: int, precinct: str | None) -> Any:
        unit = self._unit(conn, unit_id)
        if unit.precinct != precinct:
            raise Invalid({"unit_id": f"{unit.callsign} is not a unit of this job's precinct"})
        if unit.status != "available":
            reason = f" ({unit.status_reason})" if unit.status_reason else ""
            label = unit.status.replace("_", " ")
            raise Invalid({"unit_id": f"{unit.callsign} is {label}{reason}"})
        return unit

    # -- supervisor moves ---------------------------------------------------------------------

    def assign(self, actor: Actor, job_id: int, version: int, unit_id: int,
               position: int | None = None) -> dict[str, Any]:
        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            unit = self._usable_unit(conn, unit_id, job.precinct)
            slot = self._slot(conn, unit.id, position, job.id)
            return ({"unit_id": unit.id, "stack_pos": slot},
                    {"unit": unit.callsign, "position": slot})
        return self._change(actor, "assign", job_id, version, apply, to_unit=unit_id)

    def reassign(self, actor: Actor, job_id: int, version: int, unit_id: int,
                 position: int | None = None) -> dict[str, Any]:
        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            if unit_id == job.unit_id:
                raise Invalid({"unit_id": "the job is already on that unit; reorder it instead"})
            unit = self._usable_unit(conn, unit_id, job.precinct)
            old = self._unit(conn, job.unit_id)
            slot = self._slot(conn, unit.id, position, job.id)
            return ({"unit_id": unit.id, "stack_pos": slot},
                    {"unit": unit.callsign, "from_unit": old.callsign, "from_unit_id": old.id,
                     "position": slot})
        return self._change(actor, "reassign", job_id, version, apply, to_unit=unit_id)

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
            if job.unit_id is not None and precinct != job.precinct:
                # it would sit on a unit of one precinct while on another's board: on neither
                raise Invalid({"precinct": "a unit is working this job; return it to the queue "
                                           "before routing it to another precinct"})
            return ({"precinct": precinct, "sector": sector or None, "route_method": "manual"},
                    {"from": job.precinct, "precinct": precinct, "sector": sector})
        return self._change(actor, "route", job_id, version, apply)

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

    # -- the officer's steps ------------------------------------------------------------------

    def acknowledge(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "acknowledge", job_id, version)

    def en_route(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "en_route", job_id, version)

    def on_scene(self, actor: Actor, job_id: int, version: int) -> dict[str, Any]:
        return self._change(actor, "on_scene", job_id, version)

    def close(self, actor: Actor, job_id: int, version: int, disposition: str,
              summons_count: int | None = None, note: str = "") -> dict[str, Any]:
        note = _text(note, "note")
        try:
            d = check_close(disposition, summons_count, administrative=False)
        except DispositionError as e:
            field_name = "summons_count" if "summons" in str(e) else "disposition"
            raise Invalid({field_name: str(e)}) from e

        def apply(conn: sa.Connection, job: Any) -> tuple[dict, dict]:
            refused = refusals(active_policies(conn, job.precinct),
                               progress(self._facts(conn, job.id)), self.clock(),
                               arrival_expected=d.arrival_expected,
                               has_photos=bool(job.media), note=note)
            if refused:
                raise Invalid({"policy": "; ".join(refused)})
            return ({"disposition": d.code, "resolution": d.resolution,
                     "summons_count": summons_count if d.summons else None,
                     "administrative": False, "closed_at": self.clock()},
                    {"disposition": d.code, "resolution": d.resolution, "note": note,
                     "summons_count": summons_count if d.summons else None,
                     "arrival_expected": d.arrival_expected})
        return self._change(actor, "close", job_id, version, apply)

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

    def _record(self, actor: Actor, kind: str, job_id: int,
                payload: dict[str, Any]) -> dict[str, Any]:
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check(kind, job.precinct, job.unit_id)
            transition(kind, job.status)
            ev = self._event(conn, actor, kind, job=job, payload=payload)
        self._committed([ev])
        return ev

    # -- accountability: review findings, close policies, the command log --------------------

    def review(self, actor: Actor, job_id: int, version: int, finding: str,
               comment: str) -> dict[str, Any]:
        """A supervisor's finding on a flagged close; "reopened" also reopens the job."""
        if finding not in FINDINGS:
            raise Invalid({"finding": f"must be one of {', '.join(FINDINGS)}"})
        comment = _text(comment, "comment", required=True)
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check("review", job.precinct)
            job = self._lock(conn, job_id, ())
            if job.version != version:
                raise self._conflict(job, version)
            pending = conn.execute(sa.select(review_queue.c.close_seq).where(
                review_queue.c.job_id == job.id, review_queue.c.review_seq.is_(None))).first()
            if job.status != Status.CLOSED.value or pending is None:
                raise Invalid({"finding": "this job is not waiting for review"})
            evs = [self._event(conn, actor, "review", job=job,
                               payload={"finding": finding, "comment": comment})]
            conn.execute(review_queue.update().where(review_queue.c.job_id == job.id)
                         .values(review_seq=evs[0]["seq"]))
            if finding == "reopened":
                after = transition("reopen", job.status)
                conn.execute(jobs.update().where(jobs.c.id == job.id).values(
                    status=after.value, unit_id=None, stack_pos=None, disposition=None,
                    resolution=None, summons_count=None, administrative=False,
                    closed_at=None, version=version + 1, updated_at=self.clock()))
                evs.append(self._event(conn, actor, "reopen", job=job, before=job.status,
                                       after=after.value,
                                       payload={"reason": f"review: {comment}",
                                                "previous_disposition": job.disposition,
                                                "review_seq": evs[0]["seq"]}))
                self._review_queue(conn, job, evs[-1])
        self._committed(evs)
        return evs[0]

    def policies(self, actor: Actor) -> list[Policy]:
        """The policy settings (enabled or not) an actor reads: the citywide ones and those of
        their own precincts. Supervisors, commanders and admins; officers see the ones in
        effect on their close form."""
        if actor.role not in POLICY_READERS:
            raise Forbidden("close policies are for supervisors, commanders and admins")
        with db.read(self.engine) as conn:
            return [p for p in _policy_rows(conn) if p.scope == CITYWIDE or actor.sees(p.scope)]

    def set_policy(self, actor: Actor, scope: str, kind: str, enabled: bool,
                   minutes: int | None = None) -> dict[str, Any]:
        """An admin turns a close policy on or off, citywide ("*") or for one precinct."""
        if actor.role is not Role.ADMIN:
            raise Forbidden("only an admin changes close policies")
        scope = str(scope).strip() or CITYWIDE
        if not (actor.citywide if scope == CITYWIDE else actor.sees(scope)):
            raise Forbidden("this is outside your precincts")
        if scope != CITYWIDE:
            self._check_place(scope, None)
        try:
            p = check_policy(kind, enabled, minutes, scope)
        except PolicyError as e:
            raise Invalid({"policy": str(e)}) from e
        values = {"enabled": p.enabled, "minutes": p.minutes, "updated_at": self.clock(),
                  "updated_by": actor.name}
        with db.write(self.engine) as conn:
            key = (policies.c.scope == p.scope) & (policies.c.kind == p.kind)
            if conn.execute(policies.update().where(key).values(**values)).rowcount == 0:
                conn.execute(policies.insert().values(scope=p.scope, kind=p.kind, **values))
            ev = self._event(conn, actor, "set_policy",
                             precinct=None if p.scope == CITYWIDE else p.scope,
                             payload={"scope": p.scope, "kind": p.kind, "enabled": p.enabled,
                                      "minutes": p.minutes})
        self._committed([ev])
        return ev

    def log_entry(self, actor: Actor, precinct: str, text: str,
                  corrects: int | None = None) -> dict[str, Any]:
        """A line in the precinct's command log; a correction names the entry it corrects.

        The entry lives in its own append-only table; the `log_entry` event written beside it
        (no job, the precinct, the entry's id) is only the outbox that tells live boards.
        """
        text = _text(text, "text", required=True, limit=4000)
        actor.check("log_entry", precinct)
        self._check_place(precinct, None)  # a citywide supervisor cannot start a bogus log
        with db.write(self.engine) as conn:
            if corrects is not None:
                old = conn.execute(sa.select(command_log.c.precinct).where(
                    command_log.c.id == corrects)).first()
                if old is None or old.precinct != precinct:
                    raise Invalid({"corrects": f"no entry {corrects} in this precinct's log"})
            now = self.clock()
            entry_id = conn.execute(command_log.insert().values(
                precinct=precinct, at=now, actor_id=actor.id, actor=actor.name, text=text,
                corrects_id=corrects)).inserted_primary_key[0]
            ev = self._event(conn, actor, "log_entry", precinct=precinct,
                             payload={"entry": entry_id, "corrects": corrects})
        self._committed([ev])
        return {**ev, "entry_id": entry_id}

    # -- deadlines -----------------------------------------------------------------------------

    def mark_overdue(self, actor: Actor, job_id: int, stage: str) -> dict[str, Any] | None:
        """Record that a job missed a stage deadline: one `overdue` event per job and stage.

        The (job, stage) primary key of overdue_marks, written in the event's transaction,
        decides: a second worker, or the same one after a restart, writes nothing. Returns the
        event, or None when the job is not (or no longer) late for that stage or already marked.
        """
        if stage not in STAGES:
            raise Invalid({"stage": f"must be one of {', '.join(STAGES)}"})
        if actor.id is not None:
            raise Forbidden("overdue is recorded by the deadline worker, not by a person")
        try:
            with db.write(self.engine) as conn:
                job = self._job(conn, job_id, lock=True)
                due = Deadlines(job.ack_due, job.arrive_due, job.close_due)
                if job.history or stage not in late_stages(job.status, due, self.clock()):
                    return None
                mark = (overdue_marks.c.job_id == job.id) & (overdue_marks.c.stage == stage)
                if conn.execute(sa.select(overdue_marks.c.seq).where(mark)).first():
                    return None
                ev = self._event(conn, actor, "overdue", job=job, payload={"stage": stage})
                if not db.insert_new(conn, overdue_marks,
                                     {"job_id": job.id, "stage": stage, "seq": ev["seq"]}):
                    raise _AlreadyMarked  # another worker got there first: roll back our event
        except _AlreadyMarked:
            return None
        self._committed([ev])
        return ev

    # -- units --------------------------------------------------------------------------------

    def unit_status(self, actor: Actor, unit_id: int, version: int, status: str,
                    reason: str = "") -> dict[str, Any]:
        if status not in UNIT_STATUSES:
            raise Invalid({"status": f"must be one of {', '.join(UNIT_STATUSES)}"})
        reason = _text(reason, "reason", limit=200)
        if status == "out_of_service" and not reason:
            raise Invalid({"reason": "say why the unit is out of service"})
        with db.write(self.engine) as conn:
            unit = self._unit(conn, unit_id)
            actor.check("unit_status", unit.precinct, unit.id)
            if actor.role is Role.OFFICER and status == "off_duty":
                raise Forbidden("the desk signs a unit off duty")
            # Lock the row, then compare: parallel writers queue up and all but one see the
            # new version (as job writes do in _lock); on SQLite the write lock is taken already.
            unit = conn.execute(sa.select(units).where(units.c.id == unit_id)
                                .with_for_update()).first()
            if unit.version != version:
                raise self._unit_conflict(conn, unit, version)
            if status == unit.status:
                raise Invalid({"status": f"{unit.callsign} is already {status.replace('_', ' ')}"})
            done = conn.execute(units.update().where(
                units.c.id == unit.id, units.c.version == version).values(
                status=status, status_reason=reason or None, version=version + 1,
                updated_at=self.clock()))
            if done.rowcount != 1:
                raise self._unit_conflict(conn, unit, version)
            ev = self._event(conn, actor, "unit_status", unit_id=unit.id, precinct=unit.precinct,
                             before=None, after=None,
                             payload={"unit": unit.callsign, "from": unit.status, "to": status,
                                      "reason": reason})
        self._committed([ev])
        return ev

    def _unit_conflict(self, conn: sa.Connection, unit: Any, expected: int) -> UnitConflict:
        """Name who changed the unit last: its version moves only with unit_status events."""
        last = conn.execute(
            sa.select(events.c.actor, events.c.kind, events.c.at)
            .where(events.c.unit_id == unit.id, events.c.kind == "unit_status")
            .order_by(events.c.seq.desc()).limit(1)).first()
        by, kind, at = (last.actor, last.kind, last.at) if last else ("someone", "change", None)
        return UnitConflict(unit.id, unit.callsign, expected, unit.version, by, kind, at)

    def add_unit(self, actor: Actor, callsign: str, precinct: str,
                 sector: str | None = None) -> dict[str, Any]:
        """Put a patrol unit on a precinct's board."""
        callsign = _text(callsign, "callsign", required=True, limit=40)
        precinct = str(precinct).strip()
        self._check_place(precinct, sector)
        if not (actor.may("add_unit") and actor.sees(precinct)):
            raise Forbidden("you cannot add units to this precinct")
        with db.write(self.engine) as conn:
            if conn.execute(sa.select(units.c.id).where(units.c.callsign == callsign)).first():
                raise Invalid({"callsign": f"unit {callsign} exists already"})
            unit_id = conn.execute(units.insert().values(
                callsign=callsign, precinct=precinct, sector=sector or None,
                status="available", version=1, updated_at=self.clock(),
            )).inserted_primary_key[0]
            ev = self._event(conn, actor, "unit_added", unit_id=unit_id, precinct=precinct,
                             payload={"unit": callsign, "sector": sector})
        self._committed([ev])
        return ev

    def unit_position(self, actor: Actor, lat: float, lon: float) -> dict[str, Any]:
        """An officer's browser reporting where the unit is (with the officer's consent)."""
        if actor.unit_id is None:
            raise Forbidden("only an officer with a unit reports a position")
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
                and -180 <= lon <= 180):
            raise Invalid({"lat": "position out of range"})
        with db.write(self.engine) as conn:
            unit = self._unit(conn, actor.unit_id)
            actor.check("unit_position", unit.precinct)
            conn.execute(units.update().where(units.c.id == unit.id).values(
                lat=lat, lon=lon, position_at=self.clock()))
            ev = self._event(conn, actor, "unit_position", unit_id=unit.id,
                             precinct=unit.precinct, payload={"lat": lat, "lon": lon})
        self._committed([ev])
        return ev

    # -- jobs coming in -----------------------------------------------------------------------

    def rules(self) -> list[Rule]:
        with db.read(self.engine) as conn:
            rows = conn.execute(sa.select(priority_rules).order_by(priority_rules.c.id)).all()
        if not rows:
            return list(DEFAULT_RULES)
        return [Rule(r.complaint_type, r.descriptor, r.priority, r.ack_minutes,
                     r.arrive_minutes, r.close_minutes) for r in rows]

    def set_rule(self, actor: Actor, rule: Rule) -> dict[str, Any]:
        """Add or change a priority rule; it applies to jobs that come in from now on."""
        if not actor.may_set_rules():
            raise Forbidden("priority rules are citywide: only admins and citywide supervisors "
                            "edit them")
        errors = {}
        if not rule.complaint_type.strip():
            errors["complaint_type"] = "is required"
        if len(rule.complaint_type) > 120 or len(rule.descriptor) > 200:
            errors["complaint_type"] = "type up to 120, descriptor up to 200 characters"
        if rule.priority not in (1, 2, 3, 4):
            errors["priority"] = "must be 1 to 4"
        if not 0 < rule.ack_minutes <= rule.arrive_minutes <= rule.close_minutes <= MAX_MINUTES:
            errors["minutes"] = f"need 0 < acknowledge ≤ arrive ≤ close ≤ {MAX_MINUTES}"
        if errors:
            raise Invalid(errors)
        current = self.rules()
        with db.write(self.engine) as conn:
            if not conn.execute(sa.select(sa.func.count()).select_from(priority_rules)).scalar():
                conn.execute(priority_rules.insert(), [r.__dict__ for r in current])
            key = (priority_rules.c.complaint_type == rule.complaint_type) & (
                priority_rules.c.descriptor == rule.descriptor)
            updated = conn.execute(priority_rules.update().where(key).values(**rule.__dict__))
            if updated.rowcount == 0:
                conn.execute(priority_rules.insert().values(**rule.__dict__))
            ev = self._event(conn, actor, "set_rule", payload=dict(rule.__dict__))
        self._committed([ev])
        return ev

    def routes(self, batch: Sequence[NewJob]) -> list[Route]:
        """Where these new jobs go: their points routed at once. No I/O (intake routes in its
        second process, then hands the routes to `create_jobs`)."""
        if self.geo is None:
            return [NO_POSITION] * len(batch)
        return self.geo.route_many([(new.lat, new.lon) for new in batch])

    def create_job(self, actor: Actor, new: NewJob, source: str | None = None,
                   rules: Sequence[Rule] | None = None) -> dict[str, Any]:
        """A job from 311, Open311 or by hand: routed, prioritised, put in its precinct's queue."""
        return self.create_jobs(actor, [new], source, rules)[0]

    def create_jobs(self, actor: Actor, batch: Sequence[NewJob], source: str | None = None,
                    rules: Sequence[Rule] | None = None,
                    routes: Sequence[Route] | None = None) -> list[dict[str, Any]]:
        """Jobs as `create_job` makes each, N jobs and N events in one transaction (intake).

        A NewJob with `closed_at` is history: a request the city had already closed. It becomes
        a closed job with the 311 created / closed times and resolution, the disposition whose
        public text that resolution is (else none), no unit, and one `history` event: never in a
        dispatch queue, never overdue. Only the 311 intake (a machine actor) records history.
        Every job is checked before anything is written: one refused job refuses the batch.
        The batch's events are at the time its jobs were received (one transaction).
        `routes`: the batch's `routes`, if a machine actor has them already; a person's jobs
        are always routed here.
        """
        if not batch:
            return []
        person = actor.id is not None  # intake and replay run as machine actors without one
        if person and not actor.may("create_job"):
            raise Forbidden(f"a {actor.role.value} cannot create jobs")
        if person and routes is not None:
            raise ValueError("a person's jobs are routed by the write path")
        rules = tuple(rules) if rules is not None else tuple(self.rules())
        now = self.clock()

        @functools.cache  # a batch repeats a few dozen complaint types
        def rule_of(complaint: str, descriptor: str) -> tuple[Rule, Deadlines]:
            rule = rule_for(rules, complaint, descriptor)
            return rule, deadlines(rule, now)

        planned = [self._plan_job(actor, new, source, rule_of, now, route)
                   for new, route in zip(batch, routes or self.routes(batch), strict=True)]
        with db.write(self.engine) as conn:
            rows = [values for values, _ in planned]
            ids = bulk.insert_many(conn, jobs, rows)  # each row gets its id
            evs = self._insert_events(conn, [
                self._event_row(actor, "history" if values["history"] else "create",
                                job_id=job_id, precinct=values["precinct"],
                                after=values["status"], payload=payload, at=now)
                for job_id, (values, payload) in zip(ids, planned, strict=True)],
                new_jobs=rows)
        self._committed(evs)
        return evs

    def _plan_job(self, actor: Actor, new: NewJob, source: str | None,
                  rule_of: Callable[[str, str], tuple[Rule, Deadlines]], now: datetime,
                  route: Route) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new job's row and its event's payload: validated, prioritised; no I/O."""
        person = actor.id is not None
        from311 = _fields_311(new)
        precinct, sector, method = route.precinct, route.sector, route.method
        # Nobody files into another precinct, and only citywide eyes file into the unrouted
        # queue (no or far-off coordinates): refused here, before anything is written.
        if person and not actor.sees(precinct):
            raise Forbidden("that location is outside your precincts")
        rule, due = rule_of(from311["complaint_type"], new.descriptor)
        payload = {"route": method, "sector": sector, "priority": rule.priority,
                   "external_key": new.external_key}
        state: dict[str, Any] = {"status": Status.NEW.value, "history": False, "closed_at": None,
                                 "resolution": None, "disposition": None}
        if new.closed_at is not None:
            state, due = self._history(person, new, rule, payload)
        values = {
            "source": source or actor.source, "external_key": new.external_key,
            "precinct": precinct, "sector": sector, "route_method": method, **from311,
            "lat": new.lat, "lon": new.lon,
            "created_at": new.created_at or now, "received_at": now, "priority": rule.priority,
            "ack_due": due.acknowledge, "arrive_due": due.arrive, "close_due": due.close,
            "version": 1, "updated_at": now, "administrative": False, "summons_count": None,
            **state,
        }
        return values, payload

    def _history(self, person: bool, new: NewJob, rule: Rule, payload: dict[str, Any]
                 ) -> tuple[dict[str, Any], Deadlines]:
        """A job the city had already closed (the `jobs.history` contract): its state columns
        and deadlines (from the 311 created time); the payload gets what the city said."""
        if person:
            raise Forbidden("history comes from the city's 311 data, not from a person")
        created, closed = new.created_at, new.closed_at
        assert closed is not None
        if created is None:
            raise Invalid({"created_at": "a closed 311 request needs its created time"})
        if closed < created:
            raise Invalid({"closed_at": "is before the request's created time"})
        resolution = _text(new.resolution, "resolution") or None
        d = BY_RESOLUTION.get(" ".join((resolution or "").split()))
        disposition = d.code if d else None
        payload.update(disposition=disposition, resolution=resolution,
                       created_at=created.isoformat(), closed_at=closed.isoformat())
        return ({"status": Status.CLOSED.value, "history": True, "closed_at": closed,
                 "resolution": resolution, "disposition": disposition},
                deadlines(rule, created))

    def update_311_fields(self, actor: Actor, job_id: int, new: NewJob) -> dict[str, Any] | None:
        """A changed 311 row updates the 311 fields only, never the dispatch history."""
        machine = actor.id is None  # intake and the poller; never a person's token
        values = _fields_311(new)
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            if not machine:  # a person needs the right to enter 311 jobs, in the job's precinct
                actor.check("create_job", job.precinct)
            changed = {k: v for k, v in values.items() if getattr(job, k) != v}
            if not changed:
                return None
            conn.execute(jobs.update().where(jobs.c.id == job.id).values(**changed))
            ev = self._event(conn, actor, "update_311", job=job,
                             payload={"changed": sorted(changed)})
        self._committed([ev])
        return ev
