"""idempotency_keys.seq: the event a key's write committed, written in that write's own
transaction, so a write whose answer was never stored is answered from it, not run again
(issue 19, defect 4)

Revision ID: 1d3e0000016
Revises: 1d3e0000015
"""

import sqlalchemy as sa
from alembic import op

revision = "1d3e0000016"
down_revision = "1d3e0000015"


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("seq", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("seq")
