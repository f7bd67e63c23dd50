"""Domain baseline: the example orders domain (orders, cache outbox, degradation policy) as commit 09d098a
created it at the call site, each object only when missing. Frozen: later changes are new revisions.

Revision ID: 0001_domain
Revises:
"""

from cassandra_recovery.storage.ddl import execute, names

revision = "0001_domain"
down_revision = None
branch_labels = ("domain",)
depends_on = None

DDL = """
CREATE TABLE IF NOT EXISTS {orders} (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    customer     text NOT NULL CHECK (length(customer) BETWEEN 1 AND 256),
    status       text NOT NULL CHECK (length(status) BETWEEN 1 AND 32),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL,
    token        bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {orders_token_idx} ON {orders} (token);
CREATE TABLE IF NOT EXISTS {outbox} (
    seq             bigserial PRIMARY KEY,
    cluster_id      text NOT NULL,
    order_id        text NOT NULL,
    version         bigint NOT NULL,
    op              text NOT NULL CHECK (op IN ('upsert', 'delete')),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    replays         integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_until   timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz
);
CREATE INDEX IF NOT EXISTS {outbox_ready_idx} ON {outbox} (cluster_id, next_attempt_at, seq)
    WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS {outbox_dead_idx} ON {outbox} (cluster_id, seq) WHERE status = 'dead';
CREATE TABLE IF NOT EXISTS {policy} (
    cluster_id       text PRIMARY KEY,
    mode             text NOT NULL CHECK (mode IN ('normal', 'degraded')),
    read_consistency text NOT NULL,
    fallback_enabled boolean NOT NULL,
    reason           text NOT NULL DEFAULT '',
    set_by           text NOT NULL,
    since            timestamptz NOT NULL DEFAULT now(),
    incident_id      text
);
"""


def upgrade() -> None:
    n = names()
    execute(
        DDL,
        orders=n.orders,
        orders_token_idx=f"{n.orders}_token_idx",
        outbox=n.outbox,
        outbox_ready_idx=f"{n.outbox}_ready_idx",
        outbox_dead_idx=f"{n.outbox}_dead_idx",
        policy=n.policy,
    )


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
