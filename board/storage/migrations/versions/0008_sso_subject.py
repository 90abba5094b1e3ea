"""users.sso_subject: the identity provider's issuer and subject of a person who signs in
through single sign-on (NULL for local accounts); unique, so one person is one user

Revision ID: 550a00000008
Revises: 7e71e0000007
"""

import sqlalchemy as sa
from alembic import op

revision = "550a00000008"
down_revision = "7e71e0000007"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sso_subject", sa.String(400)))
        batch.create_unique_constraint("uq_users_sso_subject", ["sso_subject"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_sso_subject", type_="unique")
        batch.drop_column("sso_subject")
