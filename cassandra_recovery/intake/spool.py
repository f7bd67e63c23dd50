"""The PostgreSQL alert inbox: stored first (unique de-duplication key), then claimed with SKIP LOCKED and delivered."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from cassandra_recovery.clients.postgres import Row, fetch_one
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.intake.ports import (
    AlertRejected,
    DeliverFn,
    Outcome,
    SpoolItem,
    StoreBusy,
    StoreUnavailable,
    backoff_s,
)

log = logging.getLogger(__name__)
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

_PUT = """INSERT INTO {t} (dedup_key, launch_key, source, cluster_id, alert_status, doc, next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp() + make_interval(secs => %s))
ON CONFLICT (dedup_key) DO NOTHING RETURNING id"""
_CLAIM_DUE = """SELECT * FROM {t} WHERE state = 'received' AND next_attempt_at <= clock_timestamp()
ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"""
_CLAIM_KEY = "SELECT * FROM {t} WHERE dedup_key = %s AND state = 'received' FOR UPDATE SKIP LOCKED"
_DONE = """UPDATE {t} SET state = %(state)s, attempts = attempts + 1, last_error = NULL, done_at = clock_timestamp(),
    incident_id = COALESCE(%(inc)s, incident_id), flow_run_id = %(run)s WHERE id = %(id)s"""
_FAIL = """UPDATE {t} SET attempts = attempts + 1, last_error = %(err)s, incident_id = COALESCE(%(inc)s, incident_id),
    next_attempt_at = clock_timestamp() + make_interval(secs => %(delay)s),
    state = CASE WHEN attempts + 1 >= %(max)s THEN 'dead' ELSE state END,
    done_at = CASE WHEN attempts + 1 >= %(max)s THEN clock_timestamp() END WHERE id = %(id)s"""


def _item(r: Row) -> SpoolItem:
    return SpoolItem(
        dedup_key=r["dedup_key"],
        launch_key=r["launch_key"],
        source=r["source"],
        cluster_id=r["cluster_id"],
        alert_status=r["alert_status"],
        doc=r["doc"],
        incident_id=r["incident_id"],
        attempts=r["attempts"],
    )


class PgSpool:
    """Table `alert_inbox` (name configurable). Every method is one short transaction, except a delivery, which
    holds its row lock while it delivers: a second deliverer skips the row instead of delivering it again."""

    def __init__(
        self,
        pool: ConnectionPool,
        table: str = "alert_inbox",
        retry_base_s: float = 2.0,
        retry_max_s: float = 30.0,
        max_attempts: int = 2880,
    ) -> None:
        if not _TABLE.match(table):
            raise ConfigError(f"invalid alert inbox table name {table!r}: lower-case letters, digits and '_'")
        self.pool, self.table = pool, table
        self.retry_base_s, self.retry_max_s, self.max_attempts = retry_base_s, retry_max_s, max_attempts
        self._ids = {"t": sql.Identifier(table), "uq": sql.Identifier(f"{table}_dedup_uq")}
        self._ids["due"] = sql.Identifier(f"{table}_due_idx")

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(**self._ids)

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield conn
        except PoolTimeout as e:  # an OperationalError too, but PostgreSQL answered: every connection was busy
            raise StoreBusy(f"alert inbox: every connection busy ({str(e)[:200]})") from e
        except psycopg.Error as e:
            raise StoreUnavailable(f"alert inbox: {type(e).__name__}: {str(e)[:300]}") from e

    def put(self, item: SpoolItem, hold_s: float) -> bool:
        args = (item.dedup_key, item.launch_key, item.source, item.cluster_id, item.alert_status)
        try:
            with self._tx() as conn:
                row = fetch_one(conn.execute(self._q(_PUT), (*args, Jsonb(item.doc), hold_s)))
        except StoreUnavailable as e:
            # The values were refused (NUL in text or jsonb, a lone surrogate, a broken constraint): the alert's
            # fault, not PostgreSQL's; storing it again can never succeed.
            if isinstance(e.__cause__, psycopg.DataError | psycopg.IntegrityError):
                raise AlertRejected(f"alert refused by the inbox: {type(e.__cause__).__name__}") from e.__cause__
            raise
        return row is not None

    def deliver_one(self, dedup_key: str, deliver: DeliverFn) -> Outcome | None:
        with self._tx() as conn:
            row = fetch_one(conn.execute(self._q(_CLAIM_KEY), (dedup_key,)))
            return None if row is None else self._deliver(conn, row, deliver)

    def deliver_due(self, deliver: DeliverFn, limit: int) -> list[Outcome]:
        out: list[Outcome] = []
        for _ in range(limit):
            # One row per transaction: a slow delivery holds one lock, and each result commits on its own.
            with self._tx() as conn:
                row = fetch_one(conn.execute(self._q(_CLAIM_DUE)))
                if row is None:
                    break
                out.append(self._deliver(conn, row, deliver))
        return out

    def _deliver(self, conn: psycopg.Connection[Any], row: Row, deliver: DeliverFn) -> Outcome:
        item = _item(row)
        try:
            outcome = deliver(item)
        except Exception as e:  # a bug in delivery must not stop the others; the row is retried with backoff
            log.exception("delivering alert %s failed", item.dedup_key)
            outcome = Outcome(ok=False, error=f"{type(e).__name__}: {e}"[:500])
        if outcome.ok:
            state = "delivered" if outcome.flow_run_id else "recorded"
            params = {"state": state, "inc": outcome.incident_id, "run": outcome.flow_run_id, "id": row["id"]}
            conn.execute(self._q(_DONE), params)
        else:
            delay = backoff_s(item.attempts + 1, self.retry_base_s, self.retry_max_s)
            err = (outcome.error or "").replace("\x00", "\\0")[:1000]  # text columns cannot hold NUL
            params = {"err": err, "inc": outcome.incident_id, "delay": delay}
            conn.execute(self._q(_FAIL), {**params, "max": self.max_attempts, "id": row["id"]})
        return outcome

    def pending_count(self) -> int:
        with self._tx() as conn:
            row = fetch_one(conn.execute(self._q("SELECT count(*) AS n FROM {t} WHERE state = 'received'")))
        return int(row["n"]) if row else 0

    def row(self, dedup_key: str) -> Row | None:
        """The stored row of a key (operators, tests)."""
        with self._tx() as conn:
            return fetch_one(conn.execute(self._q("SELECT * FROM {t} WHERE dedup_key = %s"), (dedup_key,)))
