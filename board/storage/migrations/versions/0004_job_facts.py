"""job_facts: one QSTAT row per job, kept by the write path; backfilled from the events

Revision ID: c5a7f0000003
Revises: acc70003c10e
"""

import sqlalchemy as sa
from alembic import op

from board.storage.schema import UTCDateTime

revision = "c5a7f0000003"
down_revision = "acc70003c10e"


def upgrade() -> None:
    op.create_table(
        "job_facts",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("precinct", sa.String(length=8)),
        sa.Column("sector", sa.String(length=8)),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id")),
        sa.Column("complaint_type", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tour", sa.String(length=10), nullable=False),
        sa.Column("history", sa.Boolean(), nullable=False),
        sa.Column("has_photos", sa.Boolean(), nullable=False),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("disposition", sa.String(length=40)),
        sa.Column("summons_count", sa.Integer()),
        sa.Column("administrative", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", UTCDateTime()),
        sa.Column("acked_at", UTCDateTime()),
        sa.Column("arrived_at", UTCDateTime()),
        sa.Column("assign_min", sa.Float()),
        sa.Column("ack_min", sa.Float()),
        sa.Column("arrive_min", sa.Float()),
        sa.Column("close_min", sa.Float()),
        sa.Column("receipt_close_min", sa.Float()),
        sa.Column("photo_viewed", sa.Boolean(), nullable=False),
        sa.Column("reopens", sa.Integer(), nullable=False),
        sa.Column("quick_close", sa.Boolean()),
        sa.Column("no_arrival", sa.Boolean()),
        sa.Column("overdue_ack", sa.Boolean(), nullable=False),
        sa.Column("overdue_arrive", sa.Boolean(), nullable=False),
        sa.Column("overdue_close", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_job_facts_created_at", "job_facts", ["created_at"])
    op.create_index("ix_job_facts_precinct_created", "job_facts", ["precinct", "created_at"])
    op.create_index("ix_job_facts_closed_at", "job_facts", ["closed_at"])
    op.create_index("ix_job_facts_open", "job_facts", ["created_at"],
                    sqlite_where=sa.text("closed_at IS NULL"),
                    postgresql_where=sa.text("closed_at IS NULL"))
    from board.storage.factstore import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("job_facts")
