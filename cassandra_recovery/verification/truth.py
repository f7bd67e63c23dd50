"""The PostgreSQL source of truth's side of a token range: the same hashes and summaries as a replica's."""

from __future__ import annotations

from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.degraded.compare import PG_ROW_HASH
from cassandra_recovery.logic.checksum import MOD, ChunkSum
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.settings import DomainConfig
from cassandra_recovery.verification.replica import query_bounds


class SourceOfTruth:
    def __init__(self, pool: ConnectionPool, cfg: DomainConfig):
        self.pool = pool
        t = sql.Identifier(cfg.orders_table)
        where = " FROM {t} WHERE token > %s AND token <= %s"
        self._chunk = sql.SQL("SELECT count(*) AS n, coalesce(sum(" + PG_ROW_HASH + "), 0) AS s" + where).format(t=t)
        self._summary = sql.SQL("SELECT count(*) AS n, coalesce(sum(version), 0) AS s" + where).format(t=t)
        self._rows = sql.SQL("SELECT id, " + PG_ROW_HASH + " AS h" + where).format(t=t)
        self._count = sql.SQL("SELECT count(*) AS n FROM {t}").format(t=t)
        self.rows_read = 0

    def _one(self, q: sql.Composed, start: int, end: int) -> tuple[int, int]:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(q, query_bounds(start, end)))
            conn.rollback()
        assert r is not None  # noqa: S101 - an aggregate always returns a row
        return int(r["n"]), int(r["s"]) % MOD

    def chunk(self, start: int, end: int) -> ChunkSum:
        n, s = self._one(self._chunk, start, end)
        return ChunkSum(n, s)

    def summary(self, start: int, end: int) -> Summary:
        """(count, sum of versions modulo 2^64): what a replica's `count(*), sum(version)` gives."""
        return Summary(*self._one(self._summary, start, end))

    def rows(self, start: int, end: int) -> dict[str, int]:
        with self.pool.connection() as conn:
            rows = fetch_all(conn.execute(self._rows, query_bounds(start, end)))
            conn.rollback()
        self.rows_read += len(rows)
        return {r["id"]: int(r["h"]) for r in rows}

    def total_rows(self) -> int:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._count))
            conn.rollback()
        return int(r["n"]) if r else 0
