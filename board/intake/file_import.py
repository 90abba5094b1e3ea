"""Importing a 311 file: checked whole before anything is written (a broken file stops with a clear
FileError and no half-import), then streamed into intake; a file of a megabyte or more is read
and parsed in a second process (board.intake.aside) while this one writes."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from board.domain.access import Actor
from board.geo.routing import Route
from board.intake import aside
from board.intake import files as intake_files
from board.intake import rows as nyc311
from board.intake.pipeline import IMPORT_ACTOR, Counts, FileError, Intake, Prepared, prepare
from board.usecases import Dispatch, NewJob


def _file_error(path: Path, exc: BaseException, rows: int) -> FileError:
    where = f"after {rows} rows" if rows else "before the first row"
    if isinstance(exc, FileNotFoundError):
        return FileError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return FileError(f"{path}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return FileError(f"{path}: permission denied")
    if isinstance(exc, UnicodeDecodeError):
        return FileError(f"{path}: not UTF-8 text ({where}); export the file as UTF-8")
    if isinstance(exc, csv.Error):
        return FileError(f"{path}: broken CSV {where}: {exc}")
    if isinstance(exc, RecursionError):
        return FileError(f"{path}: JSON nested too deeply {where}")
    if isinstance(exc, json.JSONDecodeError):
        return FileError(f"{path}: malformed JSON ({exc})")
    if isinstance(exc, OSError):
        return FileError(f"{path}: cannot read it ({exc.strerror or exc})")
    return FileError(f"{path}: {exc}")


_FILE_ERRORS = (OSError, ValueError, csv.Error, RecursionError)


def check_file(path: str | Path) -> int:
    """Stream the whole file once without writing; the number of rows, or FileError.

    Refuses a file with no rows (an empty download is a failed download, not a quiet day), and
    one with rows but no agency column at all: every row would be "skipped as non-NYPD", which
    hides a wrong file (or a wrong export) behind a successful-looking import.
    """
    path = Path(path)
    rows = 0
    has_agency = False
    try:
        for row in intake_files.read_rows(path):
            rows += 1
            if not has_agency and isinstance(row, Mapping):
                has_agency = nyc311.has_agency(row)
    except _FILE_ERRORS as exc:
        raise _file_error(path, exc, rows) from None
    if not rows:
        empty = path.stat().st_size == 0
        raise FileError(f"{path}: {'the file is empty' if empty else 'no rows in the file'}; "
                        "nothing to import")
    if not has_agency:
        raise FileError(f"{path}: no Agency column in any row; is this an NYC 311 export? "
                        "(columns are matched by header name)")
    return rows


#: A file at least this big is read and parsed aside (a second process) while this one writes,
#: when the machine has a second core; below it, starting the process costs more than it saves.
ASIDE_BYTES = 1 << 20


def import_file(dispatch: Dispatch, path: str | Path, *, actor: Actor = IMPORT_ACTOR,
                batch_size: int = 500, progress: Callable[[Counts], None] | None = None,
                progress_every: int = 5000, history: bool = True,
                parse_aside: bool | None = None) -> Counts:
    """Import a CSV export or Socrata JSON file. Same file twice: the second changes nothing.

    `history=False` makes every new row a job to dispatch, closed by the city or not (the demo
    board, which plays the hour as if it were happening now).

    `parse_aside`: check, read and parse the file in a second process while this one writes
    (`board.intake.aside`); by default when the machine has a second core and the file is at least
    `ASIDE_BYTES`; the new jobs are routed there too. Either way a broken file stops before
    anything is written. Aside, dates are checked against the time the import started rather
    than each batch's."""
    path = Path(path)
    if parse_aside is None:
        parse_aside = aside.available() and _size(path) >= ASIDE_BYTES
    if not parse_aside:
        check_file(path)  # a broken file stops here, before any write
    intake = Intake(dispatch, actor=actor, quarantine_source=f"file:{path.name}",
                    batch_size=batch_size, progress=progress, progress_every=progress_every,
                    history=history)
    try:
        if not parse_aside:
            return intake.feed(intake_files.read_rows(path))
        with aside.aside(_parsed, path, intake, dispatch.clock()) as batches:
            for batch in batches:  # the first comes after the whole file is checked
                intake.write(*_unpacked(batch))
        return intake.counts
    except _FILE_ERRORS as exc:  # changed under our feet between the check and the import
        err = _file_error(path, exc, intake.counts.rows)
        raise FileError(f"{err} — imported so far: {intake.counts.summary()}",
                        intake.counts) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # check_file says what is wrong with it
        return 0


_new_values = attrgetter(*(f.name for f in dataclasses.fields(NewJob)))


_route_values = attrgetter("precinct", "sector", "method", "distance_m")


def _parsed(path: Path, intake: Intake, now: datetime) -> Iterator[list[Any]]:
    """In the process aside: the whole file checked, then its rows prepared and their new jobs
    routed, a batch at a time."""
    check_file(path)
    batch: list[Prepared] = []
    for raw in intake_files.read_rows(path):
        batch.append(prepare(raw, now, intake.key_prefix, intake.history))
        if len(batch) >= intake.batch_size:
            yield _packed(batch, intake.dispatch)
            batch = []
    if batch:
        yield _packed(batch, intake.dispatch)


def _packed(batch: list[Prepared], dispatch: Dispatch) -> list[Any]:
    """A batch to send: a new job as its field values (a third of the object's cost to send),
    with its route (the batch's points routed at once); nothing more, as unpickling is the
    writer's work."""
    routes = iter(dispatch.routes([new for _, _, new, _ in batch if new is not None]))
    return [(raw, None, done, None) if new is None
            else (raw, _new_values(new), done, _route_values(next(routes)))
            for raw, _, new, done in batch]


def _unpacked(batch: list[Any]) -> tuple[list[Prepared], list[Route | None]]:
    """A batch from `_parsed` as `prepare` made it, less each row's request (`import_file`
    keeps counts, not outcomes), and each new job's route."""
    prepared = [(raw, None, None if new is None else NewJob(*new), done)
                for raw, new, done, _ in batch]
    return prepared, [route and Route(*route) for *_, route in batch]
