"""`board check`: what a deployment gets wrong, said without changing anything.

Each check is a small function of the settings (and a lazily opened database connection) that
returns its findings; CHECKS lists them in the order they print. Add a check by writing one
function and adding it to CHECKS. A finding is one line: its status (ok, warn, FAIL), its name
and what was found. The exit status is 1 when any finding is FAIL, 0 otherwise (warnings are
advice: a demo on a laptop has some). docs/check.md lists every finding.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from board.settings import Settings
from board.storage import db

OK, WARN, FAIL = "ok", "warn", "FAIL"
#: SECRET_KEY values seen in examples, demos and tests: never a deployment's.
DEMO_SECRETS = frozenset({"test-secret", "secret", "change-me", "changeme", "dev", "demo",
                          "development", "insecure", "please-change-me", "board"})
MIN_SECRET = 32


@dataclass(frozen=True)
class Finding:
    status: str
    name: str
    text: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<18} {self.text}"


@dataclass
class Context:
    """What the checks share: the settings, the environment they came from, one engine."""

    settings: Settings
    env: dict[str, str]
    _engine: sa.Engine | None = field(default=None, repr=False)
    problem: str | None = None  # why the database cannot be read (set by `database`)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


Check = Callable[[Context], Iterator[Finding]]


def _where(url: str) -> str:
    """A database or bus address without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unreadable URL)"


def _sqlite_path(settings: Settings) -> Path | None:
    url = sa.make_url(settings.database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def database(ctx: Context) -> Iterator[Finding]:
    path = _sqlite_path(ctx.settings)
    if path is not None and not path.exists():  # connecting would create it
        ctx.problem = "no database file"
        yield Finding(FAIL, "database", f"{path} does not exist: run `board migrate`")
        return
    try:
        with ctx.engine().connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as e:
        ctx.problem = "unreachable"
        reason = str(e.orig if getattr(e, "orig", None) else e).strip().splitlines()[0][:160]
        yield Finding(FAIL, "database", f"cannot connect to {_where(ctx.settings.database_url)}"
                                        f": {reason}")
        return
    yield Finding(OK, "database", f"reachable ({_where(ctx.settings.database_url)})")


def migrations(ctx: Context) -> Iterator[Finding]:
    if ctx.problem:
        yield Finding(FAIL, "migrations", "not checked: the database cannot be read")
        return
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    with ctx.engine().connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        yield Finding(OK, "migrations", f"schema at the newest migration ({', '.join(heads)})")
    elif not current:
        ctx.problem = "not migrated"
        yield Finding(FAIL, "migrations", "the database has no schema: run `board migrate`")
    else:
        ctx.problem = "behind"
        yield Finding(FAIL, "migrations", f"schema at {', '.join(sorted(current))}, the code "
                                          f"needs {', '.join(heads)}: run `board migrate`")


def bus(ctx: Context) -> Iterator[Finding]:
    url = ctx.settings.redis_url
    if not url:
        note = "one web process only" if not ctx.env.get("DATABASE_URL") else \
            "with DATABASE_URL and several web processes, set REDIS_URL"
        yield Finding(OK if not ctx.env.get("DATABASE_URL") else WARN, "bus",
                      f"in-process (no REDIS_URL): {note}")
        return
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError) as e:
        yield Finding(FAIL, "bus", f"cannot reach {_where(url)}: {str(e)[:160]}")
        return
    yield Finding(OK, "bus", f"Redis reachable ({_where(url)})")


def geography(ctx: Context) -> Iterator[Finding]:
    from board.storage.schema import geo_features

    if ctx.problem:
        yield Finding(FAIL, "geography", "not checked: the database cannot be read")
        return
    with ctx.engine().connect() as conn:
        rows = dict(conn.execute(sa.select(geo_features.c.kind, sa.func.count())
                                 .group_by(geo_features.c.kind)).all())
    if rows.get("precinct"):
        yield Finding(OK, "geography", f"{rows['precinct']} precincts, {rows.get('sector', 0)} "
                                       f"sectors, {rows.get('house', 0)} station houses loaded")
    elif ctx.settings.geo_dir is not None and (ctx.settings.geo_dir / "precinct.geojson").exists():
        yield Finding(WARN, "geography", f"not loaded yet; the first start loads "
                                         f"{ctx.settings.geo_dir} (or `board geo load`)")
    else:
        yield Finding(FAIL, "geography", "no precinct boundaries loaded and none to load: "
                                         "`board geo load FOLDER`")


