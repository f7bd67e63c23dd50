"""The per-cluster kill switch: while it is on, no automated action touches the cluster (incidents are still
recorded and assessed, and escalated to people)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_one


@dataclass(frozen=True)
class Switch:
    cluster_id: str
    stopped: bool
    reason: str
    set_by: str
    since: datetime


class KillSwitch:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def set(self, cluster_id: str, stopped: bool, reason: str, set_by: str) -> Switch:
        if not 1 <= len(reason) <= 500:
            raise ValueError("a kill-switch reason must be 1 to 500 characters")
        with self.pool.connection() as conn, conn.transaction():
            r = fetch_one(
                conn.execute(
                    "INSERT INTO automation_kill_switch (cluster_id, stopped, reason, set_by) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (cluster_id) DO UPDATE SET stopped = EXCLUDED.stopped, reason = EXCLUDED.reason,"
                    " set_by = EXCLUDED.set_by, since = clock_timestamp() RETURNING *",
                    (cluster_id, stopped, reason, set_by),
                )
            )
        assert r is not None  # noqa: S101 - RETURNING yields the row
        return Switch(**r)

    def get(self, cluster_id: str) -> Switch | None:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute("SELECT * FROM automation_kill_switch WHERE cluster_id = %s", (cluster_id,)))
            conn.rollback()
        return None if r is None else Switch(**r)

    def stopped(self, cluster_id: str) -> Switch | None:
        """The switch when automation is stopped for the cluster, else None."""
        s = self.get(cluster_id)
        return s if s is not None and s.stopped else None
