"""The command log's read side: a precinct's log book, searched, by tour, with job links.

Entries are append-only (board/appendonly.py guards the table); a correction is a new entry
naming the one it corrects, and is shown under it. Tours are the NYPD's, New York time: the
midnight tour of a date runs 23:00 the evening before to 07:00, then day 07–15, evening 15–23.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from markupsafe import Markup, escape

from board.domain.access import Actor, Forbidden, Role
from board.domain.clock import NEW_YORK
from board.storage import db
from board.storage.schema import command_log
from board.usecases.queries import check_precinct

READERS = (Role.SUPERVISOR, Role.COMMANDER, Role.ADMIN)
TOURS = {"midnight": (-1, 23), "day": (0, 7), "evening": (0, 15)}  # (day offset, start hour)
TOUR_LABELS = {"midnight": "Midnight tour 23:00–07:00", "day": "Day tour 07:00–15:00",
               "evening": "Evening tour 15:00–23:00"}
PAGE = 500
_JOB_REF = re.compile(r"(?<![\w&/])#(\d{1,10})\b")


def check_reader(actor: Actor, precinct: str) -> None:
    """Supervisors, commanders and admins of the precinct read it; officers and walls never."""
    check_precinct(actor, precinct)
    if actor.role not in READERS:
        raise Forbidden("the command log is for supervisors and commanders")


def tour_window(day: date, tour: str) -> tuple[datetime, datetime]:
    """The UTC start and end of one tour of a New York date (8 hours, DST included)."""
    offset, hour = TOURS[tour]
    start = datetime.combine(day + timedelta(days=offset), time(hour), NEW_YORK)
    return start.astimezone(UTC), (start + timedelta(hours=8)).astimezone(UTC)


def tour_of(at: datetime) -> tuple[date, str]:
    """The (date, tour) an instant falls in."""
    local = at.astimezone(NEW_YORK)
    if local.hour >= 23:
        return local.date() + timedelta(days=1), "midnight"
    if local.hour < 7:
        return local.date(), "midnight"
    return local.date(), "day" if local.hour < 15 else "evening"


def linked(text: str) -> Markup:
    """The entry's text, escaped, with job references (#123) as links to the job."""
    out, last = [], 0
    for m in _JOB_REF.finditer(text):  # found in the raw text, so escaping cannot fake one
        out += [str(escape(text[last:m.start()])), f'<a href="/jobs/{m[1]}">#{m[1]}</a>']
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


@dataclass
class Entry:
    id: int
    at: datetime
    actor: str
    text: str
    corrects_id: int | None
    corrections: list[Entry] = field(default_factory=list)


def entries(engine: db.Source, actor: Actor, precinct: str, *, text: str = "",
            since: datetime | None = None, until: datetime | None = None,
            limit: int = PAGE) -> list[Entry]:
    """Entries matching a search, newest first; corrections sit under the entry they correct."""
    check_reader(actor, precinct)
    q = sa.select(command_log).where(command_log.c.precinct == precinct)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(command_log.c.text.ilike(pattern, escape="\\")
                    | command_log.c.actor.ilike(pattern, escape="\\"))
    if since is not None:
        q = q.where(command_log.c.at >= since)
    if until is not None:
        q = q.where(command_log.c.at < until)
    with db.read(engine) as conn:
        rows = conn.execute(q.order_by(command_log.c.at.desc(), command_log.c.id.desc())
                            .limit(limit)).all()
        found = {r.id for r in rows}
        # a matching entry brings its corrections along, so nobody reads it uncorrected
        extra = conn.execute(sa.select(command_log).where(
            command_log.c.corrects_id.in_(found), command_log.c.id.not_in(found))).all() \
            if found else []
    by_id = {r.id: Entry(r.id, r.at, r.actor, r.text, r.corrects_id) for r in [*rows, *extra]}
    top = []
    for r in rows:
        e = by_id[r.id]
        parent = by_id.get(e.corrects_id) if e.corrects_id else None
        if parent is not None and parent.id in found:
            continue
        top.append(e)
    for e in by_id.values():
        if e.corrects_id in by_id:
            by_id[e.corrects_id].corrections.append(e)
    for e in by_id.values():
        e.corrections.sort(key=lambda c: c.id)
    return top


def latest(engine: db.Source, precinct: str, limit: int = 5) -> list[Entry]:
    """The newest entries, for the board's live panel (the caller has checked scope)."""
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(command_log).where(command_log.c.precinct == precinct)
                            .order_by(command_log.c.id.desc()).limit(limit)).all()
    return [Entry(r.id, r.at, r.actor, r.text, r.corrects_id) for r in rows]
