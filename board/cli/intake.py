"""Intake commands: import-311, quarantine list / retry, replay, poll-311 (see board.intake).

Registered by `board.cli.main`; every write goes through board.usecases via
board.intake.pipeline, like the web's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from board import bootstrap
from board.intake import file_import, quarantine
from board.intake import pipeline as intake
from board.settings import Settings
from board.usecases import Invalid, NotFound


def _print_counts(counts: intake.Counts, seconds: float) -> None:
    print(f"{counts.summary()} in {seconds:.1f}s")
    for reason, n in counts.reasons.most_common():
        print(f"  quarantined {n}: {reason}")
    for column, n in sorted(counts.cut.items()):
        print(f"  cut to fit {n}: {column} (the job's cut_to_fit field says from what length)")
    if counts.quarantined:
        print("see `board quarantine list`; fix and `board quarantine retry ID`")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.worker(settings) as dispatch:
        def progress(counts: intake.Counts) -> None:
            print(f"import-311: {counts.summary()}", file=sys.stderr, flush=True)

        started = time.perf_counter()
        try:
            counts = file_import.import_file(
                dispatch, args.file, batch_size=args.batch_size, progress=progress,
                progress_every=args.progress_every,
                parse_aside=False if args.one_process else None)
        except intake.FileError as e:
            print(f"board import-311: {e}", file=sys.stderr)
            if e.counts is None:
                print("nothing was imported", file=sys.stderr)
            return 2
        _print_counts(counts, time.perf_counter() - started)
        return 0


def _short(raw: Any, limit: int = 100) -> str:
    text = json.dumps(raw, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        rows = quarantine.quarantine_rows(engine, include_resolved=args.all)
    if args.json:
        print(json.dumps([{"id": r.id, "source": r.source, "external_key": r.external_key,
                           "reason": r.reason, "raw": r.raw,
                           "created_at": r.created_at.isoformat(),
                           "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None}
                          for r in rows], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("the quarantine is empty" if not args.all else "nothing was ever quarantined")
        return 0
    for r in rows:
        state = f"resolved {r.resolved_at:%Y-%m-%d %H:%M}" if r.resolved_at else "open"
        print(f"{r.id:>6}  {r.created_at:%Y-%m-%d %H:%M}  {r.source}  key "
              f"{r.external_key or '-'}  [{state}]\n        reason: {r.reason}\n"
              f"        raw: {_short(r.raw)}")
    return 0


def _edited(raw: Any, sets: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid({"set": "this row is not an object; it cannot be edited field by field"})
    out = dict(raw)
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Invalid({"set": f"{item!r}: write FIELD=VALUE, e.g. 'Created Date=05/01/2022 "
                                  "12:00:03 AM'"})
        out[name] = value
    return out


def cmd_quarantine_retry(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.worker(settings) as dispatch:
        if args.all:
            if args.id is not None or args.set:
                print("board: give an ID (with --set edits) or --all, not both", file=sys.stderr)
                return 2
            done = quarantine.retry_all(dispatch)
            print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(done.items()))
                  or "the quarantine is empty")
            return 0
        if args.id is None:
            print("board: give a quarantined row's ID, or --all", file=sys.stderr)
            return 2
        override = None
        if args.set:
            rows = {r.id: r for r in quarantine.quarantine_rows(dispatch.engine)}
            if args.id not in rows:
                print(f"board: no open quarantined row {args.id}", file=sys.stderr)
                return 2
            override = _edited(rows[args.id].raw, args.set)
        try:
            outcome = quarantine.retry(dispatch, args.id, override)
        except NotFound as e:
            print(f"board: {e}", file=sys.stderr)
            return 2
        if outcome.kind == "quarantined":
            print(f"row {args.id} is still bad: {outcome.reason}")
            return 1
        what = f" (job {outcome.job_id})" if outcome.job_id else ""
        print(f"row {args.id}: {outcome.kind.replace('_', ' ')}{what}; resolved")
        return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from workers.replay import replay_file

    with bootstrap.worker(settings) as dispatch:
        def progress(report: Any) -> None:
            print(f"replay: {report.counts.summary()}", file=sys.stderr, flush=True)

        try:
            report = replay_file(dispatch, args.file, speed=args.speed,
                                 simulate_officers=args.simulate_officers,
                                 units_per_precinct=args.units_per_precinct,
                                 key_prefix=args.key_prefix, progress=progress,
                                 progress_every=args.progress_every)
        except intake.FileError as e:
            print(f"board replay: {e}", file=sys.stderr)
            return 2
        print(report.summary())
        return 0


def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from workers.poller import Poller, PollerConfig, PollError

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = PollerConfig.from_env()
    if args.interval is not None:
        config = replace(config, interval=args.interval)
    if args.since:
        config = replace(config, since=args.since)
    with bootstrap.worker(settings) as dispatch:
        poller = Poller(dispatch, config)
        if not args.once:
            poller.run_forever()
            return 0
        try:
            counts = poller.run_once()
        except PollError as e:
            print(f"board poll-311: {e}", file=sys.stderr)
            return 1
    print(counts.summary())
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number greater than 0")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import-311", help="import an NYC Open Data 311 export (CSV or JSON)")
    imp.add_argument("file")
    imp.add_argument("--batch-size", type=int, default=500)
    imp.add_argument("--progress-every", type=int, default=5000, metavar="ROWS",
                     help="report progress on stderr every ROWS rows")
    imp.add_argument("--one-process", action="store_true",
                     help="parse in this process too (by default a file of 1 MB or more is "
                          "parsed in a second process while this one writes)")
    imp.set_defaults(handler=cmd_import)

    q = sub.add_parser("quarantine", help="rows an import could not use")
    qs = q.add_subparsers(dest="quarantine_cmd", required=True)
    ql = qs.add_parser("list", help="list quarantined rows and why")
    ql.add_argument("--all", action="store_true", help="include resolved rows")
    ql.add_argument("--json", action="store_true", help="full rows as JSON")
    ql.set_defaults(handler=cmd_quarantine_list)
    qr = qs.add_parser("retry", help="import a quarantined row again (after a fix)")
    qr.add_argument("id", nargs="?", type=int)
    qr.add_argument("--all", action="store_true", help="retry every open row as stored")
    qr.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="edit a field of the raw row first (repeatable)")
    qr.set_defaults(handler=cmd_quarantine_retry)

    rp = sub.add_parser("replay", help="feed a historical export at N× real time")
    rp.add_argument("file")
    rp.add_argument("--speed", type=_positive, default=60.0,
                    help="times real time (60: an hour in a minute)")
    rp.add_argument("--simulate-officers", action="store_true",
                    help="simulated units work every job to its historical resolution")
    rp.add_argument("--units-per-precinct", type=int, default=3)
    rp.add_argument("--key-prefix", default="",
                    help="prefix the 311 keys (replay a file already imported, again)")
    rp.add_argument("--progress-every", type=int, default=1000, metavar="ROWS")
    rp.set_defaults(handler=cmd_replay)

    poll = sub.add_parser("poll-311", help="poll the city's 311 API (Socrata erm2-nwe9)")
    poll.add_argument("--once", action="store_true", help="catch up once and stop")
    poll.add_argument("--interval", type=_positive, help="seconds between polls")
    poll.add_argument("--since", help="where a first run starts (ISO), if no cursor is stored")
    poll.set_defaults(handler=cmd_poll)


