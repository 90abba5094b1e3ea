"""Keeps job_facts in step with the events: the write path's hook, and a rebuild.

`record` runs inside the use case's transaction, right after its event is written, so a job's
facts row commits (or rolls back) with the event that changed it. `rebuild` folds the whole
events table again (the migration that added the table uses it; so can an operator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from board.domain.jobfacts import COLUMNS, JOB_COLUMNS, fold
from board.storage import bulk
from board.storage.schema import events, job_facts, jobs


def _job(conn: sa.Connection, job_id: int) -> Any:
    return conn.execute(sa.select(*(jobs.c[c] for c in JOB_COLUMNS))
                        .where(jobs.c.id == job_id)).first()


def record(conn: sa.Connection, ev: dict[str, Any]) -> None:
    """Fold one just-written event into its job's facts row (same transaction): the row
    and the event alone, whatever the job's history (the events' writers wait on this)."""
    job_id = ev.get("job_id")
    if job_id is None:
        return
    job = _job(conn, job_id)
    prior_row = conn.execute(sa.select(job_facts).where(job_facts.c.job_id == job_id)).first()
    prior = dict(prior_row._mapping) if prior_row else None
    facts = fold(prior, job, ev["kind"], ev["at"], ev.get("payload") or {}, ev.get("unit_id"))
    if prior is None:
        conn.execute(job_facts.insert().values(**facts))
    elif facts != prior:
        conn.execute(job_facts.update().where(job_facts.c.job_id == job_id)
                     .values(**{k: v for k, v in facts.items() if prior.get(k) != v}))


NEW_JOB = ("create", "history")


def record_all(conn: sa.Connection, evs: list[dict[str, Any]],
               new_jobs: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Fold a batch of just-written events. `new_jobs`: the rows (with their ids) of the jobs
    that `evs` create, one event each, as just written: their facts rows are folded from
    them and written in one statement, with nothing read back."""
    if new_jobs is None:
        for e in evs:
            record(conn, e)
        return
    if len(new_jobs) != len(evs) or any(
            e["kind"] not in NEW_JOB or e["job_id"] != j["id"]
            for e, j in zip(evs, new_jobs, strict=True)):
        raise ValueError("new_jobs must be the rows of the jobs these events create")
    bulk.insert_many(conn, job_facts, [
        fold(None, job, e["kind"], e["at"], e["payload"], e["unit_id"])
        for e, job in zip(evs, new_jobs, strict=True)])


def fold_job(job: Any, timeline: list[Any]) -> dict[str, Any] | None:
    """A job's facts from its whole timeline (events in order: unit_id, kind, at, payload)."""
    facts: dict[str, Any] | None = None
    for e in timeline:
        facts = fold(facts, job, e.kind, e.at, e.payload or {}, e.unit_id)
    return facts


def rebuild(conn: sa.Connection, batch: int = 2000) -> int:
    """Recompute every job's facts row from the events table; returns the rows written.

    Writes the columns the table has now: a migration that rebuilds runs before later ones
    add their columns."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("job_facts")}
    columns = [c for c in COLUMNS if c in present]
    target = sa.table("job_facts", *(sa.column(c, job_facts.c[c].type) for c in columns))
    conn.execute(job_facts.delete())
    # the table as it is now: an earlier migration's rebuild runs before later columns exist
    present = {c["name"] for c in sa.inspect(conn).get_columns("job_facts")}
    columns = [c for c in COLUMNS if c in present]
    job_rows = conn.execute(sa.select(*(jobs.c[c] for c in JOB_COLUMNS))).all()
    by_id = {j.id: j for j in job_rows}
    stream = conn.execute(
        sa.select(events.c.job_id, events.c.unit_id, events.c.kind, events.c.at,
                  events.c.payload).where(events.c.job_id.is_not(None))
        .order_by(events.c.job_id, events.c.seq)).all()
    pending: list[dict[str, Any]] = []
    written = 0
    for job_id, timeline in groupby(stream, key=lambda e: e.job_id):
        job = by_id.get(job_id)
        facts = fold_job(job, list(timeline)) if job is not None else None
        if facts is not None:
            pending.append({c: facts[c] for c in columns})
        if len(pending) >= batch:
            conn.execute(target.insert(), pending)
            written, pending = written + len(pending), []
    if pending:
        conn.execute(target.insert(), pending)
        written += len(pending)
    return written
