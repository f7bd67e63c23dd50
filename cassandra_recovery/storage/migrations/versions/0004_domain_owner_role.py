"""Domain: the migration role owns the orders domain's tables and the change log's trigger function.

As 0004_core_owner_role: the runtime role keeps the DML it uses on orders, outbox and policy; on the orders change
log it may read and prune (SELECT, UPDATE of the log's start, DELETE of old entries) but not write: entries come
only from the trigger, whose SECURITY DEFINER function now runs as the migration role.

Revision ID: 0004_domain_owner_role
Revises: 0003_domain_order_changes
"""

from cassandra_recovery.storage.ddl import hand_over, names, runtime_role, version_table

revision = "0004_domain_owner_role"
down_revision = "0003_domain_order_changes"
branch_labels = None
depends_on = None

DML = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
CHANGE_LOG = "SELECT, UPDATE, DELETE"  # verification/truth.py prune_changes


def upgrade() -> None:
    runtime = runtime_role()
    if runtime is None:
        return
    n = names()
    tables = {n.orders: DML, n.outbox: DML, n.policy: DML, n.changes: CHANGE_LOG}
    tables[version_table()] = "SELECT"  # processes check the version at start; only `db upgrade` moves it
    hand_over(runtime, tables, functions=(f"{n.orders}_chg_log",))


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
