"""The quarantine's admin side: rows intake could not use, listed with their reason, and retried
(as they were, or edited) through the same pipeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor
from board.intake.pipeline import IMPORT_ACTOR, Intake, Outcome, _jsonable, _raw_key
from board.storage import db
from board.storage.schema import quarantine
from board.usecases import Dispatch, Invalid, NotFound


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    source: str
    external_key: str | None
    reason: str
    raw: Any
    created_at: datetime
    resolved_at: datetime | None


def quarantine_rows(engine: sa.Engine, include_resolved: bool = False) -> list[QuarantineRow]:
    """The quarantine, oldest first (the admin page and `board quarantine list` read this)."""
    q = sa.select(quarantine).order_by(quarantine.c.id)
    if not include_resolved:
        q = q.where(quarantine.c.resolved_at.is_(None))
    with db.read(engine) as conn:
        return [QuarantineRow(r.id, r.source, r.external_key, r.reason, r.raw, r.created_at,
                              r.resolved_at) for r in conn.execute(q)]


def retry(dispatch: Dispatch, quarantine_id: int, raw_override: Mapping[str, Any] | None = None,
          actor: Actor = IMPORT_ACTOR) -> Outcome:
    """Import a quarantined row again, as stored or as an admin edited it.

    Success (or a row that is no longer NYPD's) resolves it; a row still bad stays in the
    quarantine with the new reason, and keeps the admin's edit so the next try starts there.
    """
    with db.read(dispatch.engine) as conn:
        row = conn.execute(sa.select(quarantine)
                           .where(quarantine.c.id == quarantine_id)).first()
    if row is None:
        raise NotFound(f"no quarantined row {quarantine_id}")
    if row.resolved_at is not None:
        raise Invalid({"id": f"quarantined row {quarantine_id} is resolved already"})
    if row.source == "survey":  # a caller's answer, not a 311 row (board/intake/survey.py)
        raise Invalid({"id": "a survey row: fix the file and run board import-survey again"})
    raw = _jsonable(raw_override) if raw_override is not None else row.raw
    intake = Intake(dispatch, actor=actor, quarantine_source=row.source, keep_bad=False)
    outcome = intake.batch([raw])[0]
    with db.write(dispatch.engine) as conn:
        if outcome.kind == "quarantined":
            conn.execute(quarantine.update().where(quarantine.c.id == row.id).values(
                reason=(outcome.reason or "unusable row")[:300], raw=raw,
                external_key=_raw_key(raw)))
        else:
            conn.execute(quarantine.update().where(quarantine.c.id == row.id).values(
                raw=raw, external_key=_raw_key(raw), resolved_at=dispatch.clock()))
    return outcome


def retry_all(dispatch: Dispatch, actor: Actor = IMPORT_ACTOR) -> Counter[str]:
    """Retry every unresolved row as stored (after a fix in the importer); outcome counts."""
    done: Counter[str] = Counter()
    for row in quarantine_rows(dispatch.engine):
        try:
            done[retry(dispatch, row.id, actor=actor).kind] += 1
        except (NotFound, Invalid):  # resolved meanwhile (e.g. by a key imported just now)
            done["already_resolved"] += 1
    return done
