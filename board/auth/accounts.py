"""Users, passwords, API tokens and CSRF: turning a request into an Actor, or refusing it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from board.auth import sessions
from board.auth.throttle import Busy, LoginGuard, delay, user_key
from board.domain.access import CITYWIDE, Actor, Role, parse_precincts
from board.observability.logs import note_user
from board.storage import db
from board.storage.schema import api_tokens, units, users
from board.storage.schema import sessions as sessions_table

__all__ = ["AuthError", "Busy", "LoginGuard", "LoginOutcome", "current_actor", "login"]

log = logging.getLogger("board.auth")

_hasher = PasswordHasher()
# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AuthError(Exception):
    pass


def add_user(engine: sa.Engine, username: str, password: str | None, role: str, precincts: str,
             display_name: str = "", unit_callsign: str | None = None) -> int:
    """Create a user; wall display devices have no password, only tokens."""
    role = Role(role).value
    username = username.strip()
    if not username or len(username) > 80:
        raise AuthError("username must be 1 to 80 characters")
    if role != Role.WALL.value and (not password or len(password) < 8):
        raise AuthError("password must be at least 8 characters")
    scope = parse_precincts(precincts)
    if not scope:
        raise AuthError("give the user's precincts, e.g. 75 or 75,73, or * for citywide")
    with db.write(engine) as conn:
        unit_id = None
        if unit_callsign:
            unit_id = conn.execute(
                sa.select(units.c.id).where(units.c.callsign == unit_callsign)).scalar()
            if unit_id is None:
                raise AuthError(f"no unit {unit_callsign}")
            unit_precinct = conn.execute(
                sa.select(units.c.precinct).where(units.c.id == unit_id)).scalar()
            if CITYWIDE not in scope and unit_precinct not in scope:
                raise AuthError(f"unit {unit_callsign} is in the {unit_precinct}, outside "
                                f"the user's precincts")
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise AuthError(f"user {username} exists already")
        return conn.execute(users.insert().values(
            username=username, display_name=display_name or username,
            password_hash=_hasher.hash(password) if password else None, role=role,
            precincts=",".join(sorted(scope)), unit_id=unit_id, created_at=datetime.now(UTC),
        )).inserted_primary_key[0]


def actor_from_row(row: Any, source: str = "web", **origin: Any) -> Actor:
    actor = Actor(row.id, row.display_name, Role(row.role), parse_precincts(row.precincts),
                  row.unit_id, source, **origin)
    note_user(actor)  # this request's log lines name who acted
    return actor


def user_actor(engine: sa.Engine, user_id: int, source: str = "web") -> Actor | None:
    with db.read(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    return actor_from_row(row, source) if row else None


# -- single sign-on (board/auth/oidc.py) ------------------------------------------------------


def sso_user(engine: sa.Engine, subject: str, name: str, username_hint: str, role: Role,
             precincts: frozenset[str], unit: str | None = None,
             now: datetime | None = None) -> int:
    """The user of a mapped single sign-on person: created at the first sign-in (no password,
    user name `sso:<their provider user name>`), given the role, precincts and unit of their
    groups at every sign-in. A disabled one is refused; so is a unit not on the board."""
    now = now or datetime.now(UTC)
    places = ",".join(sorted(precincts)) if CITYWIDE not in precincts else CITYWIDE
    with db.write(engine) as conn:
        unit_id = None
        if unit:
            found = conn.execute(sa.select(units.c.id, units.c.precinct)
                                 .where(units.c.callsign == unit)).first()
            if found is None or (CITYWIDE not in precincts and found.precinct not in precincts):
                raise AuthError(f"your group names unit {unit}, which is not on the board in "
                                "your precinct: ask your administrator")
            unit_id = found.id
        row = conn.execute(sa.select(users.c.id, users.c.disabled_at)
                           .where(users.c.sso_subject == subject)).first()
        values = {"display_name": name[:120] or username_hint, "role": role.value,
                  "precincts": places, "unit_id": unit_id}
        if row is not None:
            if row.disabled_at is not None:
                raise AuthError("this account is disabled on the board")
            conn.execute(users.update().where(users.c.id == row.id).values(**values))
            return row.id
        username = _free_username(conn, f"sso:{username_hint}"[:72], subject)
        return conn.execute(users.insert().values(
            username=username, password_hash=None, sso_subject=subject, created_at=now,
            **values)).inserted_primary_key[0]


def _free_username(conn: sa.Connection, wanted: str, subject: str) -> str:
    """`wanted`, or `wanted#<8 hex of the subject>` when another user has it."""
    taken = conn.execute(sa.select(users.c.id).where(users.c.username == wanted)).first()
    return f"{wanted}#{_digest(subject)[:8]}" if taken else wanted


# -- log-in -----------------------------------------------------------------------------------

LOCK_AFTER = 10                     # consecutive failures before unknown devices wait …
LOCK_BASE = 30.0                    # … this many seconds, doubling with each further one …
LOCK_FOR = timedelta(minutes=15)    # … up to this (or until `board users unlock`)


@dataclass(frozen=True)
class LoginOutcome:
    actor: Actor | None
    retry_after: int = 0  # > 0: refused without checking the password (throttled or held)
    locked: bool = False
    known_device: bool = False  # a success: the page remembers this browser for the account


def login(engine: sa.Engine, username: str, password: str, guard: LoginGuard | None = None,
          address: str = "", now: datetime | None = None, device: str = "") -> LoginOutcome:
    """Check a password, throttled with growing delays per user name, address and account
    (never a hard lock a stranger can trigger): `device`, this account's known-device id from
    its signed cookie, and an address the account logged in from before pass an account under
    attack from elsewhere. Hashing is bounded; every failure is logged and counted."""
    guard = guard or LoginGuard()
    now = now or datetime.now(UTC)
    if not device and (wait := guard.per_address.retry_after(address)):
        return _throttled(username, address, wait)
    with db.read(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        known_address = bool(row is not None and not device and address
                             and _logged_in_from(conn, row.id, address))
    if wait := guard.retry_after(username, address, device, known_address):
        return _throttled(username, address, wait)
    held = row is not None and row.locked_until is not None and row.locked_until > now
    if held and not (device or known_address):
        log.warning("login refused for %r from %s: account held after failed log-ins",
                    username[:80], address)
        return LoginOutcome(None, max(1, int((row.locked_until - now).total_seconds())), True)
    if not _password_ok(row, password, guard):
        guard.failed(username, address, device)
        log.warning("login failed for %r from %s", username[:80], address)
        if row is not None:
            _count_failure(engine, row.id, now)
        return LoginOutcome(None)
    attacked = held or guard.attacked(username)
    guard.succeeded(username, device, attacked)
    if attacked:
        log.warning("login for %r from %s let through as a known %s while its account is "
                    "throttled", username[:80], address, "device" if device else "address")
    elif row.failed_logins or row.locked_until is not None:
        with db.write(engine) as conn:
            conn.execute(users.update().where(users.c.id == row.id)
                         .values(failed_logins=0, locked_until=None))
    return LoginOutcome(actor_from_row(row), known_device=True)


def _throttled(username: str, address: str, wait: int) -> LoginOutcome:
    log.warning("login throttled for %r from %s (retry in %ss)", username[:80], address, wait)
    return LoginOutcome(None, wait)


def _password_ok(row: Any, password: str, guard: LoginGuard) -> bool:
    if not guard.hashing.acquire(timeout=guard.hash_wait_s):
        raise Busy("too many log-ins at once")
    try:
        _hasher.verify(row.password_hash if row and row.password_hash else _DUMMY_HASH, password)
        return bool(row and row.password_hash and row.disabled_at is None)
    except (VerificationError, InvalidHashError):
        return False
    finally:
        guard.hashing.release()


def _logged_in_from(conn: sa.Connection, user_id: int, address: str) -> bool:
    """Whether this account ever had a session from this address (a known address)."""
    return conn.execute(sa.select(sessions_table.c.id).where(
        sessions_table.c.user_id == user_id, sessions_table.c.address == address[:64],
        sessions_table.c.token_id.is_(None)).limit(1)).first() is not None


def _count_failure(engine: sa.Engine, user_id: int, now: datetime) -> None:
    """One more failure in a row; from LOCK_AFTER on, unknown devices wait a doubling delay."""
    with db.write(engine) as conn:
        count = (conn.execute(sa.select(users.c.failed_logins)
                              .where(users.c.id == user_id)).scalar() or 0) + 1
        values: dict[str, Any] = {"failed_logins": count}
        if count >= LOCK_AFTER:
            wait = delay(count - LOCK_AFTER + 1, LOCK_BASE, LOCK_FOR.total_seconds())
            values["locked_until"] = now + timedelta(seconds=wait)
            log.warning("account of user %s locked to unknown devices until %s after %s failed "
                        "log-ins in a row", user_id, values["locked_until"].isoformat(), count)
        conn.execute(users.update().where(users.c.id == user_id).values(**values))


# -- known devices (OWASP's device cookie): a browser that logged in to an account before ----

DEVICE_COOKIE = "board_device"
DEVICE_DAYS = 90
_DEVICE_SALT = "board known device"


def _device_signer(conn: HTTPConnection) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(conn.app.state.settings.secret_key, salt=_DEVICE_SALT)


def _device_ids(conn: HTTPConnection) -> dict[str, str]:
    raw = conn.cookies.get(DEVICE_COOKIE, "")
    if not raw or len(raw) > 2000:
        return {}
    try:
        found = _device_signer(conn).loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def known_device(conn: HTTPConnection, username: str) -> str:
    """This browser's device id for the account, if it logged in to it here before; "" if not."""
    return _device_ids(conn).get(user_key(username), "")


