"""job_facts.flags and the round of work (round_*): a card's flags kept as its events are
written, so neither a card nor a close folds a timeline that grows with every assignment;
events by (job_id, seq), so a job's timeline and its newest event are read without a sort
(the facts are folded again)

Revision ID: 1d3e0000018
Revises: 1d3e0000017
"""

import sqlalchemy as sa
from alembic import op

from board.storage.schema import UTCDateTime

revision = "1d3e0000018"
down_revision = "1d3e0000017"


def upgrade() -> None:
    with op.batch_alter_table("job_facts") as batch:
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("round_assigned_at", UTCDateTime(), nullable=True))
        for name in ("round_arrived", "round_viewed", "round_presence"):
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=True))
    op.create_index("ix_events_job_seq", "events", ["job_id", "seq"])
    op.drop_index("ix_events_job_id", "events")
    from board.storage.factstore import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.create_index("ix_events_job_id", "events", ["job_id"])
    op.drop_index("ix_events_job_seq", "events")
    with op.batch_alter_table("job_facts") as batch:
        for name in ("round_presence", "round_viewed", "round_arrived", "round_assigned_at",
                     "flags"):
            batch.drop_column(name)
