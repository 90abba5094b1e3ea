"""jobs: indexes for the desk's memory (earlier jobs at the same address, or inside a bounding
box around the point)

Revision ID: 91ace0000011
Revises: 0d15a0000010
"""

from alembic import op

revision = "91ace0000011"
down_revision = "0d15a0000010"


def upgrade() -> None:
    op.create_index("ix_jobs_lat_lon", "jobs", ["lat", "lon"])
    op.create_index("ix_jobs_address", "jobs", ["address"])


def downgrade() -> None:
    op.drop_index("ix_jobs_address", "jobs")
    op.drop_index("ix_jobs_lat_lon", "jobs")