def remember_device(conn: HTTPConnection, response: Response, username: str) -> None:
    """After a successful log-in: sign this browser in as a known device of the account (a few
    accounts per browser, kept 90 days; only /login reads it)."""
    ids = _device_ids(conn)
    key = user_key(username)
    ids[key] = ids.pop(key, "") or secrets.token_urlsafe(12)
    ids = dict(list(ids.items())[-5:])
    response.set_cookie(DEVICE_COOKIE, _device_signer(conn).dumps(ids),
                        max_age=DEVICE_DAYS * 86400, path="/login", httponly=True, samesite="lax",
                        secure=conn.app.state.settings.https_only)


def _user_id(conn: sa.Connection, username: str) -> int:
    user_id = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if user_id is None:
        raise AuthError(f"no user {username}")
    return user_id


def unlock_user(engine: sa.Engine, username: str) -> None:
    """Lift the hold after failed log-ins (an admin's `board users unlock`); a process's own
    per-name delay still ends by itself within minutes."""
    with db.write(engine) as conn:
        conn.execute(users.update().where(users.c.id == _user_id(conn, username))
                     .values(failed_logins=0, locked_until=None))


def disable_user(engine: sa.Engine, username: str, disabled: bool = True) -> list[int]:
    """Disable (or enable again) a user: no log-in, no token; returns the sessions ended."""
    with db.write(engine) as conn:
        user_id = _user_id(conn, username)
        conn.execute(users.update().where(users.c.id == user_id)
                     .values(disabled_at=datetime.now(UTC) if disabled else None))
    return sessions.revoke(engine, user_id=user_id) if disabled else []


