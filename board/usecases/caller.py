"""The caller's writes: the survey answer from the status page (or the city's import), the
dispute it may raise, and the record of each notice sent.

The caller has no account: these use cases run as machine actors (no user id) that the public
page, the survey import and the notice worker hold, and each writes its events through the one
write path. One answer per request is the survey_answers primary key, written in the answer's
transaction; a notice is recorded once by its outbox row turning `sent` in the same
transaction as its `notice_sent` event.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from board.domain.access import SYSTEM, Actor, Forbidden
from board.domain.lifecycle import Status
from board.storage import db
from board.storage.schema import events, notices, review_queue, survey_answers
from board.usecases.core import ChangeCore, Invalid

#: Who writes the answers given on a status page, the city's imported ones, and notices.
CALLER = dataclasses.replace(SYSTEM, name="caller", source="status_page")
SURVEY_IMPORT = dataclasses.replace(SYSTEM, name="survey import", source="import")
NOTICE_ACTOR = dataclasses.replace(SYSTEM, name="notice worker", source="worker")
#: "Still there" this soon after the close disputes it: the job goes first in review.
DISPUTE_WINDOW = timedelta(hours=24)
SATISFACTION = {1: "Strongly disagree", 2: "Disagree", 3: "Neither agree nor disagree",
                4: "Agree", 5: "Strongly agree"}


class AlreadyAnswered(Invalid):
    """The request has its one answer already."""

    def __init__(self) -> None:
        super().__init__({"survey": "this request has been answered already"})


def _machine(actor: Actor) -> None:
    if actor.id is not None:
        raise Forbidden("the caller's answers and notices are not recorded by a person")


class CallerCases(ChangeCore):
    def answer_survey(self, actor: Actor, job_id: int, satisfaction: int,
                      still_there: bool | None, at: datetime | None = None) -> dict[str, Any]:
        """The caller's one answer to a closed request: a `survey_answer` event, and when the
        problem is still there within DISPUTE_WINDOW of the close, a `caller_disputed` event
        that puts the job first in its precinct's review queue. `at`: when the caller
        answered (the city's import says; otherwise now)."""
        _machine(actor)
        if satisfaction not in SATISFACTION:
            raise Invalid({"satisfaction": "must be 1 (strongly disagree) to 5 (strongly agree)"})
        at = at or self.clock()
        with db.write(self.engine) as conn:
            job = self._job(conn, job_id, lock=True)
            if job.status != Status.CLOSED.value or job.closed_at is None:
                raise Invalid({"survey": "the request is not closed"})
            if conn.execute(sa.select(survey_answers.c.job_id)
                            .where(survey_answers.c.job_id == job.id)).first():
                raise AlreadyAnswered
            payload = {"satisfaction": satisfaction, "still_there": still_there,
                       "source": actor.source}
            evs = [self._event(conn, actor, "survey_answer", job=job, payload=payload)]
            if not db.insert_new(conn, survey_answers, {
                    "job_id": job.id, "satisfaction": satisfaction, "still_there": still_there,
                    "answered_at": at, "source": actor.source[:20], "seq": evs[0]["seq"]}):
                raise AlreadyAnswered  # another answer got there first: roll ours back
            if still_there and at - job.closed_at <= DISPUTE_WINDOW:
                evs.append(self._event(conn, actor, "caller_disputed", job=job, payload={
                    "answer_seq": evs[0]["seq"],
                    "hours_after_close": round((at - job.closed_at).total_seconds() / 3600, 1)}))
                self._disputed(conn, job, evs[-1])
        self._committed(evs)
        return evs[0]

    def _disputed(self, conn: sa.Connection, job: Any, ev: dict[str, Any]) -> None:
        """The job waits for review again, first in its precinct's queue."""
        row = conn.execute(sa.select(review_queue).where(
            review_queue.c.job_id == job.id)).first()
        if row is not None:
            flags = sorted({*row.flags, "caller_disputed"})
            conn.execute(review_queue.update().where(review_queue.c.job_id == job.id).values(
                flags=flags, review_seq=None, caller_disputed=True))
            return
        close_seq = conn.execute(sa.select(sa.func.max(events.c.seq)).where(
            events.c.job_id == job.id,
            events.c.kind.in_(("close", "admin_close", "history")))).scalar()
        conn.execute(review_queue.insert().values(
            job_id=job.id, precinct=job.precinct, close_seq=close_seq or ev["seq"],
            closed_at=job.closed_at, flags=["caller_disputed"], review_seq=None,
            caller_disputed=True))

    def notice_sent(self, actor: Actor, notice_id: int, message_id: str) -> dict[str, Any] | None:
        """Record a notice as sent: its outbox row turns `sent` with a `notice_sent` event in
        one transaction (None when it was recorded already). The event says which stage and
        channel, never the address."""
        _machine(actor)
        with db.write(self.engine) as conn:
            row = conn.execute(sa.select(notices).where(notices.c.id == notice_id)
                               .with_for_update()).first()
            if row is None or row.state == "sent":
                return None
            job = self._job(conn, row.job_id)
            ev = self._event(conn, actor, "notice_sent", job=job, payload={
                "stage": row.stage, "channel": row.channel, "message_id": message_id,
                "notice": row.id, "attempts": row.attempts})
            conn.execute(notices.update().where(notices.c.id == row.id).values(
                state="sent", sent_at=ev["at"], sent_seq=ev["seq"], last_error=None))
        self._committed([ev])
        return ev
