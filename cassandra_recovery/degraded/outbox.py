"""The durable cache-update queue in PostgreSQL (transactional outbox): claim, deliver, back off, dead."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.contracts import QueueStatsDoc
from cassandra_recovery.settings import DomainConfig

# Claiming commits the attempt before delivery: a relay killed mid-delivery leaves the attempt counted,
# and its lease expiry hands the entry to the next relay. SKIP LOCKED lets relays run side by side.
_CLAIM = """
UPDATE {t} SET attempts = attempts + 1, claimed_by = %(relay)s,
               claimed_until = now() + make_interval(secs => %(lease)s)
WHERE seq IN (
    SELECT seq FROM {t}
    WHERE cluster_id = %(cluster)s AND status = 'queued' AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING seq, order_id, version, op, payload, attempts
"""
# Outcomes count only under a claim still held: a relay whose lease ran out (and whose entries another relay may
# have claimed since) changes nothing, so it can neither finish nor back off work that is no longer its own.
_HELD = "claimed_by = %(relay)s AND claimed_until > now()"
_DELIVERED = """
UPDATE {t} SET status = 'delivered', delivered_at = now(), claimed_by = NULL, claimed_until = NULL,
               last_error = NULL
WHERE seq = ANY(%(seqs)s) AND status = 'queued' AND {held}
"""
_FAILED = """
UPDATE {t} SET claimed_by = NULL, claimed_until = NULL, last_error = left(%(error)s, 2000),
    status = CASE WHEN attempts >= %(max)s THEN 'dead' ELSE 'queued' END,
    next_attempt_at = now() + make_interval(secs => least(%(base)s * power(2, greatest(attempts - 1, 0)), %(cap)s))
WHERE seq = ANY(%(seqs)s) AND status = 'queued' AND {held}
RETURNING status
"""
_STATS = """
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'delivered') AS delivered,
       count(*) FILTER (WHERE status = 'dead') AS dead,
       count(*) FILTER (WHERE status = 'queued' AND claimed_until > now()) AS in_flight,
       coalesce(extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE status = 'queued')), 0)
           AS oldest_queued_age_s,
       coalesce(extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE status = 'dead')), 0)
           AS oldest_dead_age_s
FROM {t} WHERE cluster_id = %(cluster)s
"""
# Queue waiter's watermark. A seq is assigned at insert, not at commit: the transaction holding seq 10 may commit
# after seq 11's, so "every seq <= N delivered" could skip a late commit. Instead the waiter records a PostgreSQL
# snapshot at its start; an entry was committed before that start exactly when its transaction (the xid column,
# pg_current_xact_id() at insert) is visible in that snapshot. Entries of transactions still open at the start are
# not waited for: their writers had no acknowledgement yet. NULL xid: queued before the column existed.
_WATERMARK = "SELECT pg_current_snapshot()::text AS snapshot"
_BEFORE = """
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'dead') AS dead
FROM {t}
WHERE cluster_id = %(cluster)s AND status IN ('queued', 'dead')
  AND (xid IS NULL OR pg_visible_in_snapshot(xid, %(snapshot)s::pg_snapshot))
