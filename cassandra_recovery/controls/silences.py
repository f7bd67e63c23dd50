"""Maintenance windows and silences per cluster: a known partition is reported, not acted on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one


@dataclass(frozen=True)
class Window:
    id: int
    cluster_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


class Silences:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def add(self, cluster_id: str, starts_at: datetime, duration: timedelta, reason: str, created_by: str) -> Window:
        if duration <= timedelta(0):
            raise ValueError("a maintenance window needs a positive duration")
        with self.pool.connection() as conn, conn.transaction():
            r = fetch_one(
                conn.execute(
                    "INSERT INTO maintenance_windows (cluster_id, starts_at, ends_at, reason, created_by)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING *",
                    (cluster_id, starts_at, starts_at + duration, reason, created_by),
                )
            )
        assert r is not None  # noqa: S101 - RETURNING yields the row
        return Window(**r)

    def active(self, cluster_id: str, now: datetime) -> list[Window]:
        with self.pool.connection() as conn:
            rows = fetch_all(
                conn.execute(
                    "SELECT * FROM maintenance_windows WHERE cluster_id = %s AND starts_at <= %s AND ends_at > %s"
                    " ORDER BY starts_at",
                    (cluster_id, now, now),
                )
            )
            conn.rollback()
        return [Window(**r) for r in rows]

    def known_condition(self, cluster_id: str, now: datetime) -> str | None:
        """A sentence for the plan when a window is active, else None."""
        active = self.active(cluster_id, now)
        if not active:
            return None
        w = active[0]
        return f"maintenance window #{w.id} until {w.ends_at.isoformat()} by {w.created_by}: {w.reason}"
