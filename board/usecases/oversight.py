"""Oversight's writes: review findings, close policies, the command log and overdue marks."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden, Role
from board.domain.lifecycle import Status, transition
from board.domain.policies import CITYWIDE, Policy, PolicyError
from board.domain.policies import check as check_policy
from board.domain.priorities import (
    STAGES,
    Deadlines,
    late_stages,
)
from board.storage import db
from board.storage.schema import (
    command_log,
    jobs,
    overdue_marks,
    policies,
    review_queue,
)
from board.usecases.core import (
    ChangeCore,
    Invalid,
    _AlreadyMarked,
    _policy_rows,
    _text,
)

log = logging.getLogger(__name__)
FINDINGS = {"no_issue": "No issue", "spoken_to": "Officer spoken to", "reopened": "Reopened"}
POLICY_READERS = (Role.SUPERVISOR, Role.COMMANDER, Role.ADMIN)



class OversightCases(ChangeCore):
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
                   minutes: int | None = None, *, metres: int | None = None,
                   dispositions: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """An admin turns a close policy on or off, citywide ("*") or for one precinct."""
        if actor.role is not Role.ADMIN:
            raise Forbidden("only an admin changes close policies")
        scope = str(scope).strip() or CITYWIDE
        if not (actor.citywide if scope == CITYWIDE else actor.sees(scope)):
            raise Forbidden("this is outside your precincts")
        if scope != CITYWIDE:
            self._check_place(scope, None)
        try:
            p = check_policy(kind, enabled, minutes, scope, metres, dispositions)
        except PolicyError as e:
            raise Invalid({"policy": str(e)}) from e
        values = {"enabled": p.enabled, "minutes": p.minutes, "metres": p.metres,
                  "dispositions": ",".join(p.dispositions) or None,
                  "updated_at": self.clock(), "updated_by": actor.name}
        with db.write(self.engine) as conn:
            key = (policies.c.scope == p.scope) & (policies.c.kind == p.kind)
            if conn.execute(policies.update().where(key).values(**values)).rowcount == 0:
                conn.execute(policies.insert().values(scope=p.scope, kind=p.kind, **values))
            ev = self._event(conn, actor, "set_policy",
                             precinct=None if p.scope == CITYWIDE else p.scope,
                             payload={"scope": p.scope, "kind": p.kind, "enabled": p.enabled,
                                      "minutes": p.minutes, "metres": p.metres,
                                      "dispositions": list(p.dispositions)})
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
                # the status it was late in: an unassigned job late to acknowledge was late to
                # be dispatched (QSTAT counts it so; the stage names stay as recorded)
                ev = self._event(conn, actor, "overdue", job=job,
                                 payload={"stage": stage, "status": job.status})
                if not db.insert_new(conn, overdue_marks,
                                     {"job_id": job.id, "stage": stage, "seq": ev["seq"]}):
                    raise _AlreadyMarked  # another worker got there first: roll back our event
        except _AlreadyMarked:
            return None
        self._committed([ev])
        return ev