def event_log(ctx: Context) -> Iterator[Finding]:
    """The application's connection must not be able to change events (DESIGN: privacy and
    trust): triggers on both engines, and on PostgreSQL no UPDATE/DELETE/TRUNCATE grant."""
    from board.storage.appendonly import GUARDED

    if ctx.problem:
        yield Finding(FAIL, "event log", "not checked: the database cannot be read")
        return
    with ctx.engine().connect() as conn:
        if conn.dialect.name == "postgresql":
            present = {r[0] for r in conn.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND "
                "tgrelid = ANY (ARRAY['events'::regclass, 'command_log'::regclass])")}
            wanted = {f"{t}_{g}" for t in GUARDED for g in ("append_only", "no_truncate")}
            user = conn.exec_driver_sql("SELECT current_user").scalar()
            rights = [p for t in GUARDED for p in ("UPDATE", "DELETE", "TRUNCATE")
                      if conn.exec_driver_sql("SELECT has_table_privilege(current_user, %s, %s)",
                                              (t, p)).scalar()]
        else:
            present = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
            wanted = {f"{t}_no_{op}" for t in GUARDED for op in ("update", "delete", "replace")}
            user, rights = None, []
    missing = sorted(wanted - present)
    if missing:
        yield Finding(FAIL, "event log", f"append-only triggers missing: {', '.join(missing)}")
    if rights:
        yield Finding(FAIL, "event log",
                      f"the application's role {user} may {', '.join(sorted(set(rights)))} the "
                      "events or the command log: give the app its own role (MIGRATE_DATABASE_URL"
                      " for the owner, then `board migrate`; docs/deploying.md)")
    if not missing and not rights:
        who = f"role {user} may only read and add" if user else "triggers refuse changes"
        yield Finding(OK, "event log", f"append-only ({who})")


def event_chain(ctx: Context) -> Iterator[Finding]:
    """Every event's link in the hash chain holds (board/storage/chain.py): a log rewritten
    around the triggers (by an owner or a superuser, or in SQLite's file) shows here."""
    from board.storage import chain

    if ctx.problem:
        yield Finding(FAIL, "event chain", "not checked: the database cannot be read")
        return
    verdict = chain.verify(ctx.engine())
    if verdict.ok:
        yield Finding(OK, "event chain", f"{verdict.checked} events, each linked to the one "
                                         "before")
    else:
        yield Finding(FAIL, "event chain", f"event {verdict.broken_at} {verdict.reason}; "
                                           f"{verdict.checked} events before it hold")


