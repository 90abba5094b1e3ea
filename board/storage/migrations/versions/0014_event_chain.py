"""events: the hash chain (each event carries a hash of the one before and of itself), and the
append-only guards that UPDATE/DELETE triggers missed (SQLite's INSERT OR REPLACE of an existing
row, PostgreSQL's TRUNCATE)

The events written before this migration are linked here, in seq order, so `board check` can
verify the whole log from the first event.

Revision ID: c4a1e0000014
Revises: 91ace0000013
"""

import sqlalchemy as sa
from alembic import op

from board.storage import appendonly, chain

revision = "c4a1e0000014"
down_revision = "91ace0000013"

BATCH = 2000


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("events", sa.Column("chain", sa.String(length=64)))
    appendonly.drop(conn, "events")  # the links are written once, here, then never again
    events = sa.table("events", sa.column("seq"), sa.column("chain"))
    typed = chain.schema_events.c  # read with the columns' own types (times, JSON)
    columns = [typed.seq, *(typed[name] for name in chain.FIELDS)]
    previous, after = chain.GENESIS, 0
    while True:
        rows = conn.execute(sa.select(*columns).where(typed.seq > after).order_by(typed.seq)
                            .limit(BATCH)).all()
        if not rows:
            break
        for row in rows:
            previous = chain.link(previous, row)
            conn.execute(events.update().where(events.c.seq == row.seq).values(chain=previous))
        after = rows[-1].seq
    for table in appendonly.GUARDED:
        appendonly.install(conn, table)


def downgrade() -> None:
    conn = op.get_bind()
    for table in appendonly.GUARDED:
        appendonly.drop(conn, table)
    op.drop_column("events", "chain")
    for table in appendonly.GUARDED:
        appendonly.install(conn, table)
