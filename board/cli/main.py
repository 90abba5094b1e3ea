"""The `board` command: serve, demo, migrate, check, geo load, users add|disable|unlock, units
add, tokens create|list|revoke.

Every command that changes jobs or units goes through board.usecases, like the web does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from board import bootstrap
from board.auth import accounts as auth
from board.cli import caller as caller_cli
from board.cli import check as check_cli
from board.cli import intake as intake_cli
from board.cli import qstat as qstat_cli
from board.geo import store as geostore
from board.geo.routing import GeoDataMissing
from board.settings import Settings
from board.storage import db, dbroles
from board.usecases import Invalid

Handler = Callable[[argparse.Namespace, Settings], int]





def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.migrate_database_url:
        with bootstrap.migrated(settings):
            pass
        print("schema up to date")
        return 0
    from board.storage import dbroles

    role = dbroles.role_of(settings.database_url)
    owner = db.make_engine(settings.migrate_database_url)
    try:
        db.migrate(owner)
        with owner.begin() as conn:
            schema = dbroles.grant_app(conn, role)
    finally:
        owner.dispose()
    print(f"schema up to date; role {role} may read and write in {schema}, and only add to "
          f"{', '.join(dbroles.APPEND_ONLY)}")
    return 0


def cmd_geo_load(args: argparse.Namespace, settings: Settings) -> int:
    folder = Path(args.folder) if args.folder else settings.geo_dir
    if folder is None:
        print("give a folder holding precinct.geojson and sector.geojson", file=sys.stderr)
        return 2
    with bootstrap.migrated(settings) as engine:
        index = geostore.load_dir(engine, folder, settings.route_max_distance_m)
    print(f"loaded {len(index.precincts())} precincts from {folder}")
    return 0


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        user_id = auth.add_user(engine, args.username, args.password, args.role,
                                args.precincts, args.name or "", args.unit)
    print(f"user {args.username} ({args.role}, precincts {args.precincts}) id {user_id}")
    return 0


def cmd_units_add(args: argparse.Namespace, settings: Settings) -> int:
    from board.domain.access import SYSTEM

    with bootstrap.worker(settings) as d:
        ev = d.add_unit(SYSTEM, args.callsign, args.precinct, args.sector)
    print(f"unit {args.callsign} in the {args.precinct} id {ev['unit_id']}")
    return 0


def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta

    expires = (datetime.now(UTC) + timedelta(days=args.expires_days)
               if args.expires_days else None)
    with bootstrap.migrated(settings) as engine:
        token = auth.create_token(engine, args.username, args.name, expires)
    print(token)
    print("keep it: only its hash is stored"
          + (f"; it expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""), file=sys.stderr)
    return 0


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        rows = auth.list_tokens(engine, include_revoked=args.all)
    print(f"{'id':>4}  {'user':<16} {'role':<10} {'name':<24} {'created':<16} {'expires':<16} "
          f"{'last used':<16} revoked")
    for r in rows:
        print(f"{r.id:>4}  {r.username[:16]:<16} {r.role:<10} {r.name[:24]:<24} "
              f"{_when(r.created_at):<16} {_when(r.expires_at):<16} {_when(r.last_used_at):<16} "
              f"{_when(r.revoked_at)}")
    return 0


def _announce_revoked(settings: Settings, session_ids: list[int]) -> None:
    """Tell the web processes to close these sessions' sockets now (with Redis); without it,
    each hub's re-check of its sockets' sessions closes them within seconds."""
    from board.auth import sessions

    if session_ids and settings.redis_url:
        from board.live.bus import SyncPublisher

        SyncPublisher(settings.redis_url).publish(
            [(sessions.REVOKED, sessions.message(session_ids))])


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        ended = auth.revoke_token(engine, args.token_id)
    _announce_revoked(settings, ended)
    print(f"token {args.token_id} revoked; {len(ended)} session(s) it opened ended")
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        ended = auth.disable_user(engine, args.username, not args.enable)
    _announce_revoked(settings, ended)
    print(f"user {args.username} {'enabled' if args.enable else 'disabled'}"
          + ("" if args.enable else f"; {len(ended)} session(s) ended, tokens refused"))
    return 0


def cmd_users_unlock(args: argparse.Namespace, settings: Settings) -> int:
    with bootstrap.migrated(settings) as engine:
        auth.unlock_user(engine, args.username)
    print(f"user {args.username} unlocked")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import gc

    import uvicorn

    from board.web import health
    from board.web.app import create_app

    # A server started while PostgreSQL is down waits for it (saying so) instead of exiting.
    probe = db.make_engine(settings.database_url)
    try:
        health.wait_for_database(probe)
        with probe.connect() as conn:
            warning = dbroles.owner_warning(conn)
        if warning:
            logging.getLogger("board.serve").warning(warning)
    finally:
        probe.dispose()
    # Built here, not by uvicorn's factory, so a missing map or database says so plainly.
    # permessage-deflate is off by default: live messages are small fragments now, and deflate
    # costs each socket its own zlib state (~45 KB) and a compression of every frame (see
    # BENCHMARKS.md); --ws-deflate turns it on for thin links.
    app = create_app(settings)
    # What startup made (the map's polygons, templates, the schema: ~150,000 objects) lives as
    # long as the process: out of the cyclic collector's sight, each full collection — a pause
    # of every live socket — has half as much to walk (BENCHMARKS.md, "Live updates").
    gc.freeze()
    uvicorn.Server(server_config(app, settings, args.host, args.port,
                                 ws_deflate=getattr(args, "ws_deflate", False))).run()
    return 0


def server_config(app: Any, settings: Settings, host: str = "127.0.0.1", port: int = 8000,
                  ws_deflate: bool = False, **extra: Any) -> Any:
    """How `board serve` runs uvicorn. Behind a reverse proxy, X-Forwarded-Proto and
    X-Forwarded-For are believed only from the addresses in FORWARDED_ALLOW_IPS: from them,
    the scheme (so Secure cookies and absolute links) and the client's address (so the log-in
    throttle and the events' origin) are the proxy's client's; from anyone else they are
    ignored (docs/deploying.md). Sockets are served by `LeanSocketProtocol`."""
    import uvicorn

    from board.observability import logs
    from board.web.socket_protocol import LeanSocketProtocol

    options: dict[str, Any] = {
        "ws": LeanSocketProtocol, "host": host, "port": port, "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips, "log_level": "info",
        "log_config": logs.uvicorn_log_config(), "access_log": False,
        "ws_per_message_deflate": ws_deflate, "backlog": 2048, **extra}
    return uvicorn.Config(app, **options)


def cmd_deadlines(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from board.accountability.deadlines import DeadlineWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with bootstrap.worker(settings) as d:
        worker = DeadlineWorker(d, interval=args.interval)
        if args.once:
            print(f"{worker.run_once()} overdue event(s) written")
            return 0
        worker.run_forever()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from board.cli.demo import seed

    db.close(seed(settings, reset=args.reset, base_url=f"http://{args.host}:{args.port}",
                  show_wall_token=args.show_wall_token).engine)
    if args.no_serve:
        return 0
    return cmd_serve(args, settings)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="board", description="311 Dispatch Board")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text)
        sp.set_defaults(handler=handler)
        return sp

    for name, handler, text in (("serve", cmd_serve, "run the web app"),
                                ("demo", cmd_demo, "load demo data, then serve")):
        sp = add(name, handler, text)
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=8000)
        sp.add_argument("--ws-deflate", action="store_true",
                        help="compress WebSocket messages (permessage-deflate); off by default")
        if name == "demo":
            sp.add_argument("--reset", action="store_true", help="start from an empty database")
            sp.add_argument("--no-serve", action="store_true", help="load the data and stop")
            sp.add_argument("--show-wall-token", action="store_true",
                            help="print the wall display's address with its live token even "
                                 "when the output is not a terminal (it is a credential)")
    add("migrate", cmd_migrate, "create or upgrade the schema")
    dl = add("deadlines", cmd_deadlines, "the deadline worker: overdue events as deadlines pass")
    dl.add_argument("--interval", type=float, default=5.0, help="longest pause between checks (s)")
    dl.add_argument("--once", action="store_true", help="one pass, then stop")
    geo = sub.add_parser("geo", help="geography").add_subparsers(dest="geo_cmd", required=True)
    gl = geo.add_parser("load", help="load precinct.geojson, sector.geojson from a folder")
    gl.add_argument("folder", nargs="?")
    gl.set_defaults(handler=cmd_geo_load)
    users = sub.add_parser("users", help="people").add_subparsers(dest="users_cmd", required=True)
    ua = users.add_parser("add", help="add a user")
    ua.add_argument("username")
    ua.add_argument("--role", required=True,
                    choices=["officer", "supervisor", "commander", "admin", "wall"])
    ua.add_argument("--precincts", required=True, help="e.g. 75 or 75,73 or * (citywide)")
    ua.add_argument("--password", help="at least 8 characters (not for wall displays)")
    ua.add_argument("--name", help="display name")
    ua.add_argument("--unit", help="an officer's unit callsign")
    ua.set_defaults(handler=cmd_users_add)
    ud = users.add_parser("disable", help="no log-in, no tokens; ends the user's sessions")
    ud.add_argument("username")
    ud.add_argument("--enable", action="store_true", help="enable the user again")
    ud.set_defaults(handler=cmd_users_disable)
    uu = users.add_parser("unlock", help="lift a lock-out after failed log-ins")
    uu.add_argument("username")
    uu.set_defaults(handler=cmd_users_unlock)
    un = sub.add_parser("units", help="patrol units").add_subparsers(dest="units_cmd",
                                                                      required=True)
    uadd = un.add_parser("add", help="add a unit")
    uadd.add_argument("callsign")
    uadd.add_argument("--precinct", required=True)
    uadd.add_argument("--sector")
    uadd.set_defaults(handler=cmd_units_add)
    tk = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="tokens_cmd",
                                                                     required=True)
    tc = tk.add_parser("create", help="create a bearer token for a user")
    tc.add_argument("username")
    tc.add_argument("--name", default="api")
    tc.add_argument("--expires-days", type=float, help="refused after this many days")
    tc.set_defaults(handler=cmd_tokens_create)
    tl = tk.add_parser("list", help="tokens with their user, expiry and last use")
    tl.add_argument("--all", action="store_true", help="revoked ones too")
    tl.set_defaults(handler=cmd_tokens_list)
    tr = tk.add_parser("revoke", help="revoke a token now (a wall's screen logs out)")
    tr.add_argument("token_id", type=int)
    tr.set_defaults(handler=cmd_tokens_revoke)
    intake_cli.register(sub)
    check_cli.register(sub)
    qstat_cli.register(sub)
    caller_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from board.observability.logs import configure

    args = parser().parse_args(argv)
    configure(os.environ.get("LOG_LEVEL", "INFO"))
    try:
        return args.handler(args, Settings.from_env(
            make_secret=getattr(args, "makes_secret", True)))
    except Invalid as e:
        print(f"board: {e}", file=sys.stderr)
        return 2
    except (auth.AuthError, ValueError, GeoDataMissing) as e:
        print(f"board: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