"""
_REPLAY = """
UPDATE {t} SET status = 'queued', attempts = 0, replays = replays + 1, next_attempt_at = now(), last_error = NULL
WHERE cluster_id = %(cluster)s AND status = 'dead' AND (%(seqs)s::bigint[] IS NULL OR seq = ANY(%(seqs)s))
"""


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    order_id: str
    version: int
    op: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class QueueStats:
    queued: int
    delivered: int
    dead: int
    in_flight: int
    oldest_queued_age_s: float
    oldest_dead_age_s: float

    def as_dict(self) -> QueueStatsDoc:
        return {
            "queued": self.queued,
            "delivered": self.delivered,
            "dead": self.dead,
            "in_flight": self.in_flight,
            "oldest_queued_age_s": self.oldest_queued_age_s,
            "oldest_dead_age_s": self.oldest_dead_age_s,
        }


@dataclass(frozen=True)
class Backlog:
    """What is left of the entries committed before a watermark."""

    queued: int
    dead: int


class Outbox:
    """Queue operations for one cluster's cache; every method is one short PostgreSQL transaction."""

    def __init__(self, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str):
        self.pool = pool
        self.cfg = cfg
        self.cluster_id = cluster_id
        t = sql.Identifier(cfg.outbox_table)
        self._q = {
            k: sql.SQL(v).format(t=t, held=sql.SQL(_HELD))
            for k, v in {
                "claim": _CLAIM,
                "delivered": _DELIVERED,
                "failed": _FAILED,
                "stats": _STATS,
                "replay": _REPLAY,
                "before": _BEFORE,
            }.items()
        }

    def claim(self, relay_id: str, limit: int | None = None) -> list[OutboxEntry]:
        params = {
            "relay": relay_id,
            "lease": self.cfg.relay_lease_s,
            "cluster": self.cluster_id,
            "limit": limit or self.cfg.relay_batch,
        }
        with self.pool.connection() as conn, conn.transaction():
            rows = fetch_all(conn.execute(self._q["claim"], params))
        entries = [
            OutboxEntry(
                seq=r["seq"],
                order_id=r["order_id"],
                version=r["version"],
                op=r["op"],
                payload=r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"]),
                attempts=r["attempts"],
            )
            for r in rows
        ]
        return sorted(entries, key=lambda e: e.seq)

    def mark_delivered(self, relay_id: str, seqs: list[int]) -> int:
        """Delivered, for the entries `relay_id` still holds; returns how many (fewer: the rest's claims were lost)."""
        if not seqs:
            return 0
        with self.pool.connection() as conn, conn.transaction():
            return conn.execute(self._q["delivered"], {"seqs": seqs, "relay": relay_id}).rowcount

    def mark_failed(self, relay_id: str, seqs: list[int], error: str) -> tuple[int, int]:
        """Back off (base * 2^(attempts-1), capped); entries at max_attempts go dead. Returns (requeued, dead), both
        only among the entries `relay_id` still holds."""
        if not seqs:
            return 0, 0
        params = {
            "seqs": seqs,
            "relay": relay_id,
            "error": error,
            "max": self.cfg.max_attempts,
            "base": self.cfg.backoff_base_s,
            "cap": self.cfg.backoff_max_s,
        }
        with self.pool.connection() as conn, conn.transaction():
            statuses = [r["status"] for r in fetch_all(conn.execute(self._q["failed"], params))]
        dead = statuses.count("dead")
        return len(statuses) - dead, dead

    def stats(self) -> QueueStats:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._q["stats"], {"cluster": self.cluster_id}))
            conn.rollback()
        assert r is not None  # noqa: S101 - an aggregate always returns a row
        return QueueStats(
            queued=r["queued"],
            delivered=r["delivered"],
            dead=r["dead"],
            in_flight=r["in_flight"],
            oldest_queued_age_s=float(r["oldest_queued_age_s"]),
            oldest_dead_age_s=float(r["oldest_dead_age_s"]),
        )

    def watermark(self) -> str:
        """The queue's position now (a PostgreSQL snapshot, as text): see `committed_before`."""
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(_WATERMARK))
            conn.rollback()
        assert r is not None  # noqa: S101 - a SELECT without FROM returns one row
        return str(r["snapshot"])

    def committed_before(self, watermark: str) -> Backlog:
        """Entries committed before `watermark` was taken that are still queued, and those that went dead."""
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(self._q["before"], {"cluster": self.cluster_id, "snapshot": watermark}))
            conn.rollback()
        assert r is not None  # noqa: S101 - an aggregate always returns a row
        return Backlog(queued=r["queued"], dead=r["dead"])

    def replay_dead(self, seqs: list[int] | None = None) -> int:
        """Dead entries back to the queue with a fresh attempt budget (their replay count remembers it)."""
        with self.pool.connection() as conn, conn.transaction():
            return conn.execute(self._q["replay"], {"cluster": self.cluster_id, "seqs": seqs}).rowcount


_LAG = """
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS lag_s,
       EXISTS (SELECT 1 FROM {t} WHERE cluster_id = %(cluster)s AND status = 'dead') AS has_dead
FROM {t} WHERE cluster_id = %(cluster)s AND status = 'queued'
"""


def cache_lag(outbox: Outbox) -> tuple[float, bool]:
    """(age of the oldest undelivered entry in seconds, whether dead entries exist): cheap, index-backed."""
    q = sql.SQL(_LAG).format(t=sql.Identifier(outbox.cfg.outbox_table))
    with outbox.pool.connection() as conn:
        r = fetch_one(conn.execute(q, {"cluster": outbox.cluster_id}))
        conn.rollback()
    assert r is not None  # noqa: S101 - an aggregate always returns a row
    return float(r["lag_s"]), bool(r["has_dead"])
