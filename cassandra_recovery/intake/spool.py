"""The PostgreSQL alert inbox: stored first (unique de-duplication key), then claimed with SKIP LOCKED and delivered."""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
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
# A claim is a short transaction of its own: the row is marked (a token unique to this delivery, and a lease) and
# committed before Prefect is called, so no transaction or row lock stays open across the HTTP call. Another
# deliverer skips a claimed row until its lease runs out (its deliverer died); SKIP LOCKED settles two claims at once.
_CLAIMABLE = "state = 'received' AND (claimed_until IS NULL OR claimed_until < clock_timestamp())"
_CLAIM = """UPDATE {t} SET claimed_by = %(by)s, claimed_until = clock_timestamp() + make_interval(secs => %(lease)s)
WHERE id = ({pick}) RETURNING *"""
_PICK_DUE = """SELECT id FROM {t} WHERE {claimable} AND next_attempt_at <= clock_timestamp()
ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"""
_PICK_KEY = "SELECT id FROM {t} WHERE dedup_key = %(key)s AND {claimable} FOR UPDATE SKIP LOCKED"
# Outcomes count only under the claim that delivered: a deliverer whose lease ran out and whose row another one
# claimed since records nothing (the holder records its own delivery; launches are idempotent by launch key).
_HELD = "id = %(id)s AND state = 'received' AND claimed_by = %(by)s"
_DONE = """UPDATE {t} SET state = %(state)s, attempts = attempts + 1, last_error = NULL, done_at = clock_timestamp(),
    incident_id = COALESCE(%(inc)s, incident_id), flow_run_id = %(run)s, claimed_by = NULL, claimed_until = NULL
    WHERE {held}"""
_FAIL = """UPDATE {t} SET attempts = attempts + 1, last_error = %(err)s, incident_id = COALESCE(%(inc)s, incident_id),
    next_attempt_at = clock_timestamp() + make_interval(secs => %(delay)s),
    state = CASE WHEN attempts + 1 >= %(max)s THEN 'dead' ELSE state END,
    done_at = CASE WHEN attempts + 1 >= %(max)s THEN clock_timestamp() END, claimed_by = NULL, claimed_until = NULL
    WHERE {held}"""


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
    """Table `alert_inbox` (name configurable). Every method is one short transaction; a delivery is two (claim,
    then outcome) with the Prefect call between them outside any transaction. A claimed row is skipped by other
    deliverers for `claim_lease_s`, longer than a delivery takes (so the same alert is not delivered twice)."""

    def __init__(
        self,
        pool: ConnectionPool,
        table: str = "alert_inbox",
        retry_base_s: float = 2.0,
        retry_max_s: float = 30.0,
        max_attempts: int = 2880,
        claim_lease_s: float = 300.0,
    ) -> None:
        if not _TABLE.match(table):
            raise ConfigError(f"invalid alert inbox table name {table!r}: lower-case letters, digits and '_'")
        self.pool, self.table = pool, table
        self.retry_base_s, self.retry_max_s, self.max_attempts = retry_base_s, retry_max_s, max_attempts
        self.claim_lease_s = claim_lease_s
        self._ids = {"t": sql.Identifier(table), "uq": sql.Identifier(f"{table}_dedup_uq")}
        self._ids["due"] = sql.Identifier(f"{table}_due_idx")
        claimable, t = sql.SQL(_CLAIMABLE), self._ids["t"]
        self._claim = {
            pick: sql.SQL(_CLAIM).format(t=t, pick=sql.SQL(text).format(t=t, claimable=claimable))
            for pick, text in (("due", _PICK_DUE), ("key", _PICK_KEY))
        }
        held = sql.SQL(_HELD)
        self._outcome = {ok: sql.SQL(text).format(t=t, held=held) for ok, text in ((True, _DONE), (False, _FAIL))}

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
        claimed = self._claim_row("key", dedup_key)
        return None if claimed is None else self._deliver(*claimed, deliver)

    def deliver_due(self, deliver: DeliverFn, limit: int) -> list[Outcome]:
        out: list[Outcome] = []
        for _ in range(limit):  # one row per claim: each outcome commits on its own
            claimed = self._claim_row("due")
            if claimed is None:
                break
            out.append(self._deliver(*claimed, deliver))
        return out

    def _claim_row(self, pick: str, dedup_key: str | None = None) -> tuple[Row, str] | None:
        """The row claimed (committed) and the claim's token; None when nothing is claimable."""
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        params = {"by": token, "lease": self.claim_lease_s, "key": dedup_key}
        with self._tx() as conn:
            row = fetch_one(conn.execute(self._claim[pick], params))
        return None if row is None else (row, token)

    def _deliver(self, row: Row, token: str, deliver: DeliverFn) -> Outcome:
        item = _item(row)
        try:
            outcome = deliver(item)
        except Exception as e:  # a bug in delivery must not stop the others; the row is retried with backoff
            log.exception("delivering alert %s failed", item.dedup_key)
            outcome = Outcome(ok=False, error=f"{type(e).__name__}: {e}"[:500])
        held = {"id": row["id"], "by": token, "inc": outcome.incident_id}
        if outcome.ok:
            state = "delivered" if outcome.flow_run_id else "recorded"
            params = {**held, "state": state, "run": outcome.flow_run_id}
        else:
            delay = backoff_s(item.attempts + 1, self.retry_base_s, self.retry_max_s)
            err = (outcome.error or "").replace("\x00", "\\0")[:1000]  # text columns cannot hold NUL
            params = {**held, "err": err, "delay": delay, "max": self.max_attempts}
        with self._tx() as conn:
            recorded = conn.execute(self._outcome[outcome.ok], params).rowcount
        if not recorded:
            log.warning("alert %s: claim lost during delivery, outcome left to its holder", item.dedup_key)
        return outcome

    def pending_count(self) -> int:
        with self._tx() as conn:
            row = fetch_one(conn.execute(self._q("SELECT count(*) AS n FROM {t} WHERE state = 'received'")))
        return int(row["n"]) if row else 0

    def row(self, dedup_key: str) -> Row | None:
        """The stored row of a key (operators, tests)."""
        with self._tx() as conn:
            return fetch_one(conn.execute(self._q("SELECT * FROM {t} WHERE dedup_key = %s"), (dedup_key,)))
