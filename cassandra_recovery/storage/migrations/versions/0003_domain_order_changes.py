"""Domain: a change log of the orders table, so an incident's verification can read only the keys that changed
while a node was missing writes (verification/scoped.py) instead of the whole table.

Every insert, update and delete of an order appends (key, token, op) to `{orders}_changes` from a constraint
trigger deferred to commit, so `committed_at` (clock_timestamp() when it fires) is the transaction's commit time
to within the commit itself, not the time its statement ran: a transaction that ran before an outage and
committed during it is in the outage's window. A TRUNCATE is logged as one `truncate` entry (a statement trigger,
at statement time): a scoped proof over a window holding one falls back to the full pass. The `log_start` entry
says from when the log is complete (this revision's commit, later the pruning cut-off). Like the baselines, it
can run again over its own objects (an install adopted again): the log then starts at the later run.

The outbox gets an index on `delivered_at`: a change committed before the window and delivered to the cache by
the relay inside it is in the window too.

The trigger function runs as its owner (SECURITY DEFINER, with the search path of this migration): a writer
role granted only the orders table can still write orders, and the log cannot be bypassed or forged by it.

Revision ID: 0003_domain_order_changes
Revises: 0002_domain_outbox_xid
"""

from cassandra_recovery.storage.ddl import execute, names

revision = "0003_domain_order_changes"
down_revision = "0002_domain_outbox_xid"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE IF NOT EXISTS {changes} (
    seq          bigserial PRIMARY KEY,
    order_id     text NOT NULL,
    token        bigint NOT NULL,
    op           text NOT NULL CHECK (op IN ('upsert', 'delete', 'truncate', 'log_start')),
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {changes_at_idx} ON {changes} (committed_at);
CREATE OR REPLACE FUNCTION {log_fn}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO {changes} (order_id, token, op) VALUES ('', 0, 'truncate');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO {changes} (order_id, token, op) VALUES (OLD.id, OLD.token, 'delete');
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.id IS DISTINCT FROM NEW.id THEN
            INSERT INTO {changes} (order_id, token, op) VALUES (OLD.id, OLD.token, 'delete');
        END IF;
    END IF;
    INSERT INTO {changes} (order_id, token, op) VALUES (NEW.id, NEW.token, 'upsert');
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS {row_trigger} ON {orders};
DROP TRIGGER IF EXISTS {truncate_trigger} ON {orders};
CREATE CONSTRAINT TRIGGER {row_trigger} AFTER INSERT OR UPDATE OR DELETE ON {orders}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {log_fn}();
CREATE TRIGGER {truncate_trigger} AFTER TRUNCATE ON {orders} FOR EACH STATEMENT EXECUTE FUNCTION {log_fn}();
INSERT INTO {changes} (order_id, token, op) VALUES ('', 0, 'log_start');
CREATE INDEX IF NOT EXISTS {outbox_delivered_idx} ON {outbox} (delivered_at) WHERE delivered_at IS NOT NULL;
"""


def upgrade() -> None:
    n = names()
    execute(
        DDL,
        orders=n.orders,
        changes=n.changes,
        changes_at_idx=f"{n.orders}_chg_at_idx",  # names within 63 bytes for the longest orders name (48)
        log_fn=f"{n.orders}_chg_log",
        row_trigger=f"{n.orders}_chg_row",
        truncate_trigger=f"{n.orders}_chg_trunc",
        outbox=n.outbox,
        outbox_delivered_idx=f"{n.outbox}_delivered_idx",
    )


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
