"""login_failures: the log-in throttle's counts per user name, address and known device, shared
by every process of the database instead of kept in each (issue 19, defect 12)

Revision ID: 1d3e0000017
Revises: 1d3e0000016
"""

import sqlalchemy as sa
from alembic import op

revision = "1d3e0000017"
down_revision = "1d3e0000016"


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_login_failures_last_at", "login_failures", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_at", table_name="login_failures")
    op.drop_table("login_failures")