# -- API and device tokens --------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: sa.Engine, username: str, name: str,
                 expires_at: datetime | None = None) -> str:
    """A new bearer token for a user; only its hash is kept, so show it once."""
    token = "brd_" + secrets.token_urlsafe(32)
    with db.write(engine) as conn:
        conn.execute(api_tokens.insert().values(
            user_id=_user_id(conn, username), name=name, token_hash=_digest(token),
            created_at=datetime.now(UTC), expires_at=expires_at))
    return token


def list_tokens(engine: sa.Engine, include_revoked: bool = False) -> list[Any]:
    q = (sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at,
                   api_tokens.c.expires_at, api_tokens.c.revoked_at, api_tokens.c.last_used_at,
                   users.c.username, users.c.role)
         .join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id))
    if not include_revoked:
        q = q.where(api_tokens.c.revoked_at.is_(None))
    with db.read(engine) as conn:
        return list(conn.execute(q))


def revoke_token(engine: sa.Engine, token_id: int) -> list[int]:
    """Revoke a token at once; returns the ids of the (wall) sessions it had opened."""
    with db.write(engine) as conn:
        done = conn.execute(api_tokens.update().where(
            api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC)))
        if done.rowcount != 1:
            raise AuthError(f"no live token {token_id}")
    return sessions.revoke(engine, token_id=token_id)


