"""Core: the alert inbox's delivery claim. A deliverer claims a row in a short transaction (who, and until when),
calls Prefect with no transaction open, and records the outcome only while its claim still stands; a deliverer
that died leaves the row to the next one once the claim runs out.

Adding nullable columns with no default rewrites nothing; rows from before are unclaimed.

Revision ID: 0003_core_inbox_claim
Revises: 0002_core_fencing
"""

from cassandra_recovery.storage.ddl import execute, names

revision = "0003_core_inbox_claim"
down_revision = "0002_core_fencing"
branch_labels = None
depends_on = None

DDL = "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS claimed_by text, ADD COLUMN IF NOT EXISTS claimed_until timestamptz"


def upgrade() -> None:
    execute(DDL, t=names().inbox)


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
