"""proof of presence and evidence: officer photos, summons numbers, the new policies' values,
and job_facts' columns for them (issue 16)

Revision ID: 16e0de000012
Revises: 91ace0000011
"""

import sqlalchemy as sa
from alembic import op

from board.storage.schema import UTCDateTime

revision = "16e0de000012"
down_revision = "91ace0000011"


def upgrade() -> None:
    op.add_column("policies", sa.Column("metres", sa.Integer()))
    op.add_column("policies", sa.Column("dispositions", sa.String(length=400)))
    op.add_column("job_facts", sa.Column("arrival_distance_m", sa.Float()))
    op.add_column("job_facts", sa.Column("arrival_confirmed", sa.Boolean()))
    op.add_column("job_facts", sa.Column("evidence_photos", sa.Integer()))
    op.add_column("job_facts", sa.Column("summons_numbers", sa.Integer()))
    op.create_table(
        "evidence_photos",
        sa.Column("id", sa.String(length=43), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.UniqueConstraint("job_id", "n"),
    )
    op.create_table(
        "summons_numbers",
        sa.Column("number", sa.String(length=40), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_summons_numbers_job_id", "summons_numbers", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_summons_numbers_job_id", "summons_numbers")
    op.drop_table("summons_numbers")
    op.drop_table("evidence_photos")
    for name in ("summons_numbers", "evidence_photos", "arrival_confirmed",
                 "arrival_distance_m"):
        op.drop_column("job_facts", name)
    op.drop_column("policies", "dispositions")
    op.drop_column("policies", "metres")
