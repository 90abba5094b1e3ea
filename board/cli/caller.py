"""The caller's loop on the command line: `board notices` (the notice worker) and
`board import-survey FILE` (the city's own survey answers)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from board import bootstrap
from board.settings import Settings
from board.usecases import Invalid


def cmd_notices(args: argparse.Namespace, settings: Settings) -> int:
    from board.caller.notices import NoticeWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not (settings.smtp_url or settings.sms_webhook_url):
        print("set SMTP_URL and/or SMS_WEBHOOK_URL (docs/caller.md)", file=sys.stderr)
        return 2
    with bootstrap.worker(settings) as dispatch:
        worker = NoticeWorker.from_settings(dispatch, settings, interval=args.interval)
        if args.once:
            print(f"{worker.run_once()} notice(s) sent")
            return 0
        worker.run_forever()
    return 0


def cmd_import_survey(args: argparse.Namespace, settings: Settings) -> int:
    from board.intake.survey import import_file

    path = Path(args.file)
    if not path.is_file():
        print(f"no file {path}", file=sys.stderr)
        return 2
    with bootstrap.worker(settings) as dispatch:
        try:
            counts = import_file(dispatch, path)
        except (Invalid, UnicodeDecodeError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
    print(f"imported {counts['imported']}, already answered {counts['already_answered']}, "
          f"quarantined {counts['quarantined']} (board quarantine list)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    n = sub.add_parser("notices", help="the notice worker: email and texts to callers who "
                                       "agreed, at on scene and close")
    n.add_argument("--interval", type=float, default=5.0, help="pause between passes (s)")
    n.add_argument("--once", action="store_true", help="one pass, then stop")
    n.set_defaults(handler=cmd_notices)
    s = sub.add_parser("import-survey", help="import the city's survey answers (CSV keyed by "
                                             "service request number)")
    s.add_argument("file")
    s.set_defaults(handler=cmd_import_survey)
