"""accountability: overdue marks, review queue, close policies, command log

Revision ID: acc70003c10e
Revises: b1a0c0de0002
"""

import sqlalchemy as sa
from alembic import op

from board.storage import appendonly

revision = "acc70003c10e"
down_revision = "b1a0c0de0002"


def upgrade() -> None:
    op.create_table(
        "overdue_marks",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "stage"),
    )
    op.create_table(
        "review_queue",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("precinct", sa.String(length=8), nullable=True),
        sa.Column("close_seq", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("review_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_review_queue_precinct", "review_queue", ["precinct"])
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "kind"),
    )
    op.create_table(
        "command_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("precinct", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("corrects_id", sa.Integer(), sa.ForeignKey("command_log.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_command_log_precinct_at", "command_log", ["precinct", "at"])
    appendonly.install(op.get_bind(), "command_log")
    _backfill_reviews()


def _backfill_reviews() -> None:
    """Jobs closed before this migration join the review queue as a close would put them."""
    from board.domain.flags import Fact, flags
    from board.storage.schema import events as ev
    from board.storage.schema import jobs as jb
    from board.storage.schema import review_queue as rq

    conn = op.get_bind()
    closed = conn.execute(sa.select(jb.c.id, jb.c.precinct, jb.c.media).where(
        jb.c.status == "closed", jb.c.history.is_(sa.false()))).all()
    for job in closed:
        rows = conn.execute(sa.select(ev.c.seq, ev.c.kind, ev.c.at, ev.c.payload)
                            .where(ev.c.job_id == job.id).order_by(ev.c.seq)).all()
        found = flags([Fact(r.kind, r.at, r.payload or {}) for r in rows], bool(job.media))
        closes = [r for r in rows if r.kind in ("close", "admin_close")]
        if found and closes:
            conn.execute(rq.insert().values(job_id=job.id, precinct=job.precinct,
                                            close_seq=closes[-1].seq, closed_at=closes[-1].at,
                                            flags=sorted(found)))
