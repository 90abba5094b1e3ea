"""`board qstat`: the QSTAT figures for scripts and for checking them by hand.

Dates are New York local days, --from included, --to excluded; the figures are the city's
(the command runs as the operator, like `board migrate`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from board.accountability.qstat import GROUPS, sheet
from board.accountability.qstat_tables import GROUP_COLUMNS, group_rows, to_csv, to_table
from board.domain.access import SYSTEM
from board.domain.qstat import period
from board.settings import Settings
from board.storage import db


def _day(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None
    return text


def cmd_qstat(args: argparse.Namespace, settings: Settings) -> int:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    p = period(args.from_, args.to, datetime.now(UTC))
    s = sheet(engine, SYSTEM, p, args.by, args.precinct, datetime.now(UTC))
    rows = group_rows(s.lines)
    write = to_csv if args.format == "csv" else to_table
    sys.stdout.write(write(GROUP_COLUMNS, rows))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("qstat", help="QSTAT figures for a period, by group (CSV or a table)")
    q.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", required=True, type=_day,
                   help="first New York day, YYYY-MM-DD (included)")
    q.add_argument("--to", metavar="YYYY-MM-DD", required=True, type=_day,
                   help="New York day after the last, YYYY-MM-DD (excluded)")
    q.add_argument("--by", choices=GROUPS, default="precinct")
    q.add_argument("--precinct", help="only this precinct")
    q.add_argument("--format", choices=("csv", "table"), default="csv")
    q.set_defaults(handler=cmd_qstat)


