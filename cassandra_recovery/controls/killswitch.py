"""The per-cluster kill switch: while it is on, no automated action touches the cluster (incidents are still
recorded and assessed, and escalated to people)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_one
from cassandra_recovery.errors import RecoveryError

# FOR SHARE: a switch being set waits for the action being started (and the reverse), so every action either
# started before the switch was set (and an in-flight one is cancelled by its watcher) or sees it and never starts.
_FENCED_READ = "SELECT * FROM automation_kill_switch WHERE cluster_id = %s FOR SHARE"


@dataclass(frozen=True)
class Switch:
    cluster_id: str
    stopped: bool
    reason: str
    set_by: str
    since: datetime


class AutomationStopped(RecoveryError):
    """An automated action refused (or cancelled in flight) because the cluster's kill switch is on."""

    def __init__(self, switch: Switch, action: str, cancelled: bool = False) -> None:
        self.switch, self.action, self.cancelled = switch, action, cancelled
        done = "cancelled in flight" if cancelled else "not started"
        super().__init__(
            f"automation stopped on {switch.cluster_id} by {switch.set_by} ({switch.reason}): {action} {done}"
        )

    def __reduce__(self) -> tuple[type[AutomationStopped], tuple[Switch, str, bool]]:
        return AutomationStopped, (self.switch, self.action, self.cancelled)  # a task's failure is pickled

    def as_doc(self) -> dict[str, str | bool]:
        s = self.switch
        return {"action": self.action, "cancelled": self.cancelled, "set_by": s.set_by, "reason": s.reason,
                "since": s.since.isoformat()}  # fmt: skip


def stopped_in(conn: Any, cluster_id: str) -> Switch | None:
    """The switch when it is on, read inside the caller's transaction (the fenced read before a side effect)."""
    r = fetch_one(conn.execute(_FENCED_READ, (cluster_id,)))
    return Switch(**r) if r is not None and r["stopped"] else None


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
