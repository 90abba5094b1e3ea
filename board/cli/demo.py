"""Demo data for `make run`: people, a tour of units in a few precincts, the real 311 hour."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

from board import bootstrap
from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.settings import DEMO_HOUR, Settings
from board.storage import appendonly, db
from board.storage.schema import metadata, users
from board.usecases import Dispatch

DEMO_PASSWORD = "dispatch311"
DEMO_PRECINCTS = ("75", "34", "43", "114")
UNIT_LETTERS = ("A", "B", "C", "D")
HOUR = DEMO_HOUR

# (user name, role, precincts, unit) — the logins the README lists.
def demo_people() -> list[tuple[str, str, str, str | None]]:
    people: list[tuple[str, str, str, str | None]] = []
    for p in DEMO_PRECINCTS:
        people.append((f"sgt{p}", "supervisor", p, None))
        people += [(f"officer{p}{x.lower()}", "officer", p, f"{p}-{x}") for x in UNIT_LETTERS]
    people += [("citywide", "supervisor", "*", None), ("commander", "commander", "*", None),
               ("admin", "admin", "*", None)]
    return people


def _reset(engine: sa.Engine) -> None:
    with db.write(engine) as conn:
        for table in reversed(metadata.sorted_tables):
            appendonly.wipe(conn, table)


def seed(settings: Settings, reset: bool = False, hour: Path = HOUR,
         base_url: str = "http://127.0.0.1:8000", show_wall_token: bool = False) -> Dispatch:
    """Load the demo once; later runs keep what is there (use --reset to start over).

    The wall display's address carries a live token: it is printed to a person at a terminal
    (or with --show-wall-token), never into a log a process manager keeps."""

    if reset:
        engine = db.make_engine(settings.database_url)
        db.migrate(engine)
        _reset(engine)
        engine.dispose()
    dispatch = bootstrap.worker_dispatch(settings)
    engine = dispatch.engine
    with db.read(engine) as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar():
            print("demo data already loaded (board demo --reset starts over)", file=sys.stderr)
            return dispatch
    for p in DEMO_PRECINCTS:
        sectors = dispatch.geo.sectors_of(p) if dispatch.geo else []
        for i, x in enumerate(UNIT_LETTERS):
            dispatch.add_unit(SYSTEM, f"{p}-{x}", p, sectors[i % len(sectors)] if sectors else None)
    for name, role, precincts, unit in demo_people():
        auth.add_user(engine, name, DEMO_PASSWORD, role, precincts,
                      display_name=name.capitalize(), unit_callsign=unit)
    auth.add_user(engine, "wall75", None, "wall", "75", display_name="75 Pct wall display")
    if show_wall_token or sys.stderr.isatty():
        token = auth.create_token(engine, "wall75", "demo wall display")
        print(f"wall display for the 75th: {base_url}/wall/75?token={token}", file=sys.stderr)
    else:
        print("wall display for the 75th: `board tokens create wall75`, then open "
              f"{base_url}/wall/75?token=… (or run board demo --show-wall-token)",
              file=sys.stderr)
    if hour.exists():
        from board.intake import files as intake_files
        from board.intake.file_import import check_file
        from board.intake.pipeline import Intake

        # the hour as if it were happening now: every row a job to dispatch (not history), on
        # today's timeline (as replay does), so ages, deadlines and QSTAT's default period see it
        check_file(hour)
        counts = Intake(dispatch, quarantine_source=f"file:{hour.name}", history=False,
                        created_at=lambda req: None).feed(intake_files.read_rows(hour))
        print(f"imported the real 311 hour: {counts}", file=sys.stderr)
    else:
        print(f"no 311 sample at {hour}: the board starts empty", file=sys.stderr)
    return dispatch
