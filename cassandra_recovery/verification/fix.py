"""Targeted fixes of a few differing keys, in place: rewritten from the source of truth at CL ALL, or read at
CL ALL over the narrowed ranges (blocking read repair writes the newest copy to every replica)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.cql import CqlClient, release_page
from cassandra_recovery.clients.postgres import fetch_all
from cassandra_recovery.logic.tombstone import tombstone_timestamp
from cassandra_recovery.settings import DomainConfig
from cassandra_recovery.storage.names import changes_table
from cassandra_recovery.verification.replica import query_bounds
from cassandra_recovery.verification.tables import TableSpec

# What PostgreSQL knows of keys it no longer has: when it deleted each (its change log), the newest version it gave
# it (the outbox), and its clock now. One scan per key: the fix covers a few keys only.
_GONE = """SELECT k AS id,
    (SELECT max(committed_at) FROM {changes} WHERE order_id = k AND op = 'delete') AS deleted_at,
    (SELECT max(version) FROM {outbox} WHERE order_id = k) AS last_version,
    clock_timestamp() AS pg_now
FROM unnest(%s::text[]) AS k"""


def rewrite_from_source(pool: ConnectionPool, cql: CqlClient, cfg: DomainConfig, keys: Sequence[str]) -> dict[str, Any]:
    """Each key as PostgreSQL holds it now, written to every replica (CL ALL) with its version as timestamp, so
    a newer write that races this one still wins; a key PostgreSQL no longer has is deleted the same way, with a
    tombstone dated by PostgreSQL (logic/tombstone.py), so a skewed local clock can neither lose to stale copies
    nor shadow a newer write."""
    q = sql.SQL("SELECT id, customer, status, amount_cents, updated_at, version FROM {t} WHERE id = ANY(%s)").format(
        t=sql.Identifier(cfg.orders_table)
    )
    gone_q = sql.SQL(_GONE).format(
        changes=sql.Identifier(changes_table(cfg.orders_table)), outbox=sql.Identifier(cfg.outbox_table)
    )
    with pool.connection() as conn:
        rows = {r["id"]: r for r in fetch_all(conn.execute(q, (list(keys),)))}
        missing = [k for k in keys if k not in rows]
        gone = {r["id"]: r for r in fetch_all(conn.execute(gone_q, (missing,)))} if missing else {}
        conn.rollback()
    table = f"{cfg.keyspace}.{cfg.cassandra_table}"
    put = SimpleStatement(
        f"INSERT INTO {table} (id, customer, status, amount_cents, updated_at, version) "
        "VALUES (%s, %s, %s, %s, %s, %s) USING TIMESTAMP %s",
        consistency_level=ConsistencyLevel.ALL,
    )
    delete = SimpleStatement(
        f"DELETE FROM {table} USING TIMESTAMP %s WHERE id = %s", consistency_level=ConsistencyLevel.ALL
    )
    written, deleted = [], []
    for key in keys:
        r = rows.get(key)
        if r is None:
            g = gone[key]
            at = tombstone_timestamp(g["deleted_at"], g["last_version"], g["pg_now"])
            cql.session.execute(delete, (at, key), timeout=30)
            deleted.append(key)
        else:
            values = (r["id"], r["customer"], r["status"], r["amount_cents"], r["updated_at"], r["version"])
            cql.session.execute(put, (*values, r["version"]), timeout=30)
            written.append(key)
    return {"written": len(written), "deleted": len(deleted), "keys": sorted(keys)[:1000]}


def read_at_all(cql: CqlClient, spec: TableSpec, ranges: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """A CL ALL read of each narrowed range: replicas' answers are compared and the differences written back."""
    tok = spec.token_expr()
    stmt = SimpleStatement(
        f"SELECT {', '.join(spec.columns)} FROM {spec.name} WHERE {tok} > %s AND {tok} <= %s",
        consistency_level=ConsistencyLevel.ALL,
        fetch_size=1000,
    )
    rows = 0
    for a, b in ranges:
        rs = cql.session.execute(stmt, query_bounds(a, b), timeout=60)
        rows += sum(1 for _ in rs)
        release_page(rs)
    return {"ranges": len(ranges), "rows_read": rows}
