"""The tables. Alembic migrations under board/migrations create them; this is the Core view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timezone
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

_TWO = tuple(f"{n:02d}" for n in range(60))


@lru_cache(maxsize=8192)
def _sqlite_text(value: datetime) -> str:
    """An aware datetime at a fixed offset (UTC mostly) as SQLite stores it, in UTC:
    'YYYY-MM-DD HH:MM:SS.ffffff'. Two-digit fields from a table, a third of isoformat's cost;
    remembered, because a batch repeats its moments (now and the deadlines from it, each job's
    times again in its facts row)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    year, micro = value.year, value.microsecond
    text = (f"{year if year >= 1000 else f'{year:04d}'}-{_TWO[value.month]}-{_TWO[value.day]} "
            f"{_TWO[value.hour]}:{_TWO[value.minute]}:{_TWO[value.second]}")
    return f"{text}.{micro:06d}" if micro else f"{text}.000000"


def _to_sqlite(value: datetime | None) -> str | None:
    if value is None:
        return None
    zone = value.tzinfo
    if type(zone) is not timezone:  # a zone's repeated hour has two instants that compare
        if zone is None:            # (and hash) equal: remembered only at a fixed offset
            raise ValueError("naive datetime stored: times must be timezone-aware")
        value = value.astimezone(UTC)
    return _sqlite_text(value)


def _from_sqlite(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every engine. SQLite keeps them as UTC text, written and read by
    the functions above in one call each (the generic route, a naive datetime through SQLite's
    DATETIME type, was half the cost of reading a 500-job board); `board.storage.bulk` binds
    with the same processor."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored: times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], str | None] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _to_sqlite

    def result_processor(self, dialect: sa.Dialect,
                         coltype: Any) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _from_sqlite


metadata = sa.MetaData()

units = sa.Table(
    "units", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("callsign", sa.String(40), nullable=False, unique=True),
    sa.Column("precinct", sa.String(8), nullable=False, index=True),
    sa.Column("sector", sa.String(8)),
    sa.Column("status", sa.String(20), nullable=False, default="available"),
    sa.Column("status_reason", sa.String(200)),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("position_at", UTCDateTime),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("precincts", sa.String(400), nullable=False),  # "75,73" or "*" for citywide
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime),  # set by `board users disable`: no login, no token
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("locked_until", UTCDateTime),  # after repeated failures; `board users unlock`
    # "issuer subject" of a person signed in through OpenID Connect (board/auth/oidc.py);
    # NULL for a local account. Such a user has no password.
    sa.Column("sso_subject", sa.String(400), unique=True),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),
)

# Server-side sessions: the cookie holds only a random secret, whose hash is kept here, so a
# session can be revoked (log-out, a disabled user, a revoked wall token) and times out.
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id")),  # a wall's token
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("address", sa.String(64)),
    sa.Column("user_agent", sa.String(300)),
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("external_key", sa.String(40), unique=True),
    sa.Column("precinct", sa.String(8), index=True),
    sa.Column("sector", sa.String(8)),
    sa.Column("route_method", sa.String(12), nullable=False),
    sa.Column("complaint_type", sa.String(120), nullable=False),
    sa.Column("descriptor", sa.String(200), nullable=False, default=""),
    sa.Column("location_type", sa.String(200), nullable=False, default=""),
    sa.Column("address", sa.String(300), nullable=False, default=""),
    sa.Column("borough", sa.String(40), nullable=False, default=""),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("fields", sa.JSON, nullable=False, default=dict),
    sa.Column("media", sa.JSON, nullable=False, default=list),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
    sa.Column("stack_pos", sa.Integer),
    sa.Column("disposition", sa.String(40)),
    sa.Column("summons_count", sa.Integer),
    sa.Column("resolution", sa.Text),
    sa.Column("administrative", sa.Boolean, nullable=False, default=False),
    # A row the city had already closed when it was imported: a closed job with the 311
    # created/closed times and resolution, never dispatched (no assignment or arrival data).
    sa.Column("history", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Related requests worked as one: the id of the incident's first job (NULL = on its own).
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("jobs.id"), index=True),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("ack_due", UTCDateTime, nullable=False),
    sa.Column("arrive_due", UTCDateTime, nullable=False),
    sa.Column("close_due", UTCDateTime, nullable=False),
    sa.Column("external_status", sa.String(40)),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the desk's memory: earlier jobs at an address or in a box around a point
    sa.Index("ix_jobs_precinct_lat_lon", "precinct", "lat", "lon"),
    sa.Index("ix_jobs_precinct_address", "precinct", "address"),
    # a period's jobs, citywide and in a precinct (QSTAT's chronic locations)
    sa.Index("ix_jobs_created_at", "created_at"),
    sa.Index("ix_jobs_precinct_created", "precinct", "created_at"),
)

