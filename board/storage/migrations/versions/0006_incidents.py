"""incidents: a job can be linked into another job's incident (related 311 requests)

Revision ID: 1c1de0000005
Revises: 5ec0a0040001
"""

import sqlalchemy as sa
from alembic import op

revision = "1c1de0000005"
down_revision = "5ec0a0040001"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_jobs_incident", "jobs", ["incident_id"], ["id"])
        batch.create_index("ix_jobs_incident_id", ["incident_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_incident_id")
        batch.drop_constraint("fk_jobs_incident", type_="foreignkey")
        batch.drop_column("incident_id")
