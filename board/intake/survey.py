"""`board import-survey FILE`: the answers the city collects itself, from a CSV keyed by the
service request number (the 311 unique key, jobs.external_key; a board number for requests
filed through Open311).

Columns are found by header, case and spacing aside: the key (``Unique Key``,
``service_request_number``, ``sr_number``, ``service_request_id``), ``satisfaction`` (1–5, or
the scale's words, Strongly disagree … Strongly agree), optionally ``still_there`` (yes/no) and
``answered_at`` (ISO; New York time when it has no offset). Each row goes through the same use
case as the status page (one answer per request). A row that names no job, or whose values
cannot be read, goes to the quarantine with its reason (source ``survey``), as intake does.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from board.intake.dates import parse_datetime
from board.storage import db
from board.storage.schema import jobs, quarantine
from board.usecases import Dispatch, Invalid
from board.usecases.caller import SATISFACTION, SURVEY_IMPORT, AlreadyAnswered

SOURCE = "survey"
KEYS = ("unique_key", "service_request_number", "sr_number", "service_request_id",
        "sr_number_", "request_number")
WORDS = {label.casefold(): value for value, label in SATISFACTION.items()}
YES, NO = {"yes", "y", "true", "1"}, {"no", "n", "false", "0"}
MAX_ROWS = 1_000_000


def _name(header: str) -> str:
    return "_".join(header.strip().casefold().replace("-", " ").split())


class BadRow(Exception):
    pass


def _satisfaction(value: str) -> int:
    text = " ".join(value.split()).casefold()
    if text in WORDS:
        return WORDS[text]
    if text.isdigit() and int(text) in SATISFACTION:
        return int(text)
    raise BadRow(f"satisfaction {value[:40]!r} is not 1–5 or a word of the scale")


def _still_there(value: str) -> bool | None:
    text = value.strip().casefold()
    if not text:
        return None
    if text in YES or text in NO:
        return text in YES
    raise BadRow(f"still_there {value[:20]!r} is not yes or no")


def _answered_at(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError):
        raise BadRow(f"answered_at {value[:40]!r} is not a date/time") from None


def _job_id(conn: sa.Connection, key: str) -> int | None:
    found = conn.execute(sa.select(jobs.c.id).where(jobs.c.external_key == key)).scalar()
    if found is None and key.isdigit() and len(key) <= 10:
        found = conn.execute(sa.select(jobs.c.id).where(
            jobs.c.id == int(key), jobs.c.external_key.is_(None))).scalar()
    return found


def import_rows(dispatch: Dispatch, rows: Iterable[dict[str, str]]) -> Counter[str]:
    """Import answers; counts of imported, already_answered and quarantined rows."""
    counts: Counter[str] = Counter(imported=0, already_answered=0, quarantined=0)
    for raw in rows:
        row = {_name(k): (v or "") for k, v in raw.items() if k is not None}
        key = next((row[k].strip() for k in KEYS if row.get(k, "").strip()), "")
        try:
            if not key:
                raise BadRow("no service request number")
            with db.read(dispatch.engine) as conn:
                job_id = _job_id(conn, key)
            if job_id is None:
                raise BadRow(f"no request {key[:40]!r} on this board")
            dispatch.answer_survey(SURVEY_IMPORT, job_id, _satisfaction(row.get(
                "satisfaction", "")), _still_there(row.get("still_there", "")),
                at=_answered_at(row.get("answered_at", "")))
            counts["imported"] += 1
        except AlreadyAnswered:
            counts["already_answered"] += 1
        except (BadRow, Invalid) as e:
            _quarantine(dispatch, key or None, str(e), raw)
            counts["quarantined"] += 1
    return counts


def _quarantine(dispatch: Dispatch, key: str | None, reason: str, raw: dict[str, Any]) -> None:
    with db.write(dispatch.engine) as conn:
        conn.execute(quarantine.insert().values(
            source=SOURCE, external_key=(key or None) and key[:40], reason=reason[:300],
            raw={str(k): str(v)[:2000] for k, v in raw.items() if k is not None},
            created_at=dispatch.clock()))


def import_file(dispatch: Dispatch, path: Path) -> Counter[str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        names = {_name(h) for h in reader.fieldnames or ()}
        if not names & set(KEYS) or "satisfaction" not in names:
            raise Invalid({"file": "needs a service request number column (Unique Key) and "
                                   "a satisfaction column"})
        return import_rows(dispatch, (r for i, r in enumerate(reader) if i < MAX_ROWS))
