"""Domain: each outbox entry records the id of the transaction that queued it, so a queue waiter can tell which
entries were committed before it started (a PostgreSQL snapshot), whatever order the seqs commit in.

Rows queued before this revision keep a NULL xid: they were committed before the upgrade, hence before any
waiter that runs this code. Adding a nullable column with no default rewrites nothing.

Revision ID: 0002_domain_outbox_xid
Revises: 0001_domain
"""

from cassandra_recovery.storage.ddl import execute, names

revision = "0002_domain_outbox_xid"
down_revision = "0001_domain"
branch_labels = None
depends_on = None

DDL = """
ALTER TABLE {outbox} ADD COLUMN IF NOT EXISTS xid xid8;
ALTER TABLE {outbox} ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
"""


def upgrade() -> None:
    execute(DDL, outbox=names().outbox)


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
