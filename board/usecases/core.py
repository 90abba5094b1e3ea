"""The one write path. Every change to a job or a unit is a use case here.

Each use case checks the actor's role and scope, validates the transition against the
lifecycle, and writes the new state plus one append-only event in the same transaction. A job
write names the version it was made against; a stale one is refused as a Conflict. Listeners
hear about events only after their transaction has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden
from board.domain.evidence import DEFAULT_SUMMONS_PATTERN
from board.domain.flags import Progress
from board.domain.jobfacts import ROUND, round_of
from board.domain.lifecycle import WORKING, transition
from board.domain.places import PlaceRules
from board.domain.policies import Policy, in_effect
from board.domain.presence import OFF
from board.domain.text import plain
from board.geo.routing import GeoIndex
from board.storage import bulk, chain, db, factstore, idempotency
from board.storage.schema import (
    events,
    job_facts,
    jobs,
    policies,
    review_queue,
    units,
)

log = logging.getLogger(__name__)

MAX_TEXT = 2000


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




#: A lifecycle action's own part: (column changes, event payload) for the job as locked.
Apply = Callable[[sa.Connection, Any], tuple[dict[str, Any], dict[str, Any]]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, name: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    text = plain(value or "")  # the input layer's own rule: a valid value is never emptied
    if required and not text:
        raise Invalid({name: "is required"})
    if len(text) > limit:
        raise Invalid({name: f"is longer than {limit} characters"})
    return text








def _policy_rows(conn: sa.Connection) -> list[Policy]:
    rows = conn.execute(sa.select(policies).order_by(policies.c.scope, policies.c.kind)).all()
    return [Policy(r.kind, r.enabled, r.minutes, r.scope, r.metres,
                   tuple(c for c in (r.dispositions or "").split(",") if c)) for r in rows]


def active_policies(conn: sa.Connection, precinct: str | None) -> list[Policy]:
    """The close policies in effect for a precinct (a handful of rows: read whole)."""
    return in_effect(_policy_rows(conn), precinct)


class ChangeCore:
    """The change core: one transaction per use case, checked, versioned, evented, and
    told to listeners after commit. The use cases of each capability build on it."""


    def __init__(self, engine: sa.Engine, geo: GeoIndex | None,
                 clock: Callable[[], datetime] = _utcnow, *, arrival_position: str = OFF,
                 summons_pattern: str = DEFAULT_SUMMONS_PATTERN) -> None:
        self.engine = engine
        self.geo = geo
        self.clock = clock
        # what the board remembers about places (the composition root sets the threshold)
        self.places = PlaceRules()
        #: the department's settings the use cases apply: the composition root passes
        #: board.settings.Settings' (ARRIVAL_POSITION defaults to ask there); bare use cases
        #: (tests, scripts) ask nothing unless told
        self.arrival_position = arrival_position
        self.summons_pattern = summons_pattern
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []

    # -- plumbing -----------------------------------------------------------------------------

    def _committed(self, evs: list[dict[str, Any]]) -> None:
        """Tell listeners; the write is committed, so a failing listener must not undo the
        caller's success (live boards repair themselves from the events table). An event
        answered again for a repeated request (`replayed`) was told the first time."""
        evs = [e for e in evs if not e.get("replayed")]
        if not evs:
            return
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
        return self._insert_events(conn, [row], actor=actor)[0]

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
            "payload": ({**(payload or {}), "request_key": actor.request_key}
                        if actor.request_key else payload or {}),
            "address": (actor.address or None) and actor.address[:64],
            "user_agent": (actor.user_agent or None) and actor.user_agent[:300],
        }

    def _insert_events(self, conn: sa.Connection, rows: list[dict[str, Any]],
                       new_jobs: Sequence[dict[str, Any]] | None = None, *,
                       actor: Actor | None = None) -> list[dict[str, Any]]:
        """Append events (one statement for a batch); each row gets its seq, in order, and its
        link in the log's hash chain (board/storage/chain.py) before it is written.
        `new_jobs`: the rows of the jobs these events create, as written (for job_facts).
        `actor`: who writes them; an API request's Idempotency-Key claim is marked with the last
        event here, in the same transaction, so it says whether the write committed."""
        chain.extend(conn, rows)
        bulk.insert_many(conn, events, rows)
        factstore.record_all(conn, rows, new_jobs)  # QSTAT's rows commit with their events
        if actor is not None and actor.idempotency_key and actor.id is not None and rows:
            idempotency.written(conn, actor.id, actor.idempotency_key, rows[-1]["seq"])
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

    def _stale(self, conn: sa.Connection, actor: Actor, action: str, job: Any,
               version: int) -> dict[str, Any]:
        """A write against an old version is a Conflict, unless it is the same request sent
        again (a phone whose answer was lost on the way back): then its own event, as written
        the first time, marked `replayed`, and nothing is written twice."""
        if actor.request_key and actor.id is not None:
            earlier = conn.execute(
                sa.select(events).where(events.c.job_id == job.id, events.c.actor_id == actor.id,
                                        events.c.kind == action)
                .order_by(events.c.seq.desc())).mappings().all()
            for ev in earlier:
                if (ev["payload"] or {}).get("request_key") == actor.request_key:
                    return {**ev, "replayed": True}
        raise self._conflict(job, version)

    def _change(self, actor: Actor, action: str, job_id: int, version: int,
                apply: Apply | None = None, to_unit: int | None = None) -> dict[str, Any]:
        """Run one lifecycle action on a job: check, transition, write state and event."""
        with db.write(self.engine) as conn:
            evs = self._change_in(conn, actor, action, job_id, version, apply, to_unit)
        self._committed(evs)
        return evs[-1]

    def _change_in(self, conn: sa.Connection, actor: Actor, action: str, job_id: int,
                   version: int, apply: Apply | None = None, to_unit: int | None = None
                   ) -> list[dict[str, Any]]:
        """_change inside a transaction the caller holds (a multi-job action runs several in
        one, so all are written or none). Returns the events written, the action's last:
        `apply` may write events of its own first (a route's unlink) through `self._event`
        and hand them back in its payload's "_written" list."""
        job = self._job(conn, job_id)
        try:
            actor.check(action, job.precinct, job.unit_id)
        except Forbidden:
            # Acting on a stale screen (an officer tapping a job just reassigned away):
            # say who changed it, as long as the job is one the actor may read.
            if actor.sees(job.precinct) and job.version != version:
                return [self._stale(conn, actor, action, job, version)]
            raise
        job = self._lock(conn, job_id, (job.unit_id, to_unit))
        if job.version != version:
            return [self._stale(conn, actor, action, job, version)]
        after = transition(action, job.status)
        changes, payload = apply(conn, job) if apply else ({}, {})
        written = payload.pop("_written", [])
        changes = {"status": after.value, **changes}
        done = conn.execute(
            jobs.update().where(jobs.c.id == job.id, jobs.c.version == version)
            .values(**changes, version=version + 1, updated_at=self.clock())
        )
        if done.rowcount != 1:
            raise self._conflict(job, version)
        unit_id = changes.get("unit_id", job.unit_id)
        # before the event: from its event to the commit a write holds the events' lock
        if job.unit_id is not None:
            self._restack(conn, job.unit_id)
        if unit_id is not None and unit_id != job.unit_id:
            self._restack(conn, unit_id)
        ev = self._event(conn, actor, action, job=job, unit_id=unit_id,
                         before=job.status, after=after.value, payload=payload)
        self._review_queue(conn, job, ev)
        return [*written, ev]

    def _review_queue(self, conn: sa.Connection, job: Any, ev: dict[str, Any]) -> None:
        """A close with flags puts the job in its precinct's review queue; a reopen takes it
        out (its next close comes back flagged "reopened")."""
        if ev["kind"] == "reopen":
            conn.execute(review_queue.delete().where(review_queue.c.job_id == job.id))
            return
        if ev["kind"] not in ("close", "admin_close"):
            return
        # the close's flags as its event's facts row took them (factstore.record, just now)
        found = conn.execute(sa.select(job_facts.c.flags)
                             .where(job_facts.c.job_id == job.id)).scalar() or ()
        conn.execute(review_queue.delete().where(review_queue.c.job_id == job.id))
        if found:
            conn.execute(review_queue.insert().values(
                job_id=job.id, precinct=job.precinct, close_seq=ev["seq"], closed_at=ev["at"],
                flags=sorted(found), review_seq=None))

    @staticmethod
    def _progress(conn: sa.Connection, job_id: int) -> Progress:
        """The job's round of work as its facts row keeps it (board.domain.jobfacts.ROUND):
        what a close's policies check, without reading the job's timeline."""
        row = conn.execute(sa.select(*(job_facts.c[c] for c in ROUND))
                           .where(job_facts.c.job_id == job_id)).first()
        return round_of(row) if row is not None else Progress()

    def _restack(self, conn: sa.Connection, unit_id: int) -> None:
        """Number a unit's working jobs 0..n-1, keeping their order."""
        stack = self._stack(conn, unit_id)
        self._renumber(conn, stack, range(len(stack)))

    def _slot(self, conn: sa.Connection, unit_id: int, position: int | None, job_id: int) -> int:
        """Make room at `position` in a unit's stack (the end when None); returns the slot."""
        stack = self._stack(conn, unit_id, job_id)
        slot = len(stack) if position is None else max(0, min(position, len(stack)))
        self._renumber(conn, stack, (pos if pos < slot else pos + 1
                                     for pos in range(len(stack))))
        return slot

    @staticmethod
    def _stack(conn: sa.Connection, unit_id: int, leaving: int | None = None) -> list[Any]:
        """A unit's working jobs in their order (id, stack_pos), but for `leaving`."""
        where = [jobs.c.unit_id == unit_id, jobs.c.status.in_([s.value for s in WORKING])]
        if leaving is not None:
            where.append(jobs.c.id != leaving)
        return conn.execute(sa.select(jobs.c.id, jobs.c.stack_pos).where(*where)
                            .order_by(jobs.c.stack_pos, jobs.c.id)).all()

    @staticmethod
    def _renumber(conn: sa.Connection, stack: list[Any], places: Iterable[int]) -> None:
        """Give the stack's jobs these places: only those that move, in one statement (a unit
        with thirty jobs used to cost thirty updates on every assignment)."""
        moved = [{"job": r.id, "place": p} for r, p in zip(stack, places, strict=True)
                 if r.stack_pos != p]
        if moved:
            conn.execute(jobs.update().where(jobs.c.id == sa.bindparam("job"))
                         .values(stack_pos=sa.bindparam("place")), moved)

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

    def _record(self, actor: Actor, kind: str, job_id: int,
                payload: dict[str, Any]) -> dict[str, Any]:
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id)
            actor.check(kind, job.precinct, job.unit_id)
            transition(kind, job.status)
            ev = self._event(conn, actor, kind, job=job, payload=payload)
        self._committed([ev])
        return ev

