"""review_queue: a partial index on the rows still waiting, for the header's count on every page

Revision ID: 7e71e0000007
Revises: 1c1de0000005
"""

import sqlalchemy as sa
from alembic import op

revision = "7e71e0000007"
down_revision = "1c1de0000005"


def upgrade() -> None:
    op.create_index("ix_review_queue_waiting", "review_queue", ["precinct"],
                    sqlite_where=sa.text("review_seq IS NULL"),
                    postgresql_where=sa.text("review_seq IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_review_queue_waiting", "review_queue")
