"""jobs.history: rows the city had already closed when they were imported

Revision ID: b1a0c0de0002
Revises: 7d44869dc8ce
"""

import sqlalchemy as sa
from alembic import op

revision = "b1a0c0de0002"
down_revision = "7d44869dc8ce"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("history", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
