"""The PostgreSQL source of truth's side of a token range: the same hashes and summaries as a replica's."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime

from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.degraded.compare import PG_ROW_HASH
from cassandra_recovery.logic.checksum import MOD, ChunkSum
from cassandra_recovery.logic.murmur3 import token_of
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.settings import DomainConfig
from cassandra_recovery.storage.names import changes_table
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
        self._changes_name = changes_table(cfg.orders_table)
        c = sql.Identifier(self._changes_name)
        self._log_start = sql.SQL("SELECT max(committed_at) AS at FROM {c} WHERE op = 'log_start'").format(c=c)
        self._truncated = sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {c} WHERE op = 'truncate' AND committed_at >= %s) AS t"
        ).format(c=c)
        self._changed = sql.SQL(
            "SELECT DISTINCT token FROM {c} WHERE committed_at >= %s AND op IN ('upsert', 'delete') ORDER BY token"
        ).format(c=c)
        self._relayed = sql.SQL("SELECT DISTINCT order_id FROM {o} WHERE delivered_at >= %s").format(
            o=sql.Identifier(cfg.outbox_table)
        )
        self._prune = sql.SQL(
            "WITH cut AS (SELECT now() - make_interval(secs => %s) AS at), "
            "gone AS (DELETE FROM {c} WHERE op <> 'log_start' AND committed_at < (SELECT at FROM cut)) "
            "UPDATE {c} SET committed_at = greatest(committed_at, (SELECT at FROM cut)) WHERE op = 'log_start'"
        ).format(c=c)
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

    def now(self) -> datetime:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute("SELECT clock_timestamp() AS now"))
            conn.rollback()
        assert r is not None  # noqa: S101 - a SELECT without FROM returns a row
        return r["now"]  # type: ignore[no-any-return]

    def change_log_start(self) -> datetime | None:
        """From when the change log holds every change of the orders table; None without a change log."""
        with self.pool.connection() as conn:
            exists = fetch_one(conn.execute("SELECT to_regclass(%s) IS NOT NULL AS e", (self._changes_name,)))
            r = fetch_one(conn.execute(self._log_start)) if exists and exists["e"] else None
            conn.rollback()
        return None if r is None else r["at"]

    def truncated_since(self, since: datetime) -> bool:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._truncated, (since,)))
            conn.rollback()
        return bool(r and r["t"])

    def changed_tokens(self, since: datetime) -> Iterator[int]:
        """The tokens of keys changed since `since` (written or deleted, committed then), and of keys the outbox
        relay wrote to the cache since then (a change committed before and delivered late reached the replicas
        inside the window), ascending and each once."""
        with self.pool.connection() as conn:
            relayed = sorted({token_of(r["order_id"]) for r in fetch_all(conn.execute(self._relayed, (since,)))})
            conn.rollback()
        last = None
        for token in heapq.merge(self._logged_tokens(since), relayed):
            if token != last:
                yield token
                last = token

    def _logged_tokens(self, since: datetime) -> Iterator[int]:
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="changed_tokens", row_factory=tuple_row) as cur,
        ):
            cur.itersize = 10_000
            cur.execute(self._changed, (since,))
            for (token,) in cur:
                yield int(token)

    def prune_changes(self, retention_s: float) -> None:
        """Change-log entries older than the retention go; the log then starts at the cut-off."""
        with self.pool.connection() as conn:
            conn.execute(self._prune, (retention_s,))
            conn.commit()

    def total_rows(self) -> int:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._count))
            conn.rollback()
        return int(r["n"]) if r else 0
