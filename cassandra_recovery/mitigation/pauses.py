"""Scheduled repairs paused per cluster while an incident owns it (scheduled repair checks before starting)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_one
from cassandra_recovery.incident.fence import Fence


@dataclass(frozen=True)
class RepairPause:
    cluster_id: str
    reason: str
    incident_id: str | None
    set_by: str
    since: datetime


class RepairPauses:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def pause(
        self, cluster_id: str, reason: str, set_by: str, incident_id: str | None = None, fence: Fence | None = None
    ) -> RepairPause:
        """Idempotent. The newest incident takes over a pause an earlier incident left (one escalated to a human
        keeps repairs paused); an operator's pause (no incident) is never taken over, so no incident lifts it.
        With `fence` (an incident's lease), written only while it holds."""
        with self.pool.connection() as conn, conn.transaction():
            if fence is not None:
                fence.check(conn)
            conn.execute(
                "INSERT INTO repair_pauses (cluster_id, reason, incident_id, set_by) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (cluster_id) DO UPDATE SET reason = EXCLUDED.reason, incident_id = EXCLUDED.incident_id,"
                " set_by = EXCLUDED.set_by, since = now()"
                " WHERE repair_pauses.incident_id IS NOT NULL AND EXCLUDED.incident_id IS NOT NULL"
                " AND repair_pauses.incident_id <> EXCLUDED.incident_id",
                (cluster_id, reason, incident_id, set_by),
            )
        found = self.get(cluster_id)
        assert found is not None  # noqa: S101 - inserted or already there
        return found

    def resume(self, cluster_id: str, incident_id: str | None = None, fence: Fence | None = None) -> bool:
        """Lift the pause; with incident_id, only a pause that incident set (another owner's pause stays)."""
        with self.pool.connection() as conn, conn.transaction():
            if fence is not None:
                fence.check(conn)
            if incident_id is None:
                cur = conn.execute("DELETE FROM repair_pauses WHERE cluster_id = %s", (cluster_id,))
            else:
                cur = conn.execute(
                    "DELETE FROM repair_pauses WHERE cluster_id = %s AND incident_id = %s", (cluster_id, incident_id)
                )
            return cur.rowcount > 0

    def get(self, cluster_id: str) -> RepairPause | None:
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute("SELECT * FROM repair_pauses WHERE cluster_id = %s", (cluster_id,)))
        return None if r is None else RepairPause(**r)
