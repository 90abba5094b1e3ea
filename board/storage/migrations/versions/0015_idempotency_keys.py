"""the JSON API's Idempotency-Key: one row per user and key with the answer (issue 19, defect 4)

Revision ID: 1d3e0000015
Revises: c4a1e0000014
"""

import sqlalchemy as sa
from alembic import op

from board.storage.schema import UTCDateTime

revision = "1d3e0000015"
down_revision = "c4a1e0000014"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("key", sa.String(length=100), primary_key=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("response", sa.Text()),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
