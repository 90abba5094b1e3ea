"""the caller's loop: status pages, the notice outbox, survey answers, disputes in QSTAT

Revision ID: ca11e0000009
Revises: 550a00000008
"""

import sqlalchemy as sa
from alembic import op

from board.storage.schema import UTCDateTime

revision = "ca11e0000009"
down_revision = "550a00000008"


def upgrade() -> None:
    op.create_table(
        "status_pages",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "survey_answers",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("satisfaction", sa.Integer, nullable=False),
        sa.Column("still_there", sa.Boolean),
        sa.Column("answered_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", UTCDateTime, nullable=False),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("sent_seq", sa.Integer),
        sa.Column("last_error", sa.String(300)),
        sa.UniqueConstraint("job_id", "stage", "channel"),
    )
    op.create_index("ix_notices_due", "notices", ["state", "next_at"])
    with op.batch_alter_table("review_queue") as batch:
        batch.add_column(sa.Column("caller_disputed", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("job_facts") as batch:
        batch.add_column(sa.Column("satisfaction", sa.Integer))
        batch.add_column(sa.Column("still_there", sa.Boolean))
        batch.add_column(sa.Column("caller_disputed", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("job_facts") as batch:
        batch.drop_column("caller_disputed")
        batch.drop_column("still_there")
        batch.drop_column("satisfaction")
    with op.batch_alter_table("review_queue") as batch:
        batch.drop_column("caller_disputed")
    op.drop_index("ix_notices_due", "notices")
    op.drop_table("notices")
    op.drop_table("survey_answers")
    op.drop_table("status_pages")
