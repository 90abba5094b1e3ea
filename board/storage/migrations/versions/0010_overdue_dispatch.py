"""job_facts.overdue_dispatch: late to acknowledge while no unit had the job ("not
dispatched"), apart from overdue_ack (a unit had it); the facts are folded again from the events

Revision ID: 0d15a0000010
Revises: ca11e0000009
"""

import sqlalchemy as sa
from alembic import op

revision = "0d15a0000010"
down_revision = "ca11e0000009"


def upgrade() -> None:
    with op.batch_alter_table("job_facts") as batch:
        batch.add_column(sa.Column("overdue_dispatch", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    from board.storage.factstore import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("job_facts") as batch:
        batch.drop_column("overdue_dispatch")
