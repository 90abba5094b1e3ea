"""jobs by created time, alone and within a precinct: QSTAT's chronic locations read a period's
jobs (a precinct page read the precinct's whole year and kept a month of it)

Revision ID: 1d3e0000019
Revises: 1d3e0000018
"""

from alembic import op

revision = "1d3e0000019"
down_revision = "1d3e0000018"


def upgrade() -> None:
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_precinct_created", "jobs", ["precinct", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_precinct_created", "jobs")
    op.drop_index("ix_jobs_created_at", "jobs")