def token_row(engine: sa.Engine, token: str, now: datetime | None = None) -> Any:
    """The user of a live token (not revoked, not expired, user not disabled), with the
    token's id as token_id; None otherwise."""
    now = now or datetime.now(UTC)
    with db.read(engine) as conn:
        row = conn.execute(
            sa.select(users, api_tokens.c.id.label("token_id"), api_tokens.c.expires_at,
                      api_tokens.c.last_used_at)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == _digest(token), api_tokens.c.revoked_at.is_(None),
                   users.c.disabled_at.is_(None))
        ).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= sessions.TOUCH_EVERY:
        with db.write(engine) as conn:
            conn.execute(api_tokens.update().where(api_tokens.c.id == row.token_id)
                         .values(last_used_at=now))
    return row


def token_actor(engine: sa.Engine, token: str, source: str = "api",
                **origin: Any) -> Actor | None:
    row = token_row(engine, token)
    return actor_from_row(row, source, **origin) if row else None


# -- sessions (the cookie holds the secret of a server-side session) -------------------------


def origin_of(conn: HTTPConnection) -> dict[str, Any]:
    """Where a request came from, as events record it."""
    return {"address": conn.client.host if conn.client else None,
            "user_agent": conn.headers.get("user-agent", "")[:300] or None}


def timeouts(conn: HTTPConnection) -> sessions.Timeouts:
    return sessions.timeouts_of(conn.app.state.settings)


def start_session(conn: HTTPConnection, user_id: int, token_id: int | None = None,
                  expires_at: datetime | None = None) -> int:
    """Log a browser in: a fresh server-side session, its secret in the (fresh) cookie."""
    origin = origin_of(conn)
    session_id, secret = sessions.start(conn.app.state.dispatch.engine, user_id,
                                        token_id=token_id, expires_at=expires_at,
                                        address=origin["address"],
                                        user_agent=origin["user_agent"])
    conn.session.clear()
    conn.session["sid"] = secret
    return session_id


def current_actor(conn: HTTPConnection) -> Actor | None:
    """The logged-in user of a page or socket: the cookie's session, read fresh from the
    database (revoked, timed out or disabled is logged out)."""
    secret = conn.session.get("sid")
    if not isinstance(secret, str) or len(secret) > 100:
        return None
    found = sessions.resolve(conn.app.state.dispatch.engine, secret, timeouts(conn))
    if found is None:
        # Ended (revoked, timed out, user disabled): forget it, so the browser is told at once
        # that nobody is signed in here (the phone's kept pages go with it: browser_policy).
        conn.session.pop("sid", None)
        return None
    session_id, row = found
    return actor_from_row(row, session_id=session_id, **origin_of(conn))


def end_session(conn: HTTPConnection) -> list[int]:
    """Log out: revoke this browser's session; returns its id to announce."""
    secret = conn.session.get("sid")
    conn.session.clear()
    if not isinstance(secret, str):
        return []
    found = sessions.resolve(conn.app.state.dispatch.engine, secret, timeouts(conn))
    if found is None:
        return []
    return sessions.revoke(conn.app.state.dispatch.engine, session_id=found[0])


def csrf_token(conn: HTTPConnection) -> str:
    token = conn.session.get("csrf")
    if not token:
        token = conn.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(conn: HTTPConnection, sent: str | None) -> bool:
    expected = conn.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(expected, sent))
