"""Users, passwords, API tokens and CSRF: turning a request into an Actor, or refusing it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection

from board import db
from board.access import CITYWIDE, Actor, Role, parse_precincts
from board.logs import note_user
from board.schema import api_tokens, units, users

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


def actor_from_row(row: Any, source: str = "web") -> Actor:
    actor = Actor(row.id, row.display_name, Role(row.role), parse_precincts(row.precincts),
                  row.unit_id, source)
    note_user(actor)  # this request's log lines name who acted
    return actor


def user_actor(engine: sa.Engine, user_id: int, source: str = "web") -> Actor | None:
    with db.read(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    return actor_from_row(row, source) if row else None


def login(engine: sa.Engine, username: str, password: str) -> Actor | None:
    with db.read(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    try:
        _hasher.verify(row.password_hash if row and row.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return actor_from_row(row) if row and row.password_hash else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: sa.Engine, username: str, name: str) -> str:
    """A new bearer token for a user; only its hash is kept, so show it once."""
    token = "brd_" + secrets.token_urlsafe(32)
    with db.write(engine) as conn:
        user_id = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
        if user_id is None:
            raise AuthError(f"no user {username}")
        conn.execute(api_tokens.insert().values(
            user_id=user_id, name=name, token_hash=_digest(token), created_at=datetime.now(UTC)))
    return token


def token_actor(engine: sa.Engine, token: str, source: str = "api") -> Actor | None:
    with db.read(engine) as conn:
        row = conn.execute(
            sa.select(users).join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == _digest(token))
        ).first()
    return actor_from_row(row, source) if row else None


def current_actor(conn: HTTPConnection) -> Actor | None:
    """The logged-in user of a page or socket (session cookie), read fresh from the database."""
    user_id = conn.session.get("user_id")
    if not isinstance(user_id, int):
        return None
    return user_actor(conn.app.state.dispatch.engine, user_id)


def csrf_token(conn: HTTPConnection) -> str:
    token = conn.session.get("csrf")
    if not token:
        token = conn.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(conn: HTTPConnection, sent: str | None) -> bool:
    expected = conn.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(expected, sent))
