"""jobs: the memory's indexes lead with the precinct (its reads are within one precinct), so
a planner without statistics never prefers the bare precinct index and reads a whole
precinct per card

Revision ID: 91ace0000013
Revises: 16e0de000012
"""

from alembic import op

revision = "91ace0000013"
down_revision = "16e0de000012"


def upgrade() -> None:
    op.drop_index("ix_jobs_lat_lon", "jobs")
    op.drop_index("ix_jobs_address", "jobs")
    op.create_index("ix_jobs_precinct_lat_lon", "jobs", ["precinct", "lat", "lon"])
    op.create_index("ix_jobs_precinct_address", "jobs", ["precinct", "address"])


def downgrade() -> None:
    op.drop_index("ix_jobs_precinct_address", "jobs")
    op.drop_index("ix_jobs_precinct_lat_lon", "jobs")
    op.create_index("ix_jobs_lat_lon", "jobs", ["lat", "lon"])
    op.create_index("ix_jobs_address", "jobs", ["address"])
