"""Schema of the example domain in PostgreSQL (orders, outbox, policy) and in Cassandra (the cache)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import psycopg
from psycopg import sql

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.settings import DomainConfig

DC_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PG_DDL = """
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


def ensure_pg_schema(conn: psycopg.Connection[object], cfg: DomainConfig) -> None:
    """Create the tables when missing (idempotent; an advisory lock serialises concurrent callers)."""
    ids = {
        "orders": sql.Identifier(cfg.orders_table),
        "orders_token_idx": sql.Identifier(f"{cfg.orders_table}_token_idx"),
        "outbox": sql.Identifier(cfg.outbox_table),
        "outbox_ready_idx": sql.Identifier(f"{cfg.outbox_table}_ready_idx"),
        "outbox_dead_idx": sql.Identifier(f"{cfg.outbox_table}_dead_idx"),
        "policy": sql.Identifier(cfg.policy_table),
    }
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cassandra_recovery.schema'))")
        conn.execute(sql.SQL(_PG_DDL).format(**ids))


SPECULATIVE_RETRY = "50ms"


def replication_by_dc(cfg: DomainConfig, nodes_by_dc: Mapping[str, int]) -> dict[str, int]:
    """The settings' replication factor in every datacenter, capped at the nodes it has (a region keeps
    serving LOCAL_* reads and writes on its own replicas during a split)."""
    return {dc: min(cfg.replication_factor, n) for dc, n in sorted(nodes_by_dc.items()) if n > 0}


def ensure_cassandra_schema(cql: CqlClient, cfg: DomainConfig, nodes_by_dc: Mapping[str, int]) -> None:
    """Keyspace (NetworkTopologyStrategy, RF per datacenter) and cache table; names validated by settings."""
    factors = replication_by_dc(cfg, nodes_by_dc)
    for dc in factors:
        if not DC_NAME.fullmatch(dc):
            raise ValueError(f"datacenter name {dc!r} cannot be used in a replication map")
    dcs = ", ".join(f"'{dc}': {rf}" for dc, rf in factors.items())
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {cfg.keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', {dcs}}}",
        timeout_s=30,
    )
    cql.execute(
        f"CREATE TABLE IF NOT EXISTS {cfg.keyspace}.{cfg.cassandra_table} ("
        "id text PRIMARY KEY, customer text, status text, amount_cents bigint, updated_at timestamp, version bigint)",
        timeout_s=30,
    )
    # A fixed coordinator-side speculative retry: with the default '99p', a table with few samples waits up
    # to the read timeout for a hung replica that gossip has not convicted yet (seconds), so every
    # QUORUM read involving it times out on the client. 50 ms asks the next replica instead.
    rows = cql.execute(
        "SELECT speculative_retry FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (cfg.keyspace, cfg.cassandra_table),
    )
    if rows and rows[0]["speculative_retry"] != SPECULATIVE_RETRY:
        cql.execute(
            f"ALTER TABLE {cfg.keyspace}.{cfg.cassandra_table} WITH speculative_retry = '{SPECULATIVE_RETRY}'",
            timeout_s=30,
        )
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=30)