events = sa.Table(
    "events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
    sa.Column("precinct", sa.String(8), index=True),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("before", sa.String(20)),
    sa.Column("after", sa.String(20)),
    sa.Column("payload", sa.JSON, nullable=False, default=dict),
    # where the action came from, besides its channel (source): client address and agent
    sa.Column("address", sa.String(64)),
    sa.Column("user_agent", sa.String(300)),
    # SHA-256 of the previous event's chain and this event's content (board/storage/chain.py)
    sa.Column("chain", sa.String(64)),
    # a job's timeline, and its newest event (a write's conflict check), without a sort
    sa.Index("ix_events_job_seq", "job_id", "seq"),
)

priority_rules = sa.Table(
    "priority_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("complaint_type", sa.String(120), nullable=False),
    sa.Column("descriptor", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("ack_minutes", sa.Integer, nullable=False),
    sa.Column("arrive_minutes", sa.Integer, nullable=False),
    sa.Column("close_minutes", sa.Integer, nullable=False),
    sa.UniqueConstraint("complaint_type", "descriptor"),
)

geo_features = sa.Table(
    "geo_features", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # precinct | sector | house
    sa.Column("code", sa.String(10), nullable=False),
    sa.Column("feature", sa.JSON, nullable=False),
)

quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(60), nullable=False),
    sa.Column("external_key", sa.String(40)),
    sa.Column("reason", sa.String(300), nullable=False),
    sa.Column("raw", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
)

