"""Writes to the PostgreSQL source of truth: row, version bump and outbox entry in one transaction."""

from __future__ import annotations

import json

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from cassandra_recovery.clients.postgres import fetch_one
from cassandra_recovery.degraded.model import Order, StoredOrder
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.settings import DomainConfig

# The version is a per-row hybrid clock: at least the previous version + 1 (never goes back, whatever
# the clock does) and otherwise the commit-time microseconds, so it also orders against other writers
# of the cache that use client timestamps. The relay writes it as Cassandra's cell timestamp.
_UPSERT = """
INSERT INTO {orders} AS o (id, customer, status, amount_cents, updated_at, version, token)
VALUES (%(id)s, %(customer)s, %(status)s, %(amount_cents)s, %(updated_at)s,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, %(token)s)
ON CONFLICT (id) DO UPDATE SET
    customer = EXCLUDED.customer, status = EXCLUDED.status, amount_cents = EXCLUDED.amount_cents,
    updated_at = EXCLUDED.updated_at,
    version = GREATEST(o.version + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
RETURNING version
"""
_ENQUEUE = """
INSERT INTO {outbox} (cluster_id, order_id, version, op, payload) VALUES (%s, %s, %s, %s, %s)
"""


class SourceOfTruthUnavailable(RecoveryError):
    """PostgreSQL could not take the write: nothing was acknowledged."""


class OrderStore:
    """The source of truth. A write returns only after PostgreSQL committed the row and its outbox entry."""

    def __init__(self, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str):
        self.pool = pool
        self.cfg = cfg
        self.cluster_id = cluster_id
        self._upsert = sql.SQL(_UPSERT).format(orders=sql.Identifier(cfg.orders_table))
        self._enqueue = sql.SQL(_ENQUEUE).format(outbox=sql.Identifier(cfg.outbox_table))
        self._select = sql.SQL(
            "SELECT id, customer, status, amount_cents, updated_at, version FROM {} WHERE id = %s"
        ).format(sql.Identifier(cfg.orders_table))

    def write(self, order: Order) -> StoredOrder:
        """Upsert, bump the version and queue the cache update atomically; raises SourceOfTruthUnavailable."""
        params = {**order.model_dump(exclude={"updated_at"}), "updated_at": order.updated_at, "token": order.token}
        try:
            with self.pool.connection() as conn, conn.transaction():
                row = fetch_one(conn.execute(self._upsert, params))
                assert row is not None  # noqa: S101 - RETURNING always yields the row
                version = int(row["version"])
                payload = json.dumps(order.payload())
                conn.execute(self._enqueue, (self.cluster_id, order.id, version, "upsert", payload))
        except (psycopg.OperationalError, PoolTimeout) as e:
            raise SourceOfTruthUnavailable(
                f"PostgreSQL unavailable, write of order {order.id!r} not accepted: {e}"
            ) from e
        return StoredOrder(order=order, version=version)

    def read(self, order_id: str) -> StoredOrder | None:
        try:
            with self.pool.connection() as conn:
                row = fetch_one(conn.execute(self._select, (order_id,)))
        except (psycopg.OperationalError, PoolTimeout) as e:
            raise SourceOfTruthUnavailable(f"PostgreSQL unavailable, cannot read order {order_id!r}: {e}") from e
        return None if row is None else StoredOrder.from_row(row)
