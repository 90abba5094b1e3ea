"""sessions and trust: server-side sessions, token expiry and revocation, disabled and locked
users, where each event came from, and the events table append-only in the database

Revision ID: 5ec0a0040001
Revises: c5a7f0000003
"""

import sqlalchemy as sa
from alembic import op

from board.storage import appendonly

revision = "5ec0a0040001"
down_revision = "c5a7f0000003"


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("api_tokens.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_tokens", sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), nullable=False,
                                     server_default="0"))
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True)))
    op.add_column("events", sa.Column("address", sa.String(length=64)))
    op.add_column("events", sa.Column("user_agent", sa.String(length=300)))
    appendonly.install(op.get_bind(), "events")


def downgrade() -> None:
    appendonly.drop(op.get_bind(), "events")
    op.drop_column("events", "user_agent")
    op.drop_column("events", "address")
    op.drop_column("users", "locked_until")
    op.drop_column("users", "failed_logins")
    op.drop_column("users", "disabled_at")
    op.drop_column("api_tokens", "last_used_at")
    op.drop_column("api_tokens", "revoked_at")
    op.drop_column("api_tokens", "expires_at")
    op.drop_index("ix_sessions_user_id", "sessions")
    op.drop_table("sessions")