cursors = sa.Table(
    "cursors", metadata,
    sa.Column("name", sa.String(60), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Accountability (issue 7). Each table below is written only by board.usecases.

# One row per job and stage that went overdue, written in the transaction of its `overdue`
# event: the primary key is what makes "once per job and stage" hold for any number of workers.
overdue_marks = sa.Table(
    "overdue_marks", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("stage", sa.String(8), primary_key=True),  # ack | arrive | close
    sa.Column("seq", sa.Integer, nullable=False),  # the overdue event
)

# The review queue: a job whose latest close carried flags, until a supervisor records a
# finding. Kept by the write path (close, admin close, review) so counting it is one index read.
review_queue = sa.Table(
    "review_queue", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("precinct", sa.String(8), index=True),
    sa.Column("close_seq", sa.Integer, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=False),
    sa.Column("flags", sa.JSON, nullable=False),
    sa.Column("review_seq", sa.Integer),  # NULL: still to review
    # The caller said "still there" within a day of the close: first in the queue.
    sa.Column("caller_disputed", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # The rows still waiting, read on every page a reviewer opens (the header's count); the
    # reviewed ones stay for the record and would otherwise grow every scan.
    sa.Index("ix_review_queue_waiting", "precinct", sqlite_where=sa.text("review_seq IS NULL"),
             postgresql_where=sa.text("review_seq IS NULL")),
)

# Close policies, per precinct or citywide ("*"); every change is also a `set_policy` event.
policies = sa.Table(
    "policies", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("minutes", sa.Integer),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(120), nullable=False),
    sa.Column("metres", sa.Integer),  # position_on_scene's N
    sa.Column("dispositions", sa.String(400)),  # evidence_photo's: codes, comma-separated
    sa.UniqueConstraint("scope", "kind"),
)

# The precinct's command log: append-only (triggers refuse UPDATE and DELETE); a correction is a
# new entry naming the one it corrects.
command_log = sa.Table(
    "command_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("precinct", sa.String(8), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("corrects_id", sa.Integer, sa.ForeignKey("command_log.id")),
    sa.Index("ix_command_log_precinct_at", "precinct", "at"),
)

# One row per job, kept by the write path in each event's transaction (board/factstore.py):
# what QSTAT aggregates, so a city-year page reads rows, not a scan of every event.
job_facts = sa.Table(
    "job_facts", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("precinct", sa.String(8)),
    sa.Column("sector", sa.String(8)),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id")),
    sa.Column("complaint_type", sa.String(120), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False),  # New York local day of created_at
    sa.Column("tour", sa.String(10), nullable=False),  # day | evening | midnight
    sa.Column("history", sa.Boolean, nullable=False),
    sa.Column("has_photos", sa.Boolean, nullable=False),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("disposition", sa.String(40)),
    sa.Column("summons_count", sa.Integer),
    sa.Column("administrative", sa.Boolean, nullable=False),
    sa.Column("assigned_at", UTCDateTime),
    sa.Column("acked_at", UTCDateTime),
    sa.Column("arrived_at", UTCDateTime),
    sa.Column("assign_min", sa.Float),
    sa.Column("ack_min", sa.Float),
    sa.Column("arrive_min", sa.Float),
    sa.Column("close_min", sa.Float),
    sa.Column("receipt_close_min", sa.Float),
    sa.Column("photo_viewed", sa.Boolean, nullable=False),
    sa.Column("reopens", sa.Integer, nullable=False),
    sa.Column("quick_close", sa.Boolean),
    sa.Column("no_arrival", sa.Boolean),
    # late to acknowledge while no unit had it: QSTAT's "not dispatched"
    sa.Column("overdue_dispatch", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("overdue_ack", sa.Boolean, nullable=False),
    sa.Column("overdue_arrive", sa.Boolean, nullable=False),
    sa.Column("overdue_close", sa.Boolean, nullable=False),
    # The caller's verdict (issue 16): the survey answer and a "still there" dispute.
    sa.Column("satisfaction", sa.Integer),
    sa.Column("still_there", sa.Boolean),
    sa.Column("caller_disputed", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # Proof of presence and evidence (issue 16): the latest arrival's position, the latest
    # field close's officer photos and summons numbers (None: nothing known, e.g. history).
    sa.Column("arrival_distance_m", sa.Float),
    sa.Column("arrival_confirmed", sa.Boolean),
    sa.Column("evidence_photos", sa.Integer),
    sa.Column("summons_numbers", sa.Integer),
    # The card's flags now (board.domain.flags.step), and the round of work since the last
    # reopen that a close's flags are worked out from (board.domain.flags.Progress): a card,
    # and a close, without reading the job's timeline.
    sa.Column("flags", sa.JSON),
    sa.Column("round_assigned_at", UTCDateTime),
    sa.Column("round_arrived", sa.Boolean),
    sa.Column("round_viewed", sa.Boolean),
    sa.Column("round_presence", sa.Boolean),
    sa.Index("ix_job_facts_precinct_created", "precinct", "created_at"),
    sa.Index("ix_job_facts_open", "created_at", sqlite_where=sa.text("closed_at IS NULL"),
             postgresql_where=sa.text("closed_at IS NULL")),
    sa.Index("ix_job_facts_closed_at", "closed_at"),
)

# The caller's loop (issue 16), each table written only by board.usecases.

# A request's public status page: an unguessable token made with the job (secrets, 32 bytes).
# Kept as it is (not hashed): the notice worker and Open311 build the page's address from it.
status_pages = sa.Table(
    "status_pages", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# The caller's one answer per request: the primary key is what makes "one answer" hold.
survey_answers = sa.Table(
    "survey_answers", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("satisfaction", sa.Integer, nullable=False),  # 1 strongly disagree … 5 agree
    sa.Column("still_there", sa.Boolean),
    sa.Column("answered_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # status_page | import
    sa.Column("seq", sa.Integer, nullable=False),  # the survey_answer event
)

# The notice outbox: one row per job, stage and channel (the unique key: never twice), claimed
# in the database before it is sent (board/caller/notices.py says how a crash is handled).
notices = sa.Table(
    "notices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("stage", sa.String(12), nullable=False),  # on_scene | closed
    sa.Column("channel", sa.String(8), nullable=False),  # email | sms
    sa.Column("event_seq", sa.Integer, nullable=False),  # the event that called for it
    sa.Column("state", sa.String(10), nullable=False),  # pending | sending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("sent_seq", sa.Integer),  # the notice_sent event
    sa.Column("last_error", sa.String(300)),
    sa.UniqueConstraint("job_id", "stage", "channel"),
    sa.Index("ix_notices_due", "state", "next_at"),
)

# The officer's photos on a close (issue 16): the bytes themselves, checked and stripped of
# location metadata on the way in (board/domain/evidence.py). Seen only through a recorded
# view (`view_evidence`), by the job's number `n`: no read hands out an address for them.
evidence_photos = sa.Table(
    "evidence_photos", metadata,
    sa.Column("id", sa.String(43), primary_key=True),  # unguessable: secrets.token_urlsafe
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),  # 0, 1, … per job, in the order attached
    sa.Column("content_type", sa.String(20), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.UniqueConstraint("job_id", "n"),
)

# Summons numbers claimed on closes: the primary key makes a number belong to one job, on both
# engines and under any race (the second writer's insert finds the first's row).
summons_numbers = sa.Table(
    "summons_numbers", metadata,
    sa.Column("number", sa.String(40), primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
)

# The JSON API's Idempotency-Key (board/storage/idempotency.py): one row per user and key,
# claimed before the write (the primary key makes the claim race-safe on both engines), marked
# with the event it wrote in the write's own transaction, and filled with the answer after it,
# so a retry is answered from here (or from that event) without writing again.
idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of method, path, body
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seq", sa.Integer),  # the last event the write committed; None until it has
    sa.Column("status", sa.Integer),  # None while the first request is running
    sa.Column("response", sa.Text),  # the JSON answered
    sa.Index("ix_idempotency_keys_created", "created_at"),
)

# Failed log-ins per user name, address and known device (board/auth/throttle.py's Backoff),
# shared by every process of one database: two `board serve` processes behind a balancer give
# an attacker no more attempts than one. Keys are hashed (kind and value).
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 of kind and key
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Index("ix_login_failures_last_at", "last_at"),
)
