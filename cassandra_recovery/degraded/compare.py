"""Compare the Cassandra cache with the PostgreSQL source of truth, chunk by token range, never whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.cql import CqlClient, release_page
from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.contracts import CompareDoc
from cassandra_recovery.logic.checksum import (
    ChunkSum,
    KeyDiff,
    canonical,
    diff_keys,
    row_hash,
    to_millis,
    token_chunks,
)
from cassandra_recovery.settings import DomainConfig

# PostgreSQL computes the same canonical text and hash as logic.checksum, row by row, inside the server.
PG_ROW_HASH = (
    "('x' || substr(md5(concat_ws(E'\\x1f', id, customer, status, amount_cents::text, "
    "floor(extract(epoch FROM updated_at) * 1000)::bigint::text, version::text)), 1, 16))::bit(64)::bigint"
)
MAX_KEYS_LISTED = 1000


@dataclass
class CompareResult:
    equal: bool
    chunks: int
    rows_postgres: int
    rows_cassandra: int
    differing_chunks: list[tuple[int, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    consistency: str = "LOCAL_QUORUM"

    def as_dict(self) -> CompareDoc:
        return {
            "equal": self.equal,
            "chunks": self.chunks,
            "rows_compared": {"postgres": self.rows_postgres, "cassandra": self.rows_cassandra},
            "differing_chunks": [[str(a), str(b)] for a, b in self.differing_chunks],
            "missing": self.missing[:MAX_KEYS_LISTED],
            "extra": self.extra[:MAX_KEYS_LISTED],
            "different": self.different[:MAX_KEYS_LISTED],
            "consistency": self.consistency,
        }


class Comparer:
    def __init__(
        self,
        pool: ConnectionPool,
        cql: CqlClient,
        cfg: DomainConfig,
        consistency: str = "LOCAL_QUORUM",
        page_size: int = 2000,
    ):
        self.pool = pool
        self.cql = cql
        self.cfg = cfg
        self.cl = ConsistencyLevel.name_to_value[consistency.upper()]
        self.consistency = consistency.upper()
        self.page_size = page_size
        t = sql.Identifier(cfg.orders_table)
        self._pg_sum = sql.SQL(
            "SELECT count(*) AS n, coalesce(sum(" + PG_ROW_HASH + "), 0) AS s FROM {t} WHERE token > %s AND token <= %s"
        ).format(t=t)
        self._pg_keys = sql.SQL("SELECT id, " + PG_ROW_HASH + " AS h FROM {t} WHERE token > %s AND token <= %s").format(
            t=t
        )
        table = f"{cfg.keyspace}.{cfg.cassandra_table}"
        self._c_rows = (
            f"SELECT id, customer, status, amount_cents, updated_at, version FROM {table} "
            "WHERE token(id) > %s AND token(id) <= %s"
        )

    def _pg_chunk(self, lo: int, hi: int) -> ChunkSum:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._pg_sum, (lo, hi)))
            conn.rollback()
        assert r is not None  # noqa: S101 - an aggregate always returns a row
        return ChunkSum(int(r["n"]), int(r["s"]) % 2**64)

    def _pg_key_hashes(self, lo: int, hi: int) -> dict[str, int]:
        with self.pool.connection() as conn:
            rows = fetch_all(conn.execute(self._pg_keys, (lo, hi)))
            conn.rollback()
        return {r["id"]: int(r["h"]) for r in rows}

    def _cassandra_rows(self, lo: int, hi: int) -> Iterator[tuple[str, int]]:
        stmt = SimpleStatement(self._c_rows, consistency_level=self.cl, fetch_size=self.page_size)
        rs = self.cql.session.execute(stmt, (lo, hi), timeout=60)
        try:
            for r in rs:  # pages stream; never all at once
                ms = to_millis(r["updated_at"])
                text = canonical(r["id"], r["customer"], r["status"], r["amount_cents"], ms, r["version"])
                yield r["id"], row_hash(text)
        finally:  # the driver's future would keep the last page until a full collection (clients/cql.release_page)
            release_page(rs)

    def run(self, chunks: int = 64, progress: Callable[[int, int], None] | None = None) -> CompareResult:
        res = CompareResult(equal=True, chunks=chunks, rows_postgres=0, rows_cassandra=0, consistency=self.consistency)
        for i, (lo, hi) in enumerate(token_chunks(chunks)):
            pg = self._pg_chunk(lo, hi)
            cs = ChunkSum.of(h for _, h in self._cassandra_rows(lo, hi))
            res.rows_postgres += pg.count
            res.rows_cassandra += cs.count
            if pg != cs:
                res.equal = False
                res.differing_chunks.append((lo, hi))
                d: KeyDiff = diff_keys(self._pg_key_hashes(lo, hi), dict(self._cassandra_rows(lo, hi)))
                res.missing += d.missing
                res.extra += d.extra
                res.different += d.different
            if progress:
                progress(i + 1, chunks)
        return res
