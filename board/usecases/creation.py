"""Jobs coming in: 311 requests become routed, prioritised jobs (or history), in batches."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden
from board.domain.dispositions import BY_RESOLUTION
from board.domain.lifecycle import Status
from board.domain.priorities import (
    DEFAULT_RULES,
    Deadlines,
    Rule,
    deadlines,
    rule_for,
)
from board.geo.routing import NO_POSITION, Route
from board.storage import bulk, db
from board.storage.schema import (
    jobs,
    priority_rules,
    status_pages,
)
from board.usecases.core import (
    ChangeCore,
    Invalid,
    _text,
)

log = logging.getLogger(__name__)
MAX_MINUTES = 525_600  # a year: a deadline further out is a typo


def _stages_out_of_order(rule: Rule) -> dict[str, str]:
    """Each stage's minutes that break 1 ≤ ack ≤ arrive ≤ close ≤ MAX_MINUTES, by field (the
    API's document says the order in words: JSON Schema cannot compare two fields)."""
    order = "the stages go ack_minutes ≤ arrive_minutes ≤ close_minutes"
    out, before = {}, ("", 1)
    for name in ("ack_minutes", "arrive_minutes", "close_minutes"):
        value = getattr(rule, name)
        if not 1 <= value <= MAX_MINUTES:
            out[name] = f"must be 1 to {MAX_MINUTES}"
        elif value < before[1]:
            out[name] = f"must not be less than {before[0]} ({before[1]}): {order}"
        before = (name, value) if name not in out else before
    return out


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


def status_token() -> str:
    """The caller's status page address: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class CreationCases(ChangeCore):
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
        errors.update(_stages_out_of_order(rule))
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
                new_jobs=rows, actor=actor)
            pages = [{"job_id": job_id, "token": status_token(), "created_at": now}
                     for job_id, (values, _) in zip(ids, planned, strict=True)
                     if not values["history"]]
            if pages:
                conn.execute(status_pages.insert(), pages)
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

