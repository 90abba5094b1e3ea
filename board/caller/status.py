"""The public status page's read side: what a caller may see of their own request.

A page is found by its unguessable token (status_pages, made with the job) and shows the
service request number and type, the steps with their times, the resolution text and the
caller's own survey answer. Nothing else is read: no officer, unit, position, note, other job
or contact detail ever reaches the view, so no template can show one by mistake. The address
answers "gone" a set number of days after the job closed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from board.domain.lifecycle import Status
from board.storage import db
from board.storage.schema import events, jobs, status_pages, survey_answers
from board.usecases import NotFound

#: The steps a caller sees, in order, and the events that mark each (the first one counts;
#: closed is the job's current close).
STEPS = (("received", "Received"), ("assigned", "Assigned to an officer"),
         ("on_the_way", "Officer on the way"), ("on_scene", "Officer on scene"),
         ("closed", "Closed"))
STEP_OF = {"assign": "assigned", "reassign": "assigned", "en_route": "on_the_way",
           "on_scene": "on_scene"}
TOKEN_MAX = 64


class Gone(Exception):
    """The page's address has expired (its job closed more than the set days ago)."""


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    at: datetime | None


@dataclass(frozen=True)
class Answer:
    satisfaction: int
    still_there: bool | None
    answered_at: datetime


@dataclass(frozen=True)
class StatusView:
    job_id: int
    number: str
    service: str
    steps: list[Step]
    closed: bool
    resolution: str
    closed_at: datetime | None
    reopened: bool
    answer: Answer | None


def well_formed(token: str) -> bool:
    """A token this server could have made (secrets.token_urlsafe): checked before any read."""
    return 20 <= len(token) <= TOKEN_MAX and all(c.isascii() and (c.isalnum() or c in "-_")
                                                 for c in token)


def number_of(job_id: int, external_key: str | None) -> str:
    """The service request number the caller knows: the 311 unique key, or ours (Open311)."""
    return external_key or str(job_id)


def view(engine: db.Source, token: str, now: datetime, keep_days: int) -> StatusView:
    """The page behind a token; NotFound for an unknown one, Gone once it expired."""
    if not well_formed(token):
        raise NotFound("no such status page")
    with db.read(engine) as conn:
        job = conn.execute(
            sa.select(jobs.c.id, jobs.c.external_key, jobs.c.complaint_type, jobs.c.status,
                      jobs.c.created_at, jobs.c.closed_at, jobs.c.resolution)
            .join(status_pages, status_pages.c.job_id == jobs.c.id)
            .where(status_pages.c.token == token)).first()
        if job is None:
            raise NotFound("no such status page")
        closed = job.status == Status.CLOSED.value and job.closed_at is not None
        if closed and now - job.closed_at > timedelta(days=keep_days):
            raise Gone
        kinds = conn.execute(sa.select(events.c.kind, events.c.at).where(
            events.c.job_id == job.id).order_by(events.c.seq)).all()
        answer = conn.execute(sa.select(survey_answers).where(
            survey_answers.c.job_id == job.id)).first()
    return StatusView(
        job.id, number_of(job.id, job.external_key), job.complaint_type,
        _steps(job, kinds, closed), closed, (job.resolution or "") if closed else "",
        job.closed_at if closed else None, any(k.kind == "reopen" for k in kinds),
        Answer(answer.satisfaction, answer.still_there, answer.answered_at) if answer else None)


def _steps(job: Any, kinds: list[Any], closed: bool) -> list[Step]:
    """Each step's time: the first event that marks it (a reopen starts the round again)."""
    seen: dict[str, datetime] = {}
    for e in kinds:
        if e.kind == "reopen":
            seen.clear()
        step = STEP_OF.get(e.kind)
        if step and step not in seen:
            seen[step] = e.at
    seen["received"] = job.created_at
    if closed:
        seen["closed"] = job.closed_at
    return [Step(key, label, seen.get(key)) for key, label in STEPS]


def form_token(secret: str, token: str) -> str:
    """The survey form's anti-forgery token: bound to the page's own token by the server's
    secret, so a form posted from anywhere but this page is refused."""
    return hmac.new(secret.encode(), f"survey:{token}".encode(), hashlib.sha256).hexdigest()


def form_token_ok(secret: str, token: str, sent: str) -> bool:
    return hmac.compare_digest(form_token(secret, token), sent or "")


def address(base: str, token: str) -> str:
    """The page's address, from PUBLIC_URL (or the request's own base)."""
    return f"{base.rstrip('/')}/r/{token}"


def token_of(engine: db.Source, job_id: int) -> str | None:
    with db.read(engine) as conn:
        return conn.execute(sa.select(status_pages.c.token).where(
            status_pages.c.job_id == job_id)).scalar()
