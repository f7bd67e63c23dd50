"""What each scheduled repair did, in PostgreSQL: ran, skipped (and why), escalated; and the repair history the
repair-age metrics read (the last successful run covering each keyspace)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all

_LAST_SUCCESS = """
SELECT s.keyspace, max(r.finished_at) AS finished_at
FROM repair_runs r JOIN repair_segments s USING (run_key)
WHERE r.cluster_id = %s AND r.outcome = 'done'
GROUP BY s.keyspace
"""


@dataclass(frozen=True)
class LogEntry:
    id: int
    schedule: str
    cluster_id: str
    kind: str
    run_key: str | None
    at: datetime
    outcome: str
    reason: str
    detail: dict[str, Any]


class ScheduleLog:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def record(
        self, schedule: str, cluster_id: str, kind: str, run_key: str | None, outcome: str, reason: str = "",
        detail: Mapping[str, object] | None = None,
    ) -> None:  # fmt: skip
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO repair_schedule_log (schedule, cluster_id, kind, run_key, outcome, reason, detail)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (schedule, cluster_id, kind, run_key, outcome, reason, Jsonb(detail or {})),
            )
            conn.commit()

    def entries(self, cluster_id: str, schedule: str | None = None) -> list[LogEntry]:
        with self.pool.connection() as conn:
            rows = fetch_all(
                conn.execute(
                    "SELECT * FROM repair_schedule_log WHERE cluster_id = %s AND (%s::text IS NULL OR schedule = %s)"
                    " ORDER BY id",
                    (cluster_id, schedule, schedule),
                )
            )
            conn.rollback()
        return [LogEntry(**r) for r in rows]

    def last_success(self, cluster_id: str) -> dict[str, datetime]:
        """Keyspace -> when the newest completed repair run that covered it finished."""
        with self.pool.connection() as conn:
            rows = fetch_all(conn.execute(_LAST_SUCCESS, (cluster_id,)))
            conn.rollback()
        return {r["keyspace"]: r["finished_at"] for r in rows if r["finished_at"] is not None}