def public_url(ctx: Context) -> Iterator[Finding]:
    s = ctx.settings
    if not s.public_url:
        if s.smtp_url or s.sms_webhook_url:
            yield Finding(FAIL, "public url", "notices link to the status page: set PUBLIC_URL")
        else:
            yield Finding(OK, "public url", "not set (links are made from each request)")
        return
    parts = urlsplit(s.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        yield Finding(FAIL, "public url", f"{s.public_url!r} is not an http(s)://host[/path] "
                                          "address")
    elif parts.scheme == "http" and s.https_only:
        yield Finding(FAIL, "public url", "BOARD_HTTPS_ONLY=1 marks cookies Secure, but "
                                          "PUBLIC_URL is http://: browsers would never send them")
    elif parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        yield Finding(WARN, "public url", f"{s.public_url} is plain http: serve the board over "
                                          "https behind a proxy (docs/deploying.md)")
    else:
        yield Finding(OK, "public url", s.public_url)


def mail(ctx: Context) -> Iterator[Finding]:
    if not ctx.settings.smtp_url:
        yield Finding(OK, "mail", "SMTP_URL not set: no email notices")
        return
    from board.caller.notices import SmtpMailer

    try:
        mailer = SmtpMailer(ctx.settings.smtp_url, ctx.settings.mail_from)
    except ValueError as e:
        yield Finding(FAIL, "mail", f"SMTP_URL cannot be read: {e}")
        return
    yield Finding(OK, "mail", f"SMTP server {mailer.host}:{mailer.port}"
                              + (" (TLS)" if mailer.ssl or mailer.starttls else ""))


def single_sign_on(ctx: Context) -> Iterator[Finding]:
    from board.auth.oidc import configuration_problems

    s = ctx.settings
    problems = configuration_problems(s)
    for p in problems:
        yield Finding(FAIL, "single sign-on", p)
    if problems:
        return
    if not s.oidc_enabled:
        yield Finding(OK, "single sign-on", "off (local accounts only)")
        return
    if s.public_url and s.public_url.startswith("http://") and \
            urlsplit(s.public_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        yield Finding(FAIL, "single sign-on", "PUBLIC_URL is plain http: the code and the "
                                              "session would cross the network in clear")
        return
    yield from _discovery(s)


def _discovery(s: Settings) -> Iterator[Finding]:
    import httpx

    url = f"{(s.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"
    try:
        found = httpx.get(url, timeout=5.0)
        found.raise_for_status()
        meta = found.json()
    except (httpx.HTTPError, ValueError) as e:
        yield Finding(FAIL, "single sign-on", f"discovery document unreadable at {url}: "
                                              f"{str(e)[:120]}")
        return
    if meta.get("issuer") != s.oidc_issuer:
        yield Finding(FAIL, "single sign-on", f"the provider calls itself {meta.get('issuer')!r}"
                                              f", not OIDC_ISSUER {s.oidc_issuer!r}")
    elif "S256" not in meta.get("code_challenge_methods_supported", ["S256"]):
        yield Finding(FAIL, "single sign-on", "the provider does not offer PKCE with S256")
    else:
        logout = "with" if meta.get("end_session_endpoint") else "without"
        yield Finding(OK, "single sign-on", f"{s.oidc_issuer} ({logout} provider sign-out); "
                                            f"register {s.public_url}/login/sso/callback")


def secret_key(ctx: Context) -> Iterator[Finding]:
    given = ctx.env.get("SECRET_KEY")
    if not given:
        if ctx.env.get("DATABASE_URL"):
            yield Finding(FAIL, "secret key", "SECRET_KEY not set: each host would make its own "
                                              "and sessions would not cross between them")
        else:
            yield Finding(OK, "secret key", "generated and kept in the var folder")
        return
    if given.lower() in DEMO_SECRETS or len(given) < MIN_SECRET:
        yield Finding(FAIL, "secret key", f"SECRET_KEY is a demo value or shorter than "
                                          f"{MIN_SECRET} characters: make one with "
                                          "`python -c 'import secrets; "
                                          "print(secrets.token_urlsafe(48))'`")
        return
    yield Finding(OK, "secret key", "set")


def demo_passwords(ctx: Context) -> Iterator[Finding]:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    from board.cli.demo import DEMO_PASSWORD, demo_people
    from board.storage.schema import users

    if ctx.problem:
        yield Finding(FAIL, "demo passwords", "not checked: the database cannot be read")
        return
    names = [name for name, *_ in demo_people()]
    with ctx.engine().connect() as conn:
        rows = conn.execute(sa.select(users.c.username, users.c.password_hash).where(
            users.c.username.in_(names), users.c.password_hash.is_not(None),
            users.c.disabled_at.is_(None))).all()
    hasher, weak = PasswordHasher(), []
    for name, hashed in rows:
        try:
            hasher.verify(hashed, DEMO_PASSWORD)
            weak.append(name)
        except (VerificationError, InvalidHashError):
            pass
    if weak:
        shown = ", ".join(sorted(weak)[:6]) + (" …" if len(weak) > 6 else "")
        yield Finding(FAIL, "demo passwords", f"{len(weak)} demo user(s) still log in with the "
                                              f"demo password ({shown}): `board users disable`")
    else:
        yield Finding(OK, "demo passwords", "no demo user logs in with the demo password")


def proxies(ctx: Context) -> Iterator[Finding]:
    trusted = ctx.settings.forwarded_allow_ips
    if trusted.strip() == "*":
        yield Finding(WARN, "proxies", "FORWARDED_ALLOW_IPS=*: any client may claim to be "
                                       "https or another address; name your proxies")
    else:
        yield Finding(OK, "proxies", f"forwarded headers believed from {trusted}")


#: Every check, in the order it prints. One function each; add new ones here.
CHECKS: list[Check] = [database, migrations, bus, geography, event_log, event_chain, public_url,
                       mail, single_sign_on, proxies, secret_key, demo_passwords]


def run(settings: Settings, env: dict[str, str], checks: list[Check] | None = None
        ) -> list[Finding]:
    ctx = Context(settings, env)
    found: list[Finding] = []
    try:
        for check in checks or CHECKS:
            found.extend(check(ctx))
    finally:
        ctx.close()
    return found


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    import os

    found = run(settings, dict(os.environ))
    for f in found:
        print(f.line())
    failed = sum(f.status == FAIL for f in found)
    print(f"{failed} problem(s)" if failed else "no problems found",
          file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("check", help="report what this deployment's settings get wrong "
                                      "(changes nothing)")
    sp.set_defaults(handler=cmd_check, makes_secret=False)
