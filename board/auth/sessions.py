"""Server-side sessions: what a log-in (or a wall's token) turns into, and how it ends.

The cookie holds only a random secret; its hash, the user, the times and where it came from are
kept in the `sessions` table, so a session can be revoked at once (log-out, `board users
disable`, `board tokens revoke` for a wall) and times out: a person's after `idle` without a
request and `absolute` after log-in; a wall's lasts as long as the token it was exchanged for.
Every read checks the user is not disabled. Whoever revokes sessions announces their ids
(`REVOKED` on the bus) so every web process closes their sockets; hubs also re-check the
sessions of their open sockets every few seconds, which catches expiry and a lost message.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from board.storage import db
from board.storage.schema import api_tokens, sessions, users

#: The bus channel on which revoked session ids are announced.
REVOKED = "revoked"
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta = timedelta(hours=4)
    absolute: timedelta = timedelta(hours=12)


def timeouts_of(settings: Any) -> Timeouts:
    """The configured timeouts (SESSION_IDLE_MINUTES, SESSION_MAX_HOURS)."""
    return Timeouts(timedelta(minutes=settings.session_idle_minutes),
                    timedelta(hours=settings.session_max_hours))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def start(engine: sa.Engine, user_id: int, *, token_id: int | None = None,
          expires_at: datetime | None = None, address: str | None = None,
          user_agent: str | None = None, now: datetime | None = None) -> tuple[int, str]:
    """A new session for a user: its id and the secret for the cookie (kept only hashed)."""
    now = now or _now()
    secret = secrets.token_urlsafe(32)
    with db.write(engine) as conn:
        session_id = conn.execute(sessions.insert().values(
            secret_hash=digest(secret), user_id=user_id, token_id=token_id, created_at=now,
            last_seen_at=now, expires_at=expires_at, address=(address or "")[:64] or None,
            user_agent=(user_agent or "")[:300] or None,
        )).inserted_primary_key[0]
    return session_id, secret


def _valid(timeouts: Timeouts, now: datetime) -> Any:
    """The SQL condition of a live session (joined with its user and, for a wall, its token)."""
    person = sa.and_(sessions.c.token_id.is_(None),
                     sessions.c.last_seen_at > now - timeouts.idle,
                     sessions.c.created_at > now - timeouts.absolute)
    device = sa.and_(sessions.c.token_id.is_not(None), api_tokens.c.revoked_at.is_(None),
                     sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))
    return sa.and_(sessions.c.revoked_at.is_(None), users.c.disabled_at.is_(None),
                   sa.or_(sessions.c.expires_at.is_(None), sessions.c.expires_at > now),
                   sa.or_(person, device))


def _joined() -> Any:
    return (sessions.join(users, users.c.id == sessions.c.user_id)
            .outerjoin(api_tokens, api_tokens.c.id == sessions.c.token_id))


def resolve(engine: sa.Engine, secret: str, timeouts: Timeouts,
            now: datetime | None = None) -> tuple[int, Any] | None:
    """The session id and user row of a live session, or None; notes that it was used."""
    now = now or _now()
    with db.read(engine) as conn:
        row = conn.execute(
            sa.select(sessions.c.id.label("session_id"), sessions.c.last_seen_at, users)
            .select_from(_joined())
            .where(sessions.c.secret_hash == digest(secret), _valid(timeouts, now))).first()
    if row is None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        with db.write(engine) as conn:
            conn.execute(sessions.update().where(sessions.c.id == row.session_id)
                         .values(last_seen_at=now))
    return row.session_id, row


def live_ids(engine: sa.Engine, ids: Iterable[int], timeouts: Timeouts,
             now: datetime | None = None) -> set[int]:
    """Which of these sessions are still live (for the hubs' re-check of open sockets)."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    with db.read(engine) as conn:
        return set(conn.execute(
            sa.select(sessions.c.id).select_from(_joined())
            .where(sessions.c.id.in_(wanted), _valid(timeouts, now or _now()))).scalars())


def revoke(engine: sa.Engine, *, session_id: int | None = None, user_id: int | None = None,
           token_id: int | None = None, now: datetime | None = None) -> list[int]:
    """End sessions (one, a user's, or those a token opened); returns their ids to announce."""
    where = [sessions.c.revoked_at.is_(None)]
    if session_id is not None:
        where.append(sessions.c.id == session_id)
    if user_id is not None:
        where.append(sessions.c.user_id == user_id)
    if token_id is not None:
        where.append(sessions.c.token_id == token_id)
    if len(where) == 1:
        raise ValueError("say which sessions to revoke")
    with db.write(engine) as conn:
        ids = list(conn.execute(sa.select(sessions.c.id).where(*where)).scalars())
        if ids:
            conn.execute(sessions.update().where(sessions.c.id.in_(ids))
                         .values(revoked_at=now or _now()))
    return ids


def message(ids: Iterable[int]) -> str:
    return json.dumps(sorted(set(ids)))


def parse_message(data: str) -> set[int]:
    try:
        ids = json.loads(data)
    except ValueError:
        return set()
    return {i for i in ids if isinstance(i, int)} if isinstance(ids, list) else set()
